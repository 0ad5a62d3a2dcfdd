"""The dispatcher's call list: what is due now, and what a call's outcome changes."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy.orm import Session

from dispatch import calllist
from dispatch import models as m
from tests.dispatch.builders import Graph, build_graph, local


@pytest.fixture
def graph(session: Session) -> Graph:
    """The small graph with V01 confirmed for 09:00-11:00."""
    built = build_graph(session)
    built.visit.confirmation_status = m.ConfirmationStatus.CONFIRMED
    built.visit.agreed_start, built.visit.agreed_end = local(9), local(11)
    session.flush()
    return built


def add_task(session: Session, graph: Graph, key: str, due_from: int, due_by: int,
             kind: m.TaskKind = m.TaskKind.RECONFIRM_CALL, visit: m.Visit | None = None,
             flagged: bool = False) -> m.Task:
    """A dispatcher task about V01 (or ``visit``) due between two local hours of the day."""
    task = m.Task(kind=kind, visit=visit or graph.visit, outlet=graph.outlet,
                  assignee_role=m.AssigneeRole.DISPATCHER, due_from=local(due_from),
                  due_by=local(due_by), idempotency_key=key, flagged=flagged,
                  flag_reason="late" if flagged else "")
    session.add(task)
    session.flush()
    return task


def test_only_tasks_due_now_and_callable_are_listed(session: Session, graph: Graph) -> None:
    """At 10:30: a task due 10-12 is listed, one due from 15:00 is not, a done one is not, and
    one for a customer who takes calls only from 18:00 is not; flagged ones come first."""
    due = add_task(session, graph, "due", 10, 12)
    add_task(session, graph, "later", 15, 17)
    add_task(session, graph, "done", 10, 12).status = m.TaskStatus.DONE
    flagged = add_task(session, graph, "flagged", 9, 11, kind=m.TaskKind.DELAY_NOTICE,
                       flagged=True)
    evening = m.Customer(code="C02", name="周", honorific="先生", phone="13900000000",
                         address="延安路 1 号", lat=36.07, lon=120.38,
                         calling_start=time(18), calling_end=time(20))
    other = m.Visit(code="V02", ticket=m.ServiceTicket(
        code="K02", customer=evening, outlet=graph.outlet, kind=m.TicketKind.REPAIR,
        reported_at=local(8), owner="disp"), outlet=graph.outlet, day=graph.visit.day,
        duration_minutes=30)
    add_task(session, graph, "evening", 10, 12, visit=other)
    listed = calllist.due_calls(session, graph.outlet, local(10, 30))
    assert [c.task.idempotency_key for c in listed] == [flagged.idempotency_key,
                                                         due.idempotency_key]


def test_nobody_is_called_in_the_lunch_rest(session: Session, graph: Graph) -> None:
    """A task due over lunch is not listed during the outlet's quiet period (12:00-13:30)."""
    add_task(session, graph, "lunch", 11, 15)
    assert calllist.due_calls(session, graph.outlet, local(12, 30)) == []
    assert len(calllist.due_calls(session, graph.outlet, local(13, 45))) == 1


def test_reached_and_confirmed_reconfirms_the_visit(session: Session, graph: Graph) -> None:
    """A re-confirmation call that reached the customer re-confirms the visit; the task is done."""
    task = add_task(session, graph, "re", 10, 12)
    calllist.record_outcome(session, task, "confirmed", actor="disp", now=local(10, 30))
    assert task.status == m.TaskStatus.DONE and task.completed_by == "disp"
    assert graph.visit.confirmation_status == m.ConfirmationStatus.RECONFIRMED


def test_no_answer_three_times_makes_the_customer_unreachable(session: Session,
                                                              graph: Graph) -> None:
    """Each unanswered call counts; the task stays open until the third makes the visit
    unreachable and the task failed."""
    task = add_task(session, graph, "re", 10, 12)
    for attempt in (1, 2):
        calllist.record_outcome(session, task, "no_answer", actor="disp", now=local(10, attempt))
        assert task.status == m.TaskStatus.OPEN and graph.visit.reconfirm_attempts == attempt
    calllist.record_outcome(session, task, "no_answer", actor="disp", now=local(10, 3))
    assert task.status == m.TaskStatus.FAILED
    assert graph.visit.confirmation_status == m.ConfirmationStatus.UNREACHABLE


def test_wanting_a_change_asks_for_consent(session: Session, graph: Graph) -> None:
    """A confirmed customer who wants another time puts the visit in "needs consent"."""
    task = add_task(session, graph, "re", 10, 12)
    calllist.record_outcome(session, task, "wants_change", actor="disp", now=local(10, 30))
    assert graph.visit.confirmation_status == m.ConfirmationStatus.NEEDS_CONSENT
    assert task.outcome == "wants_change"
