"""A small outlet-day for re-optimization tests: tiny's day planned and published at 07:00,
then moved on to a later moment (visits before it done, the one under way on site)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

import fixtures
from dispatch import db
from dispatch import models as m
from dispatch.loader import load_dataset
from dispatch.planning import current_plan, plan_day, publish_plan
from solver import SolveParams

DAY = date(2025, 3, 10)
ZONE = ZoneInfo("Asia/Shanghai")
#: Deterministic and quick: no wall-clock limit, a couple of improving solutions.
PARAMS = SolveParams(time_limit=None, solution_limit=2, use_pyvrp=False)


def at(hour: int, minute: int = 0) -> datetime:
    """The Shanghai wall time on the test day."""
    return datetime.combine(DAY, time(hour, minute), tzinfo=ZONE)


@dataclass(frozen=True)
class Day:
    """The test outlet-day: how to open sessions, and which outlet."""

    factory: sessionmaker[Session]
    outlet_id: int


def published_day(engine: Engine) -> Day:
    """Load tiny's day, plan it at 07:00 and publish the plan."""
    factory = db.session_factory(engine)
    with db.session_scope(factory) as session:
        load_dataset(session, fixtures.generate("tiny", DAY, 0))
        outlet = session.scalar(select(m.Outlet))
        assert outlet is not None
        plan = plan_day(session, outlet, DAY, params=PARAMS, now=at(7))
        publish_plan(session, plan, plan.version, now=at(7))
        return Day(factory, outlet.id)


def advance(session: Session, outlet_id: int, now: datetime) -> None:
    """Make the day's statuses match the published plan at ``now``: earlier visits done, the
    visit under way on site since its planned start."""
    plan = current_plan(session, outlet_id, DAY)
    assert plan is not None
    for stop in plan.stops:
        visit = stop.visit
        if visit is None or visit.status != m.VisitStatus.PLANNED:
            continue
        if stop.end_at <= now:
            visit.status = m.VisitStatus.DONE
            visit.actual_arrival = visit.actual_start = stop.start_at
            visit.actual_end = stop.end_at
        elif stop.start_at <= now:
            visit.status = m.VisitStatus.ON_SITE
            visit.actual_arrival = visit.actual_start = stop.start_at
    db.flush(session)


def route_of(plan: m.Plan, technician_code: str) -> list[m.PlanStop]:
    """The technician's visit stops in a plan, in order."""
    return sorted((s for s in plan.stops if s.kind == m.StopKind.VISIT
                   and s.technician.code == technician_code), key=lambda s: s.start_at)


def published(session: Session, outlet_id: int) -> m.Plan:
    """The outlet-day's published plan."""
    plan = current_plan(session, outlet_id, DAY)
    assert plan is not None
    return plan


def row_counts(session: Session) -> dict[str, int]:
    """How many plans, tasks and notifications there are."""
    return {name: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for name, model in (("plans", m.Plan), ("tasks", m.Task),
                                ("notifications", m.Notification))}


def book_visit(session: Session, outlet_id: int, code: str, *, skill: str, priority: int,
               window: tuple[datetime, datetime], reported: datetime,
               lat: float = 36.07, lon: float = 120.38) -> m.Visit:
    """A new customer, ticket and unconfirmed visit booked on the test day."""
    customer = m.Customer(code=f"C-{code}", name="赵", honorific="先生", phone="13900000000",
                          address="青岛市市南区", lat=lat, lon=lon)
    ticket = m.ServiceTicket(code=f"K-{code}", customer=customer, outlet_id=outlet_id,
                             kind=m.TicketKind.REPAIR, reported_at=reported, owner="disp1",
                             priority=priority, sla_deadline=reported + timedelta(hours=6))
    skill_row = session.scalar(select(m.Skill).where(m.Skill.code == skill))
    visit = m.Visit(code=code, ticket=ticket, outlet_id=outlet_id, day=DAY,
                    duration_minutes=45, priority=priority,
                    windows=[m.VisitWindow(starts_at=window[0], ends_at=window[1])],
                    skills=[m.VisitSkill(skill=skill_row, min_level=1)])
    session.add(visit)
    db.flush(session)
    return visit
