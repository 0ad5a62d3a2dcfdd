"""The JSON API at /api/v1: bearer tokens, JSON errors, an OpenAPI 3.1 document.

Thin like the pages: it validates, authorises, calls ``dispatch`` and serialises.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify

from web.api import errors, plans, visits, work  # noqa: F401  (the views register themselves)
from web.api.blueprint import bp
from web.api.spec import spec
from web.extensions import csrf

errors.register(bp)


@bp.get("/openapi.json")
def openapi() -> Any:
    """The API's OpenAPI 3.1 document."""
    return jsonify(spec.spec)


def init_api(app: Flask) -> None:
    """Mount the API on ``app``: token auth instead of cookies, so no CSRF token."""
    csrf.exempt(bp)
    app.register_blueprint(bp)
