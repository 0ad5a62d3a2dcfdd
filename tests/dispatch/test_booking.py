"""Booking on the phone: the request, the slots offered, the answer (dispatch.booking)."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy.orm import Session

from dispatch import booking, sla
from dispatch import models as m
from dispatch.errors import ValidationError
from dispatch.worktypes import suggest_work
from tests.dispatch.builders import DAY, Graph, build_graph, local

NOW = local(7)  # the morning of the graph's day, before anyone sets off


@pytest.fixture
def graph(session: Session) -> Graph:
    """The small graph plus the skills the catalogue suggests for an AC repair."""
    built = build_graph(session)
    refrigerant = m.Skill(code="refrigerant", name_zh="制冷剂", name_en="Refrigerant")
    built.technician.skills.append(m.TechnicianSkill(skill=refrigerant, level=2))
    session.flush()
    return built


def _request(session: Session, graph: Graph, **kwargs: object) -> m.Visit:
    data = booking.RequestData(kind="repair", symptom="空调不制冷", **kwargs)  # type: ignore[arg-type]
    return booking.create_request(session, graph.outlet, graph.customer, graph.product, data,
                                  actor="disp", now=NOW)


def test_catalogue_suggests_skills_and_duration() -> None:
    """An AC installation needs installation, height work and refrigerant skills and hours; a
    gas smell adds the gas certificate to a kitchen repair."""
    install = suggest_work("installation", "air_conditioner")
    assert set(install.skills) == {"ac_install", "height_work", "refrigerant"}
    assert install.duration_minutes >= 120
    assert "gas_cert" in suggest_work("repair", "kitchen", "燃气灶有燃气味").skills
    with pytest.raises(ValidationError) as caught:
        suggest_work("repair", "boat")
    assert caught.value.field == "category"


def test_request_creates_ticket_and_unconfirmed_visit_with_sla(session: Session,
                                                               graph: Graph) -> None:
    """A booking makes a ticket owned by the dispatcher with the SLA deadline of the rules, and
    an unconfirmed visit with the suggested skills and duration."""
    visit = _request(session, graph)
    ticket = visit.ticket
    assert ticket.owner == "disp" and ticket.reported_at == NOW
    assert ticket.sla_deadline == sla.response_deadline(graph.outlet, NOW)
    assert visit.confirmation_status == m.ConfirmationStatus.UNCONFIRMED
    assert visit.required_skills() == {"ac_repair": 1, "refrigerant": 1}
    assert visit.duration_minutes == suggest_work("repair", "air_conditioner").duration_minutes
    assert visit.day == DAY


def test_request_with_an_unknown_skill_names_it(session: Session, graph: Graph) -> None:
    """A skill nobody has heard of is refused, naming the skill."""
    with pytest.raises(ValidationError) as caught:
        _request(session, graph, skills={"teleport": 1})
    assert caught.value.field == "skills" and caught.value.row == "teleport"


def test_slots_are_ranked_and_never_move_a_confirmed_visit(session: Session,
                                                           graph: Graph) -> None:
    """V01 (90 min) is confirmed for 09:00-09:15 on T01's only route: the 08:00-10:00 slot
    would push it out of its window (before it) or miss the slot (after it), so it is not
    offered; the offers are ranked by extra driving, then the earliest."""
    confirmed = graph.visit
    confirmed.duration_minutes = 90
    confirmed.confirmation_status = m.ConfirmationStatus.CONFIRMED
    confirmed.agreed_start, confirmed.agreed_end = local(9), local(9, 15)
    visit = _request(session, graph, duration_minutes=120)
    slots = booking.slot_suggestions(session, visit, now=NOW, following_days=0)
    assert slots, "the afternoon is free, so something must be offered"
    starts = [s.start.time() for s in slots]
    assert time(8) not in starts  # 2 h before 09:00 would make V01 late
    for slot in slots:  # the new visit never starts before V01 is over
        assert slot.planned_start >= local(10, 30)
    ranks = [(s.added_travel_seconds // booking.TRAVEL_BUCKET_SECONDS, s.day, s.start)
             for s in slots]
    assert ranks == sorted(ranks)


def test_slots_today_start_after_now(session: Session, graph: Graph) -> None:
    """Late in the day only the remaining slots are offered, never one already over."""
    visit = _request(session, graph)
    slots = booking.slot_suggestions(session, visit, now=local(15, 30), following_days=0)
    assert slots and all(s.end > local(15, 30) for s in slots)
    assert all(s.planned_start >= local(15, 30) + booking.LEAD_TIME for s in slots)


def test_confirming_a_slot_sets_the_agreed_window(session: Session, graph: Graph) -> None:
    """The customer's yes records the agreed window, the promised technician and the event."""
    visit = _request(session, graph)
    choice = booking.parse_slot(f"{DAY.isoformat()}T14:00/16:00/{graph.technician.id}")
    event = booking.record_answer(session, visit, "confirmed", actor="disp", choice=choice,
                                  now=NOW)
    assert event.to_status == m.ConfirmationStatus.CONFIRMED and event.actor == "disp"
    assert (visit.agreed_start, visit.agreed_end) == (local(14), local(16))
    assert visit.committed_technician_id == graph.technician.id


def test_a_chargeable_visit_needs_the_charge_explained(session: Session, graph: Graph) -> None:
    """Without an invoice the repair is chargeable: confirming is refused until the dispatcher
    ticks "charge explained", which records when."""
    graph.product.invoice_date = None
    visit = _request(session, graph)
    choice = booking.parse_slot(f"{DAY.isoformat()}T14:00/16:00")
    with pytest.raises(ValidationError):
        booking.record_answer(session, visit, "confirmed", actor="disp", choice=choice, now=NOW)
    assert visit.confirmation_status == m.ConfirmationStatus.UNCONFIRMED
    booking.record_answer(session, visit, "confirmed", actor="disp", choice=choice, now=NOW,
                          charge_explained=True)
    assert visit.ticket.charge_explained_at == NOW
    assert visit.confirmation_status == m.ConfirmationStatus.CONFIRMED


def test_declined_and_unreachable_are_recorded(session: Session, graph: Graph) -> None:
    """A no is recorded as declined; an unanswered call counts an attempt."""
    declined = _request(session, graph)
    assert booking.record_answer(session, declined, "declined", actor="disp",
                                 now=NOW).to_status == m.ConfirmationStatus.DECLINED
    silent = _request(session, graph)
    event = booking.record_answer(session, silent, "unreachable", actor="disp", now=NOW)
    assert event.outcome == "no_answer" and silent.reconfirm_attempts == 1
    with pytest.raises(ValidationError) as caught:
        booking.record_answer(session, silent, "maybe", actor="disp", now=NOW)
    assert caught.value.field == "answer"


def test_customers_are_found_by_phone_digits_or_name(session: Session, graph: Graph) -> None:
    """"138-0000" finds 13800000000; the surname finds the customer too."""
    assert booking.find_customers(session, "138-0000") == [graph.customer]
    assert booking.find_customers(session, "李") == [graph.customer]
    assert booking.find_customers(session, "王五") == []


def test_new_customer_needs_coordinates_without_geocoder(session: Session,
                                                         graph: Graph) -> None:
    """With no geocoding server, a new customer needs coordinates; with them it is created."""
    data = booking.CustomerData(name="张", honorific="先生", phone="13911112222",
                                address="山东路 9 号")
    with pytest.raises(ValidationError) as caught:
        booking.create_customer(session, data)
    assert caught.value.field == "lat"
    customer = booking.create_customer(
        session, booking.CustomerData(**{**data.__dict__, "lat": 36.07, "lon": 120.4}))
    assert customer.code.startswith("C") and customer.lat == 36.07


def test_a_bad_slot_text_names_the_field() -> None:
    """A slot that is not "date T start/end[/technician]" is refused with field "slot"."""
    with pytest.raises(ValidationError) as caught:
        booking.parse_slot("tomorrow morning")
    assert caught.value.field == "slot"
    assert booking.parse_slot("2025-03-10T08:00/10:00").technician_id is None
