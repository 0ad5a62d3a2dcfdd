"""Engines, transactions and migrations on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, inspect, select, text

from dispatch import db
from dispatch import models as m
from dispatch.config import REPO_ROOT
from dispatch.errors import DatabaseUnavailable, DispatchError

DOWN_URL = "postgresql+psycopg://postgres:secret@127.0.0.1:1/test"


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path: Path) -> None:
    """Every SQLite connection has foreign keys on and the WAL journal."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == db.SQLITE_BUSY_TIMEOUT_MS
    engine.dispose()


def test_database_that_is_down_raises_database_unavailable() -> None:
    """A server that refuses connections gives DatabaseUnavailable, password hidden."""
    engine = db.make_engine(DOWN_URL)
    with pytest.raises(DatabaseUnavailable) as caught:
        engine.connect()
    assert "secret" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)
    engine.dispose()


def test_session_scope_commits_on_success(engine: Engine) -> None:
    """Work inside session_scope is committed when the block ends normally."""
    with db.session_scope(engine) as session:
        session.add(m.Skill(code="tv_mount", name_zh="电视挂装", name_en="TV mounting"))
    with db.session_scope(engine) as session:
        assert session.scalar(select(func.count(m.Skill.id))) == 1


def test_session_scope_rolls_back_on_error(engine: Engine) -> None:
    """Work inside session_scope is discarded when the block raises."""
    with pytest.raises(RuntimeError), db.session_scope(engine) as session:
        session.add(m.Skill(code="tv_mount", name_zh="电视挂装", name_en="TV mounting"))
        session.flush()
        raise RuntimeError("boom")
    with db.session_scope(engine) as session:
        assert session.scalar(select(func.count(m.Skill.id))) == 0


def test_upgrade_then_check_finds_no_drift(blank_db_url: str) -> None:
    """Migrating a fresh database gives exactly the models' schema."""
    db.upgrade(blank_db_url)
    db.check(blank_db_url)
    engine = db.make_engine(blank_db_url)
    assert set(m.Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_check_reports_drift(blank_db_url: str) -> None:
    """A schema changed behind the models' back fails the check."""
    db.upgrade(blank_db_url)
    engine = db.make_engine(blank_db_url)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE skills ADD COLUMN extra INTEGER"))
    engine.dispose()
    with pytest.raises(DispatchError, match="differs"):
        db.check(blank_db_url)


def test_alembic_check_from_repository(tmp_path: Path) -> None:
    """`alembic check` run from the repository finds the migrations and no drift."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    db.upgrade(url)
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "check"],
        cwd=REPO_ROOT,
        env={**os.environ, "DISPATCH_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr
