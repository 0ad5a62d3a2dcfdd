"""Response deadlines, SLA breaches, escalation and the three-strikes rule."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.planning import publish_plan
from dispatch.security import hash_password
from dispatch.sla import escalate, flag_repeat_customers, response_deadline, sla_breaches
from tests.dispatch.builders import DAY, Graph, build_graph, local


def detached_outlet() -> m.Outlet:
    """An outlet open 08:30-18:00 in Shanghai, not in any session (no holidays)."""
    return m.Outlet(code="O1", timezone="Asia/Shanghai", business_open=time(8, 30),
                    business_close=time(18, 0))


def test_six_hours_inside_business_hours() -> None:
    """A request reported at 10:00 on a working day is due by 16:00."""
    assert response_deadline(detached_outlet(), local(10)) == local(16)


def test_twenty_four_hours_outside_business_hours() -> None:
    """A request reported at 19:00 is due 24 hours later; a Sunday counts as a working day."""
    assert response_deadline(detached_outlet(), local(19)) == local(19) + timedelta(hours=24)
    sunday = local(10) - timedelta(days=1)  # 2025-03-09 is a Sunday
    assert response_deadline(detached_outlet(), sunday) == sunday + timedelta(hours=6)


def test_holiday_is_not_business_hours(session: Session) -> None:
    """On a holiday the 24-hour rule applies even at 10:00."""
    graph = build_graph(session)
    session.add(m.Holiday(outlet_id=graph.outlet.id, day=DAY, name_zh="节", name_en="Holiday"))
    session.flush()
    assert response_deadline(graph.outlet, local(10)) == local(10) + timedelta(hours=24)


def test_sla_breach_found_in_plan(session: Session) -> None:
    """A visit planned to start after its ticket's deadline is a breach; one before is not."""
    graph = build_graph(session)
    assert sla_breaches(session, graph.plan) == []
    graph.ticket.sla_deadline = local(8)
    assert sla_breaches(session, graph.plan) == [graph.visit.id]


def add_manager(session: Session, graph: Graph) -> m.User:
    """A manager of the graph's outlet."""
    user = m.User(username="boss", password_hash=hash_password("password1", n=2**4),
                  role=m.Role.MANAGER, outlet_id=graph.outlet.id)
    session.add(user)
    session.flush()
    return user


def count(session: Session, model: type[m.Base]) -> int:
    """Rows of ``model``."""
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_escalates_to_manager_after_seven_days(session: Session) -> None:
    """An unresolved ticket 8 days old goes to level 1 with a task, a manager notification and
    an audit event; a second pass changes nothing."""
    graph = build_graph(session)
    manager = add_manager(session, graph)
    now = graph.ticket.reported_at + timedelta(days=8)
    tasks = escalate(session, now)
    assert graph.ticket.escalation_level == 1
    assert [(t.kind, t.assignee_role, t.ticket_id) for t in tasks] == [
        (m.TaskKind.ESCALATION, m.AssigneeRole.MANAGER, graph.ticket.id)]
    note = session.scalars(select(m.Notification).where(m.Notification.task_id == tasks[0].id)
                           ).one()
    assert (note.recipient_id, note.channel) == (manager.id, m.NotificationChannel.INBOX)
    assert session.scalar(select(func.count()).select_from(m.AuditEvent).where(
        m.AuditEvent.action == "ticket.escalate")) == 1
    assert escalate(session, now) == []
    assert count(session, m.Task) == 1 and count(session, m.Notification) == 2


def test_escalates_to_next_level_after_fifteen_days(session: Session) -> None:
    """At 16 days a level-1 ticket goes to level 2 (the next level of management)."""
    graph = build_graph(session)
    escalate(session, graph.ticket.reported_at + timedelta(days=8))
    tasks = escalate(session, graph.ticket.reported_at + timedelta(days=16))
    assert graph.ticket.escalation_level == 2
    assert tasks[0].assignee_role == m.AssigneeRole.SUPERVISOR


def test_young_or_resolved_tickets_are_not_escalated(session: Session) -> None:
    """A 6-day-old ticket, or a resolved 30-day-old one, stays at level 0."""
    graph = build_graph(session)
    assert escalate(session, graph.ticket.reported_at + timedelta(days=6)) == []
    graph.ticket.status = m.TicketStatus.RESOLVED
    assert escalate(session, graph.ticket.reported_at + timedelta(days=30)) == []
    assert graph.ticket.escalation_level == 0


def add_repairs(session: Session, graph: Graph, n: int) -> list[m.ServiceTicket]:
    """``n`` more repair tickets of the graph's customer, a month apart."""
    tickets = [m.ServiceTicket(
        code=f"K1{i}", customer=graph.customer, outlet=graph.outlet, kind=m.TicketKind.REPAIR,
        reported_at=graph.ticket.reported_at + timedelta(days=30 * (i + 1)), owner="disp1")
        for i in range(n)]
    session.add_all(tickets)
    session.flush()
    return tickets


def test_third_problem_is_flagged_for_a_supervisor(session: Session) -> None:
    """The customer's third repair ticket within a year is flagged with a review task, once."""
    graph = build_graph(session)
    extra = add_repairs(session, graph, 2)
    now = datetime(2025, 6, 1, tzinfo=UTC)
    assert flag_repeat_customers(session, now) == [extra[1]]
    assert extra[1].supervisor_flag and not extra[0].supervisor_flag
    assert session.scalars(select(m.Task.kind)).all() == [m.TaskKind.SUPERVISOR_REVIEW]
    assert flag_repeat_customers(session, now) == []


def test_two_problems_are_not_flagged(session: Session) -> None:
    """Two repair tickets in a year do not flag the customer."""
    graph = build_graph(session)
    add_repairs(session, graph, 1)
    assert flag_repeat_customers(session, datetime(2025, 6, 1, tzinfo=UTC)) == []


def test_published_plan_breaches_are_reported(session: Session) -> None:
    """sla_breaches works on a published plan too (what the job reads)."""
    graph = build_graph(session)
    publish_plan(session, graph.plan, graph.plan.version)
    graph.ticket.sla_deadline = local(8, 59)
    assert sla_breaches(session, graph.plan) == [graph.visit.id]
