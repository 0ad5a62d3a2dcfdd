"""Read model of the dispatcher's board: one plan of an outlet-day as lanes, stops and KPIs.

Times are in the outlet's zone. Each technician keeps one colour on every plan of the outlet
(their place in the outlet's roster picks it from a fixed, readable palette).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from dispatch import models as m
from dispatch.errors import NotFoundError
from dispatch.timeutil import utc_to_local

#: Distinct colours that stay readable as lines on a map and as blocks with white text.
PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#e67e00", "#17becf", "#8c564b", "#e377c2",
    "#4e5d6c", "#a1a100", "#0b4f8a", "#7a1c1c", "#1b5e20", "#5c2d91", "#b35900", "#00767f",
)

PENDING_CONFIRMATIONS = (m.ConfirmationStatus.UNCONFIRMED, m.ConfirmationStatus.PROPOSED,
                         m.ConfirmationStatus.NEEDS_CONSENT)
CLOSED_STATUSES = (m.VisitStatus.CANCELLED, m.VisitStatus.DONE, m.VisitStatus.NO_SHOW,
                   m.VisitStatus.NOT_FINISHED)

Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class BoardStop:
    """A visit or a break on a technician's day (local times)."""

    kind: str  # "visit" or "break"
    number: int  # 1-based visit number on the route (0 for breaks)
    arrival: datetime
    start: datetime
    end: datetime
    travel_seconds: int = 0
    waiting_seconds: int = 0
    late_seconds: int = 0
    visit_id: int | None = None
    visit_version: int | None = None
    code: str = ""
    customer: str = ""
    address: str = ""
    lat: float = 0.0
    lon: float = 0.0
    windows: tuple[Span, ...] = ()
    agreed: Span | None = None
    status: str = ""
    confirmation: str = ""
    priority: int = 2
    pinned_technician_id: int | None = None
    pinned_start: Span | None = None

    @property
    def window_broken(self) -> bool:
        """Whether the visit starts outside every window the customer accepts."""
        spans = (self.agreed,) if self.agreed else self.windows
        return bool(spans) and not any(a <= self.start <= b for a, b in spans)


@dataclass(frozen=True)
class Lane:
    """One technician's day on the board."""

    technician_id: int
    code: str
    name: str
    colour: str
    shift: Span | None
    start_lat: float
    start_lon: float
    stops: tuple[BoardStop, ...]

    @property
    def visits(self) -> tuple[BoardStop, ...]:
        """The lane's visits in route order."""
        return tuple(s for s in self.stops if s.kind == m.StopKind.VISIT)


@dataclass(frozen=True)
class UnassignedRow:
    """A visit the plan leaves out, with the solver's reason and the suggested fix."""

    visit_id: int
    visit_version: int
    code: str
    customer: str
    address: str
    lat: float
    lon: float
    windows: tuple[Span, ...]
    priority: int
    reason_code: str
    reason_zh: str
    reason_en: str
    fix_zh: str
    fix_en: str
    pinned_technician_id: int | None


@dataclass(frozen=True)
class PlanChoice:
    """A plan version of the outlet-day, for the plan picker."""

    id: int
    number: int
    status: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class Board:
    """Everything the board shows for one plan of an outlet-day."""

    outlet: m.Outlet
    day: date
    plan: m.Plan | None
    plans: tuple[PlanChoice, ...]
    published_id: int | None
    lanes: tuple[Lane, ...]
    unassigned: tuple[UnassignedRow, ...]
    kpis: dict[str, int]


def chosen_plan(session: Session, outlet_id: int, day: date,
                plan_id: int | None = None) -> m.Plan | None:
    """The plan asked for, or else the newest plan of the outlet-day that is not superseded."""
    if plan_id is not None:
        plan = session.get(m.Plan, plan_id)
        if plan is None or plan.outlet_id != outlet_id or plan.day != day:
            raise NotFoundError("plan", plan_id, "方案")
        return plan
    return session.scalar(
        select(m.Plan)
        .where(m.Plan.outlet_id == outlet_id, m.Plan.day == day,
               m.Plan.status != m.PlanStatus.SUPERSEDED.value)
        .order_by(m.Plan.number.desc()))


def load_board(session: Session, outlet: m.Outlet, day: date,
               plan_id: int | None = None) -> Board:
    """The board of the outlet-day showing ``plan_id`` (default: the newest live plan)."""
    plan = chosen_plan(session, outlet.id, day, plan_id)
    plans = _plan_choices(session, outlet.id, day)
    published = next((p.id for p in plans if p.status == m.PlanStatus.PUBLISHED), None)
    tz = outlet.timezone
    colours = technician_colours(session, outlet.id)
    stops = _plan_stops(session, plan) if plan is not None else []
    lanes = _lanes(session, outlet, day, stops, colours, tz)
    unassigned = _unassigned(session, plan, tz) if plan is not None else ()
    return Board(outlet, day, plan, plans, published, lanes, unassigned,
                 _kpis(session, outlet.id, day, plan))


def technician_colours(session: Session, outlet_id: int) -> dict[int, str]:
    """Technician id -> colour, stable for the outlet (roster order by code)."""
    ids = session.scalars(select(m.Technician.id).where(m.Technician.outlet_id == outlet_id)
                          .order_by(m.Technician.code)).all()
    return {tid: PALETTE[i % len(PALETTE)] for i, tid in enumerate(ids)}


def _plan_choices(session: Session, outlet_id: int, day: date) -> tuple[PlanChoice, ...]:
    rows = session.scalars(select(m.Plan).where(m.Plan.outlet_id == outlet_id, m.Plan.day == day)
                           .order_by(m.Plan.number.desc()))
    return tuple(PlanChoice(p.id, p.number, str(p.status), p.created_by, p.created_at)
                 for p in rows)


def _plan_stops(session: Session, plan: m.Plan) -> list[m.PlanStop]:
    return list(session.scalars(
        select(m.PlanStop).where(m.PlanStop.plan_id == plan.id)
        .options(selectinload(m.PlanStop.visit).selectinload(m.Visit.windows),
                 selectinload(m.PlanStop.visit).selectinload(m.Visit.ticket)
                 .selectinload(m.ServiceTicket.customer))
        .order_by(m.PlanStop.technician_id, m.PlanStop.sequence)))


def _lanes(session: Session, outlet: m.Outlet, day: date, stops: list[m.PlanStop],
           colours: dict[int, str], tz: str) -> tuple[Lane, ...]:
    """A lane for every technician working that day or holding stops in the plan."""
    shifts = {s.technician_id: s for s in session.scalars(
        select(m.TechnicianShift).join(m.Technician)
        .where(m.Technician.outlet_id == outlet.id, m.TechnicianShift.day == day,
               m.TechnicianShift.absent.is_(False)))}
    by_tech: dict[int, list[m.PlanStop]] = {}
    for stop in stops:
        by_tech.setdefault(stop.technician_id, []).append(stop)
    techs = session.scalars(select(m.Technician)
                            .where(m.Technician.id.in_(set(shifts) | set(by_tech)))
                            .order_by(m.Technician.code)).all()
    lanes = []
    for tech in techs:
        shift = shifts.get(tech.id)
        span = (utc_to_local(shift.starts_at, tz), utc_to_local(shift.ends_at, tz)) \
            if shift else None
        from_home = shift is None or shift.start_place == m.Place.HOME
        lanes.append(Lane(
            tech.id, tech.code, tech.name, colours.get(tech.id, PALETTE[0]), span,
            tech.home_lat if from_home else outlet.lat, tech.home_lon if from_home else outlet.lon,
            _board_stops(by_tech.get(tech.id, []), tz)))
    return tuple(lanes)


def _board_stops(stops: list[m.PlanStop], tz: str) -> tuple[BoardStop, ...]:
    out = []
    number = 0
    for stop in stops:
        times = {"arrival": utc_to_local(stop.arrival_at, tz),
                 "start": utc_to_local(stop.start_at, tz), "end": utc_to_local(stop.end_at, tz)}
        if stop.kind == m.StopKind.BREAK or stop.visit is None:
            out.append(BoardStop(kind=str(m.StopKind.BREAK), number=0, **times))
            continue
        number += 1
        visit = stop.visit
        customer = visit.ticket.customer
        out.append(BoardStop(
            kind=str(m.StopKind.VISIT), number=number, **times,
            travel_seconds=stop.travel_seconds, waiting_seconds=stop.waiting_seconds,
            late_seconds=stop.late_seconds, visit_id=visit.id, visit_version=visit.version,
            code=visit.code, customer=f"{customer.name}{customer.honorific}",
            address=f"{customer.district} {customer.address}".strip(),
            lat=customer.lat, lon=customer.lon, windows=_windows(visit, tz),
            agreed=_agreed(visit, tz), status=str(visit.status),
            confirmation=str(visit.confirmation_status), priority=visit.priority,
            pinned_technician_id=visit.pinned_technician_id, pinned_start=_pinned(visit, tz)))
    return tuple(out)


def _windows(visit: m.Visit, tz: str) -> tuple[Span, ...]:
    return tuple((utc_to_local(w.starts_at, tz), utc_to_local(w.ends_at, tz))
                 for w in sorted(visit.windows, key=lambda w: w.starts_at))


def _agreed(visit: m.Visit, tz: str) -> Span | None:
    if visit.agreed_start is None or visit.agreed_end is None:
        return None
    return utc_to_local(visit.agreed_start, tz), utc_to_local(visit.agreed_end, tz)


def _pinned(visit: m.Visit, tz: str) -> Span | None:
    if visit.pinned_start_from is None or visit.pinned_start_to is None:
        return None
    return utc_to_local(visit.pinned_start_from, tz), utc_to_local(visit.pinned_start_to, tz)


def _unassigned(session: Session, plan: m.Plan, tz: str) -> tuple[UnassignedRow, ...]:
    rows = session.scalars(
        select(m.UnassignedVisit).where(m.UnassignedVisit.plan_id == plan.id)
        .options(selectinload(m.UnassignedVisit.visit).selectinload(m.Visit.windows),
                 selectinload(m.UnassignedVisit.visit).selectinload(m.Visit.ticket)
                 .selectinload(m.ServiceTicket.customer)))
    out = []
    for row in rows:
        visit = row.visit
        customer = visit.ticket.customer
        params = row.reason_params or {}
        fix_zh, fix_en = str(params.get("fix_zh", "")), str(params.get("fix_en", ""))
        out.append(UnassignedRow(
            visit.id, visit.version, visit.code, f"{customer.name}{customer.honorific}",
            f"{customer.district} {customer.address}".strip(), customer.lat, customer.lon,
            _agreed_or_windows(visit, tz), visit.priority, row.reason_code,
            _without_fix(row.reason_zh, fix_zh), _without_fix(row.reason_en, fix_en),
            fix_zh, fix_en, visit.pinned_technician_id))
    # The most urgent first: emergencies lead the list.
    return tuple(sorted(out, key=lambda r: (-r.priority, r.code)))


def _agreed_or_windows(visit: m.Visit, tz: str) -> tuple[Span, ...]:
    agreed = _agreed(visit, tz)
    return (agreed,) if agreed else _windows(visit, tz)


def _without_fix(reason: str, fix: str) -> str:
    """The solver appends the fix to its reason; the board shows them apart."""
    if fix and reason.endswith(fix):
        return reason[: -len(fix)].rstrip()
    return reason


def _kpis(session: Session, outlet_id: int, day: date, plan: m.Plan | None) -> dict[str, int]:
    """The headline figures: from the plan, and from the day's visits and open tasks."""
    kpis = dict(plan.kpis or {}) if plan is not None else {}
    pending = session.scalar(
        select(func.count(m.Visit.id)).where(
            m.Visit.outlet_id == outlet_id, m.Visit.day == day,
            m.Visit.confirmation_status.in_([c.value for c in PENDING_CONFIRMATIONS]),
            m.Visit.status.not_in([s.value for s in CLOSED_STATUSES])))
    delays = session.scalar(
        select(func.count(m.Task.id)).join(m.Visit, m.Task.visit_id == m.Visit.id).where(
            m.Task.outlet_id == outlet_id, m.Visit.day == day,
            m.Task.kind == m.TaskKind.DELAY_NOTICE.value,
            m.Task.status == m.TaskStatus.OPEN.value))
    return {
        "travel_minutes": round(int(kpis.get("travel_time", 0)) / 60),
        "distance_km": round(int(kpis.get("distance", 0)) / 1000),
        "visits_planned": int(kpis.get("visits_planned", 0)),
        "visits_unassigned": int(kpis.get("visits_unassigned", 0)),
        "overtime_minutes": round(int(kpis.get("overtime", 0)) / 60),
        "sla_at_risk": int(kpis.get("sla_at_risk", 0)),
        "confirmations_pending": int(pending or 0),
        "delay_notices_due": int(delays or 0),
    }
