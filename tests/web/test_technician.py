"""The technician's phone pages: the day, a visit, status buttons, record, inbox, access."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from dispatch import models as m
from tests.dispatch.builders import DAY, Graph, local
from tests.web.conftest import csrf_token, sign_in

DAY_URL = f"/tech/?date={DAY.isoformat()}"


@pytest.fixture
def tech(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    """Wang, signed in, on the graph's day at 08:00."""
    monkeypatch.setattr("web.clock.now", lambda: local(8))
    sign_in(client, "wang", "password1")
    return client


def _post_status(client: FlaskClient, visit_id: int, to: str, **extra: str):  # type: ignore[no-untyped-def]
    page = f"/tech/visit/{visit_id}"
    data = {"csrf_token": csrf_token(client, page), "to": to, **extra}
    return client.post(f"{page}/status", data=data, follow_redirects=True)


def test_day_list_shows_the_visit_with_call_and_navigation(tech: FlaskClient,
                                                            graph: Graph) -> None:
    """The day lists V01 with its ETA, a tel: link and a geo: link, well under 100 KB."""
    response = tech.get(DAY_URL)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'href="tel:13800000000"' in page
    assert re.search(r'href="geo:36\.080000,120\.390000\?q=[^"]+"', page)
    assert "09:00" in page and "李女士" in page
    assert len(response.data) < 100 * 1024


def test_visit_page_has_scripts_in_the_customers_language(tech: FlaskClient,
                                                          graph: Graph) -> None:
    """The visit page carries the call scripts (Chinese customer: Chinese scripts)."""
    page = tech.get(f"/tech/visit/{graph.visit.id}").get_data(as_text=True)
    for kind in ("reconfirmation", "delay_notice", "confirmation", "completion"):
        assert f'data-script="{kind}"' in page
    assert "李女士" in page and "0532-0000000" in page


def test_status_steps_through_to_done(tech: FlaskClient, graph: Graph, session: Session) -> None:
    """On my way, arrived, record, done: each step is saved and done closes the visit."""
    visit_id = graph.visit.id
    assert "on_site" in _post_status(tech, visit_id, "en_route").get_data(as_text=True)
    _post_status(tech, visit_id, "on_site")
    page = f"/tech/visit/{visit_id}"
    tech.post(f"{page}/record", data={
        "csrf_token": csrf_token(tech, page), "fault_found": "电容老化", "cause": "老化",
        "parts_used": "电容 x 1", "work_done": "更换电容", "verified_name": "李女士",
        "customer_verified": "1", "rating": "5"})
    _post_status(tech, visit_id, "done")
    session.expire_all()
    visit = session.get(m.Visit, visit_id)
    assert visit is not None and visit.status == m.VisitStatus.DONE
    assert visit.actual_arrival is not None and visit.actual_end is not None


def test_invalid_step_is_refused_with_a_message(tech: FlaskClient, graph: Graph,
                                               session: Session) -> None:
    """Done straight from planned is refused with a readable message; nothing changes."""
    page = _post_status(tech, graph.visit.id, "done").get_data(as_text=True)
    assert "不能改为" in page
    session.expire_all()
    assert session.get(m.Visit, graph.visit.id).status == m.VisitStatus.PLANNED  # type: ignore[union-attr]


def test_done_needs_the_service_record(tech: FlaskClient, graph: Graph, session: Session) -> None:
    """On site with an incomplete record, done is refused and says the record is missing."""
    _post_status(tech, graph.visit.id, "on_site")
    page = _post_status(tech, graph.visit.id, "done").get_data(as_text=True)
    assert "服务记录" in page
    session.expire_all()
    assert session.get(m.Visit, graph.visit.id).status == m.VisitStatus.ON_SITE  # type: ignore[union-attr]


def test_another_technicians_visit_answers_404(tech: FlaskClient, graph: Graph,
                                               session: Session) -> None:
    """A visit planned for nobody (or someone else) is a 404, for the page and the buttons."""
    other = m.Visit(code="V99", ticket=graph.ticket, outlet=graph.outlet, day=DAY,
                    duration_minutes=30)
    session.add(other)
    session.commit()
    assert tech.get(f"/tech/visit/{other.id}").status_code == 404
    token = csrf_token(tech, DAY_URL)
    response = tech.post(f"/tech/visit/{other.id}/status", data={"csrf_token": token,
                                                                   "to": "en_route"})
    assert response.status_code == 404


def test_status_without_csrf_is_rejected(tech: FlaskClient, graph: Graph) -> None:
    """A status post without the CSRF token is refused (400)."""
    response = tech.post(f"/tech/visit/{graph.visit.id}/status", data={"to": "en_route"})
    assert response.status_code == 400


def test_dispatcher_cannot_use_the_phone_pages(client: FlaskClient, graph: Graph) -> None:
    """The technician's pages are for technicians (a dispatcher gets 403)."""
    sign_in(client, "disp", "password2")
    assert client.get(f"/tech/visit/{graph.visit.id}").status_code == 403


def test_inbox_lists_delivered_messages(tech: FlaskClient, graph: Graph, session: Session) -> None:
    """A message delivered to the technician's inbox is shown with its text."""
    session.add(m.Notification(
        recipient_kind=m.RecipientKind.TECHNICIAN, recipient_id=graph.technician.id,
        template="plan_changed", status=m.NotificationStatus.SENT, sent_at=local(7),
        payload={"delivered": {"subject": "路线已更新", "text": "V01 改到 10:00"}},
        idempotency_key="inbox-1"))
    session.commit()
    page = tech.get("/tech/inbox").get_data(as_text=True)
    assert "路线已更新" in page and "V01 改到 10:00" in page


def test_a_delay_notice_shows_on_the_phone(tech: FlaskClient, graph: Graph,
                                           session: Session) -> None:
    """The day card says the visit runs late with the new arrival, and the visit's delay
    script gives the same time."""
    session.add(m.Task(kind=m.TaskKind.DELAY_NOTICE, visit=graph.visit, outlet=graph.outlet,
                       assignee_role=m.AssigneeRole.DISPATCHER, due_from=local(10),
                       due_by=local(11), idempotency_key="late",
                       payload={"new_arrival": local(11, 20).isoformat(), "cause": "overrun"}))
    session.commit()
    day = tech.get(DAY_URL).get_data(as_text=True)
    assert 'class="late"' in day and "11:20" in day
    visit = tech.get(f"/tech/visit/{graph.visit.id}").get_data(as_text=True)
    script = visit.split('data-script="delay_notice"', 1)[1].split("</details>", 1)[0]
    assert "11:20" in script
