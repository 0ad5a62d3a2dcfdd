"""The call list page: due calls in calling hours, scripts, outcome buttons."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from dispatch import models as m
from tests.dispatch.builders import Graph, local
from tests.web.conftest import csrf_token, sign_in


@pytest.fixture
def tasks(graph: Graph, session: Session) -> dict[str, m.Task]:
    """V01 confirmed 09:00-11:00; a re-confirmation due 10-12 and a follow-up due 15-17."""
    graph.visit.confirmation_status = m.ConfirmationStatus.CONFIRMED
    graph.visit.agreed_start, graph.visit.agreed_end = local(9), local(11)
    made = {}
    for key, kind, start, end in (("re", m.TaskKind.RECONFIRM_CALL, 10, 12),
                                  ("follow", m.TaskKind.FOLLOWUP_CALL, 15, 17)):
        made[key] = m.Task(kind=kind, visit=graph.visit, outlet=graph.outlet,
                           assignee_role=m.AssigneeRole.DISPATCHER, due_from=local(start),
                           due_by=local(end), idempotency_key=key)
    session.add_all(made.values())
    session.commit()
    return made


def _at(monkeypatch: pytest.MonkeyPatch, hour: int, minute: int = 0) -> None:
    monkeypatch.setattr("web.clock.now", lambda: local(hour, minute))


def test_list_shows_only_calls_due_now(client: FlaskClient, tasks: dict[str, m.Task],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """At 10:30 the re-confirmation (with its script) is listed, the follow-up is not."""
    _at(monkeypatch, 10, 30)
    sign_in(client, "disp", "password2")
    page = client.get("/calls/").get_data(as_text=True)
    assert f'data-task-id="{tasks["re"].id}"' in page
    assert f'data-task-id="{tasks["follow"].id}"' not in page
    assert 'class="script-text"' in page and "李女士" in page


def test_nothing_is_listed_outside_calling_hours(client: FlaskClient, tasks: dict[str, m.Task],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """During the lunch rest (12:30) even a due call is not listed."""
    tasks["re"].due_by = local(14)
    _at(monkeypatch, 12, 30)
    sign_in(client, "disp", "password2")
    assert 'data-task-id="' not in client.get("/calls/").get_data(as_text=True)


def test_outcome_button_records_the_call(client: FlaskClient, tasks: dict[str, m.Task],
                                         session: Session,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """"Reached, confirmed" on a re-confirmation closes the task and re-confirms the visit."""
    _at(monkeypatch, 10, 30)
    sign_in(client, "disp", "password2")
    task = tasks["re"]
    response = client.post(f"/calls/{task.id}/outcome", data={
        "csrf_token": csrf_token(client, "/calls/"), "outcome": "confirmed",
        "version": str(task.version)})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(m.Task, task.id).status == m.TaskStatus.DONE  # type: ignore[union-attr]
    visit = session.get(m.Visit, task.visit_id)
    assert visit.confirmation_status == m.ConfirmationStatus.RECONFIRMED  # type: ignore[union-attr]


def test_wants_a_change_goes_to_booking(client: FlaskClient, tasks: dict[str, m.Task],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A customer who wants another time sends the dispatcher to the booking page."""
    _at(monkeypatch, 10, 30)
    sign_in(client, "disp", "password2")
    task = tasks["re"]
    response = client.post(f"/calls/{task.id}/outcome", data={
        "csrf_token": csrf_token(client, "/calls/"), "outcome": "wants_change"})
    assert response.headers["Location"].endswith(f"/booking/{task.visit_id}")


def test_a_delay_notice_shows_the_new_arrival(client: FlaskClient, graph: Graph, session: Session,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A running-late notice is listed with the new arrival it gives the customer."""
    notice = m.Task(kind=m.TaskKind.DELAY_NOTICE, visit=graph.visit, outlet=graph.outlet,
                    assignee_role=m.AssigneeRole.DISPATCHER, due_from=local(10),
                    due_by=local(11), idempotency_key="late",
                    payload={"new_arrival": local(11, 20).isoformat(),
                             "new_arrival_local": "11:20", "cause": "overrun"})
    session.add(notice)
    session.commit()
    _at(monkeypatch, 10, 30)
    sign_in(client, "disp", "password2")
    page = client.get("/calls/").get_data(as_text=True)
    assert f'data-task-id="{notice.id}"' in page
    assert "11:20" in page
