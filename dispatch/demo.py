"""The demo city: a database with today's service day loaded, planned and published.

``prepare_demo`` is what ``make demo`` runs before the web server starts (the server itself is
started by the web package; dispatch never imports it). Running it again changes nothing that
exists: the loader's upsert creates no duplicates and an outlet-day that already has a published
plan keeps it.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import fixtures
from dispatch import config, db
from dispatch import models as m
from dispatch.errors import ValidationError
from dispatch.timeutil import zone

DEMO_URL = "http://127.0.0.1:5000"
DEMO_ACTOR = "demo"
#: Days after the demo day that get shifts (for booking), without visits.
COMING_DAYS = 3


@dataclass(frozen=True)
class DemoLogin:
    """One account of the demo and the password it was created with."""

    username: str
    role: str
    password: str
    technician_name: str | None


@dataclass(frozen=True)
class DemoInfo:
    """What ``prepare_demo`` did and what a person needs to try the demo."""

    dataset: str
    day: date
    url: str
    logins: tuple[DemoLogin, ...]
    loaded: Any  # dispatch.loader.LoadReport
    planned: tuple[str, ...]  # outlets planned and published by this run
    kept: tuple[str, ...]  # outlets whose published plan of the day was already there


def today(timezone: str | None = None) -> date:
    """Return today's date in ``timezone`` (default: the configured zone, Asia/Shanghai)."""
    name = timezone or str(config.load_config().get("DEFAULT_TIMEZONE") or "Asia/Shanghai")
    return datetime.now(zone(name)).date()


def prepare_demo(
    session_or_url: Session | str,
    dataset: str = "qingdao",
    day: date | None = None,
    seed: int = 0,
    *,
    params: Any = None,
    url: str = DEMO_URL,
) -> DemoInfo:
    """Load the named dataset for ``day`` (default: today), then plan and publish each outlet-day.

    Given a URL, migrations are applied first and the work is committed; given a session, the
    schema must exist and the caller commits. ``params`` (solver.SolveParams) tunes planning.
    """
    if dataset not in fixtures.DATASETS:
        raise ValidationError(
            f"unknown dataset {dataset!r}; choose one of {', '.join(fixtures.DATASETS)}",
            f"未知数据集 {dataset!r}；可选：{', '.join(fixtures.DATASETS)}",
            field="dataset",
        )
    day = day or today()
    if isinstance(session_or_url, Session):
        return _prepare(session_or_url, dataset, day, seed, params, url)
    db.upgrade(session_or_url)
    engine = db.make_engine(session_or_url)
    try:
        with db.session_scope(engine) as session:
            return _prepare(session, dataset, day, seed, params, url)
    finally:
        engine.dispose()


def _prepare(session: Session, dataset_name: str, day: date, seed: int, params: Any,
             url: str) -> DemoInfo:
    from dispatch.loader import load_dataset  # imported on use: loader and planning are heavy
    from dispatch.planning import plan_day, publish_plan

    dataset = fixtures.generate(dataset_name, day, seed)
    loaded = load_dataset(session, dataset)
    _load_coming_shifts(session, dataset_name, day, seed)
    planned, kept = [], []
    for outlet_record in dataset.outlets:
        outlet = session.scalars(select(m.Outlet).where(m.Outlet.code == outlet_record.code)).one()
        if _has_published_plan(session, outlet, day):
            kept.append(outlet.code)
            continue
        plan = plan_day(session, outlet, day, params=params, created_by=DEMO_ACTOR)
        publish_plan(session, plan, plan.version)
        db.flush(session)
        planned.append(outlet.code)
    return DemoInfo(dataset_name, day, url, demo_logins(dataset), loaded, tuple(planned),
                    tuple(kept))


def _load_coming_shifts(session: Session, dataset_name: str, day: date, seed: int) -> None:
    """The technicians' shifts for the next days, so booking can offer those days too."""
    from dispatch.loader import load_dataset

    for ahead in range(1, COMING_DAYS + 1):
        later = fixtures.generate(dataset_name, day + timedelta(days=ahead), seed)
        load_dataset(session, dataclasses.replace(
            later, customers=(), products=(), tickets=(), visits=(), users=()))


def _has_published_plan(session: Session, outlet: m.Outlet, day: date) -> bool:
    query = select(m.Plan.id).where(m.Plan.outlet_id == outlet.id, m.Plan.day == day,
                                    m.Plan.status == m.PlanStatus.PUBLISHED)
    return session.scalars(query.limit(1)).first() is not None


def demo_logins(dataset: fixtures.Dataset) -> tuple[DemoLogin, ...]:
    """Return the accounts of ``dataset`` with their initial passwords and technician names."""
    names = {t.code: t.name for t in dataset.technicians}
    return tuple(
        DemoLogin(u.username, u.role, u.password,
                  names.get(u.technician_code) if u.technician_code else None)
        for u in dataset.users
    )


# ---------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------

ROLE_NAMES = {"admin": "管理员 admin", "manager": "主管 manager",
              "dispatcher": "调度 dispatcher", "technician": "技师 technician"}


def format_logins(info: DemoInfo) -> str:
    """Return the demo's address and its logins as a plain-text table with a bilingual header."""
    header = ("用户名 / Username", "角色 / Role", "密码 / Password", "技师 / Technician")
    rows = [(login.username, ROLE_NAMES.get(login.role, login.role), login.password,
             login.technician_name or "-") for login in info.logins]
    widths = [max(_width(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        f"演示地址 / Demo: {info.url}   日期 / Day: {info.day.isoformat()}   "
        f"数据集 / Dataset: {info.dataset}",
        _table_line(header, widths),
        "  ".join("-" * w for w in widths),
        *(_table_line(row, widths) for row in rows),
        "密码为演示账号的初始密码；已修改的密码不会被重置。/ "
        "Passwords are the demo accounts' initial ones; a changed password is not reset.",
    ]
    return "\n".join(lines)


def _table_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(cells, widths, strict=True)
                     ).rstrip()


def _width(text: str) -> int:
    # Chinese characters take two columns in a terminal; pad by display width, not length.
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)
