"""Background solves: a job runs to a draft plan, can be stopped, and a failure is recorded."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch import solvejobs
from dispatch.db import session_factory
from dispatch.errors import ValidationError
from dispatch.solvejobs import job_status, request_stop, run_job, start_solve
from tests.dispatch.board_fixtures import DAY, PARAMS, PlannedDay, plan_tiny

#: Only a bound for waiting on the background thread; nothing asserts on the time taken.
WAIT_SECONDS = 120


@pytest.fixture
def day(session: Session) -> PlannedDay:
    """The tiny outlet-day, planned once as a draft."""
    return plan_tiny(session)


def queued_job(session: Session, day: PlannedDay) -> m.SolveJob:
    """A job row waiting to run (committed)."""
    job = m.SolveJob(outlet_id=day.outlet.id, day=DAY, status=m.SolveJobStatus.QUEUED,
                     progress=0.0, started_by="disp", time_limit_seconds=5.0)
    session.add(job)
    session.commit()
    return job


def wait_finished(session: Session, job_id: int) -> m.SolveJob:
    """The job once it has finished (polling its row)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        session.expire_all()
        job = job_status(session, job_id)
        if job.status in solvejobs.FINISHED_STATUSES:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_background_job_runs_to_done_and_makes_a_draft(session: Session, engine: Engine,
                                                       day: PlannedDay) -> None:
    """A job started in the background ends done, at full progress, with a new draft plan."""
    job_id = start_solve(session_factory(engine), day.outlet.id, DAY, started_by="disp",
                         params=PARAMS)
    job = wait_finished(session, job_id)
    assert job.status == m.SolveJobStatus.DONE and job.progress == 1.0
    plan = session.get(m.Plan, job.plan_id)
    assert plan is not None and plan.status == m.PlanStatus.DRAFT
    assert plan.number == day.plan.number + 1 and plan.created_by == "disp"
    assert f"#{plan.number}" in job.message_zh and f"#{plan.number}" in job.message_en


def test_second_start_returns_the_job_under_way(session: Session, engine: Engine,
                                                day: PlannedDay) -> None:
    """While a job of the outlet-day is queued, starting again gives the same job."""
    job = queued_job(session, day)
    again = start_solve(session_factory(engine), day.outlet.id, DAY, started_by="other")
    assert again == job.id


def test_stop_before_the_start_ends_cleanly(session: Session, engine: Engine,
                                            day: PlannedDay) -> None:
    """A job asked to stop before it runs ends stopped without a plan."""
    job = queued_job(session, day)
    request_stop(session, job.id)
    session.commit()
    run_job(session_factory(engine), job.id, PARAMS)
    session.expire_all()
    job = job_status(session, job.id)
    assert job.status == m.SolveJobStatus.STOPPED and job.plan_id is None
    assert session.scalar(select(m.Plan).where(m.Plan.number == day.plan.number + 1)) is None


def test_stop_during_the_solve_keeps_the_plan_found(session: Session, engine: Engine,
                                                    day: PlannedDay,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop requested while solving ends the job stopped, keeping the plan as a draft."""
    factory = session_factory(engine)
    job = queued_job(session, day)
    real = solvejobs.plan_day

    def plan_and_get_stopped(*args: Any, **kwargs: Any) -> m.Plan:
        with factory() as other:
            request_stop(other, job.id)
            other.commit()
        return real(*args, **kwargs)

    monkeypatch.setattr(solvejobs, "plan_day", plan_and_get_stopped)
    run_job(factory, job.id, PARAMS)
    session.expire_all()
    job = job_status(session, job.id)
    assert job.status == m.SolveJobStatus.STOPPED and job.plan_id is not None
    assert "draft" in job.message_en and "草稿" in job.message_zh


def test_a_failing_solve_marks_the_job_failed(session: Session, engine: Engine,
                                              day: PlannedDay,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in the solve ends the job failed, with the error in its message."""
    def broken(*_args: Any, **_kwargs: Any) -> m.Plan:
        raise RuntimeError("matrix exploded")

    monkeypatch.setattr(solvejobs, "plan_day", broken)
    job = queued_job(session, day)
    run_job(session_factory(engine), job.id, PARAMS)
    session.expire_all()
    job = job_status(session, job.id)
    assert job.status == m.SolveJobStatus.FAILED and "matrix exploded" in job.message_en


def test_a_job_whose_process_died_is_marked_failed(session: Session, day: PlannedDay) -> None:
    """A job still "running" long after its time limit is reported failed."""
    job = queued_job(session, day)
    job.status = m.SolveJobStatus.RUNNING
    job.started_at = m.utcnow() - timedelta(hours=2)
    session.commit()
    assert job_status(session, job.id).status == m.SolveJobStatus.FAILED


def test_time_limit_out_of_bounds_is_refused(engine: Engine, day: PlannedDay) -> None:
    """A time limit of 0 seconds is refused, naming the field."""
    with pytest.raises(ValidationError) as caught:
        start_solve(session_factory(engine), day.outlet.id, DAY, started_by="d", time_limit=0)
    assert caught.value.field == "time_limit"
