"""Browser tests: Playwright driving Debian's Chromium against the app served from a thread.

A dispatcher solves the day on the board, sees routes and lanes, moves a visit and publishes; a
technician on a phone opens the day, reads the script and marks a visit done. No request may fail
and nothing may be loaded from another host. Screenshots of each main page at phone and desktop
size are saved under tests/artifacts/ (git-ignored).

Without /usr/bin/chromium the tests skip with the reason (``scripts/install-browser.sh`` installs
it), unless DISPATCH_REQUIRE_BROWSER=1, which turns the skip into a failure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-quic"]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1440, "height": 900}}
#: How long a page element may take to appear (ms); generous for a busy CI machine.
WAIT_MS = 30_000


def _require_browser() -> None:
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (run scripts/install-browser.sh)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[test]')"
    if reason is None:
        return
    if os.environ.get("DISPATCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (DISPATCH_REQUIRE_BROWSER=1)", pytrace=False)
    print(f"browser tests skipped: {reason}")
    pytest.skip(reason)


@dataclass
class Site:
    """The served app, the day it shows, and the accounts to sign in with."""

    url: str
    day: date
    outlet: str
    dispatcher: tuple[str, str]
    technician: tuple[str, str]
    failures: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The qingdao demo day (one outlet planned briefly and published) served on a free port."""
    _require_browser()
    from werkzeug.serving import make_server

    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'browser.db'}"
    day, outlet, dispatcher, technician = _prepare(url)
    from web import create_app

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(folder),
                      "SECRET_KEY": "browser-test"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_port}", day, outlet, dispatcher, technician)
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _prepare(url: str) -> tuple[date, str, tuple[str, str], tuple[str, str]]:
    """Load today's qingdao dataset, plan and publish its first outlet; pick two accounts."""
    import fixtures
    from dispatch import db
    from dispatch import models as m
    from dispatch.demo import today
    from dispatch.loader import load_dataset
    from dispatch.planning import plan_day, publish_plan
    from solver import SolveParams

    db.upgrade(url)
    day = today()
    dataset = fixtures.generate("qingdao", day, 0)
    outlet_code = dataset.outlets[0].code
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        load_dataset(session, dataset)
        params = SolveParams(time_limit=None, solution_limit=30, seed=0, use_pyvrp=False)
        plan = plan_day(session, outlet_code, day, params=params, created_by="browser-test")
        publish_plan(session, plan, plan.version)
        planned = {s.technician_id for s in plan.stops if s.kind == m.StopKind.VISIT}
        codes = {t.id: t.code for t in session.query(m.Technician)}
    engine.dispose()
    dispatcher = next(u for u in dataset.users if u.role in ("dispatcher", "manager"))
    technician = next(u for u in dataset.users if u.role == "technician"
                      and u.technician_code in {codes[i] for i in planned})
    return (day, outlet_code, (dispatcher.username, dispatcher.password),
            (technician.username, technician.password))


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[object]:
    """Debian's Chromium, headless, launched as the playbook says."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def _page(browser: object, site: Site, device: dict) -> object:
    """A new page that records failed requests and requests to other hosts."""
    context = browser.new_context(locale="zh-CN", **device)  # type: ignore[attr-defined]
    page = context.new_page()
    app_host = urlsplit(site.url).netloc
    page.on("requestfailed", lambda r: site.failures.append(f"failed: {r.url} {r.failure}"))

    def outside(request: object) -> None:
        target = urlsplit(request.url)  # type: ignore[attr-defined]
        if target.scheme in ("http", "https") and target.netloc != app_host:
            site.failures.append(f"outside: {request.url}")  # type: ignore[attr-defined]

    page.on("request", outside)
    page.set_default_timeout(WAIT_MS)
    return page


def _sign_in(page: object, site: Site, account: tuple[str, str]) -> None:
    page.goto(f"{site.url}/login")  # type: ignore[attr-defined]
    page.fill("#username", account[0])  # type: ignore[attr-defined]
    page.fill("#password", account[1])  # type: ignore[attr-defined]
    page.click("form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]


def _shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_dispatcher_solves_moves_and_publishes(browser: object, site: Site) -> None:
    """On the board a dispatcher solves the day, sees routes and lanes, moves a visit and
    publishes the plan, with nothing failing or loaded from outside."""
    page = _page(browser, site, DESKTOP)
    _shot_login(page, site, "login-desktop")
    _sign_in(page, site, site.dispatcher)
    board = f"{site.url}/board/?outlet={site.outlet}&date={site.day.isoformat()}"
    page.goto(board)
    page.click("#solve-button")
    # When the job is done the board opens the new draft plan by itself.
    page.wait_for_url("**plan=*")
    page.wait_for_load_state()
    page.wait_for_selector("#board-map path.leaflet-interactive")
    assert page.locator("#board-map path.leaflet-interactive").count() >= 2  # routes on the map
    assert page.locator("g.lane[data-technician]:not(.lane-unassigned)").count() >= 2  # lanes
    _shot(page, "board-desktop")
    page.click(".forms-grid form[method=get] button[type=submit]")
    page.wait_for_load_state()
    _shot(page, "move-desktop")
    page.click("form[method=post][action$='/board/move'] button.primary")
    page.wait_for_load_state()
    page.click("form[action$='/board/publish'] button")
    page.wait_for_load_state()
    assert page.locator("form[action$='/board/publish']").count() == 0  # now published
    assert site.failures == []


def test_technician_reads_script_and_finishes_a_visit(browser: object, site: Site) -> None:
    """On a phone a technician opens the day, reads the script and marks a visit done."""
    page = _page(browser, site, PHONE)
    _shot_login(page, site, "login-phone")
    _sign_in(page, site, site.technician)
    page.wait_for_selector("#day-list [data-visit-id]")
    _shot(page, "tech-day-phone")
    visit_id = page.locator("#day-list [data-visit-id]").first.get_attribute("data-visit-id")
    page.click("#day-list [data-visit-id] a.card-main")
    page.wait_for_selector("[data-script]")
    assert page.locator("[data-script]").first.inner_text().strip()
    _shot(page, "tech-visit-phone")
    for step in ("en_route", "on_site"):
        page.click(f"[data-action={step}]")
        page.wait_for_selector(f"#visit[data-status={step}]")
    page.fill("#fault_found", "压缩机电容损坏")
    page.fill("#work_done", "更换电容，试机正常")
    page.check("input[name=customer_verified]")
    page.fill("#verified_name", "李女士")
    page.click("[data-action=save-record]")
    page.wait_for_load_state()
    _shot(page, "tech-record-phone")
    page.click("[data-action=done]")
    # Done takes the technician back to the day, where the visit shows as done.
    page.wait_for_selector(f"#day-list [data-visit-id='{visit_id}'].status-done")
    _shot(page, "tech-done-phone")
    page.goto(f"{site.url}/tech/inbox")
    _shot(page, "tech-inbox-phone")
    assert site.failures == []


def _shot_login(page: object, site: Site, name: str) -> None:
    page.goto(f"{site.url}/login")  # type: ignore[attr-defined]
    _shot(page, name)
