"""The outbox: notifications queued once and delivered once, through the inbox, e-mail or SMS.

``enqueue`` adds a row keyed by an idempotency key (an existing key returns the existing row, so
a retried job never queues twice). ``deliver_pending`` is one pass of the delivery worker.

How a row is delivered at most once per attempt, and never twice in effect:

1. *Claim*, in its own short transaction: ``UPDATE notifications SET attempts = attempts + 1,
   next_attempt_at = <now + lease> WHERE id = :id AND status = 'pending' AND attempts = :seen
   AND next_attempt_at <= :now``. ``attempts`` serves as the row's version: only one worker's
   UPDATE matches, the others see no row and skip it. The lease keeps the row out of every
   other pass while it is being sent. The same statement works on SQLite and PostgreSQL.
2. *Send*, outside any transaction (a slow SMTP server holds no database lock).
3. *Mark* in a second transaction: ``sent`` (with the message as delivered), or a retry time
   with exponential back-off, or ``failed`` after the last attempt. The UPDATE again requires
   the claimed ``attempts``, so a worker whose lease ran out cannot overwrite a newer claim.

A crash between 2 and 3 leaves the row pending with its lease; once the lease runs out the row
is claimed and sent again *with the same idempotency key*: the SMS gateway receives it as the
request ``id`` and the ``Idempotency-Key`` header and drops the repeat; an e-mail carries a
``Message-ID`` derived from the key, so mail systems and clients recognise the duplicate.
The in-app inbox has no outside effect: it is claimed and marked sent in one transaction.

Customer-facing rows wait for calling hours (``dispatch.calling.next_call_time``); a row that
can no longer be delivered while useful expires, and its task, if any, is flagged for the
dispatcher. One exemption: a delay notice (template ``delay_notice``) about a visit goes at any
moment of the outlet's working day on the visit's day (``dispatch.calling.next_message_time``:
from the technicians' earliest shift start to 20:00 at the latest, rest times included), so a
customer whose technician runs late hears it before their window ends even when calls are not
allowed yet (an 08:00-10:00 window) or not now (12:00-13:30). At night it waits as any row does.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dispatch import calling, db
from dispatch import models as m
from dispatch.errors import (
    ConflictError,
    DeliveryError,
    DispatchError,
    NotFoundError,
    ValidationError,
)
from dispatch.scripts import SCRIPT_KINDS, render_script
from dispatch.timeutil import require_aware

#: How long a claimed row stays out of other passes while it is being sent.
CLAIM_LEASE = timedelta(minutes=10)
#: Retry delays: 1, 2, 4, 8 ... minutes, never more than an hour.
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=1)
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_BATCH = 200
DEFAULT_TIMEOUT_SECONDS = 15.0
#: How far ahead to look for calling hours when a message has no latest useful time.
OPEN_HORIZON = timedelta(days=7)
#: The template of a delay notice: texted in the working day of the visit's day, not only in
#: calling hours.
DELAY_NOTICE = "delay_notice"

EXPIRED_FLAG_EN = "the message could not be delivered while still useful ({template}, {key})"
EXPIRED_FLAG_ZH = "消息未能在有效时间内送达（{template}，{key}）"


@dataclass(frozen=True)
class OutgoingMessage:
    """One message ready to leave: who, what, and the key that makes a repeat harmless."""

    idempotency_key: str
    to: str
    subject: str
    text: str
    language: str


Sender = Callable[[OutgoingMessage], None]


@dataclass
class DeliveryReport:
    """What one delivery pass did, by outcome (notification ids in each list)."""

    sent: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)  # outside calling hours
    skipped: list[int] = field(default_factory=list)  # claimed by another worker

    def counts(self) -> dict[str, int]:
        """Return the number of rows per outcome."""
        return {name: len(getattr(self, name))
                for name in ("sent", "retry", "failed", "expired", "waiting", "skipped")}


# ---------------------------------------------------------------------------------------------
# Queueing
# ---------------------------------------------------------------------------------------------


def enqueue(session: Session, *, recipient_kind: m.RecipientKind | str, recipient_id: int,
            channel: m.NotificationChannel | str, template: str, language: m.Language | str,
            payload: Mapping[str, Any], not_before: datetime, latest_useful: datetime | None,
            idempotency_key: str, address: str | None = None,
            task: m.Task | None = None) -> m.Notification:
    """Queue a notification once; an existing ``idempotency_key`` returns the existing row.

    ``address`` defaults to the recipient's phone for SMS and is required for e-mail; the
    inbox is for technicians and users only. A customer-facing row must name the outlet whose
    calling hours apply (``payload["visit_id"]``, ``payload["outlet_id"]`` or ``task``).
    Raises ValidationError naming the field for bad input, NotFoundError for a missing
    recipient. Flushes, never commits.
    """
    key = _required_text(idempotency_key, "idempotency_key")
    existing = _by_key(session, key)
    if existing is not None:
        return existing
    row = _new_row(session, recipient_kind=recipient_kind, recipient_id=recipient_id,
                   channel=channel, template=template, language=language, payload=payload,
                   not_before=not_before, latest_useful=latest_useful, key=key,
                   address=address, task=task)
    # A savepoint: a concurrent enqueue of the same key loses the race without losing the
    # caller's transaction, and gets the winner's row.
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = _by_key(session, key)
        if existing is None:
            raise
        return existing
    return row


def _by_key(session: Session, key: str) -> m.Notification | None:
    return session.scalar(select(m.Notification).where(m.Notification.idempotency_key == key))


def _new_row(session: Session, *, recipient_kind: Any, recipient_id: int, channel: Any,
             template: str, language: Any, payload: Mapping[str, Any], not_before: datetime,
             latest_useful: datetime | None, key: str, address: str | None,
             task: m.Task | None) -> m.Notification:
    kind = _enum(m.RecipientKind, recipient_kind, "recipient_kind")
    via = _enum(m.NotificationChannel, channel, "channel")
    lang = _enum(m.Language, language, "language")
    require_aware(not_before, "not_before")
    if latest_useful is not None and require_aware(latest_useful, "latest_useful") < not_before:
        raise ValidationError(
            f"notification {key}: latest_useful is before not_before",
            f"通知 {key}：最晚有效时间早于最早发送时间", field="latest_useful", row=key)
    recipient = _recipient(session, kind, recipient_id)
    if via == m.NotificationChannel.INBOX and kind == m.RecipientKind.CUSTOMER:
        raise ValidationError(f"notification {key}: customers have no in-app inbox",
                              f"通知 {key}：客户没有站内信箱", field="channel", row=key)
    data = dict(payload)
    if kind == m.RecipientKind.CUSTOMER and _outlet_of(session, data, task) is None:
        raise ValidationError(
            f"notification {key}: a customer message needs the outlet whose calling hours "
            "apply (payload visit_id or outlet_id, or a task)",
            f"通知 {key}：发给客户的消息须指明适用哪个网点的通话时段"
            "（payload 中的 visit_id 或 outlet_id，或关联任务）", field="payload", row=key)
    return m.Notification(
        recipient_kind=kind, recipient_id=recipient_id,
        address=_address(recipient, via, address, key), channel=via,
        template=_required_text(template, "template"), language=lang, payload=data,
        not_before=not_before, latest_useful=latest_useful, next_attempt_at=not_before,
        idempotency_key=key, task_id=task.id if task is not None else None)


def _enum(enum_class: type[Any], value: Any, field_name: str) -> Any:
    try:
        return enum_class(value)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in enum_class)
        raise ValidationError(f"{value!r} is not one of: {allowed}",
                              f"{value!r} 不是允许的取值（{allowed}）", field=field_name) from exc


def _required_text(value: str, field_name: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError("must not be empty", "不能为空", field=field_name)
    return text


def _recipient(session: Session, kind: m.RecipientKind, recipient_id: int) -> Any:
    model, name_zh = {
        m.RecipientKind.CUSTOMER: (m.Customer, "客户"),
        m.RecipientKind.TECHNICIAN: (m.Technician, "技师"),
        m.RecipientKind.USER: (m.User, "用户"),
    }[kind]
    row = session.get(model, recipient_id)
    if row is None:
        raise NotFoundError(kind.value, recipient_id, name_zh)
    return row


def _address(recipient: Any, channel: m.NotificationChannel, given: str | None, key: str) -> str:
    if given:
        return given.strip()
    if channel == m.NotificationChannel.INBOX:
        return ""
    phone = getattr(recipient, "phone", "") or ""
    if channel == m.NotificationChannel.SMS and phone:
        return str(phone)
    what_en = "an e-mail address" if channel == m.NotificationChannel.EMAIL else "a phone number"
    what_zh = "电子邮件地址" if channel == m.NotificationChannel.EMAIL else "手机号码"
    raise ValidationError(f"notification {key}: {channel.value} needs {what_en}",
                          f"通知 {key}：{channel.value} 渠道需要{what_zh}",
                          field="address", row=key)


def _outlet_of(session: Session, payload: Mapping[str, Any],
               task: m.Task | None) -> m.Outlet | None:
    if task is not None:
        return task.outlet
    if payload.get("outlet_id") is not None:
        return session.get(m.Outlet, int(payload["outlet_id"]))
    visit = _visit_of(session, payload)
    return visit.outlet if visit is not None else None


def _visit_of(session: Session, payload: Mapping[str, Any]) -> m.Visit | None:
    if payload.get("visit_id") is None:
        return None
    return session.get(m.Visit, int(payload["visit_id"]))


# ---------------------------------------------------------------------------------------------
# The inbox
# ---------------------------------------------------------------------------------------------


def inbox(session: Session, who: m.User | m.Technician) -> list[m.Notification]:
    """Return the delivered in-app messages of a user or technician, newest first.

    A technician's user account sees the technician's messages as well as its own.
    """
    owners = []
    if isinstance(who, m.Technician):
        owners.append((m.RecipientKind.TECHNICIAN, who.id))
    else:
        owners.append((m.RecipientKind.USER, who.id))
        if who.technician_id is not None:
            owners.append((m.RecipientKind.TECHNICIAN, who.technician_id))
    matches = [(m.Notification.recipient_kind == kind.value) & (m.Notification.recipient_id == rid)
               for kind, rid in owners]
    return list(session.scalars(
        select(m.Notification)
        .where(m.Notification.channel == m.NotificationChannel.INBOX.value,
               m.Notification.status == m.NotificationStatus.SENT.value, or_(*matches))
        .order_by(m.Notification.sent_at.desc(), m.Notification.id.desc())))


def delivered_text(notification: m.Notification) -> tuple[str, str]:
    """Return the (subject, text) a notification was delivered with ("" before delivery)."""
    delivered = (notification.payload or {}).get("delivered") or {}
    return str(delivered.get("subject", "")), str(delivered.get("text", ""))


# ---------------------------------------------------------------------------------------------
# The delivery worker
# ---------------------------------------------------------------------------------------------


def deliver_pending(session_factory: sessionmaker[Session], *, now: datetime,
                    config: Mapping[str, Any],
                    senders: Mapping[m.NotificationChannel, Sender] | None = None
                    ) -> DeliveryReport:
    """Run one delivery pass at ``now``: every due pending row is sent, deferred or expired.

    ``config`` holds the channel settings (SMTP_*, SMS_*, NOTIFY_MAX_ATTEMPTS, NOTIFY_BATCH, as
    ``dispatch.config.load_config`` returns them); ``senders`` replaces channels (tests).
    Each row is handled in its own transactions, so one bad row stops nothing else.
    """
    require_aware(now, "now")
    channels = dict(senders) if senders is not None else senders_from_config(config)
    max_attempts = int(config.get("NOTIFY_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS)
    report = DeliveryReport()
    for row_id in _due_ids(session_factory, now, int(config.get("NOTIFY_BATCH") or DEFAULT_BATCH)):
        try:
            _deliver_one(session_factory, row_id, now, channels, max_attempts, report)
        except ConflictError:
            # A dispatcher edited the row's task meanwhile: skip now, the next pass retries.
            report.skipped.append(row_id)
    return report


def _due_ids(session_factory: sessionmaker[Session], now: datetime, limit: int) -> list[int]:
    with db.session_scope(session_factory) as session:
        due = m.Notification
        return list(session.scalars(
            select(due.id)
            .where(due.status == m.NotificationStatus.PENDING.value, due.not_before <= now,
                   or_(due.next_attempt_at.is_(None), due.next_attempt_at <= now))
            .order_by(due.not_before, due.id).limit(limit)))


@dataclass(frozen=True)
class _Claim:
    row_id: int
    attempts: int  # after the claim: the version the marking UPDATE requires
    channel: m.NotificationChannel
    message: OutgoingMessage


def _deliver_one(session_factory: sessionmaker[Session], row_id: int, now: datetime,
                 channels: Mapping[m.NotificationChannel, Sender], max_attempts: int,
                 report: DeliveryReport) -> None:
    claim = _prepare_and_claim(session_factory, row_id, now, report)
    if claim is None:
        return
    try:
        if claim.channel != m.NotificationChannel.INBOX:
            sender = channels.get(claim.channel)
            if sender is None:
                raise DeliveryError(f"the {claim.channel.value} channel is not configured",
                                    f"未配置 {claim.channel.value} 发送渠道")
            sender(claim.message)
    except DeliveryError as exc:
        _mark_failure(session_factory, claim, now, exc.bilingual(), max_attempts, report)
        return
    except Exception as exc:  # a faulty channel must not stop the pass or lose the row
        _mark_failure(session_factory, claim, now, repr(exc), max_attempts, report)
        return
    _mark_sent(session_factory, claim, now, report)


def _prepare_and_claim(session_factory: sessionmaker[Session], row_id: int, now: datetime,
                       report: DeliveryReport) -> _Claim | None:
    """Decide what to do with a due row; claim it when it is to be sent now."""
    with db.session_scope(session_factory) as session:
        row = session.get(m.Notification, row_id)
        if row is None or row.status != m.NotificationStatus.PENDING:
            report.skipped.append(row_id)
            return None
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            report.skipped.append(row_id)  # claimed (leased) by another pass meanwhile
            return None
        seen_attempts = row.attempts
        if row.latest_useful is not None and row.latest_useful < now:
            _expire(session, row, report)
            return None
        if row.recipient_kind == m.RecipientKind.CUSTOMER and not _may_call(session, row, now,
                                                                            report):
            return None
        try:
            message = compose(session, row, now)
        except DispatchError as exc:
            # A message that cannot be written will not improve by waiting: fail it now.
            row.status = m.NotificationStatus.FAILED
            row.last_error = exc.bilingual()
            report.failed.append(row_id)
            return None
        claimed = _claim(session, row_id, seen_attempts, now)
        if not claimed:
            report.skipped.append(row_id)
            return None
        claim = _Claim(row_id, seen_attempts + 1, row.channel, message)
        if row.channel == m.NotificationChannel.INBOX:
            # No outside effect: claim and delivery commit together, exactly once.
            _record_sent(session, claim, now)
            report.sent.append(row_id)
            return None
    return claim


def _claim(session: Session, row_id: int, attempts: int, now: datetime) -> bool:
    n = m.Notification
    result = session.execute(
        update(n)
        .where(n.id == row_id, n.status == m.NotificationStatus.PENDING.value,
               n.attempts == attempts,
               or_(n.next_attempt_at.is_(None), n.next_attempt_at <= now))
        .values(attempts=attempts + 1, next_attempt_at=now + CLAIM_LEASE)
        .execution_options(synchronize_session=False))
    session.expire_all()
    return result.rowcount == 1  # type: ignore[attr-defined]


def _may_call(session: Session, row: m.Notification, now: datetime,
              report: DeliveryReport) -> bool:
    """Whether a customer message may go now; otherwise defer or expire it."""
    customer = session.get(m.Customer, row.recipient_id)
    outlet = customer_outlet(session, row)
    if customer is None or outlet is None:
        # Without them calling hours cannot be checked, and waiting will not tell them.
        row.status = m.NotificationStatus.FAILED
        row.last_error = ("no customer or outlet to check calling hours against / "
                          "缺少客户或网点，无法核对通话时段")
        report.failed.append(row.id)
        return False
    horizon = row.latest_useful or now + OPEN_HORIZON
    at = _next_send_time(session, row, outlet, customer, now, horizon)
    if at is not None and at <= now:
        return True
    if at is None and row.latest_useful is not None:
        _expire(session, row, report)  # no calling time left before it stops being useful
        return False
    row.next_attempt_at = at if at is not None else horizon
    report.waiting.append(row.id)
    return False


def customer_outlet(session: Session, row: m.Notification) -> m.Outlet | None:
    """The outlet whose calling hours apply to a customer row (its task's, its visit's or the
    one its payload names)."""
    return _outlet_of(session, row.payload or {}, _task(session, row))


def _next_send_time(session: Session, row: m.Notification, outlet: m.Outlet,
                    customer: m.Customer, now: datetime, horizon: datetime) -> datetime | None:
    """The earliest moment in ``[now, horizon]`` a customer row may go: calling hours, or for a
    delay notice about a visit also the outlet's working day on the visit's day."""
    times = [calling.next_call_time(outlet, customer, now, horizon)]
    visit = _visit_of(session, row.payload or {}) if row.template == DELAY_NOTICE else None
    if visit is not None:
        times.append(calling.next_message_time(outlet, visit.day, now, horizon))
    return min((at for at in times if at is not None), default=None)


def _task(session: Session, row: m.Notification) -> m.Task | None:
    return session.get(m.Task, row.task_id) if row.task_id is not None else None


def _expire(session: Session, row: m.Notification, report: DeliveryReport) -> None:
    row.status = m.NotificationStatus.EXPIRED
    row.last_error = "expired before delivery / 在有效时间内未能送达"
    task = _task(session, row)
    if task is not None:
        task.flagged = True
        task.flag_reason = (
            EXPIRED_FLAG_ZH.format(template=row.template, key=row.idempotency_key) + " / "
            + EXPIRED_FLAG_EN.format(template=row.template, key=row.idempotency_key))
    report.expired.append(row.id)


def _mark_sent(session_factory: sessionmaker[Session], claim: _Claim, now: datetime,
               report: DeliveryReport) -> None:
    with db.session_scope(session_factory) as session:
        if _record_sent(session, claim, now):
            report.sent.append(claim.row_id)
        else:
            report.skipped.append(claim.row_id)


def _record_sent(session: Session, claim: _Claim, now: datetime) -> bool:
    row = session.get(m.Notification, claim.row_id)
    if row is None or row.attempts != claim.attempts or row.status != m.NotificationStatus.PENDING:
        return False  # the lease ran out and another worker took over; it will mark the row
    row.status = m.NotificationStatus.SENT
    row.sent_at = now
    row.last_error = None
    row.next_attempt_at = None
    row.payload = {**(row.payload or {}),
                   "delivered": {"subject": claim.message.subject, "text": claim.message.text,
                                 "to": claim.message.to}}
    return True


def _mark_failure(session_factory: sessionmaker[Session], claim: _Claim, now: datetime,
                  error: str, max_attempts: int, report: DeliveryReport) -> None:
    with db.session_scope(session_factory) as session:
        row = session.get(m.Notification, claim.row_id)
        if row is None or row.attempts != claim.attempts:
            report.skipped.append(claim.row_id)
            return
        row.last_error = error
        if row.attempts >= max_attempts:
            row.status = m.NotificationStatus.FAILED
            row.next_attempt_at = None
            report.failed.append(row.id)
            return
        row.next_attempt_at = now + backoff(row.attempts)
        report.retry.append(row.id)


def backoff(attempts: int) -> timedelta:
    """Return the wait after the ``attempts``-th failed attempt: 1, 2, 4, 8 ... min, capped."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


# ---------------------------------------------------------------------------------------------
# Composing the message
# ---------------------------------------------------------------------------------------------


def compose(session: Session, row: m.Notification, now: datetime) -> OutgoingMessage:
    """Return the message a row delivers.

    A template naming a script kind (``delay_notice``, ``confirmation``, ...) with a
    ``visit_id`` in the payload is rendered by ``dispatch.scripts`` in the row's language, with
    the payload as the script's extra facts; any other template takes its text from the
    payload (``text`` or ``text_zh``/``text_en``, and optionally ``subject``).
    """
    payload = dict(row.payload or {})
    language = str(row.language)
    if row.template in SCRIPT_KINDS and payload.get("visit_id") is not None:
        visit = _visit_of(session, payload)
        if visit is None:
            raise NotFoundError("visit", payload["visit_id"], "上门服务")
        script = render_script(session, visit, row.template, language, now=now,
                               extra={"medium": "message", **payload})
        subject, text = script.title, script.text
    else:
        text = str(payload.get(f"text_{language}") or payload.get("text") or "")
        if not text:
            raise ValidationError(
                f"notification {row.idempotency_key}: template {row.template!r} is not a script "
                "kind and the payload has no text",
                f"通知 {row.idempotency_key}：模板 {row.template!r} 不是话术类型，且 payload 中没有正文",
                field="payload", row=row.idempotency_key)
        subject = str(payload.get(f"subject_{language}") or payload.get("subject") or row.template)
    return OutgoingMessage(idempotency_key=row.idempotency_key, to=row.address, subject=subject,
                           text=text, language=language)


# ---------------------------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------------------------


def senders_from_config(config: Mapping[str, Any]) -> dict[m.NotificationChannel, Sender]:
    """Return the channels that ``config`` configures (SMTP_HOST for e-mail, SMS_URL for SMS)."""
    senders: dict[m.NotificationChannel, Sender] = {}
    if config.get("SMTP_HOST"):
        senders[m.NotificationChannel.EMAIL] = SmtpSender.from_config(config)
    if config.get("SMS_URL"):
        senders[m.NotificationChannel.SMS] = SmsGatewaySender.from_config(config)
    return senders


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def message_id(idempotency_key: str, domain: str) -> str:
    """Return the stable Message-ID of the e-mail for ``idempotency_key``."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


@dataclass(frozen=True)
class SmtpSender:
    """E-mail over SMTP; every failure (refusal, closed port, timeout) raises DeliveryError."""

    host: str
    port: int = 25
    user: str = ""
    password: str = ""
    starttls: bool = False
    sender: str = "dispatch@localhost"
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSender:
        """Return a sender from SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_STARTTLS,
        SMTP_FROM and SMTP_TIMEOUT."""
        return cls(host=str(config["SMTP_HOST"]), port=int(config.get("SMTP_PORT") or 25),
                   user=str(config.get("SMTP_USER") or ""),
                   password=str(config.get("SMTP_PASSWORD") or ""),
                   starttls=_flag(config.get("SMTP_STARTTLS", False)),
                   sender=str(config.get("SMTP_FROM") or "dispatch@localhost"),
                   timeout=float(config.get("SMTP_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS))

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """Return the e-mail for ``message``, its Message-ID derived from the idempotency key."""
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = message_id(message.idempotency_key,
                                         self.sender.rpartition("@")[2] or "localhost")
        email["Content-Language"] = "zh-CN" if message.language == "zh" else "en"
        email.set_content(message.text)
        return email

    def __call__(self, message: OutgoingMessage) -> None:
        """Send ``message``; raise DeliveryError when the server does not accept it."""
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(self.build(message))
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"SMTP server {self.host}:{self.port} did not accept the e-mail: {exc}",
                f"邮件服务器 {self.host}:{self.port} 未接收邮件：{exc}") from exc


@dataclass(frozen=True)
class SmsGatewaySender:
    """SMS through an HTTP gateway: POST JSON {to, text, id} with an Idempotency-Key header."""

    url: str
    token: str = ""
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmsGatewaySender:
        """Return a sender from SMS_URL, SMS_TOKEN and SMS_TIMEOUT."""
        return cls(url=str(config["SMS_URL"]), token=str(config.get("SMS_TOKEN") or ""),
                   timeout=float(config.get("SMS_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS))

    def __call__(self, message: OutgoingMessage) -> None:
        """Post ``message``; raise DeliveryError unless the gateway answers 2xx."""
        body = json.dumps({"to": message.to, "text": message.text, "id": message.idempotency_key},
                          ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Idempotency-Key": message.idempotency_key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"SMS gateway answered HTTP {exc.code}",
                                f"短信网关返回 HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(f"SMS gateway unreachable: {exc}",
                                f"无法连接短信网关：{exc}") from exc
