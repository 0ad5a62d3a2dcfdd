"""Configuration of the Flask app, read when the app is created (never at import time)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from dispatch.config import database_url, load_config

_TRUE = {"1", "true", "yes", "on"}


def apply_settings(app: Flask, overrides: Mapping[str, Any] | None) -> None:
    """Fill ``app.config`` from dispatch's configuration and the overrides."""
    config = load_config()
    config.update(overrides or {})
    app.config.update(config)
    app.config["DATABASE_URL"] = database_url(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _persistent_secret(Path(config["INSTANCE_PATH"]))
    secure = str(config.get("SESSION_COOKIE_SECURE", "0")).lower() in _TRUE
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        LANGUAGES=("zh", "en"),
    )


def _persistent_secret(folder: Path) -> str:
    """A secret key kept in the instance folder, so sessions survive a restart."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
