"""Password hashing, API tokens and user accounts."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from dispatch import db
from dispatch import models as m
from dispatch.errors import NotFoundError, ValidationError
from dispatch.security import (
    authenticate,
    create_user,
    hash_password,
    issue_api_token,
    token_digest,
    user_for_token,
    verify_password,
)
from tests.dispatch.builders import build_graph

FAST = {"n": 2**4}  # tiny scrypt cost: these tests check behaviour, not strength


def test_password_verifies() -> None:
    """The right password matches its hash."""
    assert verify_password("correct horse", hash_password("correct horse", **FAST))


def test_wrong_password_fails() -> None:
    """A wrong password does not match."""
    assert not verify_password("wrong horse", hash_password("correct horse", **FAST))


def test_hash_is_salted() -> None:
    """The same password hashes differently each time."""
    assert hash_password("same", **FAST) != hash_password("same", **FAST)


def test_hash_records_its_parameters() -> None:
    """The hash string names the scheme and cost, and the default cost is strong."""
    assert hash_password("pw").startswith("scrypt$16384$8$1$")
    assert verify_password("pw", hash_password("pw", n=2**5, r=4, p=2))


@pytest.mark.parametrize("stored", ["", "plain", "md5$1$2$3$4$5", "scrypt$x$8$1$AA$AA"])
def test_malformed_hash_never_matches(stored: str) -> None:
    """A corrupt or foreign hash string is a mismatch, not a crash."""
    assert not verify_password("pw", stored)


def test_empty_password_is_refused() -> None:
    """Hashing an empty password raises ValidationError on the password field."""
    with pytest.raises(ValidationError) as caught:
        hash_password("")
    assert caught.value.field == "password"


def test_token_digest_is_sha256_hex() -> None:
    """A token is stored as its 64-character SHA-256 hex digest."""
    digest = token_digest("dsp_abc")
    assert len(digest) == 64 and digest == token_digest("dsp_abc") != token_digest("dsp_abd")


def test_created_user_can_log_in(session: Session) -> None:
    """A user made by create_user authenticates with its password only."""
    create_user(session, "disp1", m.Role.DISPATCHER, "password1")
    db.commit(session)
    user = authenticate(session, "disp1", "password1")
    assert user is not None and user.role is m.Role.DISPATCHER
    assert authenticate(session, "disp1", "password2") is None
    assert authenticate(session, "nobody", "password1") is None


def test_technician_user_inherits_outlet(session: Session) -> None:
    """A technician account links the technician and defaults to their outlet."""
    graph = build_graph(session)
    second = m.Technician(
        code="T02", outlet=graph.outlet, name="赵师傅", home_lat=36.1, home_lon=120.4
    )
    session.add(second)
    user = create_user(session, "t02", "technician", "password1", technician_code="T02")
    db.flush(session)
    assert user.technician is second and user.outlet is graph.outlet


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"username": "wang"}, "username"),
        ({"username": " "}, "username"),
        ({"password": "short"}, "password"),
        ({"role": "boss"}, "role"),
        ({"role": "technician"}, "technician"),
        ({"role": "technician", "technician_code": "T01"}, "technician"),
    ],
)
def test_bad_user_is_refused(session: Session, kwargs: dict[str, str], field: str) -> None:
    """Duplicate names, short passwords, unknown roles, missing or taken technicians are refused."""
    build_graph(session)  # holds a user named "wang"
    arguments = {"username": "new", "role": "dispatcher", "password": "password1"} | kwargs
    with pytest.raises(ValidationError) as caught:
        create_user(session, **arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_unknown_technician_is_not_found(session: Session) -> None:
    """Linking an unknown technician raises NotFoundError."""
    with pytest.raises(NotFoundError):
        create_user(session, "t9", "technician", "password1", technician_code="T9")


def test_api_token_finds_its_user_until_revoked(session: Session) -> None:
    """An issued token identifies its user, is stored only as a digest, and stops when revoked."""
    user = create_user(session, "api", "dispatcher", "password1")
    token = issue_api_token(session, user, "integration")
    db.flush(session)
    assert user_for_token(session, token) is user
    assert user.tokens[0].digest == token_digest(token) and token not in user.tokens[0].digest
    assert user.tokens[0].last_used_at is not None
    user.tokens[0].revoked = True
    assert user_for_token(session, token) is None
    assert user_for_token(session, "dsp_unknown") is None
