"""Signing in and out, the language switch, and the role checks every view uses."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from dispatch.models import User
from dispatch.security import verify_password
from web.extensions import BABEL_LOCALES, db, login_manager

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Sign-in attempts allowed per username and address within the window.
LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class SessionUser:
    """The signed-in person, detached from the database session."""

    id: int
    username: str
    role: str
    technician_id: int | None
    outlet_id: int | None
    language: str | None
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        """The id Flask-Login keeps in the session cookie."""
        return str(self.id)

    @classmethod
    def of(cls, user: User) -> SessionUser:
        """Copy what the pages need from a User row."""
        return cls(user.id, user.username, str(user.role), user.technician_id, user.outlet_id,
                   user.language)


@login_manager.user_loader
def load_user(user_id: str) -> SessionUser | None:
    """Reload the signed-in user on each request; a disabled account is signed out."""
    user = db().get(User, int(user_id)) if user_id.isdigit() else None
    return SessionUser.of(user) if user is not None and user.active else None


def roles_required(*roles: str) -> Callable[[F], F]:
    """Let only signed-in users with one of ``roles`` (admins always) through; others get 403."""

    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role != "admin" and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def home_for(role: str) -> str:
    """Where a person lands after signing in."""
    return url_for("technician.day") if role == "technician" else url_for("dispatcher.day")


@bp.get("/")
def index() -> Any:
    """Send visitors to their home page, or to sign in."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user.role))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in with a username and password."""
    if request.method == "GET":
        return render_template("login.html")
    username = request.form.get("username", "").strip()
    key = f"{username.lower()}|{request.remote_addr}"
    if _too_many_attempts(key):
        flash(_("Too many sign-in attempts. Please wait a few minutes and try again."), "error")
        return render_template("login.html", username=username), 429
    user = db().scalar(select(User).where(User.username == username))
    if user is None or not user.active or not verify_password(request.form.get("password", ""),
                                                              user.password_hash):
        _attempts()[key].append(time.monotonic())
        flash(_("The username or password is not correct."), "error")
        return render_template("login.html", username=username), 401
    _attempts().pop(key, None)
    login_user(SessionUser.of(user))
    if user.language in BABEL_LOCALES and "lang" not in session:
        session["lang"] = user.language
    return redirect(_safe_next(request.args.get("next")) or home_for(str(user.role)))


@bp.post("/logout")
@login_required
def logout() -> Any:
    """Sign out."""
    logout_user()
    return redirect(url_for("auth.login"))


@bp.post("/language")
def set_language() -> Any:
    """Switch the pages' language (zh or en) and go back where the reader was."""
    lang = request.form.get("lang", "")
    if lang not in BABEL_LOCALES:
        abort(400)
    session["lang"] = lang
    return redirect(_safe_next(request.form.get("next")) or url_for("auth.index"))


def _attempts() -> dict[str, deque[float]]:
    """Recent failed sign-ins per username and address (per app, so tests stay apart)."""
    return current_app.extensions.setdefault("login_attempts", defaultdict(deque))


def _too_many_attempts(key: str) -> bool:
    window = _attempts()[key]
    cutoff = time.monotonic() - LOGIN_WINDOW_SECONDS
    while window and window[0] < cutoff:
        window.popleft()
    return len(window) >= LOGIN_ATTEMPTS


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths are followed after signing in (no open redirects)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target
