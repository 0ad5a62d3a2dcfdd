"""``dispatch plan``: plan (and optionally publish) outlet-days from the command line."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import click
from sqlalchemy import select

from dispatch import db
from dispatch.cli import database_url_option
from dispatch.errors import NotFoundError, ValidationError
from dispatch.models import Outlet
from dispatch.timeutil import zone
from solver.params import SolveParams


@click.command("plan")
@click.option("--outlet", "outlet_code", metavar="CODE", help="网点编号 / Outlet code.")
@click.option("--all", "all_outlets", is_flag=True, help="所有网点 / Every outlet.")
@click.option("--date", "day_text", required=True, metavar="YYYY-MM-DD|today",
              help="规划日期，或 today（网点当地日期）/ Day to plan, or today (outlet's local date).")
@click.option("--time-limit", type=float, default=10.0, show_default=True,
              help="每个网点的求解时间上限（秒）/ Solve time limit per outlet, in seconds.")
@click.option("--workers", type=int, default=None,
              help="并行进程数（默认全部核心）/ Parallel processes (default: all cores).")
@click.option("--publish", is_flag=True, help="规划后立即发布 / Publish each plan once made.")
@click.pass_context
def plan_command(ctx: click.Context, outlet_code: str | None, all_outlets: bool, day_text: str,
                 time_limit: float, workers: int | None, publish: bool) -> None:
    """为网点规划一天的派工 / Plan an outlet's day of visits."""
    # Imported here: planning pulls in the solver stack, which `dispatch --help` need not load.
    from dispatch.planning import plan_day, plan_summary, publish_plan

    if bool(outlet_code) == all_outlets:
        raise ValidationError("Give either --outlet CODE or --all.",
                              "请指定 --outlet 网点编号 或 --all 二者之一。", field="--outlet")
    try:
        params = SolveParams(time_limit=time_limit,
                             workers=workers if workers is not None else SolveParams.all_cores())
    except ValueError as exc:
        raise ValidationError(str(exc), f"求解参数有误：{exc}", field="--time-limit") from exc
    engine = db.make_engine(database_url_option(ctx))
    try:
        for code in _outlet_codes(engine, outlet_code):
            with db.session_scope(engine) as session:
                outlet = session.scalar(select(Outlet).where(Outlet.code == code))
                if outlet is None:  # removed since it was listed
                    raise NotFoundError("outlet", code, "网点")
                day = parse_day(day_text, outlet.timezone)
                plan = plan_day(session, outlet, day, params=params, created_by="cli")
                if publish:
                    publish_plan(session, plan, plan.version, actor="cli")
                click.echo(format_summary(plan_summary(plan)))
    finally:
        engine.dispose()


def _outlet_codes(engine: Any, outlet_code: str | None) -> list[str]:
    with db.session_scope(engine) as session:
        if outlet_code is None:
            return list(session.scalars(select(Outlet.code).order_by(Outlet.code)))
        if session.scalar(select(Outlet.id).where(Outlet.code == outlet_code)) is None:
            raise NotFoundError("outlet", outlet_code, "网点")
        return [outlet_code]


def parse_day(text: str, timezone: str) -> date:
    """The day named by ``text``: "today" (in ``timezone``) or an ISO date."""
    if text.strip().lower() == "today":
        return datetime.now(zone(timezone)).date()
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not a date like 2025-03-10 or 'today'",
                              f"{text!r} 不是有效日期（如 2025-03-10 或 today）",
                              field="--date") from exc


def format_summary(summary: dict[str, Any]) -> str:
    """One bilingual line for a plan summary."""
    published = summary["status"] == "published"
    state_zh, state_en = ("已发布", "published") if published else ("草稿", "draft")
    s = summary
    return (
        f"网点 {s['outlet']} {s['day']} 方案 #{s['number']}（{state_zh}）："
        f"已安排 {s['visits_planned']}，未安排 {s['visits_unassigned']}，"
        f"行驶 {s['travel_minutes']} 分钟 / {s['distance_km']} 公里，"
        f"加班 {s['overtime_minutes']} 分钟，SLA 风险 {s['sla_at_risk']}\n"
        f"Outlet {s['outlet']} {s['day']} plan #{s['number']} ({state_en}): "
        f"{s['visits_planned']} planned, {s['visits_unassigned']} unassigned, "
        f"travel {s['travel_minutes']} min / {s['distance_km']} km, "
        f"overtime {s['overtime_minutes']} min, SLA at risk {s['sla_at_risk']}"
    )
