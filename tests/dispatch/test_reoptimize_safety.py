"""The job next to people and other runs: a dispatcher's edit wins, one run per outlet-day, a
killed run leaves the published plan intact; and its command and scheduler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from dispatch import db
from dispatch import models as m
from dispatch import reoptimize
from dispatch.cli import main
from dispatch.reoptimize import outlets_open_at, run_reoptimization
from dispatch.runlock import LEASE_TTL, acquire_lease, new_holder
from tests.dispatch.reopt_helpers import (
    DAY,
    PARAMS,
    Day,
    advance,
    at,
    book_visit,
    published,
    published_day,
    row_counts,
)

ROOT = Path(__file__).resolve().parents[2]


def with_new_visit(day: Day, hour: int = 12) -> None:
    """Move the day on to ``hour`` and book a visit, so that a run has something to publish."""
    with db.session_scope(day.factory) as session:
        advance(session, day.outlet_id, at(hour))
        book_visit(session, day.outlet_id, "NEW-S", skill="ac_repair", priority=2,
                   window=(at(14), at(17)), reported=at(hour))


def hook_solve(monkeypatch: pytest.MonkeyPatch, during: Callable[[], None]) -> None:
    """Run ``during`` inside the job's solve (between its read and its write)."""
    real = reoptimize.solve_input

    def solve(*args: Any, **kwargs: Any) -> Any:
        during()
        return real(*args, **kwargs)

    monkeypatch.setattr(reoptimize, "solve_input", solve)


def test_dispatcher_edit_during_the_run_wins(engine: Engine,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A visit edited by a dispatcher while the job solves makes the job skip: nothing written,
    the dispatcher's edit kept."""
    day = published_day(engine)
    with_new_visit(day)
    with db.session_scope(day.factory) as session:
        before = row_counts(session)
        visit_id = session.scalar(select(m.Visit.id).where(m.Visit.code == "NEW-S"))

    def dispatcher_edits() -> None:
        with db.session_scope(day.factory) as other:
            other.get(m.Visit, visit_id).duration_minutes = 50  # type: ignore[union-attr]

    hook_solve(monkeypatch, dispatcher_edits)
    report = run_reoptimization(day.factory, day.outlet_id, DAY, now=at(12), params=PARAMS)
    assert report.status == "conflict_skipped"
    with db.session_scope(day.factory) as session:
        assert row_counts(session) == before
        assert session.get(m.Visit, visit_id).duration_minutes == 50  # type: ignore[union-attr]


def test_second_concurrent_run_reports_already_running(engine: Engine,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """While one run of an outlet-day solves, another reports "already_running" at once; the
    first one still finishes."""
    day = published_day(engine)
    with_new_visit(day)
    solving, finish = threading.Event(), threading.Event()

    def hold() -> None:
        if threading.current_thread().name == "first":
            solving.set()
            assert finish.wait(30)

    hook_solve(monkeypatch, hold)
    reports: list[Any] = []
    first = threading.Thread(name="first", target=lambda: reports.append(run_reoptimization(
        day.factory, day.outlet_id, DAY, now=at(12), params=PARAMS)))
    first.start()
    assert solving.wait(30)
    second = run_reoptimization(day.factory, day.outlet_id, DAY, now=at(12), params=PARAMS)
    finish.set()
    first.join(60)
    assert second.status == "already_running"
    assert [r.status for r in reports] == ["published"]


KILLED_RUN = textwrap.dedent("""
    import sys, time
    from datetime import date, datetime
    from dispatch import db, reoptimize
    url, outlet_id, now, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    def stuck(*args, **kwargs):
        open(flag, "w").close()
        time.sleep(600)
    reoptimize.solve_input = stuck
    factory = db.session_factory(db.make_engine(url))
    reoptimize.run_reoptimization(factory, outlet_id, date(2025, 3, 10),
                                  now=datetime.fromisoformat(now))
""")


def test_run_killed_during_the_solve_leaves_the_plan_intact(engine: Engine, db_url: str,
                                                            tmp_path: Path) -> None:
    """A run killed with SIGKILL mid-solve writes nothing; the outlet-day can be run again
    (at once on PostgreSQL, once the lease has run out on SQLite)."""
    day = published_day(engine)
    with_new_visit(day)
    with db.session_scope(day.factory) as session:
        before, plan_id = row_counts(session), published(session, day.outlet_id).id
    flag = tmp_path / "solving"
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, db_url, str(day.outlet_id),
                              at(12).isoformat(), str(flag)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert child.poll() is None and time.monotonic() < deadline, "the child never solved"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    with db.session_scope(day.factory) as session:
        assert row_counts(session) == before
        assert published(session, day.outlet_id).id == plan_id
    if engine.dialect.name == "sqlite":
        later = datetime.now(UTC) + LEASE_TTL + timedelta(seconds=1)
        assert acquire_lease(engine, day.outlet_id, DAY, new_holder(), at=later)
    else:
        report = run_reoptimization(day.factory, day.outlet_id, DAY, now=at(12), params=PARAMS)
        assert report.status == "published"


def test_reoptimize_command_prints_the_report(db_url: str, engine: Engine) -> None:
    """`dispatch reoptimize --outlet X --date D` runs once, prints both languages, exits 0."""
    day = published_day(engine)
    with db.session_scope(day.factory) as session:
        code = session.get(m.Outlet, day.outlet_id).code  # type: ignore[union-attr]
    result = CliRunner().invoke(main, ["--database-url", db_url, "reoptimize", "--outlet", code,
                                       "--date", DAY.isoformat(), "--time-limit", "1"])
    assert result.exit_code == 0, result.output
    assert f"Outlet {code} {DAY}" in result.output and f"网点 {code}" in result.output


def test_reoptimize_command_needs_an_outlet_or_all(db_url: str) -> None:
    """Without --outlet or --all the command says what is missing and fails."""
    result = CliRunner().invoke(main, ["--database-url", db_url, "reoptimize"])
    assert result.exit_code == 1
    assert "--outlet" in result.output


def test_scheduler_runs_only_outlets_in_business_hours(engine: Engine) -> None:
    """At 07:00 the outlet (open 08:30-18:00) is skipped; at 10:00 it is run."""
    day = published_day(engine)
    with db.session_scope(day.factory) as session:
        assert outlets_open_at(session, at(7)) == []
        assert outlets_open_at(session, at(10)) == [(day.outlet_id, DAY)]
