"""The technician's status steps, actual times and the service record (dispatch.fieldwork)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from dispatch import fieldwork
from dispatch import models as m
from dispatch.errors import ConflictError, NotFoundError, ValidationError
from tests.dispatch.builders import DAY, Graph, build_graph, local

S = m.VisitStatus


@pytest.fixture
def graph(session: Session) -> Graph:
    """The small graph: V01 planned for T01 in the outlet-day's current plan."""
    return build_graph(session)


def _step(session: Session, graph: Graph, to: str, **kwargs: object) -> m.Visit:
    return fieldwork.change_status(session, graph.visit, to, technician_id=graph.technician.id,
                                   actor="wang", **kwargs)  # type: ignore[arg-type]


def _complete_record(session: Session, graph: Graph) -> None:
    fieldwork.save_record(session, graph.visit, graph.technician.id, fieldwork.RecordInput(
        fault_found="电容老化", cause="使用年限", parts_used=({"name": "电容", "quantity": 1},),
        work_done="更换电容并试机", customer_verified=True, verified_name="李女士", rating=5))


def test_arriving_records_the_actual_arrival_and_start(session: Session, graph: Graph) -> None:
    """En route, then arrived: the visit is on site with actual arrival and start at that time."""
    _step(session, graph, "en_route", now=local(8, 40))
    visit = _step(session, graph, "on_site", now=local(9, 5))
    assert visit.status == S.ON_SITE
    assert visit.actual_arrival == local(9, 5) and visit.actual_start == local(9, 5)
    assert visit.ticket.status == m.TicketStatus.IN_PROGRESS


def test_done_with_a_verified_record_sets_the_end_and_resolves(session: Session,
                                                               graph: Graph) -> None:
    """With a complete, customer-verified record, done sets actual_end and resolves the ticket;
    the repair joins the product's history."""
    _step(session, graph, "on_site", now=local(9))
    _complete_record(session, graph)
    repairs_before = len(graph.product.repairs)
    visit = _step(session, graph, "done", now=local(10, 10))
    assert visit.status == S.DONE and visit.actual_end == local(10, 10)
    assert visit.ticket.status == m.TicketStatus.RESOLVED
    assert len(graph.product.repairs) == repairs_before + 1


def test_done_without_a_complete_record_is_refused(session: Session, graph: Graph) -> None:
    """The graph's record lacks the work done and the customer's verification: done is refused,
    naming the missing field."""
    _step(session, graph, "on_site", now=local(9))
    with pytest.raises(ValidationError) as caught:
        _step(session, graph, "done", now=local(10))
    assert caught.value.field in {"fault_found", "work_done", "verified_name",
                                  "customer_verified"}
    assert graph.visit.status == S.ON_SITE


def test_a_step_out_of_order_is_refused_with_a_clear_message(session: Session,
                                                             graph: Graph) -> None:
    """A planned visit cannot jump to done; the message says what it is and what was asked."""
    with pytest.raises(ValidationError) as caught:
        _step(session, graph, "done")
    assert caught.value.field == "status"
    assert "planned" in caught.value.message("en") and "done" in caught.value.message("en")
    assert "待出发" in caught.value.message("zh")


def test_could_not_finish_needs_a_reason(session: Session, graph: Graph) -> None:
    """Could not finish without a reason is refused; with one, the outcome keeps it."""
    _step(session, graph, "on_site", now=local(9))
    with pytest.raises(ValidationError) as caught:
        _step(session, graph, "not_finished")
    assert caught.value.field == "reason"
    visit = _step(session, graph, "not_finished", reason="parts_needed", note="缺压缩机",
                  now=local(9, 30))
    assert visit.status == S.NOT_FINISHED and visit.outcome == "parts_needed: 缺压缩机"
    assert visit.actual_end == local(9, 30)
    assert visit.ticket.status == m.TicketStatus.OPEN


def test_customer_not_home_ends_as_a_no_show(session: Session, graph: Graph) -> None:
    """"Could not finish" because nobody was home records a no-show."""
    _step(session, graph, "en_route")
    visit = _step(session, graph, "not_finished", reason="customer_not_home")
    assert visit.status == S.NO_SHOW


def test_another_technicians_visit_is_not_found(session: Session, graph: Graph) -> None:
    """A technician not planned for the visit cannot see or change it."""
    other = m.Technician(code="T02", outlet=graph.outlet, name="赵师傅", home_lat=36.0,
                         home_lon=120.3)
    session.add(other)
    session.flush()
    with pytest.raises(NotFoundError):
        fieldwork.assigned_visit(session, graph.visit.id, other.id)
    with pytest.raises(NotFoundError):
        fieldwork.change_status(session, graph.visit, "en_route", technician_id=other.id,
                                actor="zhao")
    assert fieldwork.assigned_visit(session, graph.visit.id, graph.technician.id) is graph.visit


def test_a_stale_version_is_a_conflict(session: Session, graph: Graph) -> None:
    """A double tap from an old page (stale version) is a conflict, not a second step."""
    version = graph.visit.version
    _step(session, graph, "en_route", expected_version=version)
    with pytest.raises(ConflictError):
        _step(session, graph, "on_site", expected_version=version)


def test_parts_are_read_one_per_line_with_quantities() -> None:
    """"name x n" lines give quantities; plain lines count one; a silly quantity is refused."""
    assert fieldwork.parse_parts("电容 x 2\n\n排水泵") == (
        {"name": "电容", "quantity": 2}, {"name": "排水泵", "quantity": 1})
    with pytest.raises(ValidationError) as caught:
        fieldwork.parse_parts("电容 x 0")
    assert caught.value.field == "parts_used"


def test_verification_needs_the_customers_name(session: Session, graph: Graph) -> None:
    """Ticking "customer verified" without the customer's name is refused."""
    with pytest.raises(ValidationError) as caught:
        fieldwork.save_record(session, graph.visit, graph.technician.id, fieldwork.RecordInput(
            work_done="试机正常", customer_verified=True))
    assert caught.value.field == "verified_name"


def test_the_day_cards_carry_eta_navigation_and_warranty(session: Session,
                                                         graph: Graph) -> None:
    """The phone's day list: ETA from the plan, a geo: link with the address, warranty status."""
    cards = fieldwork.day_cards(session, graph.technician.id, DAY)
    assert [c.row.code for c in cards] == ["V01"]
    card = cards[0]
    assert card.eta is not None and card.eta.strftime("%H:%M") == "09:00"
    assert card.geo_uri.startswith("geo:36.080000,120.390000?q=")
    assert card.chargeable is False
