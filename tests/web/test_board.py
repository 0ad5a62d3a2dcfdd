"""The dispatcher's board: pages, map data, background solves, moves, pins and publishing."""

from __future__ import annotations

import re
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.timeutil import utc_to_local
from tests.dispatch.board_fixtures import DAY, PlannedDay, plan_tiny
from tests.web.conftest import csrf_token, sign_in

WAIT_SECONDS = 120  # a bound for the background solve, never asserted on


@pytest.fixture
def day(session: Session, app: Flask) -> PlannedDay:
    """The tiny outlet-day planned as a draft, in the app's database."""
    app.config["SOLVE_SOLUTION_LIMIT"] = 10
    return plan_tiny(session)


@pytest.fixture
def disp(client: FlaskClient, day: PlannedDay) -> FlaskClient:
    """A signed-in dispatcher."""
    assert sign_in(client, "disp", "password2").status_code == 302
    return client


def board_url(day: PlannedDay, **extra: object) -> str:
    """The board of the planned day."""
    query = "&".join(f"{k}={v}" for k, v in extra.items())
    base = f"/board/?outlet={day.outlet.code}&date={DAY.isoformat()}"
    return base + (f"&{query}" if query else "")


def test_board_shows_lanes_and_unassigned_reasons_in_both_languages(
        disp: FlaskClient, day: PlannedDay) -> None:
    """The board has a timeline lane per technician, the draft badge, and each unassigned
    visit with the solver's reason in Chinese, or in English for an English reader."""
    unassigned = day.plan.unassigned[0]
    page = disp.get(board_url(day)).get_data(as_text=True)
    for tech in day.technicians:
        assert f'data-technician="{tech.id}"' in page and tech.name in page
    assert "草稿方案 #1" in page and "调度看板" in page
    assert unassigned.reason_zh.split("。")[0] in page
    disp.post("/language", data={"lang": "en", "csrf_token": csrf_token(disp, board_url(day))})
    english_page = disp.get(board_url(day)).get_data(as_text=True)
    assert unassigned.reason_en.split(".")[0] in english_page and "Draft plan #1" in english_page
    assert 'class="b-service' in english_page and 'class="b-travel' in english_page


def test_map_data_has_coloured_routes_with_numbered_stops(disp: FlaskClient,
                                                          day: PlannedDay) -> None:
    """The map JSON gives each technician's route a colour and its stops in order."""
    data = disp.get(f"/board/map.json?outlet={day.outlet.code}&date={DAY.isoformat()}").json
    assert data is not None
    routes = [r for r in data["routes"] if r["stops"]]
    assert routes and len({r["colour"] for r in data["routes"]}) == len(data["routes"])
    for route in routes:
        assert re.fullmatch(r"#[0-9a-f]{6}", route["colour"])
        assert [s["n"] for s in route["stops"]] == list(range(1, len(route["stops"]) + 1))
        assert all({"lat", "lon", "customer", "window", "eta", "status"} <= set(s)
                   for s in route["stops"])
    assert len(data["unassigned"]) == len(day.plan.unassigned)
    assert data["tiles"] is None  # no tile server configured: a plain background


def test_solve_runs_in_the_background_and_shows_the_new_draft(disp: FlaskClient,
                                                              day: PlannedDay) -> None:
    """POST /board/solve answers 202 with a job; polling reaches done with a new draft plan,
    which the board then shows."""
    token = csrf_token(disp, board_url(day))
    started = disp.post("/board/solve", data={"csrf_token": token, "outlet": day.outlet.code,
                                              "date": DAY.isoformat()},
                        headers={"Accept": "application/json"})
    assert started.status_code == 202
    job_url = f"/board/jobs/{started.json['id']}"
    deadline = time.monotonic() + WAIT_SECONDS
    body = disp.get(job_url).json
    while not body["finished"] and time.monotonic() < deadline:
        time.sleep(0.2)
        body = disp.get(job_url).json
    assert body["status"] == "done" and body["progress"] == 1.0
    page = disp.get(body["board_url"]).get_data(as_text=True)
    assert "草稿方案 #2" in page


def test_stop_button_asks_the_job_to_stop(disp: FlaskClient, session: Session,
                                          day: PlannedDay) -> None:
    """POST /board/jobs/<id>/stop records the stop request of a job under way."""
    job = m.SolveJob(outlet_id=day.outlet.id, day=DAY, status=m.SolveJobStatus.RUNNING,
                     progress=0.3, started_by="disp", time_limit_seconds=30)
    session.add(job)
    session.commit()
    answer = disp.post(f"/board/jobs/{job.id}/stop",
                       headers={"Accept": "application/json",
                                "X-CSRFToken": csrf_token(disp, board_url(day))})
    assert answer.status_code == 200 and answer.json["stop_requested"] is True


def test_move_preview_gives_the_cost(disp: FlaskClient, day: PlannedDay) -> None:
    """The preview of a move answers its cost (travel, lateness, overtime) and verdict."""
    tech, visit = day.busiest()
    answer = disp.get(f"/board/move?plan={day.plan.id}&visit={visit}&technician={tech}"
                      "&position=99", headers={"Accept": "application/json"})
    assert answer.status_code == 200
    cost = answer.json
    assert cost["allowed"] is True and isinstance(cost["added_travel_seconds"], int)
    assert cost["reason"] and len(cost["summary"]) == 3
    page = disp.get(f"/board/move?plan={day.plan.id}&visit={visit}&technician={tech}&number=1")
    assert "确认调整" in page.get_data(as_text=True) or "仍然调整" in page.get_data(as_text=True)


def test_move_form_persists_the_move(disp: FlaskClient, session: Session,
                                     day: PlannedDay) -> None:
    """Confirming a move rewrites the route and returns to the board."""
    tech, visit = day.busiest()
    token = csrf_token(disp, board_url(day))
    answer = disp.post("/board/move", data={
        "csrf_token": token, "plan": day.plan.id, "version": day.plan.version,
        "visit": visit, "technician": tech, "position": 99})
    assert answer.status_code == 302
    session.expire_all()
    assert day.route(tech)[-1] == visit


def test_pin_form_persists_the_pin(disp: FlaskClient, session: Session,
                                   day: PlannedDay) -> None:
    """The pin form stores the technician and the start range in the outlet's time."""
    tech, visit_id = day.busiest()
    visit = session.get(m.Visit, visit_id)
    assert visit is not None
    answer = disp.post("/board/pin", data={
        "csrf_token": csrf_token(disp, board_url(day)), "visit": f"{visit_id}:{visit.version}",
        "technician": tech, "start_from": "09:00", "start_to": "10:30"})
    assert answer.status_code == 302
    session.expire_all()
    visit = session.get(m.Visit, visit_id)
    assert visit is not None and visit.pinned_technician_id == tech
    assert visit.pinned_start_from is not None
    assert utc_to_local(visit.pinned_start_from, day.outlet.timezone).hour == 9


def test_stale_publish_answers_409_and_leaves_the_plan(disp: FlaskClient, session: Session,
                                                       day: PlannedDay) -> None:
    """Publishing with an old version is a conflict (409, clear message); the plan stays draft."""
    answer = disp.post("/board/publish", data={
        "csrf_token": csrf_token(disp, board_url(day)), "plan": day.plan.id,
        "version": day.plan.version - 1})
    assert answer.status_code == 409
    assert "已被他人修改" in answer.get_data(as_text=True)
    session.expire_all()
    assert session.get(m.Plan, day.plan.id).status == m.PlanStatus.DRAFT  # type: ignore[union-attr]


def test_publish_with_the_current_version_publishes(disp: FlaskClient, session: Session,
                                                    day: PlannedDay) -> None:
    """Publishing the version shown makes the plan the published one."""
    answer = disp.post("/board/publish", data={
        "csrf_token": csrf_token(disp, board_url(day)), "plan": day.plan.id,
        "version": day.plan.version})
    assert answer.status_code == 302
    session.expire_all()
    assert session.get(m.Plan, day.plan.id).status == m.PlanStatus.PUBLISHED  # type: ignore[union-attr]


def test_actions_without_csrf_are_refused(disp: FlaskClient, day: PlannedDay) -> None:
    """A publish without the CSRF token is refused (400)."""
    answer = disp.post("/board/publish", data={"plan": day.plan.id, "version": day.plan.version})
    assert answer.status_code == 400


def test_technician_gets_403_on_board_urls(client: FlaskClient, day: PlannedDay) -> None:
    """A technician is refused every board page, data URL and action."""
    sign_in(client, "wang", "password1")
    for url in (board_url(day), f"/board/map.json?outlet={day.outlet.code}",
                "/board/jobs/1", f"/board/move?plan={day.plan.id}&visit=1&technician=1"):
        assert client.get(url).status_code == 403, url
    assert client.post("/board/move", data={}).status_code in (400, 403)


def test_leaflet_is_served_from_the_installed_package(disp: FlaskClient) -> None:
    """Leaflet's script and stylesheet come from the app itself, not from a CDN."""
    assert disp.get("/vendor/leaflet/leaflet.js").status_code == 200
    assert disp.get("/vendor/leaflet/leaflet.css").status_code == 200


def test_tile_server_is_allowed_only_when_configured(disp: FlaskClient, app: Flask,
                                                     day: PlannedDay) -> None:
    """With a tile URL the board's policy admits that host for images, and the map uses it."""
    assert "tile.example.org" not in disp.get(board_url(day)).headers["Content-Security-Policy"]
    app.config["TILE_URL"] = "https://{s}.tile.example.org/{z}/{x}/{y}.png"
    csp = disp.get(board_url(day)).headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://*.tile.example.org" in csp
    data = disp.get(f"/board/map.json?outlet={day.outlet.code}&date={DAY.isoformat()}").json
    assert data["tiles"]["url"].startswith("https://{s}.tile.example.org")


def test_draft_and_published_are_told_apart(disp: FlaskClient, session: Session,
                                            day: PlannedDay) -> None:
    """The board says "draft, not published" for a draft and offers to publish it only then."""
    page = disp.get(board_url(day)).get_data(as_text=True)
    assert "未发布" in page and "发布此方案" in page
    day.plan.status = m.PlanStatus.PUBLISHED
    session.commit()
    page = disp.get(board_url(day)).get_data(as_text=True)
    assert "已发布方案 #1" in page and "发布此方案" not in page
    assert session.scalar(select(m.Plan).where(m.Plan.id == day.plan.id)) is not None
