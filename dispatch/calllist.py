"""The dispatcher's call list: the calls and notices due now, and what came of each call.

A task is due now when it is open, ``due_from <= now <= due_by`` and the customer may be called
now (calling hours, quiet periods, holidays, the customer's own hours). Flagged tasks (which
cannot be done inside calling hours in time) come first so the dispatcher sees them. Functions
flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dispatch import calling, confirmation, db
from dispatch import models as m
from dispatch.errors import ConflictError, ValidationError

TK = m.TaskKind
CS = m.ConfirmationStatus

#: Tasks that are a call or a notice to the customer about a visit, with the script to read.
CALL_SCRIPTS: dict[m.TaskKind, str] = {
    TK.CONFIRMATION_CALL: "confirmation",
    TK.RECONFIRM_CALL: "reconfirmation",
    TK.DELAY_NOTICE: "delay_notice",
    TK.CONSENT_REQUEST: "change_request",
    TK.HANDOVER_NOTICE: "handover_notice",
    TK.FOLLOWUP_CALL: "followup",
    TK.CHARGE_NOTICE: "confirmation",
}
#: What the dispatcher can record after a call.
OUTCOMES = ("confirmed", "wants_change", "no_answer", "done")


@dataclass(frozen=True)
class DueCall:
    """A call to make now: the task, its visit and customer."""

    task: m.Task
    visit: m.Visit
    customer: m.Customer


def due_calls(session: Session, outlet: m.Outlet, now: datetime) -> list[DueCall]:
    """The outlet's dispatcher calls and notices due at ``now`` and allowed now; flagged first,
    then the most urgent."""
    tasks = session.scalars(
        select(m.Task)
        .where(m.Task.outlet_id == outlet.id, m.Task.status == m.TaskStatus.OPEN.value,
               m.Task.assignee_role == m.AssigneeRole.DISPATCHER.value,
               m.Task.kind.in_([kind.value for kind in CALL_SCRIPTS]),
               m.Task.visit_id.is_not(None), m.Task.due_from <= now, m.Task.due_by >= now)
        .options(selectinload(m.Task.visit).selectinload(m.Visit.ticket)
                 .selectinload(m.ServiceTicket.customer))
        .order_by(m.Task.due_by, m.Task.id))
    due = []
    for task in tasks:
        visit = task.visit
        assert visit is not None  # filtered above
        customer = visit.ticket.customer
        if calling.is_callable_at(outlet, customer, now):
            due.append(DueCall(task, visit, customer))
    return sorted(due, key=lambda call: not call.task.flagged)


def script_extra(task: m.Task) -> dict[str, Any]:
    """What the task's payload tells the script (new arrival, alternatives, who comes...)."""
    payload = task.payload or {}
    keys = ("new_arrival", "arrival", "alternatives", "technician", "previous_technician",
            "cause", "reason", "window")
    return {key: payload[key] for key in keys if payload.get(key)}


def record_outcome(session: Session, task: m.Task, outcome: str, *, actor: str,
                   now: datetime | None = None, note: str = "",
                   expected_version: int | None = None,
                   max_attempts: int = confirmation.DEFAULT_MAX_ATTEMPTS) -> m.Task:
    """Record what came of the call and update the task and the visit's confirmation.

    - "confirmed": the customer was reached and agrees (a re-confirmation call re-confirms the
      visit; a confirmation call with a proposed time confirms it); the task is done.
    - "wants_change": reached, the customer wants another time; a confirmed visit then needs
      consent for a new time (the dispatcher books it); the task is done.
    - "no_answer": one more failed attempt; after ``max_attempts`` the visit is unreachable
      and the task failed, before that the task stays open.
    - "done": the notice was given (or the task is otherwise finished).
    """
    now = now or m.utcnow()
    if outcome not in OUTCOMES:
        raise ValidationError(f"{outcome!r} is not one of: {', '.join(OUTCOMES)}",
                              f"{outcome!r} 不是有效的结果（{'、'.join(OUTCOMES)}）",
                              field="outcome", row=task.id)
    if expected_version is not None and task.version != expected_version:
        raise ConflictError(detail=f"task {task.id} is at version {task.version}, "
                                   f"not {expected_version}")
    if task.status != m.TaskStatus.OPEN:
        raise ValidationError(f"task {task.id} is already {task.status.value}",
                              f"任务 {task.id} 已处理（{task.status.value}）", field="status",
                              row=task.id)
    visit = task.visit
    if visit is not None:
        _update_visit(session, task, visit, outcome, actor, now, note, max_attempts)
    _close_task(task, outcome, actor, now, visit)
    db.flush(session)
    return task


def _update_visit(session: Session, task: m.Task, visit: m.Visit, outcome: str, actor: str,
                  now: datetime, note: str, max_attempts: int) -> None:
    status = visit.confirmation_status
    if outcome == "no_answer":
        confirmation.record_failed_attempt(session, visit, actor,
                                                   max_attempts=max_attempts, note=note, at=now)
    elif outcome == "confirmed" and task.kind == TK.RECONFIRM_CALL and status == CS.CONFIRMED:
        confirmation.reconfirm(session, visit, actor, note=note, at=now)
    elif outcome == "confirmed" and task.kind in (TK.CONFIRMATION_CALL, TK.CHARGE_NOTICE) \
            and status != CS.CONFIRMED and visit.agreed_start and visit.agreed_end:
        if task.kind == TK.CHARGE_NOTICE and visit.ticket.charge_explained_at is None:
            visit.ticket.charge_explained_at = now
        confirmation.confirm(session, visit, (visit.agreed_start, visit.agreed_end),
                                     actor, visit.committed_technician, at=now, note=note)
    elif outcome == "wants_change" and status in confirmation.AGREED:
        confirmation.transition(session, visit, CS.NEEDS_CONSENT, actor,
                                        outcome="customer_wants_change", note=note, at=now)
    elif outcome in ("confirmed", "wants_change"):
        # The call reached the customer without changing the appointment: keep it on record.
        session.add(m.ConfirmationEvent(
            visit=visit, from_status=status, to_status=status, actor=actor, at=now,
            channel=m.ContactChannel.PHONE, outcome=f"{task.kind.value}:{outcome}", note=note))
    if task.kind == TK.CHARGE_NOTICE and outcome == "confirmed" \
            and visit.ticket.charge_explained_at is None:
        visit.ticket.charge_explained_at = now


def _close_task(task: m.Task, outcome: str, actor: str, now: datetime,
                visit: m.Visit | None) -> None:
    if outcome == "no_answer":
        attempts = visit.reconfirm_attempts if visit is not None else 0
        task.outcome = f"no_answer ({attempts})"
        if visit is None or visit.confirmation_status == CS.UNREACHABLE:
            task.status = m.TaskStatus.FAILED
            task.completed_at, task.completed_by = now, actor
        return
    task.outcome = outcome
    task.status = m.TaskStatus.DONE
    task.completed_at, task.completed_by = now, actor
