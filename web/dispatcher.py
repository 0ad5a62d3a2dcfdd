"""The dispatcher's pages (desktop): the day's visits per outlet."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, abort, render_template, request

from dispatch.dayview import day_visits, outlets
from dispatch.timeutil import utc_to_local
from web.auth import roles_required
from web.extensions import db
from web.labels import label

bp = Blueprint("dispatcher", __name__, url_prefix="/dispatcher")


@bp.get("/")
@roles_required("dispatcher", "manager")
def day() -> Any:
    """The visits of one outlet on one day (today in the outlet's zone by default)."""
    all_outlets = outlets(db())
    if not all_outlets:
        return render_template("dispatcher/day.html", outlets=[], outlet=None, rows=[], day=None)
    outlet = _chosen_outlet(all_outlets, request.args.get("outlet"))
    chosen_day = _chosen_day(request.args.get("date"), outlet.timezone)
    rows = day_visits(db(), outlet, chosen_day)
    return render_template(
        "dispatcher/day.html",
        outlets=all_outlets,
        outlet=outlet,
        day=chosen_day,
        rows=rows,
        label=label,
        confirmed=sum(r.confirmation in ("confirmed", "reconfirmed") for r in rows),
        planned=sum(r.technician is not None for r in rows),
    )


def _chosen_outlet(all_outlets: list, code: str | None) -> Any:
    if not code:
        return all_outlets[0]
    for outlet in all_outlets:
        if outlet.code == code:
            return outlet
    abort(404)


def _chosen_day(text: str | None, tz: str) -> date:
    if not text:
        return utc_to_local(datetime.now(UTC), tz).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(400)

