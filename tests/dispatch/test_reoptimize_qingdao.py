"""The re-optimization job on a real-sized day: qingdao's largest outlet (QD-SN) at 11:00, an
emergency just booked. Regressions of what its first runs got wrong: a second run at the same
moment published again; confirmed appointments were dropped silently; an overrun re-planned
everybody's day.

The day is planned once per module (deterministic, solution-limited) and copied for each test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import fixtures
from dispatch import db
from dispatch import models as m
from dispatch.confirmation import is_agreed
from dispatch.loader import load_dataset
from dispatch.planning import current_plan, plan_day, publish_plan
from dispatch.reoptimize import (
    DEFAULT_MOVE_THRESHOLD,
    RunReport,
    build_state,
    replay_published,
    run_reoptimization,
)
from solver import SolveParams
from tests.dispatch.reopt_helpers import DAY, at, book_visit, route_of, row_counts

OUTLET = "QD-SN"
#: Deterministic: no wall-clock limit, a few improving solutions, one process.
PARAMS = SolveParams(time_limit=None, solution_limit=5, use_pyvrp=False, workers=1)
ELEVEN = at(11)


@dataclass(frozen=True)
class QingdaoDay:
    """A copy of the prepared day: how to open sessions, and which outlet."""

    factory: sessionmaker[Session]
    outlet_id: int


def follow_plan(session: Session, outlet_id: int, now: datetime) -> None:
    """The day as the published plan has it at ``now``: visits ended before it done, the one
    under way on site since its planned start."""
    plan = current_plan(session, outlet_id, DAY)
    assert plan is not None
    for stop in plan.stops:
        visit = stop.visit
        if visit is None or visit.status not in (m.VisitStatus.PLANNED, m.VisitStatus.ON_SITE):
            continue
        if stop.end_at <= now:
            visit.status = m.VisitStatus.DONE
            visit.actual_arrival = visit.actual_start = stop.start_at
            visit.actual_end = stop.end_at
        elif stop.start_at <= now:
            visit.status = m.VisitStatus.ON_SITE
            visit.actual_arrival = visit.actual_start = stop.start_at
    db.flush(session)


@pytest.fixture(scope="module")
def prepared(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """QD-SN planned and published at 07:00, followed to 11:00, an emergency booked then."""
    path = tmp_path_factory.mktemp("qingdao") / "day.db"
    shutil.copyfile(sqlite_template, path)
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        prepare(db.session_factory(engine))
    finally:
        engine.dispose()
    return path


def prepare(factory: sessionmaker[Session]) -> int:
    """Load qingdao, plan and publish QD-SN at 07:00, follow it to 11:00, book an emergency;
    the outlet's id."""
    with db.session_scope(factory) as session:
        load_dataset(session, fixtures.generate("qingdao", DAY, 0))
        outlet = session.scalar(select(m.Outlet).where(m.Outlet.code == OUTLET))
        assert outlet is not None
        plan = plan_day(session, outlet, DAY, params=PARAMS, now=at(7))
        publish_plan(session, plan, plan.version, now=at(7))
        outlet_id = outlet.id
    with db.session_scope(factory) as session:
        follow_plan(session, outlet_id, ELEVEN)
        book_visit(session, outlet_id, "EMERG-QD", skill="water_heater", priority=4,
                   window=(ELEVEN, at(15)), reported=ELEVEN, lat=36.066, lon=120.383)
    return outlet_id


@pytest.fixture
def day(prepared: Path, tmp_path: Path) -> Iterator[QingdaoDay]:
    """A fresh copy of the prepared day."""
    path = tmp_path / "day.db"
    shutil.copyfile(prepared, path)
    engine = db.make_engine(f"sqlite:///{path}")
    factory = db.session_factory(engine)
    with db.session_scope(factory) as session:
        outlet_id = session.scalar(select(m.Outlet.id).where(m.Outlet.code == OUTLET))
    assert outlet_id is not None
    yield QingdaoDay(factory, outlet_id)
    engine.dispose()


def run(day: QingdaoDay, now: datetime = ELEVEN) -> RunReport:
    """One run of the outlet-day at ``now``."""
    return run_reoptimization(day.factory, day.outlet_id, DAY, now=now, params=PARAMS)


def published(session: Session, day: QingdaoDay) -> m.Plan:
    """The outlet-day's published plan."""
    plan = current_plan(session, day.outlet_id, DAY)
    assert plan is not None
    return plan


# ---------------------------------------------------------------------------------------------
# 1. The same input twice
# ---------------------------------------------------------------------------------------------


def test_second_run_at_the_same_moment_is_unchanged_and_writes_nothing(day: QingdaoDay) -> None:
    """Right after the job published a plan, a run at the same moment with no event reports
    "unchanged" for that plan and adds no row."""
    first = run(day)
    with db.session_scope(day.factory) as session:
        before = row_counts(session)
    second = run(day)
    assert first.status == "published"
    assert (second.status, second.plan_id) == ("unchanged", first.plan_id)
    with db.session_scope(day.factory) as session:
        assert row_counts(session) == before


def test_the_published_plan_is_keepable_and_its_digest_is_the_next_runs(day: QingdaoDay) -> None:
    """The state rebuilt from the plan the job just published has that plan's digest, and none
    of its routes counts as broken at the same moment."""
    run(day)
    with db.session_scope(day.factory) as session:
        plan = published(session, day)
        state = build_state(session, plan.outlet, DAY, plan, now=ELEVEN)
        assert state.digest() == plan.input_digest
        assert replay_published(state, DEFAULT_MOVE_THRESHOLD).broken == frozenset()


# ---------------------------------------------------------------------------------------------
# 2. Promises are never dropped silently
# ---------------------------------------------------------------------------------------------


def test_every_promise_is_planned_or_flagged_with_its_reason_and_a_call(day: QingdaoDay) -> None:
    """Each open confirmed visit is in the new plan (late only with a delay notice and a
    consent request), or left out with the reason in both languages and a call to agree a new
    time."""
    assert run(day).status == "published"
    with db.session_scope(day.factory) as session:
        plan = published(session, day)
        stops = {s.visit_id: s for s in plan.stops if s.visit_id is not None}
        reasons = {u.visit_id: u for u in plan.unassigned}
        tasks = {(t.kind, t.visit_id): t for t in session.scalars(
            select(m.Task).where(m.Task.status == m.TaskStatus.OPEN.value))}
        open_promises = [v for v in session.scalars(select(m.Visit).where(
            m.Visit.outlet_id == day.outlet_id, m.Visit.day == DAY,
            m.Visit.status == m.VisitStatus.PLANNED.value)) if is_agreed(v)]
        assert open_promises
        for visit in open_promises:
            stop = stops.get(visit.id)
            if stop is None:
                reason = reasons[visit.id]
                assert reason.reason_zh and reason.reason_en, visit.code
                call = tasks[(m.TaskKind.CONFIRMATION_CALL, visit.id)]
                assert call.payload["reason"] == "unassigned" and call.payload["was_confirmed"]
                assert call.payload["reason_code"] == reason.reason_code
            elif stop.start_at > visit.agreed_end:  # type: ignore[operator]
                assert (m.TaskKind.DELAY_NOTICE, visit.id) in tasks, visit.code
                assert (m.TaskKind.CONSENT_REQUEST, visit.id) in tasks, visit.code


def test_promises_left_out_have_no_room_with_any_capable_technician(day: QingdaoDay) -> None:
    """A confirmed visit is left out only when every technician able to do it is full: a day
    at its visit limit, or (checked by the solver's scheduler) no place where it fits even
    late, ordinary visits bumped."""
    from solver.schedule import schedule_route

    run(day)
    with db.session_scope(day.factory) as session:
        plan = published(session, day)
        state = build_state(session, plan.outlet, DAY, plan, now=ELEVEN)
        problem = state.planning.problem
        routes = {r: [problem.visits[problem.visit_index(c)] for c in codes]
                  for r, codes in state.old_routes.items()}
        left = [u.visit.code for u in plan.unassigned
                if is_agreed(u.visit) and u.visit.code in state.promised]
        for code in left:
            visit = problem.visits[problem.visit_index(code)]
            for k in problem.capable_technicians(visit):
                tech = problem.technicians[k]
                keep = [v for v in routes.get(tech.id, []) if v.locked or v.priority >= 4]
                assert not any(schedule_route(problem, tech, keep[:p] + [visit] + keep[p:])
                               .feasible for p in range(len(keep) + 1)), (code, tech.id)


def test_the_emergency_is_in_the_first_plan_published(day: QingdaoDay) -> None:
    """The emergency booked at 11:00 is planned by the run at 11:00."""
    run(day)
    with db.session_scope(day.factory) as session:
        planned = {s.visit.code for s in published(session, day).stops if s.visit is not None}
        assert "EMERG-QD" in planned


def test_sick_technicians_promises_go_to_colleagues_with_handover_or_are_flagged(
        day: QingdaoDay) -> None:
    """A technician sent home at 11:00 keeps no open visit; each of their confirmed visits
    goes to a capable colleague with a handover notice and a consent request, or is left out
    with a call to agree a new time; at least one is handed over."""
    with db.session_scope(day.factory) as session:
        plan = published(session, day)
        sick = max(sorted({s.technician for s in plan.stops}, key=lambda t: t.code),
                   key=lambda t: sum(1 for s in route_of(plan, t.code)
                                     if s.visit is not None and is_agreed(s.visit)
                                     and s.visit.status == m.VisitStatus.PLANNED))
        promises = {s.visit_id for s in route_of(plan, sick.code) if s.visit is not None
                    and is_agreed(s.visit) and s.visit.status == m.VisitStatus.PLANNED}
        shift = session.scalar(select(m.TechnicianShift).where(
            m.TechnicianShift.technician_id == sick.id, m.TechnicianShift.day == DAY))
        assert shift is not None
        shift.absent, shift.absence_reason = True, "病假"
        sick_id = sick.id
    assert promises
    assert run(day).status == "published"
    with db.session_scope(day.factory) as session:
        plan = published(session, day)
        placed = {s.visit_id: s.technician_id for s in plan.stops
                  if s.visit is not None and s.visit.status == m.VisitStatus.PLANNED}
        kinds = {(t.kind, t.visit_id) for t in session.scalars(select(m.Task))}
        assert sick_id not in placed.values()
        handed = set()
        for visit_id in promises:
            if visit_id in placed:
                assert (m.TaskKind.HANDOVER_NOTICE, visit_id) in kinds
                assert (m.TaskKind.CONSENT_REQUEST, visit_id) in kinds
                handed.add(visit_id)
            else:
                assert (m.TaskKind.CONFIRMATION_CALL, visit_id) in kinds
        assert handed


# ---------------------------------------------------------------------------------------------
# 3. Publishing thresholds and churn
# ---------------------------------------------------------------------------------------------


def test_an_overrun_moves_only_the_affected_technicians_later_visits(day: QingdaoDay) -> None:
    """After a fresh publish, a visit on site 45 minutes past its planned end: the next run
    publishes (the plan no longer holds) and moves that technician's later visits; a visit of
    anybody else moves only when that buys back a confirmed visit the old plan left out."""
    run(day)
    with db.session_scope(day.factory) as session:
        plan = published(session, day)
        routes = {code: [s for s in route_of(plan, code)
                         if s.visit is not None and s.visit.status == m.VisitStatus.PLANNED]
                  for code in sorted({s.technician.code for s in plan.stops})}
        code = max(routes, key=lambda c: len(routes[c]))
        first, *later = routes[code]
        now = first.end_at + timedelta(minutes=45)
        follow_plan(session, day.outlet_id, now)
        for stop in routes[code]:  # this technician is still on the first visit
            visit = stop.visit
            assert visit is not None
            visit.status = m.VisitStatus.PLANNED
            visit.actual_arrival = visit.actual_start = visit.actual_end = None
        first.visit.status = m.VisitStatus.ON_SITE  # type: ignore[union-attr]
        first.visit.actual_start = first.start_at  # type: ignore[union-attr]
        affected = {s.visit_id for s in later}
        left_before = unassigned_promises(plan)
    report = run(day, now)
    assert report.status == "published"
    assert set(report.moved_visits) & affected
    with db.session_scope(day.factory) as session:
        plan = published(session, day)
        assert plan.solver_stats["reoptimization"]["broken"] == [code]
        if set(report.moved_visits) - affected:
            assert left_before - unassigned_promises(plan)


@pytest.mark.parametrize("fresh", [False, True], ids=["morning_plan", "fresh_plan"])
def test_a_lunch_at_the_next_customers_door_does_not_make_the_route_late(
        day: QingdaoDay, fresh: bool) -> None:
    """A technician whom the published plan (the morning's, timed by OR-Tools, or the job's
    fresh one, timed by the scheduler) drives to the next customer before lunch: halfway
    through that lunch, nothing else having happened, the job reads their route as kept, the
    next visit at its published start (the drive is not counted again after the lunch)."""
    if fresh:
        run(day)
    with db.session_scope(day.factory) as session:
        plan = published(session, day)
        lunch, visit = lunch_at_a_door(plan)
        now = lunch.start_at + (lunch.end_at - lunch.start_at) / 2
        follow_plan(session, day.outlet_id, now)
        state = build_state(session, plan.outlet, DAY, plan, now=now)
        code = lunch.technician.code
        replay = replay_published(state, DEFAULT_MOVE_THRESHOLD)
        assert code not in replay.broken
        (route,) = [r for r in replay.routes if r.technician == code]
        assert route.stops[0].visit == visit.visit.code  # type: ignore[union-attr]
        assert route.stops[0].start == state.old_starts[route.stops[0].visit]


def lunch_at_a_door(plan: m.Plan) -> tuple[m.PlanStop, m.PlanStop]:
    """The first (by technician code) lunch after 11:00 that ends too late to drive to the
    next visit after it (the plan has the drive before it), and that visit."""
    for lunch in sorted((s for s in plan.stops if s.kind == m.StopKind.BREAK
                         and s.start_at > ELEVEN), key=lambda s: (s.technician.code, s.start_at)):
        after = [s for s in route_of(plan, lunch.technician.code) if s.start_at >= lunch.end_at]
        if after and lunch.end_at + timedelta(seconds=after[0].travel_seconds) \
                > after[0].start_at:
            return lunch, after[0]
    raise AssertionError("no lunch at a customer's door in the plan")


def unassigned_promises(plan: m.Plan) -> set[int]:
    """Ids of the confirmed visits the plan leaves out."""
    return {u.visit_id for u in plan.unassigned if is_agreed(u.visit)}


def test_a_later_run_without_events_keeps_the_fresh_plan(day: QingdaoDay) -> None:
    """The day going as the fresh plan says, a run ten minutes later publishes nothing and
    writes nothing."""
    assert run(day).status == "published"
    with db.session_scope(day.factory) as session:
        follow_plan(session, day.outlet_id, at(11, 10))
        before = row_counts(session)
    assert run(day, at(11, 10)).status in ("kept", "unchanged")
    with db.session_scope(day.factory) as session:
        assert row_counts(session) == before


# ---------------------------------------------------------------------------------------------
# The same on PostgreSQL
# ---------------------------------------------------------------------------------------------


def test_same_moment_twice_is_unchanged_on_postgresql(engine: Engine) -> None:
    """On PostgreSQL too, a second run at the same moment reports "unchanged" and writes
    nothing."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the SQLite case runs on the prepared copy above")
    factory = db.session_factory(engine)
    day = QingdaoDay(factory, prepare(factory))
    first = run(day)
    with db.session_scope(factory) as session:
        before = row_counts(session)
    second = run(day)
    assert (first.status, second.status) == ("published", "unchanged")
    with db.session_scope(factory) as session:
        assert row_counts(session) == before
