"""Booking pages: find the caller, create the request, offer slots, record the answer."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch import models as m
from tests.dispatch.builders import Graph, local
from tests.web.conftest import csrf_token, sign_in


@pytest.fixture
def desk(client: FlaskClient, graph: Graph, session: Session,
         monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    """The dispatcher, signed in at 07:00 on the graph's day; T01 can do AC repairs."""
    refrigerant = m.Skill(code="refrigerant", name_zh="制冷剂", name_en="Refrigerant")
    graph.technician.skills.append(m.TechnicianSkill(skill=refrigerant, level=1))
    session.commit()
    monkeypatch.setattr("web.clock.now", lambda: local(7))
    sign_in(client, "disp", "password2")
    return client


def _create(desk: FlaskClient, graph: Graph) -> str:
    form_page = f"/booking/new?customer={graph.customer.id}"
    response = desk.post(form_page, data={
        "csrf_token": csrf_token(desk, form_page), "customer": str(graph.customer.id),
        "product": str(graph.product.id), "outlet": str(graph.outlet.id), "kind": "repair",
        "symptom": "空调不制冷", "priority": "2"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def test_search_finds_the_caller_by_phone(desk: FlaskClient, graph: Graph) -> None:
    """Typing part of the phone number finds the customer and offers to book for them."""
    page = desk.get("/booking/?q=1380000").get_data(as_text=True)
    assert "李女士" in page and f"/booking/new?customer={graph.customer.id}" in page


def test_booking_creates_ticket_and_visit_with_sla(desk: FlaskClient, graph: Graph,
                                                   session: Session) -> None:
    """The request form creates a ticket (with an SLA deadline) and an unconfirmed visit."""
    location = _create(desk, graph)
    visit_id = int(location.rsplit("/", 1)[1])
    visit = session.get(m.Visit, visit_id)
    assert visit is not None and visit.ticket.sla_deadline is not None
    assert visit.confirmation_status == m.ConfirmationStatus.UNCONFIRMED
    assert visit.ticket.owner == "disp"


def test_slots_script_and_confirmation(desk: FlaskClient, graph: Graph,
                                       session: Session) -> None:
    """The visit page ranks slots; choosing one shows the confirmation script; confirming
    records the agreed window."""
    location = _create(desk, graph)
    page = desk.get(location).get_data(as_text=True)
    keys = re.findall(r'data-slot="([^"]+)"', page)
    assert keys, "slots are offered"
    page = desk.get(f"{location}?slot={keys[0]}").get_data(as_text=True)
    assert 'class="script-text"' in page and "0532-0000000" in page
    response = desk.post(f"{location}/answer", data={
        "csrf_token": csrf_token(desk, f"{location}?slot={keys[0]}"), "slot": keys[0],
        "answer": "confirmed"})
    assert response.status_code == 302
    session.expire_all()
    visit = session.get(m.Visit, int(location.rsplit("/", 1)[1]))
    assert visit is not None and visit.confirmation_status == m.ConfirmationStatus.CONFIRMED
    assert visit.agreed_start is not None


def test_charge_must_be_explained_on_the_page(desk: FlaskClient, graph: Graph,
                                              session: Session) -> None:
    """A chargeable repair shows the "charge explained" box; without it, confirming is refused
    with the reason."""
    graph.product.invoice_date = None
    session.commit()
    location = _create(desk, graph)
    slot = re.findall(r'data-slot="([^"]+)"', desk.get(location).get_data(as_text=True))[0]
    page = desk.get(f"{location}?slot={slot}").get_data(as_text=True)
    assert 'name="charge_explained"' in page
    response = desk.post(f"{location}/answer", data={
        "csrf_token": csrf_token(desk, location), "slot": slot, "answer": "confirmed"},
        follow_redirects=True)
    assert "收费" in response.get_data(as_text=True)
    session.expire_all()
    assert session.scalars(select(m.Visit).where(m.Visit.id == int(location.rsplit("/", 1)[1]))
                           ).one().confirmation_status == m.ConfirmationStatus.UNCONFIRMED


def test_bad_request_form_names_the_field(desk: FlaskClient, graph: Graph) -> None:
    """A new customer without a phone number is refused with a message naming the phone."""
    response = desk.post("/booking/new", data={
        "csrf_token": csrf_token(desk, "/booking/new"), "name": "张", "phone": "abc",
        "address": "山东路 9 号", "lat": "36.07", "lon": "120.4", "outlet": str(graph.outlet.id),
        "kind": "repair", "category": "air_conditioner", "brand": "海尔", "model": "X1"})
    assert response.status_code == 400
    assert "phone" in response.get_data(as_text=True)


def test_technician_cannot_book(client: FlaskClient, graph: Graph) -> None:
    """Booking is for dispatchers: a technician gets 403."""
    sign_in(client, "wang", "password1")
    assert client.get("/booking/").status_code == 403
