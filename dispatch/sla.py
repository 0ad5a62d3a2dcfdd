"""Response times, escalation and the "three strikes" rule.

- Response deadline: 24 hours from the reported time; 6 hours when the request came in during
  business hours (``Outlet.business_open``-``business_close`` local, on a working day). A working
  day is any day that is not a holiday: weekends count, because service networks take and
  handle requests seven days a week.
- Escalation: a ticket unresolved 7 days after it was reported goes to the manager (level 1),
  after 15 days to the next level of management (level 2), each with a task, an inbox
  notification to the outlet's managers and an audit event. Running it again changes nothing.
- Three strikes (事不过三): a customer's third problem ticket within ``REPEAT_PERIOD`` is flagged
  for a supervisor, with a review task.
Functions flush but never commit.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from dispatch import db
from dispatch import models as m
from dispatch.calling import holidays
from dispatch.timeutil import require_aware, utc_to_local

RESPONSE_TIME = timedelta(hours=24)
BUSINESS_HOURS_RESPONSE_TIME = timedelta(hours=6)
#: Unresolved age -> escalation level (1: manager, 2: the next level of management).
ESCALATION_AGES = ((timedelta(days=15), 2), (timedelta(days=7), 1))
#: How long the manager has to reply to the customer once a ticket is escalated.
ESCALATION_REPLY_TIME = timedelta(hours=24)
#: The third problem ticket within this period flags the customer.
REPEAT_PERIOD = timedelta(days=365)
REPEAT_THRESHOLD = 3
SUPERVISOR_REVIEW_TIME = timedelta(days=2)
#: Ticket kinds that count as an after-sales problem for the three-strikes rule.
PROBLEM_KINDS = (m.TicketKind.REPAIR,)
UNRESOLVED = (m.TicketStatus.OPEN, m.TicketStatus.SCHEDULED, m.TicketStatus.IN_PROGRESS)

ESCALATION_ROLES = {1: m.AssigneeRole.MANAGER, 2: m.AssigneeRole.SUPERVISOR}
JOB_ACTOR = "system"


def response_deadline(outlet: m.Outlet, reported_at: datetime,
                      session: Session | None = None) -> datetime:
    """When the request reported at ``reported_at`` must have had its response (UTC)."""
    require_aware(reported_at, "reported_at")
    if in_business_hours(outlet, reported_at, session):
        return reported_at + BUSINESS_HOURS_RESPONSE_TIME
    return reported_at + RESPONSE_TIME


def in_business_hours(outlet: m.Outlet, at: datetime, session: Session | None = None) -> bool:
    """Whether ``at`` falls in the outlet's business hours on a working (non-holiday) day."""
    local = utc_to_local(at, outlet.timezone)
    if not working_day(outlet, local.date(), session):
        return False
    return outlet.business_open <= local.time().replace(tzinfo=None) < outlet.business_close


def sla_breaches(session: Session, plan: m.Plan) -> list[int]:
    """Ids of the plan's visits planned to start after their ticket's response deadline."""
    late = set()
    for stop in plan.stops:
        if stop.kind != m.StopKind.VISIT or stop.visit is None:
            continue
        ticket = stop.visit.ticket
        deadline = ticket.sla_deadline or response_deadline(ticket.outlet, ticket.reported_at,
                                                            session)
        if stop.start_at > deadline:
            late.add(stop.visit.id)
    return sorted(late)


# ---------------------------------------------------------------------------------------------
# Escalation
# ---------------------------------------------------------------------------------------------


def escalation_level_due(ticket: m.ServiceTicket, now: datetime) -> int:
    """The escalation level the ticket's unresolved age calls for (0, 1 or 2)."""
    if ticket.status not in UNRESOLVED:
        return 0
    age = now - ticket.reported_at
    return next((level for limit, level in ESCALATION_AGES if age >= limit), 0)


def escalate(session: Session, now: datetime, *, actor: str = JOB_ACTOR) -> list[m.Task]:
    """Escalate every unresolved ticket that has waited too long; return the new tasks."""
    require_aware(now, "now")
    query = (select(m.ServiceTicket)
             .where(m.ServiceTicket.status.in_([s.value for s in UNRESOLVED]),
                    m.ServiceTicket.escalation_level < 2,
                    m.ServiceTicket.reported_at <= now - ESCALATION_AGES[-1][0])
             .options(selectinload(m.ServiceTicket.customer))
             .order_by(m.ServiceTicket.id))
    tasks = []
    for ticket in session.scalars(query):
        level = escalation_level_due(ticket, now)
        if level > ticket.escalation_level:
            tasks.append(_escalate_ticket(session, ticket, level, now, actor))
    db.flush(session)
    return tasks


def _escalate_ticket(session: Session, ticket: m.ServiceTicket, level: int, now: datetime,
                     actor: str) -> m.Task:
    before = {"escalation_level": ticket.escalation_level}
    ticket.escalation_level = level
    age_days = (now - ticket.reported_at).days
    task = m.Task(
        kind=m.TaskKind.ESCALATION, ticket_id=ticket.id, outlet_id=ticket.outlet_id,
        assignee_role=ESCALATION_ROLES[level], due_from=now, due_by=now + ESCALATION_REPLY_TIME,
        payload={"ticket": ticket.code, "level": level, "age_days": age_days,
                 "customer": ticket.customer.code},
        idempotency_key=f"escalation:{ticket.id}:{level}")
    session.add(task)
    db.flush(session)
    for user in managers(session, ticket.outlet_id):
        session.add(m.Notification(
            recipient_kind=m.RecipientKind.USER, recipient_id=user.id,
            channel=m.NotificationChannel.INBOX, template="escalation", language=user.language,
            payload=dict(task.payload), not_before=now, task_id=task.id,
            idempotency_key=f"escalation:{ticket.id}:{level}:user:{user.id}"))
    session.add(m.AuditEvent(
        actor=actor, action="ticket.escalate", entity_type="ticket", entity_id=str(ticket.id),
        before=before, after={"escalation_level": level, "age_days": age_days}, at=now))
    return task


def managers(session: Session, outlet_id: int) -> list[m.User]:
    """Active managers of the outlet, and those of every outlet (no outlet set)."""
    query = (select(m.User)
             .where(m.User.role == m.Role.MANAGER.value, m.User.active.is_(True),
                    or_(m.User.outlet_id.is_(None), m.User.outlet_id == outlet_id))
             .order_by(m.User.id))
    return list(session.scalars(query))


# ---------------------------------------------------------------------------------------------
# Three strikes
# ---------------------------------------------------------------------------------------------


def flag_repeat_customers(session: Session, now: datetime, *,
                          actor: str = JOB_ACTOR) -> list[m.ServiceTicket]:
    """Flag each customer's third (and later) problem ticket of the period; return new flags."""
    require_aware(now, "now")
    query = (select(m.ServiceTicket)
             .where(m.ServiceTicket.kind.in_([k.value for k in PROBLEM_KINDS]),
                    m.ServiceTicket.status != m.TicketStatus.CANCELLED.value,
                    m.ServiceTicket.reported_at > now - REPEAT_PERIOD,
                    m.ServiceTicket.reported_at <= now)
             .order_by(m.ServiceTicket.reported_at, m.ServiceTicket.id))
    by_customer: dict[int, list[m.ServiceTicket]] = defaultdict(list)
    for ticket in session.scalars(query):
        by_customer[ticket.customer_id].append(ticket)
    flagged = []
    for tickets in by_customer.values():
        for count, ticket in enumerate(tickets, start=1):
            if count >= REPEAT_THRESHOLD and not ticket.supervisor_flag:
                _flag_ticket(session, ticket, count, now, actor)
                flagged.append(ticket)
    db.flush(session)
    return flagged


def _flag_ticket(session: Session, ticket: m.ServiceTicket, count: int, now: datetime,
                 actor: str) -> None:
    ticket.supervisor_flag = True
    session.add(m.Task(
        kind=m.TaskKind.SUPERVISOR_REVIEW, ticket_id=ticket.id, outlet_id=ticket.outlet_id,
        assignee_role=m.AssigneeRole.SUPERVISOR, due_from=now,
        due_by=now + SUPERVISOR_REVIEW_TIME,
        payload={"ticket": ticket.code, "problems_in_period": count,
                 "period_days": REPEAT_PERIOD.days},
        idempotency_key=f"supervisor_review:{ticket.id}"))
    session.add(m.AuditEvent(
        actor=actor, action="ticket.supervisor_flag", entity_type="ticket",
        entity_id=str(ticket.id), before={"supervisor_flag": False},
        after={"supervisor_flag": True, "problems_in_period": count}, at=now))


def working_day(outlet: m.Outlet, day: date, session: Session | None = None) -> bool:
    """Whether ``day`` is a working day at the outlet (every day but holidays)."""
    return day not in holidays(outlet, day, day, session)
