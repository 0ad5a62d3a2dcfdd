"""Changes to a visit's own details (duration, priority) by a dispatcher or an API client.

Every change names the version it was made against, so a concurrent change is a conflict and
never a silent overwrite. Functions flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from dispatch import db
from dispatch import models as m
from dispatch.errors import ConflictError, ValidationError

#: The bounds a visit's duration must keep (minutes); the same as booking's.
MIN_DURATION = 10
MAX_DURATION = 600
#: Visit priorities: 1 (emergency) .. 4 (flexible).
MIN_PRIORITY = 1
MAX_PRIORITY = 4
#: Statuses in which a visit's details may still change.
EDITABLE = frozenset({m.VisitStatus.PLANNED})


def update_visit(session: Session, visit: m.Visit, *, expected_version: int, actor: str,
                 duration_minutes: int | None = None, priority: int | None = None) -> m.Visit:
    """Change the visit's duration and/or priority; fields given as None stay as they are.

    Raises ConflictError when the visit is not at ``expected_version`` and ValidationError for a
    value out of range or a visit already under way or finished. Records an audit event.
    """
    if visit.version != expected_version:
        raise ConflictError(detail=f"visit {visit.code} is at version {visit.version}, "
                                   f"not {expected_version}")
    if visit.status not in EDITABLE:
        raise ValidationError(
            f"visit {visit.code} is {visit.status.value}; its details can no longer change",
            f"工单 {visit.code} 当前状态为 {visit.status.value}，不能再修改", field="status",
            row=visit.code)
    changes = _checked_changes(visit, duration_minutes, priority)
    if not changes:
        return visit
    before = {name: getattr(visit, name) for name in changes} | {"version": visit.version}
    for name, value in changes.items():
        setattr(visit, name, value)
    if "priority" in changes:
        visit.ticket.priority = changes["priority"]
    db.flush(session)
    session.add(m.AuditEvent(actor=actor, action="visit.update", entity_type="visit",
                             entity_id=str(visit.id), before=before,
                             after=dict(changes) | {"version": visit.version}))
    db.flush(session)
    return visit


def _checked_changes(visit: m.Visit, duration_minutes: int | None,
                     priority: int | None) -> dict[str, int]:
    changes: dict[str, int] = {}
    if duration_minutes is not None:
        if not MIN_DURATION <= duration_minutes <= MAX_DURATION:
            raise ValidationError(
                f"the duration must be {MIN_DURATION} to {MAX_DURATION} minutes",
                f"时长应为 {MIN_DURATION} 至 {MAX_DURATION} 分钟", field="duration_minutes",
                row=visit.code)
        if duration_minutes != visit.duration_minutes:
            changes["duration_minutes"] = duration_minutes
    if priority is not None:
        if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise ValidationError(
                f"the priority must be {MIN_PRIORITY} to {MAX_PRIORITY}",
                f"优先级应为 {MIN_PRIORITY} 至 {MAX_PRIORITY}", field="priority", row=visit.code)
        if priority != visit.priority:
            changes["priority"] = priority
    return changes
