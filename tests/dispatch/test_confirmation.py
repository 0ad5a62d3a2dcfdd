"""The confirmation lifecycle and what the solver gets from it."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.confirmation import (
    agree_handover,
    confirm,
    keeps_technician,
    planning_windows,
    reconfirm,
    record_failed_attempt,
    transition,
)
from dispatch.errors import ConflictError, ValidationError
from tests.dispatch.builders import build_graph, local

S = m.ConfirmationStatus


def test_confirm_records_window_technician_and_event(session: Session) -> None:
    """Confirming sets the agreed window and committed technician, records who and how, and
    bumps the visit's version."""
    graph = build_graph(session)
    visit, version = graph.visit, graph.visit.version
    event = confirm(session, visit, (local(9), local(10)), "disp1", graph.technician,
                    channel=m.ContactChannel.WECHAT, at=local(8))
    assert (visit.confirmation_status, visit.agreed_start, visit.agreed_end) == (
        S.CONFIRMED, local(9), local(10))
    assert visit.committed_technician_id == graph.technician.id
    assert visit.version == version + 1
    stored = session.scalars(select(m.ConfirmationEvent).where(
        m.ConfirmationEvent.id == event.id)).one()
    assert (stored.from_status, stored.to_status, stored.actor, stored.channel) == (
        S.UNCONFIRMED, S.CONFIRMED, "disp1", m.ContactChannel.WECHAT)


def test_forbidden_transition_is_refused(session: Session) -> None:
    """An unconfirmed visit cannot be re-confirmed; the error names the visit and both states."""
    graph = build_graph(session)
    with pytest.raises(ValidationError, match="unconfirmed to reconfirmed") as info:
        transition(session, graph.visit, S.RECONFIRMED, "disp1")
    assert "V01" in str(info.value)
    assert graph.visit.confirmation_status == S.UNCONFIRMED


def test_unknown_status_is_refused(session: Session) -> None:
    """A status outside the lifecycle is a validation error naming the field."""
    graph = build_graph(session)
    with pytest.raises(ValidationError, match="to_status"):
        transition(session, graph.visit, "maybe", "disp1")


def test_full_path_to_reconfirmed(session: Session) -> None:
    """proposed -> confirmed -> reconfirmed is allowed and leaves three events."""
    graph = build_graph(session)
    visit = graph.visit
    before = len(visit.events)
    transition(session, visit, S.PROPOSED, "disp1", outcome="offered")
    confirm(session, visit, (local(9), local(11)), "disp1")
    reconfirm(session, visit, "wang")
    assert visit.confirmation_status == S.RECONFIRMED
    assert len(visit.events) == before + 3


def test_chargeable_visit_needs_the_charge_explained(session: Session) -> None:
    """A chargeable visit cannot be confirmed until the charge has been explained."""
    graph = build_graph(session)
    graph.ticket.warranty_exclusions = ["misuse"]
    with pytest.raises(ValidationError, match="charge_explained_at"):
        confirm(session, graph.visit, (local(9), local(10)), "disp1")
    graph.ticket.charge_explained_at = local(8)
    confirm(session, graph.visit, (local(9), local(10)), "disp1")
    assert graph.visit.confirmation_status == S.CONFIRMED


def test_window_on_another_day_is_refused(session: Session) -> None:
    """The agreed window must lie on the visit's day."""
    graph = build_graph(session)
    with pytest.raises(ValidationError, match="window"):
        confirm(session, graph.visit, (local(9).replace(day=11), local(10).replace(day=11)),
                "disp1")


def test_unreachable_after_three_failed_attempts(session: Session) -> None:
    """Two unanswered calls keep the status; the third makes the visit unreachable."""
    graph = build_graph(session)
    visit = graph.visit
    record_failed_attempt(session, visit, "disp1")
    record_failed_attempt(session, visit, "disp1")
    assert visit.confirmation_status == S.UNCONFIRMED and visit.reconfirm_attempts == 2
    record_failed_attempt(session, visit, "disp1")
    assert visit.confirmation_status == S.UNREACHABLE


def test_attempt_limit_is_configurable(session: Session) -> None:
    """With max_attempts=1 the first unanswered call makes the visit unreachable."""
    graph = build_graph(session)
    record_failed_attempt(session, graph.visit, "disp1", max_attempts=1)
    assert graph.visit.confirmation_status == S.UNREACHABLE


def test_stale_version_conflicts(session: Session) -> None:
    """A transition based on an older version of the visit raises ConflictError."""
    graph = build_graph(session)
    with pytest.raises(ConflictError):
        transition(session, graph.visit, S.PROPOSED, "disp1",
                   expected_version=graph.visit.version - 1)


def test_solver_gets_accepted_windows_before_confirmation(session: Session) -> None:
    """An unconfirmed visit may take any accepted window and any technician."""
    graph = build_graph(session)
    assert planning_windows(graph.visit) == [(local(9), local(11))]
    assert keeps_technician(graph.visit) is None


def test_solver_gets_agreed_window_and_technician_once_confirmed(session: Session) -> None:
    """A confirmed visit gets only its agreed window and keeps its committed technician."""
    graph = build_graph(session)
    confirm(session, graph.visit, (local(10), local(10, 30)), "disp1", graph.technician)
    assert planning_windows(graph.visit) == [(local(10), local(10, 30))]
    assert keeps_technician(graph.visit) == graph.technician.id


def test_agreed_handover_frees_the_technician(session: Session) -> None:
    """After the customer agrees to a handover the visit no longer keeps its technician."""
    graph = build_graph(session)
    confirm(session, graph.visit, (local(10), local(10, 30)), "disp1", graph.technician)
    agree_handover(session, graph.visit, "disp1")
    assert keeps_technician(graph.visit) is None
    assert planning_windows(graph.visit) == [(local(10), local(10, 30))]


def test_needs_consent_returns_to_accepted_windows(session: Session) -> None:
    """A confirmed visit the plan would move goes to needs_consent and the solver gets the
    accepted windows again."""
    graph = build_graph(session)
    confirm(session, graph.visit, (local(10), local(10, 30)), "disp1", graph.technician)
    transition(session, graph.visit, S.NEEDS_CONSENT, "job", outcome="plan_moves_it")
    assert planning_windows(graph.visit) == [(local(9), local(11))]
