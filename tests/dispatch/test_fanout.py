"""Fanning the re-optimization job out to two real Celery workers on a real Redis.

Each test starts two worker subprocesses (``dispatch worker -c 1``, unique names) on a Redis
database of its own (index 15, flushed first) and stops them at the end, always. Without Redis
the tests are skipped with the reason, unless DISPATCH_REQUIRE_REDIS=1 makes that a failure.
The in-process fall-back and the runner's error handling are tested without any broker.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

import fixtures
from dispatch import db
from dispatch import models as m
from dispatch.celery_app import TASK_NAME, make_celery, task_params
from dispatch.errors import ValidationError
from dispatch.fanout import (
    CeleryRunner,
    FanoutError,
    reoptimize_everywhere,
    runner_for,
    spawn_worker,
    stop_worker,
    wait_for_workers,
)
from dispatch.loader import load_dataset
from dispatch.models import Base
from dispatch.planning import plan_day, publish_plan
from dispatch.reoptimize import RunReport, reoptimize_all
from dispatch.timeutil import local_time_to_utc
from solver import SolveParams



def _own_redis_db() -> int:
    """A Redis database per pytest-xdist worker (gw0 -> 15, gw1 -> 14, ...): tests running at
    the same time on other workers must not see each other's tasks or Celery workers."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return 15 - int(worker.removeprefix("gw") or 0) % 8


REDIS_URL = os.environ.get("DISPATCH_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{_own_redis_db()}")
DAY = date(2026, 3, 10)
WORKER_START_TIMEOUT = 60
FINISHED_STATUSES = {"published", "kept", "unchanged"}


# ---------------------------------------------------------------------------------------------
# Redis, data, workers
# ---------------------------------------------------------------------------------------------


def redis_unavailable_reason() -> str | None:
    """Why Redis cannot be used, or None when it answers."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # any failure means "not usable"; the reason is shown
        return f"Redis at {REDIS_URL} does not answer: {exc}"
    return None


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test's Redis database, flushed; skipped (or failed when required) without Redis."""
    import redis

    reason = redis_unavailable_reason()
    if reason is not None:
        if os.environ.get("DISPATCH_REQUIRE_REDIS") == "1":
            pytest.fail(f"{reason} (DISPATCH_REQUIRE_REDIS=1)", pytrace=False)
        print(f"skipping: {reason}")
        pytest.skip(reason)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()  # nothing a test queued may reach another test's workers


def small_city(visits_per_outlet: int = 6, technicians_per_outlet: int = 3) -> fixtures.Dataset:
    """The qingdao dataset cut down to a few technicians and visits per outlet (fast to plan)."""
    full = fixtures.generate("qingdao", DAY)
    techs = tuple(t for o in full.outlets for t in sorted(
        (t for t in full.technicians if t.outlet_code == o.code),
        key=lambda t: t.code)[:technicians_per_outlet])
    kept = {t.code for t in techs}
    visits = tuple(replace(v, pinned_technician_code=v.pinned_technician_code
                           if v.pinned_technician_code in kept else None)
                   for o in full.outlets for v in sorted(
                       (v for v in full.visits if v.outlet_code == o.code),
                       key=lambda v: v.code)[:visits_per_outlet])
    return replace(full, technicians=techs,
                   shifts=tuple(s for s in full.shifts if s.technician_code in kept),
                   visits=visits, unskilled_visit_codes=(),
                   users=tuple(u for u in full.users
                               if u.technician_code is None or u.technician_code in kept))


def prepare_database(url: str, *, create: bool = True) -> list[int]:
    """Load the small city on ``url``, plan and publish each outlet-day; the outlet ids."""
    engine = db.make_engine(url)
    try:
        if create:
            Base.metadata.create_all(engine)
        with db.session_scope(engine) as session:
            load_dataset(session, small_city())
            outlets = list(session.scalars(select(m.Outlet).order_by(m.Outlet.code)))
            for outlet in outlets:
                plan = plan_day(session, outlet, DAY, params=SolveParams(time_limit=1.0))
                publish_plan(session, plan, plan.version)
            return [o.id for o in outlets]
    finally:
        engine.dispose()


def mid_morning() -> datetime:
    """10:30 on the test day in Qingdao."""
    from datetime import time as clock

    return local_time_to_utc(DAY, clock(10, 30), "Asia/Shanghai")


class Workers:
    """Two `dispatch worker` subprocesses, each in its own process group."""

    def __init__(self, database_url: str, broker: str, tmp_path: Path) -> None:
        run = uuid.uuid4().hex[:8]  # a worker left over from another run cannot pose as ours
        self.names = [f"fanout-a-{run}@test", f"fanout-b-{run}@test"]
        self.app = make_celery(broker, database_url)
        self.logs = [tmp_path / f"{name.split('@')[0]}.log" for name in self.names]
        self.procs = [spawn_worker(database_url, broker, name, log=log)
                      for name, log in zip(self.names, self.logs)]

    def wait_ready(self) -> None:
        """Wait until both workers answer a ping."""
        if not wait_for_workers(self.app, self.names, WORKER_START_TIMEOUT):
            pytest.fail(f"the workers did not answer within {WORKER_START_TIMEOUT} s")

    def active_pids(self) -> list[int]:
        """The process ids of the pool children running a task right now."""
        replies = self.app.control.inspect(timeout=1.0).active() or {}
        return [int(task["worker_pid"]) for tasks in replies.values() for task in tasks
                if task.get("name") == TASK_NAME and task.get("worker_pid")]

    def deliveries(self, task_ids: Iterable[str]) -> int:
        """How many times the workers received the given tasks, per their logs."""
        wanted = {f"Task {TASK_NAME}[{task_id}] received" for task_id in task_ids}
        return sum(1 for path in self.logs
                   for line in path.read_text(errors="replace").splitlines()
                   if any(line.rstrip().endswith(w) for w in wanted))

    def stop(self) -> None:
        """Stop both workers: politely, then by force."""
        for proc in self.procs:
            stop_worker(proc)
        self.app.close()


@pytest.fixture
def workers_on(redis_url: str, tmp_path: Path) -> Iterator[object]:
    """A function starting two workers on a database URL; they are stopped after the test."""
    started: list[Workers] = []

    def start(database_url: str) -> Workers:
        workers = Workers(database_url, redis_url, tmp_path)
        started.append(workers)
        workers.wait_ready()
        return workers

    yield start
    for workers in started:
        workers.stop()


# ---------------------------------------------------------------------------------------------
# Two real workers
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_all_fans_out_one_task_per_outlet_to_both_workers(workers_on, tmp_path: Path) -> None:
    """`--all` with a broker: every outlet-day gets exactly one finished report, and both
    workers ran some of them."""
    url = f"sqlite:///{tmp_path / 'fanout.db'}"
    outlet_ids = prepare_database(url)
    workers = workers_on(url)
    runner = CeleryRunner(workers.app, timeout=180)
    engine = db.make_engine(url)
    try:
        reports = reoptimize_all(db.session_factory(engine), DAY, now=mid_morning(),
                                 params=SolveParams(time_limit=2.0), runner=runner)
    finally:
        engine.dispose()
    assert sorted(r.outlet_id for r in reports) == sorted(outlet_ids)
    assert {r.status for r in reports} <= FINISHED_STATUSES
    assert set(runner.workers.values()) == set(workers.names)


@pytest.mark.slow
@pytest.mark.postgres
def test_task_of_a_killed_worker_is_redelivered_and_completes(workers_on,
                                                             request: pytest.FixtureRequest
                                                             ) -> None:
    """A worker process killed (SIGKILL) mid-task: the message goes back to the queue (late
    acknowledgement) and the run completes on a worker, with one report per outlet-day.

    Runs on PostgreSQL, whose advisory lock dies with the killed connection (a SQLite lease
    would hold the outlet-day until it expires)."""
    from tests.conftest import require_postgres

    require_postgres()
    schema = request.getfixturevalue("pg_schema")
    schema.reset()
    outlet_ids = prepare_database(schema.url, create=False)
    workers = workers_on(schema.url)
    runner = CeleryRunner(workers.app, timeout=240)
    engine = db.make_engine(schema.url)
    reports: list = []
    errors: list[BaseException] = []

    def fan_out() -> None:
        try:
            reports.extend(reoptimize_all(db.session_factory(engine), DAY, now=mid_morning(),
                                          params=SolveParams(time_limit=6.0), runner=runner))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=fan_out)
    thread.start()
    try:
        killed = kill_a_running_task(workers)
        thread.join(timeout=240)
    finally:
        engine.dispose()
    assert not thread.is_alive() and not errors, errors
    assert killed
    assert sorted(r.outlet_id for r in reports) == sorted(outlet_ids)
    assert {r.status for r in reports} <= FINISHED_STATUSES
    # The killed task's message came back once; every other task was received once.
    assert workers.deliveries(runner.task_ids.values()) == len(outlet_ids) + 1


def kill_a_running_task(workers: Workers) -> int:
    """SIGKILL the pool process running a task as soon as one runs; its pid."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = workers.active_pids()
        if pids:
            time.sleep(1.0)  # well inside the run: the lock is taken, the solver is searching
            os.kill(pids[0], signal.SIGKILL)
            return pids[0]
        time.sleep(0.2)
    pytest.fail("no task started running within 60 s")


# ---------------------------------------------------------------------------------------------
# Without workers
# ---------------------------------------------------------------------------------------------


def test_without_a_broker_the_outlets_run_in_process(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """No DISPATCH_BROKER_URL: `--all` runs each outlet here, one report per outlet-day."""
    monkeypatch.delenv("DISPATCH_BROKER_URL", raising=False)
    monkeypatch.setenv("DISPATCH_INSTANCE_PATH", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'local.db'}"
    outlet_ids = prepare_database(url)
    assert runner_for(url) is None
    engine = db.make_engine(url)
    try:
        reports = reoptimize_everywhere(db.session_factory(engine), url, DAY,
                                        now=mid_morning(),
                                        params=SolveParams(time_limit=0.5))
    finally:
        engine.dispose()
    assert sorted(r.outlet_id for r in reports) == sorted(outlet_ids)


class RecordingRunner:
    """A runner that runs nothing: it notes the order it was given the outlets in."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def __call__(self, outlet_ids, day, *, now, params) -> list[RunReport]:
        self.sent = list(outlet_ids)
        return [RunReport(outlet_id, day, "kept") for outlet_id in outlet_ids]


def test_all_sends_the_largest_outlet_day_first(engine: Engine) -> None:
    """`--all` hands the outlet-days to the workers largest first (most visits still to do;
    ties in outlet code order), so the workers finish together; the reports come back in
    outlet code order."""
    with db.session_scope(engine) as session:
        load_dataset(session, small_city())
        outlets = list(session.scalars(select(m.Outlet).order_by(m.Outlet.code)))
        assert len(outlets) >= 3
        first, second = outlets[0], outlets[1]
        visits = list(session.scalars(select(m.Visit).where(m.Visit.outlet_id == first.id)
                                      .order_by(m.Visit.code)))
        for visit in visits[:2]:  # finished or cancelled: no longer to plan
            visit.status = m.VisitStatus.DONE
        visits[2].status = m.VisitStatus.CANCELLED
        extra = session.scalars(select(m.Visit).where(m.Visit.outlet_id == second.id)).first()
        assert extra is not None
        extra.status = m.VisitStatus.ON_SITE  # under way: still part of the day
        ids = [o.id for o in outlets]
    runner = RecordingRunner()
    reports = reoptimize_all(db.session_factory(engine), DAY, now=mid_morning(), runner=runner)
    assert runner.sent == ids[1:] + ids[:1]
    assert [r.outlet_id for r in reports] == ids


def test_a_task_solves_with_one_solver_process() -> None:
    """Whatever the producer's parameters, a fanned-out run keeps its time limit and solves
    with one solver process: the Celery worker is the unit of parallelism."""
    assert task_params(5.0) == SolveParams(time_limit=5.0, workers=1)


def test_a_runner_without_workers_times_out_with_a_clear_error(redis_url: str) -> None:
    """Nobody consumes the tasks: the wait ends after the timeout, naming the waiting outlets."""
    app = make_celery(redis_url, "sqlite://")
    try:
        runner = CeleryRunner(app, timeout=1.0)
        with pytest.raises(FanoutError) as caught:
            runner([7, 8], DAY, now=mid_morning(), params=SolveParams(time_limit=1.0))
    finally:
        app.control.purge()
        app.close()
    assert "7, 8" in caught.value.message_en and "dispatch worker" in caught.value.message_en
    assert "7, 8" in caught.value.message_zh


def test_an_app_needs_a_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the Celery app with no broker configured names the setting to give."""
    monkeypatch.delenv("DISPATCH_BROKER_URL", raising=False)
    with pytest.raises(ValidationError) as caught:
        make_celery(None, "sqlite://", settings={})
    assert caught.value.field == "DISPATCH_BROKER_URL"


def test_the_app_acknowledges_late_and_requeues_on_a_lost_worker() -> None:
    """The settings that make a crash re-run the task: late acks, requeue on a lost worker,
    one message at a time per worker process."""
    app = make_celery(REDIS_URL, "sqlite://", settings={})
    try:
        task = app.tasks[TASK_NAME]
        assert task.acks_late and task.reject_on_worker_lost
        assert app.conf.worker_prefetch_multiplier == 1
        assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    finally:
        app.close()
