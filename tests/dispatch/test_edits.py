"""Hand edits of a plan: the price of a move, moves, pins, and stale versions."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.edits import move_visit, pin_visit, preview_move
from dispatch.errors import ConflictError, ValidationError
from dispatch.planning import publish_plan
from tests.dispatch.board_fixtures import PlannedDay, plan_tiny
from tests.dispatch.builders import local


@pytest.fixture
def day(session: Session) -> PlannedDay:
    """The tiny outlet-day, planned as a draft."""
    return plan_tiny(session)


def test_preview_prices_a_move_and_changes_nothing(session: Session, day: PlannedDay) -> None:
    """Moving the first visit to the end of its route is priced (travel, lateness, overtime)
    while the plan keeps its stops and its version."""
    tech, visit = day.busiest()
    before, version = day.route(tech), day.plan.version
    cost = preview_move(session, day.plan, visit, tech, 99)
    assert cost.allowed and cost.visit_id == visit
    assert cost.position == len(before) - 1  # clamped to the end of the route
    assert isinstance(cost.added_travel_seconds, int)
    assert cost.reason_zh and cost.reason_en
    session.expire_all()
    assert day.route(tech) == before and day.plan.version == version


def test_preview_refuses_a_technician_who_is_off(session: Session, day: PlannedDay) -> None:
    """A technician whose shift is marked absent cannot take a visit; the reason names them."""
    tech, visit = day.busiest()
    other = next(t for t in day.technicians if t.id != tech)
    shift = session.scalars(select(m.TechnicianShift)
                            .where(m.TechnicianShift.technician_id == other.id)).one()
    shift.absent = True
    session.flush()
    cost = preview_move(session, day.plan, visit, other.id, 0)
    assert not cost.allowed and not cost.feasible
    assert other.name in cost.reason_zh and "not working" in cost.reason_en


def test_move_reorders_the_route_and_persists(session: Session, day: PlannedDay) -> None:
    """A move in a draft rewrites the route in place, bumps the version and is audited."""
    tech, visit = day.busiest()
    version = day.plan.version
    changed = move_visit(session, day.plan, visit, tech, 99, expected_version=version,
                         actor="disp")
    session.commit()
    session.expire_all()
    assert changed.id == day.plan.id and changed.version == version + 1
    assert day.route(tech)[-1] == visit
    sequences = sorted(s.sequence for s in changed.stops if s.technician_id == tech)
    assert sequences == list(range(len(sequences)))
    assert session.scalar(select(m.AuditEvent).where(m.AuditEvent.action == "plan.move_visit"))


def test_move_in_a_published_plan_goes_to_a_new_draft(session: Session,
                                                      day: PlannedDay) -> None:
    """The published plan stays untouched; the change lands in a new draft copy."""
    publish_plan(session, day.plan, day.plan.version)
    session.commit()
    tech, visit = day.busiest()
    before = day.route(tech)
    draft = move_visit(session, day.plan, visit, tech, 99, expected_version=day.plan.version,
                       actor="disp")
    session.commit()
    session.expire_all()
    assert draft.status == m.PlanStatus.DRAFT and draft.number == day.plan.number + 1
    assert day.route(tech) == before
    assert [s.visit_id for s in sorted(draft.stops, key=lambda s: s.sequence)
            if s.technician_id == tech and s.visit_id][-1] == visit


def test_move_with_a_stale_version_is_a_conflict(session: Session, day: PlannedDay) -> None:
    """A move based on an older version of the plan raises ConflictError and changes nothing."""
    tech, visit = day.busiest()
    before = day.route(tech)
    with pytest.raises(ConflictError):
        move_visit(session, day.plan, visit, tech, 99, expected_version=day.plan.version - 1,
                   actor="disp")
    assert day.route(tech) == before


def test_taking_a_visit_out_lists_it_as_unassigned(session: Session, day: PlannedDay) -> None:
    """Moving a visit to nobody removes its stop and records the dispatcher's reason."""
    tech, visit = day.busiest()
    changed = move_visit(session, day.plan, visit, None, 0, expected_version=day.plan.version,
                         actor="disp")
    session.commit()
    assert visit not in day.route(tech)
    row = next(u for u in changed.unassigned if u.visit_id == visit)
    assert row.reason_code == "removed_by_dispatcher" and "disp" in row.reason_zh
    assert changed.kpis["visits_unassigned"] == len(changed.unassigned)


def test_pin_and_unpin_persist(session: Session, day: PlannedDay) -> None:
    """Pinning stores the technician and start range; unpinning clears both."""
    tech, visit_id = day.busiest()
    visit = session.get(m.Visit, visit_id)
    assert visit is not None
    pin_visit(session, visit_id, tech, (local(9), local(10)), expected_version=visit.version,
              actor="disp")
    session.commit()
    session.expire_all()
    visit = session.get(m.Visit, visit_id)
    assert visit is not None and visit.pinned_technician_id == tech
    assert visit.pinned_start_from == local(9) and visit.pinned_start_to == local(10)
    pin_visit(session, visit_id, None, None, expected_version=visit.version, actor="disp")
    session.commit()
    assert visit.pinned_technician_id is None and visit.pinned_start_from is None


def test_pin_with_a_stale_version_is_a_conflict(session: Session, day: PlannedDay) -> None:
    """A pin based on an older version of the visit raises ConflictError."""
    tech, visit_id = day.busiest()
    visit = session.get(m.Visit, visit_id)
    assert visit is not None
    with pytest.raises(ConflictError):
        pin_visit(session, visit_id, tech, None, expected_version=visit.version + 1, actor="d")


def test_pin_to_an_unknown_technician_names_the_field(session: Session,
                                                      day: PlannedDay) -> None:
    """A technician who is not of the visit's outlet is refused, naming technician_id."""
    _tech, visit_id = day.busiest()
    visit = session.get(m.Visit, visit_id)
    assert visit is not None
    with pytest.raises(ValidationError) as caught:
        pin_visit(session, visit_id, 9999, None, expected_version=visit.version, actor="d")
    assert caught.value.field == "technician_id"
