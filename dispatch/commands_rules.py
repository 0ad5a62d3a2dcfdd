"""``dispatch tasks`` (the day's calls and notices) and ``dispatch escalate`` (one rules pass)."""

from __future__ import annotations

from datetime import datetime

import click

from dispatch import db
from dispatch import models as m
from dispatch.cli import database_url_option
from dispatch.errors import ValidationError
from dispatch.timeutil import utc_to_local

KIND_NAMES: dict[m.TaskKind, tuple[str, str]] = {
    m.TaskKind.CONFIRMATION_CALL: ("预约确认电话", "confirmation call"),
    m.TaskKind.RECONFIRM_CALL: ("出发前再次确认", "re-confirmation call"),
    m.TaskKind.DELAY_NOTICE: ("迟到告知", "delay notice"),
    m.TaskKind.CONSENT_REQUEST: ("变更征求同意", "consent request"),
    m.TaskKind.HANDOVER_NOTICE: ("换人告知", "handover notice"),
    m.TaskKind.FOLLOWUP_CALL: ("回访电话", "follow-up call"),
    m.TaskKind.CHARGE_NOTICE: ("收费说明", "charge notice"),
    m.TaskKind.ESCALATION: ("投诉升级", "escalation"),
    m.TaskKind.SUPERVISOR_REVIEW: ("主管复核", "supervisor review"),
}


@click.command("tasks")
@click.option("--outlet", "outlet_code", required=True, metavar="CODE",
              help="网点编号 / Outlet code.")
@click.option("--date", "day_text", required=True, metavar="YYYY-MM-DD|today",
              help="日期，或 today（网点当地日期）/ Day, or today (outlet's local date).")
@click.option("--derive/--no-derive", default=False, show_default=True,
              help="先从已发布方案生成任务 / First derive tasks from the published plan.")
@click.pass_context
def tasks_command(ctx: click.Context, outlet_code: str, day_text: str, derive: bool) -> None:
    """列出当天的电话和通知任务 / List the day's calls and notices with due times."""
    # Imported here: keeps `dispatch --help` light.
    from dispatch.commands_plan import parse_day
    from dispatch.planning import current_plan
    from dispatch.tasks import derive_tasks, tasks_for_day

    engine = db.make_engine(database_url_option(ctx))
    try:
        with db.session_scope(engine) as session:
            outlet = m.find_outlet(session, outlet_code)
            day = parse_day(day_text, outlet.timezone)
            if derive:
                plan = current_plan(session, outlet.id, day)
                if plan is None:
                    raise ValidationError(
                        f"outlet {outlet.code} has no published plan for {day}",
                        f"网点 {outlet.code} 在 {day} 没有已发布的方案", field="--date")
                derive_tasks(session, plan, now=m.utcnow())
            rows = tasks_for_day(session, outlet, day)
            click.echo(f"网点 {outlet.code} {day}：{len(rows)} 项任务 / "
                       f"outlet {outlet.code} {day}: {len(rows)} tasks")
            for task in rows:
                click.echo(format_task(task, outlet.timezone))
    finally:
        engine.dispose()


@click.command("escalate")
@click.option("--now", "now_text", metavar="ISO-DATETIME",
              help="以此时刻为准（默认当前时间，须带时区）/ Reference instant (default: now; "
                   "with a time zone).")
@click.pass_context
def escalate_command(ctx: click.Context, now_text: str | None) -> None:
    """升级超时工单并标记重复报修客户 / Escalate overdue tickets, flag repeat customers."""
    from dispatch.sla import escalate, flag_repeat_customers

    now = _parse_now(now_text)
    engine = db.make_engine(database_url_option(ctx))
    try:
        with db.session_scope(engine) as session:
            escalated = escalate(session, now)
            flagged = flag_repeat_customers(session, now)
            click.echo(f"升级 {len(escalated)} 张工单，标记 {len(flagged)} 张重复报修工单 / "
                       f"escalated {len(escalated)} tickets, flagged {len(flagged)} "
                       "repeat-customer tickets")
    finally:
        engine.dispose()


def format_task(task: m.Task, timezone: str) -> str:
    """One line for a task: local due window, kind in both languages, visit, status, flag."""
    start = utc_to_local(task.due_from, timezone)
    end = utc_to_local(task.due_by, timezone)
    window = f"{start:%m-%d %H:%M}–{end:%m-%d %H:%M}"
    zh, en = KIND_NAMES[m.TaskKind(task.kind)]
    subject = task.visit.code if task.visit is not None else (
        task.ticket.code if task.ticket is not None else "-")
    who = task.technician.name if task.technician is not None else str(task.assignee_role)
    line = f"{window}  {zh} / {en}  {subject}  {who}  [{task.status}]"
    if task.flagged:
        line += f"  ⚠ {task.flag_reason}"
    return line



def _parse_now(text: str | None) -> datetime:
    if text is None:
        return m.utcnow()
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not an ISO date-time", f"{text!r} 不是 ISO 日期时间",
                              field="--now") from exc
    if value.tzinfo is None:
        raise ValidationError(f"{text!r} has no time zone (e.g. +08:00)",
                              f"{text!r} 缺少时区（如 +08:00）", field="--now")
    return value
