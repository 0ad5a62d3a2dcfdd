"""The JSON API: tokens and roles, JSON errors (401/403/404/409/422), visits, plans and solves."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.security import hash_password, issue_api_token
from solver import SolveParams
from tests.dispatch.builders import DAY, Graph, local
from tests.web.conftest import sign_in

#: A short deterministic search for the solve jobs of these tests.
PARAMS = SolveParams(time_limit=None, solution_limit=10, workers=1, seed=0, use_pyvrp=False)


@dataclass
class Tokens:
    """Bearer headers of the graph's dispatcher, its technician and a second technician."""

    dispatcher: dict[str, str]
    technician: dict[str, str]
    other_technician: dict[str, str]


@pytest.fixture
def tokens(session: Session, graph: Graph) -> Tokens:
    """Tokens for "disp", "wang" (who has visit V01) and "zhao" (who has none)."""
    zhao = m.Technician(code="T02", outlet=graph.outlet, name="赵师傅", home_lat=36.05,
                        home_lon=120.35)
    zhao_user = m.User(username="zhao", password_hash=hash_password("password3", n=2**4),
                       role=m.Role.TECHNICIAN, technician=zhao)
    session.add_all([zhao, zhao_user])
    disp = session.query(m.User).filter_by(username="disp").one()
    headers = [{"Authorization": f"Bearer {issue_api_token(session, user, 'test')}"}
               for user in (disp, graph.user, zhao_user)]
    session.commit()
    return Tokens(*headers)


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    """A client of the API (no cookies, no CSRF token), solves run with a short search."""
    app.config["API_SOLVE_PARAMS"] = PARAMS
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN,zh;q=0.9"
    return client


def test_no_token_is_401_with_json(api: FlaskClient) -> None:
    """Without a bearer token the API answers 401 in JSON, both languages, naming the scheme."""
    response = api.get(f"/api/v1/visits?outlet=QD01&date={DAY}")
    assert response.status_code == 401
    body = response.get_json()
    assert body["code"] == "unauthorized" and body["message_zh"] and body["message_en"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_token_is_401(api: FlaskClient, tokens: Tokens) -> None:
    """A token that was never issued is refused like no token."""
    response = api.get("/api/v1/me", headers={"Authorization": "Bearer dsp_not-a-token"})
    assert response.status_code == 401


def test_revoked_token_is_401(api: FlaskClient, tokens: Tokens, session: Session) -> None:
    """Revoking a token ends its access."""
    for row in session.query(m.ApiToken):
        row.revoked = True
    session.commit()
    assert api.get("/api/v1/me", headers=tokens.dispatcher).status_code == 401


def test_page_session_is_not_an_api_credential(client: FlaskClient, tokens: Tokens) -> None:
    """A browser signed in to the pages still needs a token for the API (no cookie auth)."""
    sign_in(client, "disp", "password2")
    assert client.get("/api/v1/me").status_code == 401


def test_technician_cannot_start_a_solve(api: FlaskClient, tokens: Tokens) -> None:
    """A technician's token is refused (403) on the dispatcher's operations."""
    response = api.post("/api/v1/plans/solve", headers=tokens.technician,
                        json={"outlet": "QD01", "date": DAY.isoformat()})
    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"


def test_dispatcher_cannot_change_a_visit_status(api: FlaskClient, tokens: Tokens,
                                                 graph: Graph) -> None:
    """Status steps belong to technicians: a dispatcher's token gets 403."""
    response = api.post(f"/api/v1/visits/{graph.visit.id}/status", headers=tokens.dispatcher,
                        json={"status": "en_route"})
    assert response.status_code == 403


def test_another_technicians_visit_is_404(api: FlaskClient, tokens: Tokens,
                                          graph: Graph) -> None:
    """A technician asking for, or updating, a visit that is not theirs gets 404."""
    url = f"/api/v1/visits/{graph.visit.id}"
    assert api.get(url, headers=tokens.other_technician).status_code == 404
    response = api.post(f"{url}/status", headers=tokens.other_technician,
                        json={"status": "en_route"})
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_technician_reads_own_visit(api: FlaskClient, tokens: Tokens, graph: Graph) -> None:
    """The technician reads their own visit, times in the outlet's zone."""
    response = api.get(f"/api/v1/visits/{graph.visit.id}", headers=tokens.technician)
    assert response.status_code == 200
    body = response.get_json()
    assert body["code"] == "V01" and body["technician"] == "王师傅"
    assert body["windows"][0]["start"].startswith(f"{DAY}T09:00:00+08:00")


def test_technician_lists_only_own_day(api: FlaskClient, tokens: Tokens) -> None:
    """A technician's visit list is their own day, whatever outlet they name."""
    own = api.get(f"/api/v1/visits?date={DAY}", headers=tokens.technician).get_json()
    other = api.get(f"/api/v1/visits?date={DAY}", headers=tokens.other_technician).get_json()
    assert [v["code"] for v in own["items"]] == ["V01"]
    assert other["items"] == []


def test_technician_marks_own_visit_en_route(api: FlaskClient, tokens: Tokens,
                                              graph: Graph) -> None:
    """A status step on the technician's own visit is applied and returned."""
    response = api.post(f"/api/v1/visits/{graph.visit.id}/status", headers=tokens.technician,
                        json={"status": "en_route"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "en_route"


def test_invalid_status_step_is_422_naming_the_field(api: FlaskClient, tokens: Tokens,
                                                     graph: Graph) -> None:
    """Marking a planned visit done straight away is refused with 422 on "status"."""
    response = api.post(f"/api/v1/visits/{graph.visit.id}/status", headers=tokens.technician,
                        json={"status": "done"})
    assert response.status_code == 422
    assert response.get_json()["field"] == "status"


def test_schema_violation_is_422_naming_the_field(api: FlaskClient, tokens: Tokens,
                                                  graph: Graph) -> None:
    """A body that breaks the schema answers 422 naming the field, in the reader's language."""
    response = api.post(f"/api/v1/plans/{graph.plan.id}/publish", headers={
        **tokens.dispatcher, "Accept-Language": "en"}, json={"expected_version": "soon"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["field"] == "expected_version"
    assert body["message"] == body["message_en"] and "expected_version" in body["message"]


def test_missing_outlet_is_422_naming_the_field(api: FlaskClient, tokens: Tokens) -> None:
    """A dispatcher's visit list without an outlet answers 422 on "outlet"."""
    response = api.get(f"/api/v1/visits?date={DAY}", headers=tokens.dispatcher)
    assert response.status_code == 422
    assert response.get_json()["field"] == "outlet"


def test_unknown_outlet_is_404(api: FlaskClient, tokens: Tokens) -> None:
    """Naming an outlet that does not exist answers 404 with the code in the message."""
    response = api.get(f"/api/v1/visits?outlet=NOPE&date={DAY}", headers=tokens.dispatcher)
    assert response.status_code == 404
    assert "NOPE" in response.get_json()["message_en"]


def test_dispatcher_lists_the_outlet_day(api: FlaskClient, tokens: Tokens) -> None:
    """The dispatcher's list carries the visit with its version and planned technician."""
    body = api.get(f"/api/v1/visits?outlet=QD01&date={DAY}", headers=tokens.dispatcher).get_json()
    assert body["outlet"] == "QD01" and body["day"] == DAY.isoformat()
    [visit] = body["items"]
    assert visit["code"] == "V01" and visit["version"] >= 1 and visit["technician_id"]


def test_visit_update_with_stale_version_is_409(api: FlaskClient, tokens: Tokens,
                                                graph: Graph) -> None:
    """Changing a visit against an old version answers 409 in both languages."""
    url = f"/api/v1/visits/{graph.visit.id}"
    version = api.get(url, headers=tokens.dispatcher).get_json()["version"]
    first = api.patch(url, headers=tokens.dispatcher,
                      json={"expected_version": version, "duration_minutes": 90})
    assert first.status_code == 200 and first.get_json()["duration_minutes"] == 90
    second = api.patch(url, headers=tokens.dispatcher,
                       json={"expected_version": version, "priority": 1})
    assert second.status_code == 409
    assert second.get_json()["message_zh"] and second.get_json()["message_en"]


def test_stale_publish_is_409(api: FlaskClient, tokens: Tokens, graph: Graph) -> None:
    """Publishing a plan against a version it no longer has answers 409 and publishes nothing."""
    url = f"/api/v1/plans/{graph.plan.id}"
    version = api.get(url, headers=tokens.dispatcher).get_json()["version"]
    stale = api.post(f"{url}/publish", headers=tokens.dispatcher,
                     json={"expected_version": version + 1})
    assert stale.status_code == 409
    assert stale.get_json()["code"] == "conflict"
    assert api.get(url, headers=tokens.dispatcher).get_json()["status"] == "draft"


def test_publish_with_current_version(api: FlaskClient, tokens: Tokens, graph: Graph) -> None:
    """Publishing with the version read makes the plan the published one."""
    url = f"/api/v1/plans/{graph.plan.id}"
    version = api.get(url, headers=tokens.dispatcher).get_json()["version"]
    response = api.post(f"{url}/publish", headers=tokens.dispatcher,
                        json={"expected_version": version})
    assert response.status_code == 200
    assert response.get_json()["status"] == "published"


def test_solve_job_202_then_poll_until_done(api: FlaskClient, tokens: Tokens) -> None:
    """Starting a solve answers 202 with a job; polling it ends "done" with a new draft plan."""
    started = api.post("/api/v1/plans/solve", headers=tokens.dispatcher,
                       json={"outlet": "QD01", "date": DAY.isoformat(), "time_limit": 5})
    assert started.status_code == 202
    job = started.get_json()
    for _ in range(600):  # bounded by the number of polls, not by the clock
        if job["finished"]:
            break
        time.sleep(0.05)
        job = api.get(f"/api/v1/plans/solve/{job['id']}", headers=tokens.dispatcher).get_json()
    assert job["status"] == "done", job
    plan = api.get(f"/api/v1/plans/{job['plan_id']}", headers=tokens.dispatcher).get_json()
    assert plan["status"] == "draft" and plan["number"] == 2


def test_stop_of_unknown_job_is_404(api: FlaskClient, tokens: Tokens) -> None:
    """Stopping a job that does not exist answers 404."""
    assert api.post("/api/v1/plans/solve/999999/stop",
                    headers=tokens.dispatcher).status_code == 404


def test_tasks_and_inbox_answer_lists(api: FlaskClient, tokens: Tokens) -> None:
    """The task list of an outlet-day and the inbox answer JSON lists."""
    tasks = api.get(f"/api/v1/tasks?outlet=QD01&date={DAY}", headers=tokens.dispatcher)
    inbox = api.get("/api/v1/notifications", headers=tokens.technician)
    assert tasks.status_code == 200 and tasks.get_json()["items"] == []
    assert inbox.status_code == 200 and inbox.get_json()["items"] == []


def test_task_outcome_with_stale_version_is_409(api: FlaskClient, tokens: Tokens,
                                                session: Session, graph: Graph) -> None:
    """Recording a call's outcome against an old task version answers 409."""
    task = m.Task(kind=m.TaskKind.RECONFIRM_CALL, visit_id=graph.visit.id,
                  outlet_id=graph.outlet.id, assignee_role=m.AssigneeRole.DISPATCHER,
                  due_from=local(6), due_by=local(8), idempotency_key="api-test")
    session.add(task)
    session.commit()
    response = api.patch(f"/api/v1/tasks/{task.id}", headers=tokens.dispatcher,
                         json={"outcome": "done", "expected_version": task.version + 1})
    assert response.status_code == 409


def test_import_reports_every_bad_row(api: FlaskClient, tokens: Tokens) -> None:
    """A CSV import with a bad row answers 422 naming the file, row and field in details."""
    response = api.post("/api/v1/import/csv", headers=tokens.dispatcher,
                        json={"customers": "code,name\nC9,\n"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["details"] and all(d["message_zh"] and d["message_en"] for d in body["details"])


def test_openapi_document_is_3_1_with_required_bodies(api: FlaskClient) -> None:
    """The app serves an OpenAPI 3.1 document whose request bodies are marked required."""
    document = api.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    bodies = [op["requestBody"] for path in document["paths"].values()
              for op in path.values() if "requestBody" in op]
    assert bodies and all(b.get("required") for b in bodies)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
