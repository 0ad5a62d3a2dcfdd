"""A web app on the test database, and a client that signs in like a browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.security import hash_password
from tests.dispatch.builders import Graph, build_graph
from web import create_app

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def graph(session: Session) -> Graph:
    """One outlet, technician, customer, visit and plan; users "wang" (technician, password1)
    and "disp" (dispatcher, password2); committed."""
    built = build_graph(session)
    session.add(
        m.User(username="disp", password_hash=hash_password("password2", n=2**4),
               role=m.Role.DISPATCHER, outlet=built.outlet)
    )
    session.commit()
    return built


@pytest.fixture
def app(db_url: str, tmp_path: Path, graph: Graph) -> Iterator[Flask]:
    """The app on the test database, CSRF on as in production."""
    application = create_app(
        {"DATABASE_URL": db_url, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "test-secret"}
    )
    application.config["TESTING"] = True
    yield application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser-like client (Chinese first, as most readers are)."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN,zh;q=0.9,en;q=0.5"
    return test_client


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token the form at ``path`` carries."""
    match = CSRF_FIELD.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token in {path}"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str):  # type: ignore[no-untyped-def]
    """Post the sign-in form as a browser would."""
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
    )
