"""Who am I, imports, tasks (calls and notices) and the inbox."""

from __future__ import annotations

from typing import Any

from dispatch import calllist, importer, notify, tasks
from dispatch import db as dispatch_db
from dispatch import models as m
from dispatch.errors import NotFoundError
from web.api import schemas as s
from web.api.blueprint import bp
from web.api.common import body, local, query
from web.api.spec import responses, spec
from web.api.tokens import DISPATCH_ROLES, TECHNICIAN_ROLES, actor, api_roles, current
from web.extensions import db


@bp.get("/me")
@api_roles(*DISPATCH_ROLES, *TECHNICIAN_ROLES)
@spec.validate(resp=responses(200, s.Me), tags=["account"])
def me() -> Any:
    """当前用户 / The token's owner and role."""
    user = current()
    return s.Me(id=user.id, username=user.username, role=user.role,
                technician_id=user.technician_id, outlet_id=user.outlet_id)


@bp.post("/import/csv")
@api_roles(*DISPATCH_ROLES)
@spec.validate(json=s.CsvImport, resp=responses(200, s.ImportResult, 422), tags=["import"])
def import_csv() -> Any:
    """导入 CSV / Import customers, technicians and visits from CSV texts, all or nothing;
    every bad row is listed in ``details``."""
    data: s.CsvImport = body(s.CsvImport)
    files = {name: (f"{name}.csv", text.encode("utf-8"))
             for name in ("customers", "technicians", "visits")
             if (text := getattr(data, name)) is not None}
    session = db()
    try:
        report = importer.import_csv(session, **files)
        dispatch_db.commit(session)
    except Exception:
        session.rollback()
        raise
    return _import_result(report)


@bp.post("/import/day")
@api_roles(*DISPATCH_ROLES)
@spec.validate(json=s.DayImport, resp=responses(200, s.ImportResult, 422), tags=["import"])
def import_day() -> Any:
    """导入当日 JSON / Import a day in the JSON form ``dispatch export`` writes, all or
    nothing."""
    data: s.DayImport = body(s.DayImport)
    session = db()
    try:
        report = importer.import_day_json(session, data.data, source=data.source)
        dispatch_db.commit(session)
    except Exception:
        session.rollback()
        raise
    return _import_result(report)


@bp.get("/tasks")
@api_roles(*DISPATCH_ROLES)
@spec.validate(query=s.TaskQuery, resp=responses(200, s.TaskList, 404, 422), tags=["tasks"])
def list_tasks() -> Any:
    """任务列表 / The outlet-day's calls, notices and reviews, by due time."""
    args: s.TaskQuery = query(s.TaskQuery)
    session = db()
    outlet = m.find_outlet(session, args.outlet)
    return s.TaskList(items=[_task(t) for t in tasks.tasks_for_day(session, outlet, args.date)])


@bp.patch("/tasks/<int:task_id>")
@api_roles(*DISPATCH_ROLES)
@spec.validate(json=s.TaskUpdate, resp=responses(200, s.TaskOut, 404, 409, 422),
               tags=["tasks"])
def update_task(task_id: int) -> Any:
    """记录任务结果 / Record what came of a call or notice (409 when the task changed)."""
    data: s.TaskUpdate = body(s.TaskUpdate)
    session = db()
    task = session.get(m.Task, task_id)
    if task is None:
        raise NotFoundError("task", task_id, "任务")
    calllist.record_outcome(session, task, data.outcome, actor=actor(), note=data.note,
                            expected_version=data.expected_version)
    dispatch_db.commit(session)
    return _task(task)


@bp.get("/notifications")
@api_roles(*DISPATCH_ROLES, *TECHNICIAN_ROLES)
@spec.validate(resp=responses(200, s.NotificationList), tags=["notifications"])
def notifications() -> Any:
    """收件箱 / The user's delivered in-app messages, newest first."""
    session = db()
    user = session.get(m.User, current().id)
    assert user is not None  # the token was valid a moment ago
    items = []
    for row in notify.inbox(session, user):
        subject, text = notify.delivered_text(row)
        items.append(s.NotificationOut(id=row.id, template=row.template, subject=subject,
                                       text=text, sent_at=row.sent_at,
                                       created_at=row.created_at))
    return s.NotificationList(items=items)


def _import_result(report: importer.ImportReport) -> s.ImportResult:
    return s.ImportResult(rows=dict(report.rows), geocoded=report.geocoded,
                          summary=report.lines())


def _task(task: m.Task) -> s.TaskOut:
    outlet = task.outlet
    return s.TaskOut(id=task.id, kind=str(task.kind), visit_id=task.visit_id,
                     ticket_id=task.ticket_id, assignee_role=str(task.assignee_role),
                     technician_id=task.technician_id, due_from=local(task.due_from, outlet),
                     due_by=local(task.due_by, outlet), status=str(task.status),
                     outcome=task.outcome, flagged=task.flagged, flag_reason=task.flag_reason,
                     payload=dict(task.payload or {}), version=task.version)
