"""The suite's database harness.

Tests that request ``db_url``, ``engine`` or ``session`` run once per backend: SQLite (a fresh file
per test) and PostgreSQL (marked ``postgres``). PostgreSQL comes from DISPATCH_TEST_DATABASE_URL;
when it does not answer its tests are skipped with the reason, unless DISPATCH_REQUIRE_POSTGRES=1,
which turns the skip into a failure. Under pytest-xdist each worker works in its own PostgreSQL
schema, created fresh for the session and dropped at its end; tables are emptied before each test.
``blank_db_url`` gives an empty database (no tables) for migration tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from dispatch.db import make_engine
from dispatch.models import Base

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def pg_base_url() -> str:
    """Return the PostgreSQL URL tests run against."""
    return os.environ.get("DISPATCH_TEST_DATABASE_URL", DEFAULT_PG_URL)


def postgres_required() -> bool:
    """Return whether a missing PostgreSQL must fail the run instead of skipping its tests."""
    return os.environ.get("DISPATCH_REQUIRE_POSTGRES") == "1"


@cache
def pg_unavailable_reason() -> str | None:
    """Return why PostgreSQL cannot be used, or None when it answers (checked once a process)."""
    engine = create_engine(pg_base_url(), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not usable"; the reason is shown
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"PostgreSQL at {make_url(pg_base_url())!r} does not answer: {first_line}"
    finally:
        engine.dispose()
    return None


def require_postgres() -> None:
    """Skip the current test (or fail it under DISPATCH_REQUIRE_POSTGRES=1) without PostgreSQL."""
    reason = pg_unavailable_reason()
    if reason is None:
        return
    if postgres_required():
        pytest.fail(f"{reason} (DISPATCH_REQUIRE_POSTGRES=1)", pytrace=False)
    pytest.skip(reason)


def pytest_report_header(config: pytest.Config) -> str:
    """Print at the top of the run whether PostgreSQL tests will run."""
    reason = pg_unavailable_reason()
    if reason is None:
        return f"postgresql: {make_url(pg_base_url())!r} answers; postgres tests run"
    verdict = "FAIL" if postgres_required() else "are skipped"
    return f"postgresql: {reason}; postgres tests {verdict}"


def _schema_prefix() -> str:
    # Worker id keeps xdist workers apart; the run id keeps concurrent runs apart.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or _local_run_id()
    return f"test_{worker}_{run[:8]}"


@cache
def _local_run_id() -> str:
    return uuid.uuid4().hex


def url_with_schema(base_url: str, schema: str) -> str:
    """Return ``base_url`` with every connection's search_path set to ``schema``."""
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _recreate_schema(admin: Engine, schema: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))


def _drop_schema(admin: Engine, schema: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[Engine]:
    """An autocommit engine on the PostgreSQL test database, for creating schemas."""
    require_postgres()
    engine = create_engine(pg_base_url(), isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


class PgSchema:
    """One worker's PostgreSQL schema holding every table, and a fast way to empty it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        with self.engine.connect() as connection:
            self.sequences = connection.execute(text(
                "SELECT sequence_name FROM information_schema.sequences"
                " WHERE sequence_schema = current_schema()"
            )).scalars().all()

    def reset(self) -> None:
        """Empty every table and restart every id sequence.

        The effect of TRUNCATE ... RESTART IDENTITY CASCADE, but TRUNCATE gives every table and
        index a new file and took ~0.5 s a test on a busy machine; DELETE takes ~0.05 s.
        """
        with self.engine.begin() as connection:
            # Fail fast rather than hang if a previous test leaked a transaction.
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
            for sequence in self.sequences:
                connection.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))


@pytest.fixture(scope="session")
def pg_schema(pg_admin_engine: Engine) -> Iterator[PgSchema]:
    """This worker's PostgreSQL schema, created fresh for the session and dropped at its end."""
    name = _schema_prefix()
    _recreate_schema(pg_admin_engine, name)
    schema = PgSchema(url_with_schema(pg_base_url(), name))
    yield schema
    schema.engine.dispose()
    _drop_schema(pg_admin_engine, name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding every table, copied for each test (creating tables is slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()  # closing the last connection folds the WAL back into the file
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of the current test: "sqlite" or "postgresql"."""
    if request.param == "postgresql":
        require_postgres()
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of an empty database holding every table, fresh for this test."""
    if backend == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    schema: PgSchema = request.getfixturevalue("pg_schema")
    schema.reset()
    return schema.url


@pytest.fixture
def blank_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a database with no tables at all (for migrations), fresh for this test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    admin: Engine = request.getfixturevalue("pg_admin_engine")
    schema = f"{_schema_prefix()}_blank"
    _recreate_schema(admin, schema)
    yield url_with_schema(pg_base_url(), schema)
    _drop_schema(admin, schema)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on ``db_url``, disposed after the test."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session bound to ``engine``; whatever the test left uncommitted is rolled back."""
    with Session(engine) as session:
        yield session
