"""The technician's side of a visit: whose visit it is, status changes with actual times, and the
service record that closes it.

A visit moves planned -> en route -> on site -> done, or ends as "could not finish" (or "customer
not home") with a reason. Only those steps are allowed; each one records the actual times and an
audit entry, and "done" needs a service record the customer has verified. Functions flush but
never commit: the caller owns the transaction.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch import db
from dispatch import models as m
from dispatch.dayview import VisitRow, shown_plan, technician_day
from dispatch.errors import ConflictError, NotFoundError, ValidationError
from dispatch.latewatch import watch_technician
from dispatch.tasks import delay_notices, told_arrival
from dispatch.timeutil import utc_to_local

S = m.VisitStatus
logger = logging.getLogger(__name__)

#: The steps a technician may take from each status.
TRANSITIONS: dict[m.VisitStatus, frozenset[m.VisitStatus]] = {
    S.PLANNED: frozenset({S.EN_ROUTE, S.ON_SITE}),
    S.EN_ROUTE: frozenset({S.ON_SITE, S.NOT_FINISHED, S.NO_SHOW}),
    S.ON_SITE: frozenset({S.DONE, S.NOT_FINISHED, S.NO_SHOW}),
}

#: Why a visit could not be finished: code -> (Chinese, English). "customer_not_home" ends the
#: visit as a no-show; every other reason as "could not finish".
NOT_FINISHED_REASONS: dict[str, tuple[str, str]] = {
    "customer_not_home": ("客户不在家", "Customer not at home"),
    "parts_needed": ("需要配件，需再次上门", "Parts needed; another visit is required"),
    "more_time_needed": ("工作量超出预计，需再次上门", "More work than expected; another visit is required"),
    "second_technician": ("需要其他技师协助", "Another technician's help is needed"),
    "customer_declined": ("客户拒绝维修或收费", "Customer declined the work or the charge"),
    "unsafe": ("现场不具备安全作业条件", "The site is not safe to work on"),
    "other": ("其他原因", "Other reason"),
}

#: The longest text kept in one record field (a phone keyboard should not write essays).
MAX_TEXT = 2000
MAX_PARTS = 30


@dataclass(frozen=True)
class StatusText:
    """A status name in both languages, for messages."""

    zh: str
    en: str


STATUS_NAMES: dict[m.VisitStatus, StatusText] = {
    S.PLANNED: StatusText("待出发", "planned"),
    S.EN_ROUTE: StatusText("在途中", "on the way"),
    S.ON_SITE: StatusText("已到达", "on site"),
    S.DONE: StatusText("已完成", "done"),
    S.NOT_FINISHED: StatusText("未能完成", "could not finish"),
    S.NO_SHOW: StatusText("客户不在家", "customer not home"),
    S.CANCELLED: StatusText("已取消", "cancelled"),
}


@dataclass(frozen=True)
class RecordInput:
    """What the technician typed into the service record form."""

    fault_found: str = ""
    cause: str = ""
    parts_used: tuple[dict[str, Any], ...] = ()
    work_done: str = ""
    customer_verified: bool = False
    verified_name: str = ""
    rating: int | None = None
    feedback: str = ""


@dataclass(frozen=True)
class DayCard:
    """One visit on the technician's phone: the day-list row plus ETA, navigation and charge."""

    row: VisitRow
    eta: datetime | None
    version: int
    geo_uri: str
    chargeable: bool | None
    warranty_note_zh: str
    warranty_note_en: str
    has_record: bool = False
    delay_arrival: datetime | None = None  # local: the new arrival a delay notice gives


# ---------------------------------------------------------------------------------------------
# Whose visit
# ---------------------------------------------------------------------------------------------


def technician_of(session: Session, visit: m.Visit) -> int | None:
    """The technician the visit is planned for (current plan of its outlet-day, else the pin)."""
    plan = shown_plan(session, visit.outlet_id, visit.day)
    if plan is not None:
        tech_id = session.scalar(select(m.PlanStop.technician_id).where(
            m.PlanStop.plan_id == plan.id, m.PlanStop.visit_id == visit.id))
        if tech_id is not None:
            return int(tech_id)
    return visit.pinned_technician_id


def assigned_visit(session: Session, visit_id: int, technician_id: int) -> m.Visit:
    """The visit ``visit_id`` if it is the technician's; NotFoundError otherwise.

    Another technician's visit is reported exactly like a missing one, so ids reveal nothing.
    """
    visit = session.get(m.Visit, visit_id)
    if visit is None or technician_of(session, visit) != technician_id:
        raise NotFoundError("visit", visit_id, "工单")
    return visit


# ---------------------------------------------------------------------------------------------
# Status changes
# ---------------------------------------------------------------------------------------------


def allowed_next(visit: m.Visit) -> frozenset[m.VisitStatus]:
    """The statuses the technician may move the visit to now."""
    return TRANSITIONS.get(visit.status, frozenset())


def change_status(session: Session, visit: m.Visit, to_status: m.VisitStatus | str, *,
                  technician_id: int, actor: str, now: datetime | None = None,
                  reason: str | None = None, note: str = "",
                  expected_version: int | None = None) -> m.Visit:
    """Move the technician's visit to ``to_status``, recording the actual times.

    En route changes nothing but the status; arriving sets the actual arrival and start; done
    (which needs a verified service record) and the two unfinished endings set the actual end.
    "Could not finish" needs a reason from NOT_FINISHED_REASONS. Raises ValidationError for a
    step that is not allowed and ConflictError when ``expected_version`` is stale. Then the
    running-late watch looks at the technician's remaining visits (``dispatch.latewatch``).
    """
    target = _status(to_status)
    now = now or m.utcnow()
    if expected_version is not None and visit.version != expected_version:
        raise ConflictError(detail=f"visit {visit.code} is at version {visit.version}, "
                                   f"not {expected_version}")
    if technician_of(session, visit) != technician_id:
        raise NotFoundError("visit", visit.id, "工单")
    if target == S.NOT_FINISHED and reason == "customer_not_home":
        target = S.NO_SHOW
    _check_step(visit, target)
    before = {"status": str(visit.status), "version": visit.version}
    _apply(session, visit, target, technician_id, now, reason, note)
    db.flush(session)
    session.add(m.AuditEvent(
        actor=actor, action="visit.status", entity_type="visit", entity_id=str(visit.id),
        before=before, after={"status": str(visit.status), "version": visit.version,
                              "reason": reason, "at": now.isoformat()}))
    db.flush(session)
    _watch_remaining(session, visit, technician_id, now)
    return visit


def _watch_remaining(session: Session, visit: m.Visit, technician_id: int,
                     now: datetime) -> None:
    """Delay notices for the technician's visits after this report (when a delay shows first).
    A failure here is logged and undone; it never refuses the technician's report."""
    try:
        with session.begin_nested():
            watch_technician(session, technician_id, visit.day, now=now)
    except Exception:
        logger.exception("running-late watch after visit %s failed", visit.code)


def _status(value: m.VisitStatus | str) -> m.VisitStatus:
    try:
        return m.VisitStatus(value)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in m.VisitStatus)
        raise ValidationError(f"{value!r} is not a visit status ({allowed})",
                              f"{value!r} 不是有效的工单状态（{allowed}）", field="status") from exc


def _check_step(visit: m.Visit, target: m.VisitStatus) -> None:
    if target in allowed_next(visit):
        return
    now_name, target_name = STATUS_NAMES[visit.status], STATUS_NAMES[target]
    raise ValidationError(
        f"visit {visit.code} is {now_name.en}; it cannot be marked {target_name.en}",
        f"工单 {visit.code} 当前为「{now_name.zh}」，不能改为「{target_name.zh}」",
        field="status", row=visit.code)


def _apply(session: Session, visit: m.Visit, target: m.VisitStatus, technician_id: int,
           now: datetime, reason: str | None, note: str) -> None:
    if target == S.ON_SITE:
        visit.actual_arrival = now
        visit.actual_start = now
        visit.ticket.status = m.TicketStatus.IN_PROGRESS
    elif target == S.EN_ROUTE:
        visit.ticket.status = m.TicketStatus.IN_PROGRESS
    elif target == S.DONE:
        record = record_of(session, visit)
        _require_complete_record(visit, record)
        visit.actual_end = now
        visit.outcome = "done"
        visit.ticket.status = m.TicketStatus.RESOLVED
        _remember_repair(visit, record, now)
    else:  # not finished / no show: the ticket goes back to be booked again
        visit.outcome = _unfinished_outcome(visit, target, reason, note)
        visit.actual_end = now
        visit.ticket.status = m.TicketStatus.OPEN
    visit.status = target


def _unfinished_outcome(visit: m.Visit, target: m.VisitStatus, reason: str | None,
                        note: str) -> str:
    if target == S.NO_SHOW:
        reason = reason or "customer_not_home"
    if reason not in NOT_FINISHED_REASONS:
        codes = ", ".join(NOT_FINISHED_REASONS)
        raise ValidationError(
            f"visit {visit.code}: say why it could not be finished (one of: {codes})",
            f"工单 {visit.code}：请选择未能完成的原因（{codes}）", field="reason", row=visit.code)
    if reason == "other" and not note.strip():
        raise ValidationError(f"visit {visit.code}: describe the other reason",
                              f"工单 {visit.code}：请说明其他原因", field="note", row=visit.code)
    text = note.strip()[:MAX_TEXT]
    return f"{reason}: {text}" if text else reason


def _remember_repair(visit: m.Visit, record: m.ServiceRecord, now: datetime) -> None:
    """A finished repair joins the product's repair history (it counts for the 三包 rules)."""
    product = visit.ticket.product
    if product is None or visit.ticket.kind != m.TicketKind.REPAIR:
        return
    product.repairs.append(m.ProductRepair(
        repaired_on=utc_to_local(now, visit.outlet.timezone).date(),
        description=record.work_done[:500], fixed=True))


# ---------------------------------------------------------------------------------------------
# The service record
# ---------------------------------------------------------------------------------------------


def parse_parts(text: str) -> tuple[dict[str, Any], ...]:
    """Parts from one line each, "name" or "name x quantity" (×, *, x all work)."""
    parts = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = re.fullmatch(r"(.+?)\s*[x×X*]\s*(\d+)", line)
        name, quantity = (match.group(1), int(match.group(2))) if match else (line, 1)
        if quantity < 1 or quantity > 99:
            raise ValidationError(f"line {number}: the quantity must be 1 to 99",
                                  f"第 {number} 行：数量应为 1 至 99", field="parts_used")
        parts.append({"name": name.strip()[:100], "quantity": quantity})
    if len(parts) > MAX_PARTS:
        raise ValidationError(f"at most {MAX_PARTS} parts", f"配件最多 {MAX_PARTS} 项",
                              field="parts_used")
    return tuple(parts)


def save_record(session: Session, visit: m.Visit, technician_id: int, data: RecordInput,
                *, now: datetime | None = None) -> m.ServiceRecord:
    """Create or update the visit's service record from the form (checked field by field)."""
    _check_record_input(visit, data)
    record = record_of(session, visit)
    if record is None:
        record = m.ServiceRecord(visit_id=visit.id, technician_id=technician_id)
        session.add(record)
    record.technician_id = technician_id
    record.fault_found = data.fault_found.strip()
    record.cause = data.cause.strip()
    record.parts_used = [dict(p) for p in data.parts_used]
    record.work_done = data.work_done.strip()
    record.customer_verified = data.customer_verified
    record.verified_name = data.verified_name.strip() or None
    record.rating = data.rating
    record.feedback = data.feedback.strip()
    record.created_at = now or m.utcnow()
    db.flush(session)
    return record


def record_of(session: Session, visit: m.Visit) -> m.ServiceRecord | None:
    """The visit's service record, if one was written."""
    return session.scalar(select(m.ServiceRecord).where(m.ServiceRecord.visit_id == visit.id))


def _check_record_input(visit: m.Visit, data: RecordInput) -> None:
    for name in ("fault_found", "cause", "work_done", "feedback", "verified_name"):
        if len(getattr(data, name)) > MAX_TEXT:
            raise ValidationError(f"visit {visit.code}: {name} is longer than {MAX_TEXT} characters",
                                  f"工单 {visit.code}：{name} 超过 {MAX_TEXT} 字", field=name,
                                  row=visit.code)
    if data.rating is not None and not 1 <= data.rating <= 5:
        raise ValidationError(f"visit {visit.code}: the rating must be 1 to 5",
                              f"工单 {visit.code}：评分应为 1 至 5", field="rating", row=visit.code)
    if data.customer_verified and not data.verified_name.strip():
        raise ValidationError(f"visit {visit.code}: write the name of the customer who verified",
                              f"工单 {visit.code}：请填写验收客户姓名", field="verified_name",
                              row=visit.code)


def _require_complete_record(visit: m.Visit, record: m.ServiceRecord | None) -> None:
    """A visit is done only with a record of the work that the customer has verified."""
    if record is None:
        raise ValidationError(
            f"visit {visit.code}: fill in the service record before marking it done",
            f"工单 {visit.code}：请先填写服务记录，再标记完成", field="service_record",
            row=visit.code)
    missing = [name for name, value in (("work_done", record.work_done),
                                        ("verified_name", record.verified_name or ""))
               if not value.strip()]
    if visit.ticket.kind == m.TicketKind.REPAIR and not record.fault_found.strip():
        missing.insert(0, "fault_found")
    if missing or not record.customer_verified:
        field_name = missing[0] if missing else "customer_verified"
        raise ValidationError(
            f"visit {visit.code}: the service record needs {field_name} before the visit is done",
            f"工单 {visit.code}：服务记录缺少 {field_name}，完成前请补全（含客户验收）",
            field=field_name, row=visit.code)


# ---------------------------------------------------------------------------------------------
# The day on the phone
# ---------------------------------------------------------------------------------------------


def geo_uri(lat: float, lon: float, label: str) -> str:
    """A ``geo:`` URI that opens the phone's map app at the place, labelled with the address."""
    return f"geo:{lat:.6f},{lon:.6f}?q={lat:.6f},{lon:.6f}({quote(label, safe='')})"


def day_cards(session: Session, technician_id: int, day: date) -> list[DayCard]:
    """The technician's visits of ``day`` in route order, ready for the phone."""
    rows = technician_day(session, technician_id, day)
    if not rows:
        return []
    tech = session.get(m.Technician, technician_id)
    assert tech is not None  # technician_day returned rows, so the technician exists
    arrivals = _arrivals(session, tech.outlet_id, day)
    visits = {v.id: v for v in session.scalars(select(m.Visit).where(
        m.Visit.id.in_([r.id for r in rows])))}
    recorded = set(session.scalars(select(m.ServiceRecord.visit_id).where(
        m.ServiceRecord.visit_id.in_(list(visits)))))
    notices = delay_notices(session, visits)
    cards = []
    for row in rows:
        visit = visits[row.id]
        chargeable, note_zh, note_en = charge_summary(visit)
        eta = arrivals.get(row.id)
        late = told_arrival(notices[row.id]) if row.id in notices else None
        cards.append(DayCard(
            row=row, eta=utc_to_local(eta, tech.outlet.timezone) if eta else None,
            version=visit.version, geo_uri=geo_uri(row.lat, row.lon, f"{row.district}{row.address}"),
            chargeable=chargeable, warranty_note_zh=note_zh, warranty_note_en=note_en,
            has_record=row.id in recorded,
            delay_arrival=utc_to_local(late, tech.outlet.timezone) if late else None))
    return cards


def charge_summary(visit: m.Visit) -> tuple[bool | None, str, str]:
    """(chargeable, reason in Chinese, in English) under the 三包 rules on the visit's day;
    (None, "", "") when the ticket names no product."""
    from dispatch import warranty  # the rules module

    ticket = visit.ticket
    if ticket.product is None:
        return None, "", ""
    outcome = warranty.assess(ticket.product, ticket, visit.day)
    return outcome.chargeable, outcome.reason_zh, outcome.reason_en


def planned_arrival(session: Session, visit: m.Visit) -> datetime | None:
    """When the current plan has the technician arriving at the visit (UTC), if planned."""
    return _arrivals(session, visit.outlet_id, visit.day).get(visit.id)


def _arrivals(session: Session, outlet_id: int, day: date) -> dict[int, datetime]:
    plan = shown_plan(session, outlet_id, day)
    if plan is None:
        return {}
    return {visit_id: arrival for visit_id, arrival in session.execute(
        select(m.PlanStop.visit_id, m.PlanStop.arrival_at).where(
            m.PlanStop.plan_id == plan.id, m.PlanStop.kind == m.StopKind.VISIT))
        if visit_id is not None}
