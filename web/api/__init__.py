"""The JSON API at /api/v1: bearer tokens, JSON errors, an OpenAPI 3.1 document.

Thin like the pages: it validates, authorises, calls ``dispatch`` and serialises.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

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
    app.register_error_handler(404, _json_under_api)
    app.register_error_handler(405, _json_under_api)


def _json_under_api(error: HTTPException) -> Any:
    """URLs under /api/v1 that match no route answer JSON too; the pages keep their own."""
    if request.path.startswith(f"{bp.url_prefix}/"):
        return errors.http_error(error)
    return error
