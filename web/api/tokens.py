"""Bearer-token access to the API, with the same roles as the pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from dispatch import db as dispatch_db
from dispatch.security import user_for_token
from web.api.errors import ApiError
from web.auth import SessionUser
from web.extensions import db

F = TypeVar("F", bound=Callable[..., Any])

DISPATCH_ROLES = ("dispatcher", "manager")
TECHNICIAN_ROLES = ("technician",)


def token_user() -> SessionUser:
    """The owner of the request's bearer token; ApiError 401 without a valid one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401)
    session = db()
    user = user_for_token(session, token.strip())
    if user is None:
        raise ApiError(401, "The access token is not valid or was revoked",
                       "访问令牌无效或已被吊销")
    person = SessionUser.of(user)
    dispatch_db.commit(session)  # keeps the token's last use
    return person


def api_roles(*roles: str) -> Callable[[F], F]:
    """Let through token owners with one of ``roles`` (admins always): 401 without a valid
    token, 403 for another role. The user is ``g.api_user``; checked before the input."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = token_user()
            if user.role != "admin" and user.role not in roles:
                raise ApiError(403)
            g.api_user = user
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def current() -> SessionUser:
    """The API user of this request (set by ``api_roles``)."""
    user: SessionUser = g.api_user
    return user


def actor() -> str:
    """How the request's user is named in audit records."""
    return f"api:{current().username}"
