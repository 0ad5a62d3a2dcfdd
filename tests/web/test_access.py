"""Signing in, roles, CSRF, languages and security headers of the first web app."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.dispatch.builders import DAY
from tests.web.conftest import csrf_token, sign_in


def test_login_page_speaks_the_browsers_language(client: FlaskClient) -> None:
    """A Chinese browser gets the sign-in page in Chinese, an English one in English."""
    assert "登录" in client.get("/login").get_data(as_text=True)
    page = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Sign in" in page.get_data(as_text=True)


def test_anonymous_visitor_is_sent_to_sign_in(client: FlaskClient) -> None:
    """The dispatcher's page asks an anonymous visitor to sign in first."""
    response = client.get("/dispatcher/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_wrong_password_is_refused_politely(client: FlaskClient) -> None:
    """A wrong password answers 401 with a message and no session."""
    response = sign_in(client, "disp", "wrong")
    assert response.status_code == 401
    assert "用户名或密码不正确" in response.get_data(as_text=True)
    assert client.get("/dispatcher/").status_code == 302


def test_repeated_failures_are_rate_limited(client: FlaskClient) -> None:
    """After five failures even the right password waits (429)."""
    for _ in range(5):
        assert sign_in(client, "disp", "wrong").status_code == 401
    assert sign_in(client, "disp", "password2").status_code == 429


def test_form_without_csrf_token_is_rejected(client: FlaskClient) -> None:
    """A sign-in post that lacks the CSRF token is refused (400), right password or not."""
    response = client.post("/login", data={"username": "disp", "password": "password2"})
    assert response.status_code == 400


def test_dispatcher_lands_on_the_day_and_sees_the_visits(client: FlaskClient) -> None:
    """A dispatcher signs in, lands on the visits page and sees the day's visit in Chinese."""
    response = sign_in(client, "disp", "password2")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/dispatcher/")
    page = client.get(f"/dispatcher/?outlet=QD01&date={DAY.isoformat()}").get_data(as_text=True)
    assert "V01" in page and "李女士" in page and "王师傅" in page
    assert "当日上门工单" in page
    assert "09:00–11:00" in page  # the window, in the outlet's (Shanghai) time


def test_language_switch_is_remembered(client: FlaskClient) -> None:
    """Choosing English switches the pages to English for the rest of the session."""
    sign_in(client, "disp", "password2")
    token = csrf_token(client, "/dispatcher/")
    client.post("/language", data={"lang": "en", "csrf_token": token, "next": "/dispatcher/"})
    page = client.get(f"/dispatcher/?date={DAY.isoformat()}").get_data(as_text=True)
    assert "Visits of the day" in page and "当日上门工单" not in page


def test_technician_cannot_open_the_dispatch_board(client: FlaskClient) -> None:
    """A technician is sent to their own day and gets 403 on dispatcher pages."""
    response = sign_in(client, "wang", "password1")
    assert response.headers["Location"].endswith("/tech/")
    assert client.get("/dispatcher/").status_code == 403
    assert client.get("/tech/").status_code == 200


def test_pages_carry_security_headers(client: FlaskClient) -> None:
    """Every page sends a strict content-security policy and the usual hardening headers."""
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie


def test_open_redirects_are_not_followed(client: FlaskClient) -> None:
    """A ``next`` pointing to another site is ignored after signing in."""
    token = csrf_token(client)
    response = client.post(
        "/login?next=https://evil.example/", data={
            "username": "disp", "password": "password2", "csrf_token": token},
    )
    assert response.headers["Location"].endswith("/dispatcher/")


def test_a_fresh_install_gets_a_lasting_secret_key(db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With no secret configured, the app makes one in the instance folder, keeps it across
    restarts, and serves the sign-in form."""
    from web import create_app

    first = create_app({"DATABASE_URL": db_url, "INSTANCE_PATH": str(tmp_path)})
    assert first.test_client().get("/login").status_code == 200
    second = create_app({"DATABASE_URL": db_url, "INSTANCE_PATH": str(tmp_path)})
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
