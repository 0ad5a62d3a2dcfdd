"""Changing a visit's duration and priority against a version."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.errors import ConflictError, ValidationError
from dispatch.visit_updates import update_visit
from tests.dispatch.builders import build_graph


def test_update_changes_fields_and_audits(session: Session) -> None:
    """Duration and priority change, the version moves on and an audit event is written."""
    visit = build_graph(session).visit
    version = visit.version
    update_visit(session, visit, expected_version=version, actor="t", duration_minutes=90,
                 priority=1)
    assert (visit.duration_minutes, visit.priority, visit.ticket.priority) == (90, 1, 1)
    assert visit.version > version
    assert session.query(m.AuditEvent).filter_by(action="visit.update").count() == 1


def test_stale_version_is_a_conflict(session: Session) -> None:
    """A change made against an older version raises ConflictError and changes nothing."""
    visit = build_graph(session).visit
    with pytest.raises(ConflictError):
        update_visit(session, visit, expected_version=visit.version + 1, actor="t",
                     duration_minutes=90)
    assert visit.duration_minutes == 60


def test_out_of_range_duration_names_the_field(session: Session) -> None:
    """A duration outside 10..600 minutes is refused naming the field and the visit."""
    visit = build_graph(session).visit
    with pytest.raises(ValidationError) as caught:
        update_visit(session, visit, expected_version=visit.version, actor="t",
                     duration_minutes=5)
    assert caught.value.field == "duration_minutes" and caught.value.row == "V01"


def test_finished_visit_cannot_change(session: Session) -> None:
    """A visit that is already done keeps its details."""
    visit = build_graph(session).visit
    visit.status = m.VisitStatus.DONE
    session.flush()
    with pytest.raises(ValidationError) as caught:
        update_visit(session, visit, expected_version=visit.version, actor="t", priority=1)
    assert caught.value.field == "status"
