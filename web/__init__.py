"""The web application: dispatcher pages, technician pages and (later) the JSON API.

Thin over ``dispatch``: it parses requests, checks roles, calls the application and renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from web import auth, board, booking, calls, dispatcher, technician
from web.api import init_api
from web.extensions import init_extensions
from web.settings import apply_settings


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask application (configuration: defaults, instance folder, environment,
    then ``overrides``, which tests use)."""
    app = Flask(__name__, instance_relative_config=False)
    apply_settings(app, overrides)
    init_extensions(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dispatcher.bp)
    app.register_blueprint(technician.bp)
    init_api(app)
    app.register_blueprint(booking.bp)
    app.register_blueprint(calls.bp)
    app.register_blueprint(board.bp)
    app.register_blueprint(board.leaflet)
    return app
