"""The re-optimization job on the day's events: overrun, no-show, emergency, sick technician,
a new booking; and what it publishes, tells and leaves alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dispatch import db, reoptimize
from dispatch import models as m
from dispatch.confirmation import confirm, is_agreed
from dispatch.reoptimize import RunReport, build_state, run_reoptimization
from tests.dispatch.reopt_helpers import (
    DAY,
    PARAMS,
    Day,
    advance,
    at,
    book_visit,
    published,
    published_day,
    route_of,
    row_counts,
)


def run(day: Day, hour: int, minute: int = 0) -> RunReport:
    """One run of the test outlet-day at the given local time."""
    return run_reoptimization(day.factory, day.outlet_id, DAY, now=at(hour, minute),
                              params=PARAMS)


def busiest_route(session: object, day: Day) -> list[m.PlanStop]:
    """The published route with the most visits (ties: by technician code)."""
    plan = published(session, day.outlet_id)  # type: ignore[arg-type]
    codes = sorted({s.technician.code for s in plan.stops})
    return max((route_of(plan, c) for c in codes), key=len)


def test_overrun_moves_later_arrivals_and_queues_delay_notices(engine: Engine) -> None:
    """A visit on site far past its planned end pushes the next one later: a new plan, the
    next visit among the moved ones, and a delay notice to its customer."""
    day = published_day(engine)
    with db.session_scope(day.factory) as session:
        first, second = busiest_route(session, day)[:2]
        now = second.start_at + timedelta(minutes=10)
        advance(session, day.outlet_id, now)
        if not is_agreed(second.visit):  # type: ignore[arg-type]
            # An appointment is never dropped for the promises after it: it is pushed later.
            agree(session, second)
        for visit in (first.visit, second.visit):  # the first still on site, the second waits
            assert visit is not None
            visit.status, visit.actual_end = m.VisitStatus.PLANNED, None
            visit.actual_start = visit.actual_arrival = None
        first.visit.status = m.VisitStatus.ON_SITE  # type: ignore[union-attr]
        first.visit.actual_start = first.start_at  # type: ignore[union-attr]
        second_id, old_start = second.visit_id, second.start_at
    report = run_reoptimization(day.factory, day.outlet_id, DAY, now=now, params=PARAMS)
    assert report.status == "published"
    assert second_id in report.moved_visits
    with db.session_scope(day.factory) as session:
        [stop] = [s for s in published(session, day.outlet_id).stops if s.visit_id == second_id]
        assert stop.start_at > old_start + timedelta(minutes=15)
        notices = session.scalars(select(m.Notification).where(
            m.Notification.template == "delay_notice")).all()
        assert second_id in {n.payload["visit_id"] for n in notices}


def agree(session: Session, stop: m.PlanStop) -> None:
    """Confirm the stop's visit for the accepted window its planned start falls in."""
    visit = stop.visit
    assert visit is not None
    window = next(w for w in visit.windows if w.starts_at <= stop.start_at <= w.ends_at)
    visit.ticket.charge_explained_at = at(7)
    confirm(session, visit, (window.starts_at, window.ends_at), "disp1", stop.technician,
            at=at(7))


def test_no_show_closes_the_visit_with_a_follow_up_task(engine: Engine) -> None:
    """A visit closed as a no-show gets a follow-up call and is no longer planned."""
    day = published_day(engine)
    with db.session_scope(day.factory) as session:
        advance(session, day.outlet_id, at(10))
        stop = next(s for s in sorted(published(session, day.outlet_id).stops,
                                      key=lambda s: s.start_at)
                    if s.visit is not None and s.visit.status == m.VisitStatus.PLANNED)
        stop.visit.status = m.VisitStatus.NO_SHOW  # type: ignore[union-attr]
        stop.visit.actual_end = at(10)  # type: ignore[union-attr]
        visit_id, code = stop.visit_id, stop.visit.code  # type: ignore[union-attr]
    report = run(day, 10)
    assert report.status in ("published", "kept")
    with db.session_scope(day.factory) as session:
        task = session.scalar(select(m.Task).where(
            m.Task.idempotency_key == f"followup_call:{visit_id}:no_show"))
        assert task is not None and task.kind == m.TaskKind.FOLLOWUP_CALL
        outlet = session.get(m.Outlet, day.outlet_id)
        state = build_state(session, outlet, DAY, published(session, day.outlet_id),  # type: ignore[arg-type]
                            now=at(10))
        assert code not in {v.id for v in state.planning.problem.visits}


def test_emergency_is_inserted_without_breaking_promises_silently(engine: Engine) -> None:
    """An urgent repair booked at 11:00 is in the plan published by the next run, and every
    confirmed visit keeps its agreed window or has a consent request."""
    day = published_day(engine)
    with db.session_scope(day.factory) as session:
        advance(session, day.outlet_id, at(11))
        emergency = book_visit(session, day.outlet_id, "EMERG-1", skill="water_heater",
                               priority=4, window=(at(11), at(15)), reported=at(11))
        emergency_id = emergency.id
    report = run(day, 11)
    assert report.status == "published"
    with db.session_scope(day.factory) as session:
        plan = published(session, day.outlet_id)
        assert emergency_id in {s.visit_id for s in plan.stops}
        consents = {t.visit_id for t in session.scalars(select(m.Task).where(
            m.Task.kind == m.TaskKind.CONSENT_REQUEST.value))}
        for stop in plan.stops:
            visit = stop.visit
            if visit is None or visit.status != m.VisitStatus.PLANNED or not is_agreed(visit):
                continue
            inside = visit.agreed_start <= stop.start_at <= visit.agreed_end  # type: ignore[operator]
            assert inside or visit.id in consents, visit.code


def test_sick_technician_work_is_redistributed_or_flagged(engine: Engine) -> None:
    """A technician sent home at 10:00 has no open visits in the new plan; each of them has
    gone to another technician with a handover notice, or is unassigned with a reason."""
    day = published_day(engine)
    with db.session_scope(day.factory) as session:
        advance(session, day.outlet_id, at(10))
        route = busiest_route(session, day)
        sick = route[0].technician
        open_ids = {s.visit_id for s in route
                    if s.visit is not None and s.visit.status == m.VisitStatus.PLANNED}
        shift = session.scalar(select(m.TechnicianShift).where(
            m.TechnicianShift.technician_id == sick.id))
        shift.absent = True  # type: ignore[union-attr]
        shift.absence_reason = "病假"  # type: ignore[union-attr]
        sick_id = sick.id
    assert open_ids
    report = run(day, 10)
    assert report.status == "published"
    with db.session_scope(day.factory) as session:
        plan = published(session, day.outlet_id)
        handovers = {t.visit_id for t in session.scalars(select(m.Task).where(
            m.Task.kind == m.TaskKind.HANDOVER_NOTICE.value))}
        unassigned = {u.visit_id: u.reason_code for u in plan.unassigned}
        placed = {s.visit_id: s.technician_id for s in plan.stops}
        for visit_id in open_ids:
            if visit_id in placed:
                assert placed[visit_id] != sick_id and visit_id in handovers
            else:
                assert unassigned.get(visit_id)


def test_new_visit_booked_mid_day_is_inserted(engine: Engine) -> None:
    """A visit booked at 12:00 for the afternoon is planned by the next run."""
    day = published_day(engine)
    with db.session_scope(day.factory) as session:
        advance(session, day.outlet_id, at(12))
        visit_id = book_visit(session, day.outlet_id, "NEW-1", skill="ac_repair", priority=2,
                              window=(at(14), at(17)), reported=at(12)).id
    report = run(day, 12)
    assert report.status == "published"
    with db.session_scope(day.factory) as session:
        assert visit_id in {s.visit_id for s in published(session, day.outlet_id).stops}


def test_same_input_twice_is_unchanged_and_writes_nothing(engine: Engine) -> None:
    """A retried run with the same input reports "unchanged" and adds no rows."""
    day = published_day(engine)
    with db.session_scope(day.factory) as session:
        advance(session, day.outlet_id, at(12))
        book_visit(session, day.outlet_id, "NEW-2", skill="ac_repair", priority=2,
                   window=(at(14), at(17)), reported=at(12))
    first = run(day, 12)
    with db.session_scope(day.factory) as session:
        before = row_counts(session)
    second = run(day, 12)
    assert first.status == "published"
    assert second.status == "unchanged"
    assert second.plan_id == first.plan_id
    with db.session_scope(day.factory) as session:
        assert row_counts(session) == before


def test_a_run_without_a_published_plan_reports_no_plan(engine: Engine) -> None:
    """An outlet-day nobody has published a plan for is left to the dispatcher."""
    day = published_day(engine)
    with db.session_scope(day.factory) as session:
        published(session, day.outlet_id).status = m.PlanStatus.DRAFT
    assert run(day, 10).status == "no_plan"


def test_an_unexpected_error_is_reported_and_rolled_back(engine: Engine,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that fails for an unforeseen reason reports "failed" with the error, writes
    nothing, and returns normally, so the scheduler goes on with the other outlets."""
    day = published_day(engine)
    with db.session_scope(day.factory) as session:
        advance(session, day.outlet_id, at(12))
        before = row_counts(session)

    def broken(self: object) -> RunReport:
        raise RuntimeError("the solver fell over")

    monkeypatch.setattr(reoptimize._Run, "execute", broken)
    report = run(day, 12)
    assert report.status == "failed"
    assert "the solver fell over" in report.error
    assert "failed" in report.text("en") and report.text("zh")
    with db.session_scope(day.factory) as session:
        assert row_counts(session) == before


def test_report_round_trips_through_a_dict() -> None:
    """A report sent through a task queue as a dict comes back equal."""
    report = RunReport(1, DAY, "published", 3, 2, (5, 7), 2, 4, "abc", 1.5)
    assert RunReport.from_dict(report.as_dict()) == report


def test_penalties_rank_kept_promises_then_late_ones_then_emergencies_then_the_rest() -> None:
    """Leaving a visit out costs most for a promise still keepable, then for a late promise,
    then for an emergency, then for any ordinary visit (each with an SLA due today or not)."""
    import numpy as np

    from dispatch.reoptimize import EMERGENCY_PRIORITY, LATE_PROMISE_PRIORITY, PROMISE_PRIORITY
    from solver import Problem, Technician, Visit
    from solver.engine import visit_penalty

    problem = Problem(durations=np.zeros((1, 1)), distances=np.zeros((1, 1)),
                      technicians=(Technician("T", 0, 0, 0, 36_000),), visits=())

    def cheapest(priority: int) -> int:
        return min(visit_penalty(problem, Visit("v", 0, 60, priority=priority, due=due))
                   for due in (None, 3600))

    def dearest(priority: int) -> int:
        return max(visit_penalty(problem, Visit("v", 0, 60, priority=priority, due=due))
                   for due in (None, 3600))

    assert cheapest(PROMISE_PRIORITY) > dearest(LATE_PROMISE_PRIORITY)
    assert cheapest(LATE_PROMISE_PRIORITY) > dearest(EMERGENCY_PRIORITY)
    assert cheapest(EMERGENCY_PRIORITY) > dearest(EMERGENCY_PRIORITY - 1)
