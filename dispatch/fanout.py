"""Fanning the re-optimization job out to Celery workers: one task per outlet-day.

``reoptimize_everywhere`` is what ``dispatch reoptimize --all`` runs: with a broker configured
(``DISPATCH_BROKER_URL``) it sends one task per outlet to the workers and waits for every report;
without one it runs the outlets in this process, one by one. ``dispatch worker`` starts a worker.

Parallelism: one Celery worker (``-c 1``) per core, each task solving with one solver process
(``celery_app.TASK_SOLVER_WORKERS``); the tasks are sent largest outlet-day first and taken in
that order (a worker reserves one task at a time), so the workers finish together. In-process
runs solve with the parameters given; ``dispatch reoptimize`` gives one solver process there too:
a second one searches without the published plan as its start, and on the metro day it lowered
the objective a little but left more visits out, in the same time
(``benchmarks/results/reopt-scale-*.md``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from datetime import date, datetime
from typing import Any

import click
from celery import Celery, group
from celery.exceptions import TimeoutError as CeleryTimeout
from sqlalchemy.orm import Session, sessionmaker

from dispatch.celery_app import TASK_NAME, broker_url, make_celery
from dispatch.cli import database_url_option
from dispatch.errors import DispatchError
from dispatch.reoptimize import DEFAULT_PARAMS, RunReport, reoptimize_all
from dispatch.timeutil import require_aware
from solver import SolveParams

#: How long ``--all`` waits for every outlet's report by default.
DEFAULT_TIMEOUT_SECONDS = 900.0


class FanoutError(DispatchError):
    """Fanned-out runs did not all report: some timed out or failed on their worker."""


class CeleryRunner:
    """Runs the job for several outlets of one day on Celery workers and waits for the reports.

    After a call, ``task_ids`` maps each outlet id to its task's id and ``workers`` to the
    worker that ran it.
    """

    def __init__(self, app: Celery, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        if timeout <= 0:
            raise ValueError("CeleryRunner: field 'timeout' must be positive.")
        self.app = app
        self.timeout = timeout
        self.workers: dict[int, str] = {}
        self.task_ids: dict[int, str] = {}

    def __call__(self, outlet_ids: Sequence[int], day: date, *, now: datetime,
                 params: SolveParams | None) -> list[RunReport]:
        """One task per outlet, all sent at once in ``outlet_ids`` order (the order the
        workers take them in); the reports in ``outlet_ids`` order."""
        require_aware(now, "now")
        time_limit = (params or DEFAULT_PARAMS).time_limit or DEFAULT_PARAMS.time_limit
        tasks = [self.app.signature(TASK_NAME, args=(outlet_id, day.isoformat(),
                                                     now.isoformat(), time_limit))
                 for outlet_id in outlet_ids]
        if not tasks:
            return []
        results = group(tasks).apply_async()
        self.task_ids = {oid: str(res.id) for oid, res in zip(outlet_ids, results.results)}
        try:
            results.join(timeout=self.timeout, propagate=False)
        except CeleryTimeout:
            waiting = [oid for oid, res in zip(outlet_ids, results.results) if not res.ready()]
            raise _timeout_error(waiting, len(outlet_ids), self.timeout) from None
        failed = {oid: res.result for oid, res in zip(outlet_ids, results.results)
                  if res.failed()}
        if failed:
            raise _failure_error(failed)
        payloads = [res.result for res in results.results]
        results.forget()
        self.workers = {oid: str(p.get("worker", "")) for oid, p in zip(outlet_ids, payloads)}
        return [RunReport.from_dict(p["report"]) for p in payloads]


def _timeout_error(waiting: Sequence[int], total: int, timeout: float) -> FanoutError:
    ids = ", ".join(str(i) for i in waiting)
    return FanoutError(
        f"{len(waiting)} of {total} outlet runs did not report within {timeout:g} s "
        f"(outlet ids {ids}); are workers running (`dispatch worker`)?",
        f"{total} 个网点中有 {len(waiting)} 个在 {timeout:g} 秒内未返回结果（网点 id：{ids}）；"
        "工作进程是否在运行（`dispatch worker`）？")


def _failure_error(failed: Mapping[int, Any]) -> FanoutError:
    lines = "; ".join(f"{oid}: {type(exc).__name__}: {exc}" for oid, exc in failed.items())
    return FanoutError(f"{len(failed)} outlet runs failed on their worker ({lines})",
                       f"{len(failed)} 个网点的运行在工作进程上失败（{lines}）")


def runner_for(database_url: str, *, broker: str | None = None,
               timeout: float = DEFAULT_TIMEOUT_SECONDS) -> CeleryRunner | None:
    """A Celery runner when a broker is given or configured; None means "run in-process"."""
    broker = broker or broker_url()
    if broker is None:
        return None
    return CeleryRunner(make_celery(broker, database_url), timeout=timeout)


def reoptimize_everywhere(session_factory: sessionmaker[Session], database_url: str, day: date,
                          *, now: datetime, params: SolveParams | None = None,
                          broker: str | None = None,
                          timeout: float = DEFAULT_TIMEOUT_SECONDS) -> list[RunReport]:
    """Run the job for every outlet on ``day``: on the workers when a broker is configured,
    else in this process one by one. ``database_url`` is what the workers connect to."""
    runner = runner_for(database_url, broker=broker, timeout=timeout)
    return reoptimize_all(session_factory, day, now=now, params=params, runner=runner)


# ---------------------------------------------------------------------------------------------
# Worker processes (for tests and benchmarks that need real workers)
# ---------------------------------------------------------------------------------------------


def spawn_worker(database_url: str, broker: str, name: str, *, log: Path | None = None,
                 concurrency: int = 1) -> subprocess.Popen[bytes]:
    """Start ``dispatch worker`` named ``name`` as a subprocess in its own process group
    (so it can be stopped with everything it forked); output goes to ``log``."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DISPATCH_BROKER_URL": broker,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "dispatch.cli", "--database-url", database_url, "worker",
             "-c", str(concurrency), "-P", "prefork", "-n", name, "-l", "info"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


def wait_for_workers(app: Celery, names: Sequence[str], timeout: float) -> bool:
    """Whether every named worker answered a ping within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answered = {name for reply in app.control.ping(timeout=1.0) for name in reply}
        if set(names) <= answered:
            return True
    return False


def stop_worker(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop a worker started by ``spawn_worker``: a warm shutdown, then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


# ---------------------------------------------------------------------------------------------
# `dispatch worker`
# ---------------------------------------------------------------------------------------------


def worker_argv(*, concurrency: int, pool: str, hostname: str | None,
                loglevel: str) -> list[str]:
    """The Celery worker arguments ``dispatch worker`` starts with."""
    name = hostname or f"dispatch-{socket.gethostname()}-%p@%h"
    # Mingle and gossip only slow the start; workers need nothing from each other.
    return ["worker", f"--concurrency={concurrency}", f"--pool={pool}", f"--hostname={name}",
            f"--loglevel={loglevel}", "--without-mingle", "--without-gossip"]


@click.command("worker")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=1, show_default=True,
              help="同时运行的任务数 / Tasks run at the same time.")
@click.option("--pool", "-P", type=click.Choice(["prefork", "solo"]), default="prefork",
              show_default=True, help="进程池类型 / Worker pool.")
@click.option("--hostname", "-n", default=None,
              help="工作进程名称（需唯一）/ Worker name (must be unique).")
@click.option("--loglevel", "-l", default="info", show_default=True,
              help="日志级别 / Log level.")
@click.option("--broker-url", default=None, metavar="URL",
              help="任务队列地址（默认 DISPATCH_BROKER_URL）/ Broker URL "
                   "(default: DISPATCH_BROKER_URL).")
@click.pass_context
def worker_command(ctx: click.Context, concurrency: int, pool: str, hostname: str | None,
                   loglevel: str, broker_url: str | None) -> None:
    """启动重新优化工作进程 / Start a worker that runs re-optimization tasks."""
    app = make_celery(broker_url, database_url_option(ctx))
    app.worker_main(worker_argv(concurrency=concurrency, pool=pool, hostname=hostname,
                                loglevel=loglevel))
