"""Read models for the day pages: a day's visits with their customer, product and plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dispatch.models import (
    Outlet,
    Plan,
    PlanStatus,
    PlanStop,
    ServiceTicket,
    StopKind,
    Technician,
    Visit,
)
from dispatch.timeutil import utc_to_local


@dataclass(frozen=True)
class VisitRow:
    """One line of the day's visit list, times in the outlet's zone."""

    id: int
    code: str
    kind: str
    customer: str
    phone: str
    address: str
    district: str
    product: str
    category: str
    windows: tuple[tuple[datetime, datetime], ...]
    agreed: tuple[datetime, datetime] | None
    duration_minutes: int
    skills: tuple[str, ...]
    confirmation: str
    status: str
    priority: int
    technician_id: int | None
    technician: str | None
    planned_start: datetime | None
    lat: float
    lon: float


def outlets(session: Session) -> list[Outlet]:
    """Every outlet, by code."""
    return list(session.scalars(select(Outlet).order_by(Outlet.code)))


def shown_plan(session: Session, outlet_id: int, day: date) -> Plan | None:
    """The published plan of an outlet-day, or else its newest draft."""
    plans = session.scalars(
        select(Plan)
        .where(Plan.outlet_id == outlet_id, Plan.day == day)
        .order_by(Plan.number.desc())
    ).all()
    published = [p for p in plans if p.status == PlanStatus.PUBLISHED]
    return (published or plans or [None])[0]


def day_visits(session: Session, outlet: Outlet, day: date) -> list[VisitRow]:
    """The outlet's visits on ``day`` in planned order (unplanned last, by window)."""
    visits = session.scalars(
        select(Visit)
        .where(Visit.outlet_id == outlet.id, Visit.day == day)
        .options(
            selectinload(Visit.windows),
            selectinload(Visit.skills),
            selectinload(Visit.ticket).selectinload(ServiceTicket.customer),
            selectinload(Visit.ticket).selectinload(ServiceTicket.product),
        )
    ).all()
    planned = _planned_stops(session, outlet.id, day)
    rows = [_row(v, planned.get(v.id), outlet.timezone) for v in visits]
    return sorted(rows, key=_display_order)


def technician_day(session: Session, technician_id: int, day: date) -> list[VisitRow]:
    """A technician's visits on ``day`` from the current plan of their outlet, in order."""
    tech = session.get(Technician, technician_id)
    if tech is None:
        return []
    rows = day_visits(session, tech.outlet, day)
    return [r for r in rows if r.technician_id == tech.id]


def _display_order(row: VisitRow) -> tuple[bool, float, str]:
    when = row.planned_start or (row.windows[0][0] if row.windows else None)
    return (row.planned_start is None, when.timestamp() if when else float("inf"), row.code)


def _planned_stops(session: Session, outlet_id: int, day: date) -> dict[int, PlanStop]:
    plan = shown_plan(session, outlet_id, day)
    if plan is None:
        return {}
    stops = session.scalars(
        select(PlanStop)
        .where(PlanStop.plan_id == plan.id, PlanStop.kind == StopKind.VISIT)
        .options(selectinload(PlanStop.technician))
    ).all()
    return {s.visit_id: s for s in stops if s.visit_id is not None}


def _row(visit: Visit, stop: PlanStop | None, tz: str) -> VisitRow:
    ticket = visit.ticket
    customer = ticket.customer
    product = ticket.product
    local = lambda dt: utc_to_local(dt, tz)  # noqa: E731
    agreed = None
    if visit.agreed_start is not None and visit.agreed_end is not None:
        agreed = (local(visit.agreed_start), local(visit.agreed_end))
    return VisitRow(
        id=visit.id,
        code=visit.code,
        kind=str(ticket.kind),
        customer=f"{customer.name}{customer.honorific}",
        phone=customer.phone,
        address=customer.address,
        district=customer.district,
        product=f"{product.brand} {product.model}" if product else "",
        category=str(product.category) if product else "",
        windows=tuple(
            (local(w.starts_at), local(w.ends_at))
            for w in sorted(visit.windows, key=lambda w: w.starts_at)
        ),
        agreed=agreed,
        duration_minutes=visit.duration_minutes,
        skills=tuple(sorted(s.skill.code for s in visit.skills)),
        confirmation=str(visit.confirmation_status),
        status=str(visit.status),
        priority=visit.priority,
        technician_id=stop.technician_id if stop else None,
        technician=stop.technician.name if stop else None,
        planned_start=local(stop.start_at) if stop else None,
        lat=customer.lat,
        lon=customer.lon,
    )
