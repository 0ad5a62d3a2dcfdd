"""The Celery application that runs re-optimization tasks on workers, one outlet-day each.

Nothing is configured at import time: ``make_celery`` builds an app from the arguments or from
the configuration (``DISPATCH_BROKER_URL``, e.g. ``redis://127.0.0.1:6379/0``; the database is
the application's own ``DISPATCH_DATABASE_URL``). The worker (``dispatch worker``) and the
producer (``dispatch reoptimize --all``) each build the app the same way, so both know the task.

A task is acknowledged only once it has finished (``acks_late``) and a worker process that dies
mid-task puts its message back on the queue (``reject_on_worker_lost``): the task then runs again
on some worker. That is safe because the job holds the outlet-day's run lock, is one
transaction, and writes nothing new for an input it has already planned.

A Celery worker process is the unit of parallelism: each task solves with one solver process
(``TASK_SOLVER_WORKERS``), whatever the producer's parameters, and a worker runs one task at a
time (``dispatch worker -c 1``) and reserves no more (``worker_prefetch_multiplier=1`` with late
acknowledgement), so a machine with N cores runs N workers. A task that also forked a solver
pool would compete for the cores the other workers use, and two workers could not double the
throughput of one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from celery import Celery, Task
from sqlalchemy.orm import Session, sessionmaker

from dispatch import config, db
from dispatch.errors import ValidationError
from solver import SolveParams

TASK_NAME = "dispatch.reoptimize_outlet_day"
#: A message taken by a worker that vanished (killed with its whole machine) goes back on the
#: queue after this long; well above a run's time limit, so a slow run is never duplicated.
DEFAULT_VISIBILITY_TIMEOUT = 600
#: A run still going after this long is stopped (its worker process is replaced) and reported as
#: failed: a solver that never returns must not hold a worker for ever.
DEFAULT_TASK_TIME_LIMIT = 300
#: How long a task's result is kept in the backend.
RESULT_EXPIRES_SECONDS = 24 * 3600
#: Solver processes per task: one (the worker is the unit of parallelism; see above).
TASK_SOLVER_WORKERS = 1


def broker_url(settings: Mapping[str, Any] | None = None) -> str | None:
    """The configured broker URL (``DISPATCH_BROKER_URL``), or None when there is none."""
    merged = config.load_config() if settings is None else settings
    value = str(merged.get("BROKER_URL") or "").strip()
    return value or None


def make_celery(broker: str | None = None, database_url: str | None = None, *,
                settings: Mapping[str, Any] | None = None) -> Celery:
    """A Celery app on ``broker`` (default: the configured one) whose tasks use ``database_url``
    (default: the configured database). Raises ValidationError when no broker is configured."""
    merged = config.load_config() if settings is None else settings
    broker = broker or broker_url(merged)
    if broker is None:
        raise ValidationError(
            "no task broker is configured; set DISPATCH_BROKER_URL (e.g. "
            "redis://127.0.0.1:6379/0)",
            "未配置任务队列；请设置 DISPATCH_BROKER_URL（例如 redis://127.0.0.1:6379/0）",
            field="DISPATCH_BROKER_URL")
    backend = str(merged.get("RESULT_BACKEND") or broker)
    visibility = _positive_int(merged.get("BROKER_VISIBILITY_TIMEOUT"),
                               DEFAULT_VISIBILITY_TIMEOUT, "DISPATCH_BROKER_VISIBILITY_TIMEOUT")
    task_limit = _positive_int(merged.get("TASK_TIME_LIMIT"), DEFAULT_TASK_TIME_LIMIT,
                               "DISPATCH_TASK_TIME_LIMIT")
    app = Celery("dispatch", broker=broker, backend=backend, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=RESULT_EXPIRES_SECONDS,
        task_track_started=True,
        task_time_limit=task_limit,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": visibility},
        result_backend_transport_options={"visibility_timeout": visibility},
        worker_hijack_root_logger=False,
        dispatch_database_url=database_url or config.database_url(merged),
    )
    app.task(name=TASK_NAME, bind=True, acks_late=True,
             reject_on_worker_lost=True)(reoptimize_outlet_day)
    return app


def reoptimize_outlet_day(task: Task, outlet_id: int, day_iso: str, now_iso: str,
                          time_limit: float) -> dict[str, Any]:
    """The Celery task: one re-optimization run of one outlet-day at ``now_iso``.

    Returns the run's report as JSON data and the name of the worker that ran it.
    """
    # Imported here: the job pulls in the solver stack, which the producer side never needs.
    from dispatch.reoptimize import run_reoptimization

    factory = session_factory_for(str(task.app.conf.dispatch_database_url))
    report = run_reoptimization(factory, int(outlet_id), date.fromisoformat(day_iso),
                                now=datetime.fromisoformat(now_iso),
                                params=task_params(float(time_limit)))
    return {"report": report.as_dict(), "worker": task.request.hostname or ""}


def task_params(time_limit: float) -> SolveParams:
    """The solve parameters of one task: the run's time limit, one solver process."""
    return SolveParams(time_limit=time_limit, workers=TASK_SOLVER_WORKERS)


_factories: dict[tuple[int, str], sessionmaker[Session]] = {}
_factories_lock = threading.Lock()


def session_factory_for(url: str) -> sessionmaker[Session]:
    """A session factory on ``url``, one engine per process (a forked worker child must not
    reuse its parent's connections)."""
    key = (os.getpid(), url)
    with _factories_lock:
        factory = _factories.get(key)
        if factory is None:
            factory = _factories[key] = db.session_factory(db.make_engine(url))
        return factory


def _positive_int(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0:
        raise ValidationError(f"must be a positive whole number of seconds, not {value!r}",
                              f"必须是正整数秒，而不是 {value!r}", field=name)
    return number
