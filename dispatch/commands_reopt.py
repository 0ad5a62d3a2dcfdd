"""``dispatch reoptimize`` (one run, cron-friendly) and ``dispatch scheduler`` (runs it every N
minutes per outlet during business hours, and the running-late watch every minute, in one
dedicated process, never in a web worker)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import click
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispatch import db
from dispatch import models as m
from dispatch.cli import database_url_option
from dispatch.commands_plan import parse_day
from dispatch.errors import NotFoundError, ValidationError
from solver.params import SolveParams

if TYPE_CHECKING:
    from dispatch.reoptimize import RunReport

Factory = sessionmaker[Session]
#: The running-late watch is cheap (no solver): it looks at every outlet-day each minute.
WATCH_EVERY_MINUTES = 1


@click.command("reoptimize")
@click.option("--outlet", "outlet_code", metavar="CODE", help="网点编号 / Outlet code.")
@click.option("--all", "all_outlets", is_flag=True, help="所有网点 / Every outlet.")
@click.option("--date", "day_text", default="today", show_default=True,
              metavar="YYYY-MM-DD|today",
              help="日期，或 today（网点当地日期）/ Day, or today (outlet's local date).")
@click.option("--time-limit", type=float, default=7.0, show_default=True,
              help="每个网点的求解时间上限（秒）/ Solve time limit per outlet, in seconds.")
@click.option("--json", "as_json", is_flag=True,
              help="每行输出一个 JSON 报告 / Print one JSON report per line.")
@click.option("--timeout", type=click.FloatRange(min=1), default=900.0, show_default=True,
              help="--all 分发给工作进程时等待全部结果的时间（秒）/ With --all on workers: "
                   "seconds to wait for every report.")
@click.pass_context
def reoptimize_command(ctx: click.Context, outlet_code: str | None, all_outlets: bool,
                       day_text: str, time_limit: float, as_json: bool, timeout: float) -> None:
    """重新优化当天剩余的派工 / Re-optimize the rest of an outlet's day."""
    # Imported here: the job pulls in the solver stack, which `dispatch --help` need not load.
    from dispatch.reoptimize import reoptimize_all, run_reoptimization

    if bool(outlet_code) == all_outlets:
        raise ValidationError("Give either --outlet CODE or --all.",
                              "请指定 --outlet 网点编号 或 --all 二者之一。", field="--outlet")
    params = _params(time_limit)
    now = m.utcnow()
    engine = db.make_engine(database_url_option(ctx))
    factory = db.session_factory(engine)
    try:
        if outlet_code:
            outlet_id, timezone = _outlet(factory, outlet_code)
            reports = [run_reoptimization(factory, outlet_id, parse_day(day_text, timezone),
                                          now=now, params=params, actor="cli")]
        else:
            from dispatch.fanout import runner_for  # Celery: only when fanning out

            day = parse_day(day_text, _first_timezone(factory))
            # A configured broker (DISPATCH_BROKER_URL) fans out to workers; else in-process.
            runner = runner_for(database_url_option(ctx), timeout=timeout)
            reports = reoptimize_all(factory, day, now=now, params=params, runner=runner)
        codes = _codes(factory)
        for report in reports:
            click.echo(json.dumps(report.as_dict(), ensure_ascii=False) if as_json
                       else format_report(report, codes.get(report.outlet_id, "?")))
    finally:
        engine.dispose()


@click.command("scheduler")
@click.option("--every", "minutes", type=click.IntRange(1, 24 * 60), default=15,
              show_default=True, help="间隔（分钟）/ Interval in minutes.")
@click.option("--time-limit", type=float, default=7.0, show_default=True,
              help="每个网点的求解时间上限（秒）/ Solve time limit per outlet, in seconds.")
@click.pass_context
def scheduler_command(ctx: click.Context, minutes: int, time_limit: float) -> None:
    """按营业时间定时重新优化各网点 / Re-optimize every outlet on a timer in business hours."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    params = _params(time_limit)
    engine = db.make_engine(database_url_option(ctx))
    factory = db.session_factory(engine)
    scheduler = BlockingScheduler(timezone="UTC")
    # One instance at a time within this process; the run lock guards against other processes.
    scheduler.add_job(make_tick(factory, params), "interval", minutes=minutes,
                      max_instances=1, coalesce=True, next_run_time=m.utcnow())
    scheduler.add_job(make_watch_tick(factory), "interval", minutes=WATCH_EVERY_MINUTES,
                      max_instances=1, coalesce=True, next_run_time=m.utcnow())
    click.echo(f"调度器已启动：每 {minutes} 分钟优化，每分钟检查迟到 / Scheduler started: "
               f"re-optimization every {minutes} min, running-late watch every minute")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        click.echo("调度器已停止 / Scheduler stopped")
    finally:
        engine.dispose()


def make_tick(factory: Factory, params: SolveParams,
              clock: Callable[[], datetime] = m.utcnow) -> Callable[[], None]:
    """The scheduler's job: one tick over the outlets in business hours, reports printed."""
    from dispatch.reoptimize import scheduler_tick

    def tick() -> None:
        codes = _codes(factory)
        for report in scheduler_tick(factory, now=clock(), params=params):
            click.echo(format_report(report, codes.get(report.outlet_id, "?")))

    return tick


def make_watch_tick(factory: Factory,
                    clock: Callable[[], datetime] = m.utcnow) -> Callable[[], None]:
    """The scheduler's running-late watch: one pass over the outlets in business hours; the
    notices it adds or changes are printed."""
    from dispatch.latewatch import watch_open_outlets

    def tick() -> None:
        changed = watch_open_outlets(factory, now=clock())
        if changed:
            click.echo(f"迟到检查：新增或更新 {changed} 条迟到通知 / Running-late watch: "
                       f"{changed} delay notices added or changed")

    return tick


def format_report(report: RunReport, outlet_code: str) -> str:
    """Two lines (Chinese, English) for a run report."""
    r = report
    figures_zh = (f"方案 #{r.plan_number}，变动 {len(r.moved_visits)} 个工单，"
                  f"通知 {r.notifications_queued}，任务 {r.tasks_created}，用时 {r.seconds:.1f} 秒")
    figures_en = (f"plan #{r.plan_number}, {len(r.moved_visits)} visits moved, "
                  f"{r.notifications_queued} notifications, {r.tasks_created} tasks, "
                  f"{r.seconds:.1f} s")
    return (f"网点 {outlet_code} {r.day}：{r.text('zh')}（{figures_zh}）\n"
            f"Outlet {outlet_code} {r.day}: {r.text('en')} ({figures_en})")


def _params(time_limit: float) -> SolveParams:
    try:
        return SolveParams(time_limit=time_limit)
    except ValueError as exc:
        raise ValidationError(str(exc), f"求解参数有误：{exc}", field="--time-limit") from exc


def _outlet(factory: Factory, code: str) -> tuple[int, str]:
    with db.session_scope(factory) as session:
        outlet = session.scalar(select(m.Outlet).where(m.Outlet.code == code))
        if outlet is None:
            raise NotFoundError("outlet", code, "网点")
        return outlet.id, outlet.timezone


def _first_timezone(factory: Factory) -> str:
    with db.session_scope(factory) as session:
        zone = session.scalar(select(m.Outlet.timezone).order_by(m.Outlet.code).limit(1))
        return zone or "Asia/Shanghai"


def _codes(factory: Factory) -> dict[int, str]:
    with db.session_scope(factory) as session:
        return {int(i): str(c) for i, c in session.execute(select(m.Outlet.id, m.Outlet.code))}
