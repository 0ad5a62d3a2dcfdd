"""Flask extensions, the per-request database session, and the security headers."""

from __future__ import annotations

from flask import Flask, g, request, session
from flask_babel import Babel
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session

from dispatch.db import make_engine, session_factory

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()

#: Babel reads "zh_CN" as "zh_Hans_CN"; the catalogue folder carries that name.
BABEL_LOCALES = {"zh": "zh_Hans_CN", "en": "en"}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)


def init_extensions(app: Flask) -> None:
    """Attach the database, login, CSRF, translations and security headers to the app."""
    app.extensions["dispatch_sessions"] = session_factory(make_engine(app.config["DATABASE_URL"]))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    app.teardown_appcontext(_close_session)
    app.after_request(_security_headers)
    app.context_processor(lambda: {"lang": current_language()})


def db() -> Session:
    """The request's database session (opened on first use, closed at teardown)."""
    if "db" not in g:
        from flask import current_app

        g.db = current_app.extensions["dispatch_sessions"]()
    return g.db


def current_language() -> str:
    """The reader's language: their choice, their account's, or the browser's; "zh" or "en"."""
    chosen = session.get("lang")
    if chosen in BABEL_LOCALES:
        return chosen
    if getattr(current_user, "is_authenticated", False) and current_user.language in BABEL_LOCALES:
        return current_user.language
    return request.accept_languages.best_match(list(BABEL_LOCALES), default="zh") or "zh"


def select_locale() -> str:
    """The Babel locale for the current request."""
    return BABEL_LOCALES[current_language()]



def _close_session(_exc: BaseException | None) -> None:
    sess = g.pop("db", None)
    if sess is not None:
        sess.close()


def _security_headers(response):  # type: ignore[no-untyped-def]
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "geolocation=(self), camera=()")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
