"""The demo preparation: migrations, the day loaded, each outlet-day planned and published once."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.db import make_engine
import fixtures
from dispatch.demo import (
    COMING_DAYS,
    DemoInfo,
    DemoLogin,
    demo_logins,
    format_logins,
    prepare_demo,
)
from dispatch.errors import ValidationError
from solver.params import SolveParams

DAY = date(2025, 3, 10)
PARAMS = SolveParams(time_limit=None, solution_limit=30, workers=1, seed=0, use_pyvrp=False)


def prepare_demo_logins_only() -> tuple[DemoLogin, ...]:
    """The logins prepare_demo reports for the tiny day (no database needed)."""
    return demo_logins(fixtures.generate("tiny", DAY, 0))


def table_counts(url: str) -> dict[str, int]:
    """Rows in every table of the database at ``url``."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return {t.name: session.scalar(select(func.count()).select_from(t)) or 0
                    for t in m.Base.metadata.sorted_tables}
    finally:
        engine.dispose()


def published_plans(url: str) -> list[tuple[str, date]]:
    """(outlet code, day) of every published plan at ``url``."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(select(m.Outlet.code, m.Plan.day).join(m.Plan.outlet)
                                   .where(m.Plan.status == m.PlanStatus.PUBLISHED)).all()
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


def test_prepare_demo_twice_duplicates_nothing(blank_db_url: str) -> None:
    """The first run migrates, loads and publishes one plan per outlet; the second adds no row."""
    first = prepare_demo(blank_db_url, "tiny", DAY, params=PARAMS)
    after_first = table_counts(blank_db_url)
    second = prepare_demo(blank_db_url, "tiny", DAY, params=PARAMS)
    assert first.planned == ("TY-SN",) and first.kept == ()
    assert second.planned == () and second.kept == ("TY-SN",)
    assert second.loaded.total_created == 0
    assert table_counts(blank_db_url) == after_first
    assert published_plans(blank_db_url) == [("TY-SN", DAY)]
    assert after_first["visits"] == 12 and after_first["plan_stops"] > 0


def test_prepare_demo_returns_every_login() -> None:
    """The logins are admin, manager, dispatcher and one per technician, with names."""
    info = prepare_demo_logins_only()
    roles = [login.role for login in info]
    assert {"admin", "manager", "dispatcher"} <= set(roles)
    assert roles.count("technician") == 3
    assert all(login.technician_name for login in info if login.role == "technician")


def test_unknown_dataset_is_refused() -> None:
    """A dataset name outside tiny/qingdao/metro is a ValidationError naming the field."""
    with pytest.raises(ValidationError) as caught:
        prepare_demo("sqlite://", "atlantis", DAY)
    assert caught.value.field == "dataset"


def test_format_logins_is_a_bilingual_aligned_table() -> None:
    """The table has a bilingual header, one line per login, and columns aligned for Chinese."""
    info = DemoInfo("tiny", DAY, "http://127.0.0.1:5000", (
        DemoLogin("dispatcher", "dispatcher", "demo1234", None),
        DemoLogin("ty-sn-t01", "technician", "demo1234", "许超"),
    ), loaded=None, planned=(), kept=())
    lines = format_logins(info).splitlines()
    assert "http://127.0.0.1:5000" in lines[0]
    assert "用户名 / Username" in lines[1] and "密码 / Password" in lines[1]
    assert lines[3].split()[0] == "dispatcher" and lines[4].endswith("许超")
    # "密码" columns start at the same display column in both rows.
    assert lines[3].index("demo1234") == lines[4].index("demo1234")


def test_demo_has_shifts_for_the_coming_days(blank_db_url: str) -> None:
    """Booking can offer the next days: the demo loads the technicians' shifts for them too,
    with no visits booked yet."""
    prepare_demo(blank_db_url, "tiny", DAY, params=PARAMS)
    engine = make_engine(blank_db_url)
    try:
        with Session(engine) as session:
            days = set(session.scalars(select(m.TechnicianShift.day)))
            visit_days = set(session.scalars(select(m.Visit.day)))
    finally:
        engine.dispose()
    assert days == {DAY + timedelta(days=k) for k in range(COMING_DAYS + 1)}
    assert visit_days == {DAY}
