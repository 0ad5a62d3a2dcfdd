"""The confirmation lifecycle of an appointment, and what it means for the planner.

unconfirmed -> proposed -> confirmed -> reconfirmed (on the day); a customer may decline; after
``max_attempts`` calls nobody answered the visit is unreachable; a plan that would move a
confirmed appointment puts it in needs_consent until the customer agrees to a new time.
Every step is a ``ConfirmationEvent`` (who, when, how, outcome). A confirmed appointment is a
hard commitment: the solver gets only its agreed window, and the committed technician unless the
customer agreed to a handover. Functions flush but never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from dispatch import db
from dispatch import models as m
from dispatch.errors import ConflictError, ValidationError
from dispatch.timeutil import local_day, require_aware
from dispatch.warranty import assess

S = m.ConfirmationStatus

#: Calls without an answer after which a visit is unreachable (DOMAIN: call, call again...).
DEFAULT_MAX_ATTEMPTS = 3

#: Allowed moves; anything else is refused with a clear error.
TRANSITIONS: dict[S, frozenset[S]] = {
    S.UNCONFIRMED: frozenset({S.PROPOSED, S.CONFIRMED, S.DECLINED, S.UNREACHABLE}),
    S.PROPOSED: frozenset({S.CONFIRMED, S.DECLINED, S.UNREACHABLE}),
    S.CONFIRMED: frozenset({S.RECONFIRMED, S.NEEDS_CONSENT, S.DECLINED, S.UNREACHABLE}),
    S.RECONFIRMED: frozenset({S.NEEDS_CONSENT, S.DECLINED}),
    S.NEEDS_CONSENT: frozenset({S.CONFIRMED, S.PROPOSED, S.DECLINED, S.UNREACHABLE}),
    S.DECLINED: frozenset({S.PROPOSED, S.CONFIRMED}),
    S.UNREACHABLE: frozenset({S.PROPOSED, S.CONFIRMED, S.DECLINED}),
}
#: Statuses in which the agreed time is a hard commitment.
AGREED = frozenset({S.CONFIRMED, S.RECONFIRMED})

STATUS_NAMES: dict[S, str] = {
    S.UNCONFIRMED: "未确认", S.PROPOSED: "已提议", S.CONFIRMED: "已确认",
    S.RECONFIRMED: "已再次确认", S.DECLINED: "已拒绝", S.UNREACHABLE: "联系不上",
    S.NEEDS_CONSENT: "待客户同意变更",
}

Window = tuple[datetime, datetime]


def transition(session: Session, visit: m.Visit, to_status: S | str, actor: str, *,
               channel: m.ContactChannel | str = m.ContactChannel.PHONE,
               outcome: str | None = None, note: str = "", at: datetime | None = None,
               expected_version: int | None = None) -> m.ConfirmationEvent:
    """Move the visit to ``to_status`` and record the event; refuse moves the lifecycle forbids.

    ``expected_version`` (when given) must match the visit's version, or ConflictError.
    Confirming goes through ``confirm`` (it needs the agreed window).
    """
    target = _status(to_status)
    _check_version(visit, expected_version)
    _check_allowed(visit, target)
    if target == S.CONFIRMED:
        raise ValidationError(
            "use confirm() to confirm a visit: it needs the agreed window",
            "确认预约须使用 confirm()，并给出约定时段", field="to_status", row=visit.code)
    return _record(session, visit, target, actor, channel, outcome, note, at)


def confirm(session: Session, visit: m.Visit, window: Window, actor: str,
            technician: m.Technician | None = None, *,
            channel: m.ContactChannel | str = m.ContactChannel.PHONE, outcome: str | None = None,
            note: str = "", at: datetime | None = None,
            expected_version: int | None = None) -> m.ConfirmationEvent:
    """Record the customer's agreement to ``window`` (and to ``technician`` when given).

    The window must lie on the visit's local day. A chargeable visit cannot be confirmed until
    the charge has been explained (``ServiceTicket.charge_explained_at``).
    """
    _check_version(visit, expected_version)
    _check_allowed(visit, S.CONFIRMED)
    start, end = _checked_window(visit, window)
    _check_charge_explained(visit)
    visit.agreed_start, visit.agreed_end = start, end
    visit.committed_technician_id = technician.id if technician is not None else None
    visit.handover_agreed = False
    visit.reconfirm_attempts = 0
    return _record(session, visit, S.CONFIRMED, actor, channel, outcome or "agreed", note, at)


def reconfirm(session: Session, visit: m.Visit, actor: str, *,
              channel: m.ContactChannel | str = m.ContactChannel.PHONE, note: str = "",
              at: datetime | None = None) -> m.ConfirmationEvent:
    """Record that the customer re-confirmed the agreed time on the day."""
    _check_allowed(visit, S.RECONFIRMED)
    visit.reconfirm_attempts = 0
    return _record(session, visit, S.RECONFIRMED, actor, channel, "reconfirmed", note, at)


def record_failed_attempt(session: Session, visit: m.Visit, actor: str, *,
                          max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                          channel: m.ContactChannel | str = m.ContactChannel.PHONE,
                          outcome: str = "no_answer", note: str = "",
                          at: datetime | None = None) -> m.ConfirmationEvent:
    """Record a call nobody answered; the ``max_attempts``-th makes the visit unreachable."""
    if max_attempts < 1:
        raise ValidationError("max_attempts must be at least 1", "最多尝试次数至少为 1",
                              field="max_attempts")
    visit.reconfirm_attempts = (visit.reconfirm_attempts or 0) + 1
    if visit.reconfirm_attempts >= max_attempts:
        _check_allowed(visit, S.UNREACHABLE)
        return _record(session, visit, S.UNREACHABLE, actor, channel, outcome, note, at)
    # Not yet unreachable: the attempt is recorded without changing the status.
    return _record(session, visit, _status(visit.confirmation_status), actor, channel,
                   outcome, note, at)


def agree_handover(session: Session, visit: m.Visit, actor: str,
                   technician: m.Technician | None = None, *,
                   channel: m.ContactChannel | str = m.ContactChannel.PHONE, note: str = "",
                   at: datetime | None = None) -> m.ConfirmationEvent:
    """Record the customer's consent that another technician (``technician`` if known) comes."""
    if technician is not None:
        visit.committed_technician_id = technician.id
    else:
        visit.handover_agreed = True
    return _record(session, visit, _status(visit.confirmation_status), actor, channel,
                   "handover_agreed", note, at)


# ---------------------------------------------------------------------------------------------
# What the solver gets
# ---------------------------------------------------------------------------------------------


def planning_windows(visit: m.Visit) -> list[Window]:
    """The windows the visit may start in: the agreed one once confirmed, else all accepted."""
    if is_agreed(visit):
        assert visit.agreed_start is not None and visit.agreed_end is not None
        return [(visit.agreed_start, visit.agreed_end)]
    return [(w.starts_at, w.ends_at) for w in visit.windows]


def keeps_technician(visit: m.Visit) -> int | None:
    """The technician id the visit must keep (confirmed, committed, no handover), or None."""
    if is_agreed(visit) and not visit.handover_agreed:
        return visit.committed_technician_id
    return None


def is_agreed(visit: m.Visit) -> bool:
    """Whether the visit has a confirmed (or re-confirmed) agreed window."""
    return (visit.confirmation_status in AGREED and visit.agreed_start is not None
            and visit.agreed_end is not None)


# ---------------------------------------------------------------------------------------------
# Checks and recording
# ---------------------------------------------------------------------------------------------


def _status(value: S | str) -> S:
    try:
        return S(value)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in S)
        raise ValidationError(f"{value!r} is not one of: {allowed}",
                              f"{value!r} 不是有效的确认状态（{allowed}）",
                              field="to_status") from exc


def _check_version(visit: m.Visit, expected: int | None) -> None:
    if expected is not None and visit.version != expected:
        raise ConflictError(detail=f"visit {visit.code} is at version {visit.version}, "
                                   f"not {expected}")


def _check_allowed(visit: m.Visit, target: S) -> None:
    current = _status(visit.confirmation_status)
    if target in TRANSITIONS[current]:
        return
    raise ValidationError(
        f"visit {visit.code} cannot go from {current.value} to {target.value}",
        f"上门服务 {visit.code} 不能从“{STATUS_NAMES[current]}”变为“{STATUS_NAMES[target]}”",
        field="confirmation_status", row=visit.code)


def _checked_window(visit: m.Visit, window: Window) -> Window:
    start, end = window
    require_aware(start, "window.start")
    require_aware(end, "window.end")
    if end <= start:
        raise ValidationError("the agreed window must end after it starts",
                              "约定时段的结束时间须晚于开始时间", field="window", row=visit.code)
    tz = visit.outlet.timezone
    if local_day(start, tz) != visit.day:
        raise ValidationError(
            f"the agreed window starts on {local_day(start, tz)}, not on the visit's day "
            f"{visit.day}", f"约定时段开始于 {local_day(start, tz)}，不在上门日期 {visit.day}",
            field="window", row=visit.code)
    return start, end


def _check_charge_explained(visit: m.Visit) -> None:
    ticket = visit.ticket
    outcome = assess(ticket.product, ticket, visit.day)
    if outcome.chargeable and ticket.charge_explained_at is None:
        raise ValidationError(
            f"this visit is chargeable ({outcome.reason_en}) and the charge has not been "
            "explained to the customer yet; explain it and record when, then confirm",
            f"本次上门需收费（{outcome.reason_zh}），尚未向客户说明费用；请先说明并记录时间，再确认预约",
            field="ServiceTicket.charge_explained_at", row=visit.code)


def _record(session: Session, visit: m.Visit, target: S, actor: str,
            channel: m.ContactChannel | str, outcome: str | None, note: str,
            at: datetime | None) -> m.ConfirmationEvent:
    event = m.ConfirmationEvent(
        visit=visit, from_status=visit.confirmation_status, to_status=target,
        actor=actor, at=at or m.utcnow(), channel=channel, outcome=outcome, note=note)
    visit.confirmation_status = target
    session.add_all([visit, event])
    # Recording a step is an edit of the visit: its version is bumped even when the status
    # stays (a failed attempt), so a dispatcher working from an older copy gets a conflict.
    flag_modified(visit, "confirmation_status")
    db.flush(session)
    return event
