"""The technician's pages (phone first): the day's visits in order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, Blueprint, render_template
from flask_login import current_user

from dispatch.dayview import technician_day
from dispatch.models import Technician
from dispatch.timeutil import utc_to_local
from web.auth import roles_required
from web.extensions import db
from web.labels import label

bp = Blueprint("technician", __name__, url_prefix="/tech")


@bp.get("/")
@roles_required("technician")
def day() -> Any:
    """The signed-in technician's visits today, in the order of the plan."""
    if current_user.technician_id is None:
        abort(404)
    tech = db().get(Technician, current_user.technician_id)
    if tech is None:
        abort(404)
    today = utc_to_local(datetime.now(UTC), tech.outlet.timezone).date()
    rows = technician_day(db(), tech.id, today)
    return render_template("technician/day.html", tech=tech, day=today, rows=rows, label=label)
