"""Planning an outlet-day: the rules that build the problem, storing a plan, publishing it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import fixtures
from dispatch import models as m
from dispatch.cli import main
from dispatch.errors import ConflictError
from dispatch.loader import load_dataset
from dispatch.planning import (
    PROMISE_MARGIN_COST,
    build_problem,
    fit_locked_work,
    plan_day,
    plan_summary,
    publish_plan,
)
from dispatch.timeutil import from_seconds, local_time_to_seconds, plan_epoch, to_seconds
from solver import Break, Problem, SolveParams, Technician, TimeWindow, Visit
from solver.check import check_result
from solver.solve import solve

DAY = date(2025, 3, 10)
ZONE = ZoneInfo("Asia/Shanghai")
PARAMS = SolveParams(time_limit=None, solution_limit=10, workers=1, seed=0, use_pyvrp=False)
Change = Callable[[fixtures.Dataset], fixtures.Dataset]


@pytest.fixture(scope="module")
def tiny() -> fixtures.Dataset:
    """The tiny dataset for the test day."""
    return fixtures.generate("tiny", DAY, 0)


@pytest.fixture
def outlet_code(tiny: fixtures.Dataset) -> str:
    """The code of tiny's one outlet."""
    return tiny.outlets[0].code


def at(hour: int, minute: int = 0) -> datetime:
    """The Shanghai wall time on the test day."""
    return datetime.combine(DAY, time(hour, minute), tzinfo=ZONE)


def seconds(hour: int, minute: int = 0) -> int:
    """Solver seconds of the Shanghai wall time on the test day."""
    return local_time_to_seconds(DAY, time(hour, minute), ZONE)


def change(kind: str, index: int, **changes: Any) -> Change:
    """A change of one record of ``kind`` in a dataset."""
    def apply(dataset: fixtures.Dataset) -> fixtures.Dataset:
        records = list(getattr(dataset, kind))
        records[index] = dataclasses.replace(records[index], **changes)
        return dataclasses.replace(dataset, **{kind: tuple(records)})
    return apply


def load(session: Session, dataset: fixtures.Dataset, *changes: Change) -> fixtures.Dataset:
    """Load the dataset with the changes applied, and return what was loaded."""
    for apply in changes:
        dataset = apply(dataset)
    load_dataset(session, dataset)
    return dataset


def solver_visit(session: Session, outlet_code: str, code: str, **kwargs: Any) -> Any:
    """The solver visit ``code`` of the outlet-day's problem."""
    problem = build_problem(session, outlet_code, DAY, **kwargs).problem
    return problem.visits[problem.visit_index(code)]


TWO_WINDOWS = ((at(8), at(10)), (at(14), at(16)))


def test_confirmed_visit_keeps_only_its_agreed_window(session: Session, tiny: fixtures.Dataset,
                                                      outlet_code: str) -> None:
    """A confirmed visit may start only in the window agreed with the customer."""
    data = load(session, tiny, change("visits", 0, windows=TWO_WINDOWS, agreed_start=at(14),
                                      agreed_end=at(16), confirmation_status="confirmed"))
    visit = solver_visit(session, outlet_code, data.visits[0].code)
    assert visit.windows == (TimeWindow(seconds(14), seconds(16)),)


def test_unconfirmed_visit_may_take_any_accepted_window(session: Session,
                                                        tiny: fixtures.Dataset,
                                                        outlet_code: str) -> None:
    """An unconfirmed visit may start in any window the customer accepts."""
    data = load(session, tiny, change("visits", 0, windows=TWO_WINDOWS, agreed_start=at(14),
                                      agreed_end=at(16), confirmation_status="unconfirmed"))
    visit = solver_visit(session, outlet_code, data.visits[0].code)
    assert visit.windows == (TimeWindow(seconds(8), seconds(10)),
                             TimeWindow(seconds(14), seconds(16)))


def test_absent_technician_is_left_out(session: Session, tiny: fixtures.Dataset,
                                       outlet_code: str) -> None:
    """A technician whose shift is marked absent is not in the problem."""
    data = load(session, tiny, change("shifts", 0, absent=True, absence_reason="病假"))
    ids = {t.id for t in build_problem(session, outlet_code, DAY).problem.technicians}
    assert data.shifts[0].technician_code not in ids
    assert len(ids) == len(data.shifts) - 1


def test_inactive_technician_is_left_out(session: Session, tiny: fixtures.Dataset,
                                         outlet_code: str) -> None:
    """A technician who is no longer active is not in the problem."""
    data = load(session, tiny, change("technicians", 1, active=False))
    ids = {t.id for t in build_problem(session, outlet_code, DAY).problem.technicians}
    assert data.technicians[1].code not in ids


def test_lunch_window_becomes_break_start_range(session: Session, tiny: fixtures.Dataset,
                                                outlet_code: str) -> None:
    """Lunch "between 11:30 and 13:30, 45 minutes" is a break starting in 11:30-12:45."""
    data = load(session, tiny, change("shifts", 0, lunch_window_start=at(11, 30),
                                      lunch_window_end=at(13, 30), lunch_minutes=45))
    problem = build_problem(session, outlet_code, DAY).problem
    tech = problem.technicians[problem.technician_index(data.shifts[0].technician_code)]
    assert tech.breaks == (Break(earliest=seconds(11, 30), latest=seconds(12, 45),
                                 duration=45 * 60),)
    assert (tech.shift_start, tech.shift_end) == (to_seconds(data.shifts[0].starts_at,
                                                             plan_epoch(DAY, ZONE)),
                                                  to_seconds(data.shifts[0].ends_at,
                                                             plan_epoch(DAY, ZONE)))
    assert tech.max_overtime == 3600


def test_sla_deadline_becomes_soft_due(session: Session, tiny: fixtures.Dataset,
                                       outlet_code: str) -> None:
    """The ticket's SLA deadline is the visit's (soft) due time."""
    data = load(session, tiny, change("tickets", 0, sla_deadline=at(15, 30)))
    visit_code = next(v.code for v in data.visits if v.ticket_code == data.tickets[0].code)
    assert solver_visit(session, outlet_code, visit_code).due == seconds(15, 30)


def test_confirmed_visit_aims_15_minutes_inside_its_window(session: Session,
                                                          tiny: fixtures.Dataset,
                                                          outlet_code: str) -> None:
    """A confirmed 14:00-16:00 appointment (SLA later) is due by 15:45, at the promise's cost:
    a start in the window's last minutes breaks it at the first overrun."""
    visit = tiny.visits[0]
    ticket = next(i for i, t in enumerate(tiny.tickets) if t.code == visit.ticket_code)
    load(session, tiny, change("visits", 0, windows=TWO_WINDOWS, agreed_start=at(14),
                               agreed_end=at(16), confirmation_status="confirmed"),
         change("tickets", ticket, sla_deadline=at(18)))
    solver = solver_visit(session, outlet_code, visit.code)
    assert (solver.due, solver.lateness_cost) == (seconds(15, 45), PROMISE_MARGIN_COST)


def test_stored_lateness_is_past_the_sla_deadline(session: Session, tiny: fixtures.Dataset,
                                                  outlet_code: str) -> None:
    """A stored stop is late (for the board) only past its ticket's SLA deadline, not for
    starting inside a promise's margin."""
    data = load(session, tiny)
    plan = plan_day(session, outlet_code, DAY, params=PARAMS)
    deadlines = {t.code: t.sla_deadline for t in data.tickets}
    tickets = {v.code: v.ticket_code for v in data.visits}
    for stop in plan.stops:
        if stop.visit is None:
            continue
        deadline = deadlines[tickets[stop.visit.code]]
        late = 0 if deadline is None else max(0, int((stop.start_at - deadline).total_seconds()))
        assert stop.late_seconds == late, stop.visit.code


@pytest.mark.parametrize("changes", [
    {"status": "cancelled"}, {"status": "done"}, {"status": "no_show"},
    {"confirmation_status": "declined"},
], ids=["cancelled", "done", "no_show", "declined"])
def test_closed_or_declined_visits_are_not_planned(session: Session, tiny: fixtures.Dataset,
                                                   outlet_code: str,
                                                   changes: dict[str, Any]) -> None:
    """Visits that are over, or that the customer declined, are not in the problem."""
    data = load(session, tiny, change("visits", 0, **changes))
    codes = {v.id for v in build_problem(session, outlet_code, DAY).problem.visits}
    assert data.visits[0].code not in codes and data.visits[1].code in codes


def test_visit_pinned_to_absent_technician_is_excluded(session: Session,
                                                       tiny: fixtures.Dataset,
                                                       outlet_code: str) -> None:
    """A visit pinned to a technician who is off that day is unassigned, with the reason."""
    absent = tiny.shifts[0].technician_code
    data = load(session, tiny, change("shifts", 0, absent=True),
                change("visits", 0, pinned_technician_code=absent))
    planning = build_problem(session, outlet_code, DAY)
    assert [(e.code, e.reason_code) for e in planning.excluded] == [
        (data.visits[0].code, "pinned_absent")]
    assert absent in planning.excluded[0].message_en and absent in planning.excluded[0].message_zh


def test_visit_on_site_is_locked_at_its_actual_start(session: Session, tiny: fixtures.Dataset,
                                                     outlet_code: str) -> None:
    """With ``now``, a visit on site is locked to its technician at its actual start."""
    tech = tiny.shifts[1].technician_code
    data = load(session, tiny, change("visits", 0, status="on_site", actual_start=at(9, 5),
                                      pinned_technician_code=tech))
    visit = solver_visit(session, outlet_code, data.visits[0].code, now=at(9, 30))
    assert (visit.locked, visit.pinned_technician) == (True, tech)
    assert visit.pinned_start == TimeWindow(seconds(9, 5), seconds(9, 5))


def test_with_now_passed_windows_are_unassigned(session: Session, tiny: fixtures.Dataset,
                                                 outlet_code: str) -> None:
    """Re-planning at noon, a visit whose only window was the morning is left out as passed."""
    data = load(session, tiny, change("visits", 0, windows=((at(8), at(10)),),
                                      confirmation_status="unconfirmed"))
    planning = build_problem(session, outlet_code, DAY, now=at(12))
    assert (data.visits[0].code, "window_passed") in {(e.code, e.reason_code)
                                                      for e in planning.excluded}
    assert all(w.start >= seconds(12) for v in planning.problem.visits for w in v.windows)


def test_plan_day_stores_the_solver_routes_in_utc(session: Session, tiny: fixtures.Dataset,
                                                  outlet_code: str) -> None:
    """Stored stops follow the solver's routes in order, with its times as UTC instants."""
    load(session, tiny)
    planning = build_problem(session, outlet_code, DAY)
    result = solve(planning.problem, PARAMS)
    plan = plan_day(session, outlet_code, DAY, params=PARAMS)
    for route in result.routes:
        rows = [s for s in plan.stops if s.technician.code == route.technician]
        assert [s.sequence for s in rows] == list(range(len(rows)))
        visits = [s for s in rows if s.kind == m.StopKind.VISIT]
        assert [s.visit.code for s in visits] == list(route.visit_ids)
        for row, stop in zip(visits, route.stops):
            assert row.start_at == from_seconds(stop.start, planning.epoch)
            assert row.start_at.utcoffset() == timedelta(0)
            assert (row.arrival_at, row.end_at) == (from_seconds(stop.arrival, planning.epoch),
                                                    from_seconds(stop.end, planning.epoch))
            assert row.travel_seconds == stop.travel_time
        breaks = [s for s in rows if s.kind == m.StopKind.BREAK]
        assert [b.start_at for b in breaks] == [from_seconds(b.start, planning.epoch)
                                                for b in route.breaks]
    assert plan.kpis["visits_planned"] == result.kpis.visits_planned
    assert plan.input_digest == planning.digest() and len(plan.input_digest) == 64


def test_unskilled_visits_come_out_unassigned_with_reasons(session: Session,
                                                           tiny: fixtures.Dataset,
                                                           outlet_code: str) -> None:
    """Tiny's deliberately unskilled visits are unassigned as no_skill, in both languages."""
    load(session, tiny)
    plan = plan_day(session, outlet_code, DAY, params=PARAMS)
    unassigned = {u.visit.code: u for u in plan.unassigned}
    assert set(tiny.unskilled_visit_codes) <= set(unassigned)
    for code in tiny.unskilled_visit_codes:
        row = unassigned[code]
        assert row.reason_code == "no_skill"
        assert "技能" in row.reason_zh and "skill" in row.reason_en
    assert plan.kpis["visits_unassigned"] == len(plan.unassigned)
    assert plan_summary(plan)["unassigned_reasons"]["no_skill"] == len(tiny.unskilled_visit_codes)


def test_publishing_supersedes_the_previous_plan(session: Session, tiny: fixtures.Dataset,
                                                 outlet_code: str) -> None:
    """Publishing plan 2 makes it the published one and supersedes plan 1, with an audit."""
    load(session, tiny)
    first = publish_plan(session, plan_day(session, outlet_code, DAY, params=PARAMS), 1)
    second = plan_day(session, outlet_code, DAY, params=PARAMS)
    assert (first.number, second.number) == (1, 2)
    publish_plan(session, second, second.version, actor="disp1")
    assert (first.status, second.status) == (m.PlanStatus.SUPERSEDED, m.PlanStatus.PUBLISHED)
    audit = session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "plan.publish")
                            .order_by(m.AuditEvent.id)).all()
    assert [a.entity_id for a in audit] == [str(first.id), str(second.id)]
    assert audit[-1].actor == "disp1" and audit[-1].after["superseded"] == [1]


def test_publishing_commits_confirmed_visits_to_their_technician(
        session: Session, tiny: fixtures.Dataset, outlet_code: str) -> None:
    """Once published, a confirmed visit keeps the technician it was planned with: the next
    plan pins it there; an unconfirmed visit stays free."""
    load(session, tiny)
    plan = publish_plan(session, plan_day(session, outlet_code, DAY, params=PARAMS), 1)
    stops = [s for s in plan.stops if s.visit is not None]
    confirmed = [s for s in stops if s.visit.confirmation_status in (
        m.ConfirmationStatus.CONFIRMED, m.ConfirmationStatus.RECONFIRMED)]
    unconfirmed = [s for s in stops if s not in confirmed]
    assert confirmed and unconfirmed
    assert all(s.visit.committed_technician_id == s.technician_id for s in confirmed)
    assert all(s.visit.committed_technician_id is None for s in unconfirmed)
    problem = build_problem(session, outlet_code, DAY).problem
    for stop in confirmed:
        visit = problem.visits[problem.visit_index(stop.visit.code)]
        assert visit.pinned_technician == stop.technician.code


def test_stale_publish_raises_conflict(session: Session, tiny: fixtures.Dataset,
                                       outlet_code: str) -> None:
    """Publishing with a version the plan no longer has raises ConflictError."""
    load(session, tiny)
    plan = plan_day(session, outlet_code, DAY, params=PARAMS)
    stale = plan.version
    plan.created_by = "someone else"  # another edit bumps the version
    session.flush()
    with pytest.raises(ConflictError):
        publish_plan(session, plan, stale)
    assert plan.status == m.PlanStatus.DRAFT


def test_plan_command_plans_and_publishes(engine: Engine, db_url: str,
                                          tiny: fixtures.Dataset, outlet_code: str) -> None:
    """`dispatch plan --outlet X --date D --publish` stores a published plan and reports it."""
    with Session(engine) as session:
        load(session, tiny)
        session.commit()
    result = CliRunner().invoke(main, ["--database-url", db_url, "plan", "--outlet", outlet_code,
                                       "--date", DAY.isoformat(), "--time-limit", "1",
                                       "--workers", "1", "--publish"])
    assert result.exit_code == 0, result.output
    assert f"Outlet {outlet_code} {DAY.isoformat()} plan #1 (published)" in result.output
    with Session(engine) as session:
        plan = session.scalar(select(m.Plan))
        assert plan is not None and plan.status == m.PlanStatus.PUBLISHED
        assert plan.published_at is not None and plan.published_at.tzinfo == UTC


def test_work_under_way_stretches_the_overtime_cap() -> None:
    """A technician on the way to a visit that cannot end, with the trip home, inside the hard
    overtime cap still gets a plan: the cap moves just far enough, for that technician only.
    (Found by the day simulator: the solver had found no plan at all.)"""
    durations = [[0, 300], [300, 0]]
    late = Technician("T1", 0, 0, shift_start=71800, shift_end=72000, max_overtime=3600)
    other = Technician("T2", 0, 0, shift_start=28800, shift_end=61200, max_overtime=3600)
    under_way = Visit("V1", 1, 3600, pinned_technician="T1",  # en route: starts on arrival
                      pinned_start=TimeWindow(71800, 80000), locked=True)
    problem = fit_locked_work(Problem(durations, durations, (late, other), (under_way,)))
    assert problem.technicians[0].latest_end == 71800 + 300 + 3600 + 300
    assert problem.technicians[1] == other
    result = solve(problem, SolveParams(time_limit=None, solution_limit=3, workers=1))
    assert result.route_of("T1").visit_ids == ("V1",)
    assert check_result(problem, result) == []

