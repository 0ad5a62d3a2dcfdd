"""Background solves of an outlet-day, started from the board or the API.

``start_solve`` records a job and runs it in a thread of this process with its own session, so a
request never waits for the solver. The job's row carries its progress (elapsed time over the
time limit, or the solver's own report when the planner accepts a ``progress`` hook), its outcome
and the draft plan it produced. ``request_stop`` asks a job to stop: when the planner accepts a
``stop`` event the search ends early and keeps the best plan so far; otherwise the job is marked
stopped once the current solve returns (its plan is kept as a draft).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatch import db
from dispatch import models as m
from dispatch.errors import DispatchError, NotFoundError, ValidationError
from dispatch.planning import plan_day
from solver import SolveParams

log = logging.getLogger(__name__)

#: How often the progress of a running job is written to its row.
PROGRESS_INTERVAL_SECONDS = 0.5
#: A job still "running" this long after its time limit has died with its process.
STALE_AFTER_SECONDS = 300
#: Bounds of the time a person may give a solve from the board.
MIN_TIME_LIMIT = 1.0
MAX_TIME_LIMIT = 600.0

ACTIVE_STATUSES = (m.SolveJobStatus.QUEUED, m.SolveJobStatus.RUNNING)
FINISHED_STATUSES = (m.SolveJobStatus.DONE, m.SolveJobStatus.FAILED, m.SolveJobStatus.STOPPED)

SessionFactory = sessionmaker[Session] | Callable[[], Session]


class _StopFlag:
    """An Event-like flag set when the job's row asks to stop (read by the solver, if it can)."""

    def __init__(self, factory: SessionFactory, job_id: int) -> None:
        self.factory = factory
        self.job_id = job_id
        self.event = threading.Event()

    def is_set(self) -> bool:
        """Whether a stop was requested (checked in the database at most twice a second)."""
        return self.event.is_set()

    def poll(self) -> None:
        """Read the job's stop request from its row."""
        with self.factory() as session:
            if session.scalar(select(m.SolveJob.stop_requested)
                              .where(m.SolveJob.id == self.job_id)):
                self.event.set()


def start_solve(session_factory: SessionFactory, outlet_id: int, day: date, *,
                started_by: str, time_limit: float = 10.0,
                params: SolveParams | None = None, background: bool = True) -> int:
    """Start solving the outlet-day in the background and return the job's id.

    A job already queued or running for the same outlet-day is returned instead of a second one.
    ``params`` overrides the solver parameters (tests give a solution limit for a deterministic
    run); ``background=False`` runs the job in the caller's thread.
    """
    _check_time_limit(time_limit)
    with session_factory() as session:
        if session.get(m.Outlet, outlet_id) is None:
            raise NotFoundError("outlet", outlet_id, "网点")
        running = active_job(session, outlet_id, day)
        if running is not None:
            return running.id
        job = m.SolveJob(outlet_id=outlet_id, day=day, status=m.SolveJobStatus.QUEUED,
                         progress=0.0, started_by=started_by, time_limit_seconds=time_limit,
                         message_zh="排队等待求解", message_en="Waiting to solve")
        session.add(job)
        db.commit(session)
        job_id = job.id
    solve_params = params or SolveParams(time_limit=time_limit)
    if background:
        thread = threading.Thread(target=run_job, args=(session_factory, job_id, solve_params),
                                  name=f"solve-job-{job_id}", daemon=True)
        thread.start()
    else:
        run_job(session_factory, job_id, solve_params)
    return job_id


def _check_time_limit(time_limit: float) -> None:
    if not MIN_TIME_LIMIT <= time_limit <= MAX_TIME_LIMIT:
        raise ValidationError(
            f"the time limit must be between {MIN_TIME_LIMIT:g} and {MAX_TIME_LIMIT:g} seconds",
            f"求解时限须在 {MIN_TIME_LIMIT:g} 到 {MAX_TIME_LIMIT:g} 秒之间",
            field="time_limit")


def active_job(session: Session, outlet_id: int, day: date) -> m.SolveJob | None:
    """The outlet-day's job that is queued or running, if any."""
    return session.scalar(
        select(m.SolveJob)
        .where(m.SolveJob.outlet_id == outlet_id, m.SolveJob.day == day,
               m.SolveJob.status.in_([s.value for s in ACTIVE_STATUSES]))
        .order_by(m.SolveJob.id.desc()))


def latest_job(session: Session, outlet_id: int, day: date) -> m.SolveJob | None:
    """The outlet-day's most recent job, whatever its status."""
    return session.scalar(select(m.SolveJob)
                          .where(m.SolveJob.outlet_id == outlet_id, m.SolveJob.day == day)
                          .order_by(m.SolveJob.id.desc()))


def job_status(session: Session, job_id: int) -> m.SolveJob:
    """The job's row; a job whose process died long ago is marked failed on the way."""
    job = session.get(m.SolveJob, job_id)
    if job is None:
        raise NotFoundError("solve job", job_id, "求解任务")
    if job.status in ACTIVE_STATUSES and _is_stale(job):
        _finish(job, m.SolveJobStatus.FAILED,
                "求解任务已无响应（进程可能已重启），请重新求解",
                "The solve stopped answering (the server may have restarted); please solve again")
        db.commit(session)
    return job


def _is_stale(job: m.SolveJob) -> bool:
    limit = timedelta(seconds=job.time_limit_seconds + STALE_AFTER_SECONDS)
    return m.utcnow() - job.started_at > limit


def request_stop(session: Session, job_id: int) -> m.SolveJob:
    """Ask the job to stop; a finished job is left as it is. The caller commits."""
    job = session.get(m.SolveJob, job_id)
    if job is None:
        raise NotFoundError("solve job", job_id, "求解任务")
    if job.status in ACTIVE_STATUSES:
        job.stop_requested = True
        job.message_zh = "正在停止……"
        job.message_en = "Stopping…"
        db.flush(session)
    return job


def run_job(session_factory: SessionFactory, job_id: int, params: SolveParams) -> None:
    """Run one queued job to its end (done, stopped or failed); never raises."""
    stop = _StopFlag(session_factory, job_id)
    stop.poll()
    if stop.is_set():
        _conclude(session_factory, job_id, None, stopped=True)
        return
    _mark_running(session_factory, job_id)
    ticker = _ProgressTicker(session_factory, job_id, params.time_limit, stop)
    ticker.start()
    try:
        with session_factory() as session:
            job = session.get(m.SolveJob, job_id)
            assert job is not None
            plan = plan_day(session, _outlet(session, job), job.day,
                            params=params, created_by=job.started_by,
                            **_hooks(stop, ticker.report))
            plan_id = plan.id
            db.commit(session)
    except Exception as exc:  # any failure of the solve must end as a failed job, not a hang
        ticker.finish()
        log.exception("solve job %s failed", job_id)
        _fail(session_factory, job_id, exc)
        return
    ticker.finish()
    stop.poll()
    _conclude(session_factory, job_id, plan_id, stopped=stop.is_set())


def _outlet(session: Session, job: m.SolveJob) -> m.Outlet:
    outlet = session.get(m.Outlet, job.outlet_id)
    assert outlet is not None
    return outlet


def _hooks(stop: _StopFlag, progress: Callable[[float], None]) -> dict[str, Any]:
    """The stop and progress hooks the planner accepts (none until it grows them)."""
    accepted = inspect.signature(plan_day).parameters
    hooks: dict[str, Any] = {}
    if "stop" in accepted:
        hooks["stop"] = stop
    if "progress" in accepted:
        hooks["progress"] = progress
    return hooks


def _mark_running(session_factory: SessionFactory, job_id: int) -> None:
    with session_factory() as session:
        session.execute(update(m.SolveJob).where(m.SolveJob.id == job_id).values(
            status=m.SolveJobStatus.RUNNING.value, started_at=m.utcnow(),
            message_zh="正在求解……", message_en="Solving…"))
        session.commit()


def _conclude(session_factory: SessionFactory, job_id: int, plan_id: int | None, *,
              stopped: bool) -> None:
    with session_factory() as session:
        job = session.get(m.SolveJob, job_id)
        assert job is not None
        job.plan_id = plan_id
        plan = session.get(m.Plan, plan_id) if plan_id is not None else None
        number = plan.number if plan is not None else None
        if stopped and number is None:
            _finish(job, m.SolveJobStatus.STOPPED, "已停止，未生成新方案",
                    "Stopped before a plan was made")
        elif stopped:
            _finish(job, m.SolveJobStatus.STOPPED,
                    f"已停止；停止前找到的最佳方案已保存为草稿 #{number}",
                    f"Stopped; the best plan found before stopping is kept as draft #{number}")
        else:
            _finish(job, m.SolveJobStatus.DONE, f"完成：新草稿方案 #{number}",
                    f"Done: new draft plan #{number}")
        db.commit(session)


def _fail(session_factory: SessionFactory, job_id: int, exc: Exception) -> None:
    if isinstance(exc, DispatchError):
        zh, en = exc.message("zh"), exc.message("en")
    else:
        zh = f"求解失败：{type(exc).__name__}: {exc}"
        en = f"The solve failed: {type(exc).__name__}: {exc}"
    try:
        with session_factory() as session:
            job = session.get(m.SolveJob, job_id)
            if job is not None:
                _finish(job, m.SolveJobStatus.FAILED, zh, en)
                db.commit(session)
    except Exception:  # the database itself is gone: the stale check will mark it later
        log.exception("could not record the failure of solve job %s", job_id)


def _finish(job: m.SolveJob, status: m.SolveJobStatus, zh: str, en: str) -> None:
    job.status = status
    job.finished_at = m.utcnow()
    job.message_zh, job.message_en = zh, en
    if status == m.SolveJobStatus.DONE:
        job.progress = 1.0


class _ProgressTicker:
    """Writes the job's progress to its row while the solve runs, and polls for a stop."""

    def __init__(self, factory: SessionFactory, job_id: int, time_limit: float | None,
                 stop: _StopFlag) -> None:
        self.factory = factory
        self.job_id = job_id
        self.time_limit = time_limit
        self.stop = stop
        self.began = time.monotonic()
        self.reported: float | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"solve-progress-{job_id}",
                                       daemon=True)

    def start(self) -> None:
        """Begin writing progress."""
        self.thread.start()

    def finish(self) -> None:
        """Stop writing progress and wait for the writer."""
        self.done.set()
        self.thread.join(timeout=5)

    def report(self, fraction: float) -> None:
        """The solver's own progress (0..1), preferred to elapsed time when given."""
        self.reported = min(1.0, max(0.0, float(fraction)))

    def fraction(self) -> float:
        """Progress so far; never 1 before the job is done."""
        if self.reported is not None:
            return min(0.99, self.reported)
        if not self.time_limit:
            return 0.0
        return min(0.99, (time.monotonic() - self.began) / self.time_limit)

    def _loop(self) -> None:
        while not self.done.wait(PROGRESS_INTERVAL_SECONDS):
            try:
                self._write()
                self.stop.poll()
            except Exception:  # progress is cosmetic: a busy database must not kill the job
                log.debug("progress of job %s not written", self.job_id, exc_info=True)

    def _write(self) -> None:
        with self.factory() as session:
            session.execute(update(m.SolveJob).where(
                m.SolveJob.id == self.job_id,
                m.SolveJob.status == m.SolveJobStatus.RUNNING.value,
            ).values(progress=round(self.fraction(), 3)))
            session.commit()


def job_view(job: m.SolveJob, lang: str) -> dict[str, Any]:
    """The job as JSON for the board and the API."""
    return {
        "id": job.id,
        "outlet_id": job.outlet_id,
        "day": job.day.isoformat(),
        "status": str(job.status),
        "progress": round(job.progress, 3),
        "finished": job.status in FINISHED_STATUSES,
        "plan_id": job.plan_id,
        "message": job.message_zh if lang == "zh" else job.message_en,
        "started_by": job.started_by,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "time_limit_seconds": job.time_limit_seconds,
        "stop_requested": job.stop_requested,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
