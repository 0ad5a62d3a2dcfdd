"""The dispatcher's board (desktop): map, timeline, unassigned visits, KPIs and plan actions.

Thin over ``dispatch``: the read model is ``dispatch.boardview``, edits are ``dispatch.edits``,
background solves ``dispatch.solvejobs`` and publishing ``dispatch.planning.publish_plan``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from dispatch import db as dispatch_db
from dispatch import models as m
from dispatch.boardview import Board, load_board
from dispatch.dayview import outlets
from dispatch.edits import MoveCost, move_visit, pin_visit, preview_move
from dispatch.errors import ConflictError, DispatchError, NotFoundError, ValidationError
from dispatch.planning import publish_plan
from dispatch.solvejobs import active_job, job_status, job_view, request_stop, start_solve
from dispatch.timeutil import local_time_to_utc, utc_to_local
from solver import SolveParams
from web.auth import roles_required
from web.board_timeline import timeline
from web.extensions import CONTENT_SECURITY_POLICY, current_language, db
from web.labels import label

bp = Blueprint("board", __name__, url_prefix="/board")
leaflet = Blueprint("leaflet", __name__, url_prefix="/vendor/leaflet")

ROLES = ("dispatcher", "manager")
DEFAULT_TIME_LIMIT = 10.0


# ---------------------------------------------------------------------------------------------
# Pages and data
# ---------------------------------------------------------------------------------------------


@bp.get("/")
@roles_required(*ROLES)
def board() -> Any:
    """The board of one outlet-day (today in the outlet's zone by default)."""
    all_outlets = outlets(db())
    if not all_outlets:
        return render_template("board/board.html", outlets=[], outlet=None, board=None)
    outlet = _chosen_outlet(all_outlets, request.args.get("outlet"))
    day = _chosen_day(request.args.get("date"), outlet.timezone)
    view = load_board(db(), outlet, day, _int_arg("plan"))
    job = active_job(db(), outlet.id, day)
    response = current_app.make_response(render_template(
        "board/board.html", outlets=all_outlets, outlet=outlet, day=day, board=view,
        lanes=timeline(view), label=label, job=job, moves=_move_choices(view),
        time_limit=_time_limit()))
    response.headers["Content-Security-Policy"] = _csp_with_tiles()
    return response


@bp.get("/map.json")
@roles_required(*ROLES)
def map_data() -> Any:
    """The map of the board's plan: routes with colours and numbered stops, unassigned visits."""
    outlet = _outlet_by_code(request.args.get("outlet"))
    day = _chosen_day(request.args.get("date"), outlet.timezone)
    view = load_board(db(), outlet, day, _int_arg("plan"))
    return jsonify(_map_json(view))


def _map_json(view: Board) -> dict[str, Any]:
    lang = current_language()
    routes = []
    points = [(view.outlet.lat, view.outlet.lon)]
    for lane in view.lanes:
        stops = [{
            "n": s.number, "visit_id": s.visit_id, "code": s.code, "customer": s.customer,
            "address": s.address, "lat": s.lat, "lon": s.lon, "window": _window_text(s),
            "eta": s.arrival.strftime("%H:%M"), "start": s.start.strftime("%H:%M"),
            "status": label(s.status), "late": s.late_seconds > 0 or s.window_broken,
        } for s in lane.visits]
        points += [(s["lat"], s["lon"]) for s in stops]
        if stops:
            points.append((lane.start_lat, lane.start_lon))
        routes.append({"technician_id": lane.technician_id, "code": lane.code,
                       "name": lane.name, "colour": lane.colour,
                       "start": [lane.start_lat, lane.start_lon], "stops": stops})
    unassigned = [{"visit_id": u.visit_id, "code": u.code, "customer": u.customer,
                   "lat": u.lat, "lon": u.lon, "window": _spans_text(u.windows),
                   "reason": u.reason_zh if lang == "zh" else u.reason_en}
                  for u in view.unassigned]
    points += [(u["lat"], u["lon"]) for u in unassigned]
    return {
        "outlet": {"code": view.outlet.code, "lat": view.outlet.lat, "lon": view.outlet.lon,
                   "name": view.outlet.name if lang == "zh" else view.outlet.name_en},
        "plan": _plan_json(view),
        "tiles": _tiles(),
        "routes": routes,
        "unassigned": unassigned,
        "bounds": [[min(p[0] for p in points), min(p[1] for p in points)],
                   [max(p[0] for p in points), max(p[1] for p in points)]],
        "labels": {"window": _("Agreed window"), "eta": _("Planned arrival"), "status": _("Status"),
                   "unassigned": _("Not planned"), "outlet": _("Outlet"),
                   "start": _("Start of service")},
    }


def _plan_json(view: Board) -> dict[str, Any] | None:
    if view.plan is None:
        return None
    return {"id": view.plan.id, "number": view.plan.number, "status": str(view.plan.status),
            "version": view.plan.version}


def _tiles() -> dict[str, str] | None:
    url = current_app.config.get("TILE_URL")
    if not url:
        return None
    return {"url": str(url), "attribution": str(current_app.config.get("TILE_ATTRIBUTION", ""))}


def _csp_with_tiles() -> str:
    """The site's policy, letting map tiles come from the configured tile server."""
    url = current_app.config.get("TILE_URL")
    if not url:
        return CONTENT_SECURITY_POLICY
    parts = urlsplit(str(url))
    # "{s}.tile.example.org" names a family of sub-domains: allow them all.
    host = parts.netloc.replace("{s}.", "*.")
    return CONTENT_SECURITY_POLICY.replace(
        "img-src 'self' data:", f"img-src 'self' data: {parts.scheme}://{host}")


# ---------------------------------------------------------------------------------------------
# Solving in the background
# ---------------------------------------------------------------------------------------------


@bp.post("/solve")
@roles_required(*ROLES)
def solve() -> Any:
    """Start solving the outlet-day in the background (202 with the job for scripts)."""
    outlet = _outlet_by_code(request.form.get("outlet"))
    day = _chosen_day(request.form.get("date"), outlet.timezone)
    limit = _form_time_limit()
    job_id = start_solve(current_app.extensions["dispatch_sessions"], outlet.id, day,
                         started_by=current_user.username, time_limit=limit,
                         params=_solve_params(limit))
    if _wants_json():
        return jsonify(job_view(job_status(db(), job_id), current_language())), 202
    flash(_("Solving in the background; this page shows the progress."), "info")
    return redirect(url_for("board.board", outlet=outlet.code, date=day.isoformat()))


@bp.get("/jobs/<int:job_id>")
@roles_required(*ROLES)
def job(job_id: int) -> Any:
    """A solve job's status and progress."""
    found = job_status(db(), job_id)
    body = job_view(found, current_language())
    if found.plan_id is not None:
        body["board_url"] = url_for("board.board", outlet=found.outlet.code,
                                    date=found.day.isoformat(), plan=found.plan_id)
    return jsonify(body)


@bp.post("/jobs/<int:job_id>/stop")
@roles_required(*ROLES)
def stop_job(job_id: int) -> Any:
    """Ask a solve job to stop early."""
    found = request_stop(db(), job_id)
    dispatch_db.commit(db())
    if _wants_json():
        return jsonify(job_view(found, current_language()))
    flash(_("The solve was asked to stop."), "info")
    return redirect(url_for("board.board", outlet=found.outlet.code, date=found.day.isoformat()))


def _time_limit() -> float:
    return float(current_app.config.get("SOLVE_TIME_LIMIT", DEFAULT_TIME_LIMIT))


def _form_time_limit() -> float:
    text = request.form.get("time_limit", "").strip()
    if not text:
        return _time_limit()
    try:
        return float(text)
    except ValueError:
        raise ValidationError(f"{text!r} is not a number of seconds",
                              f"{text!r} 不是有效的秒数", field="time_limit") from None


def _solve_params(limit: float) -> SolveParams:
    """The solver's parameters; a configured solution limit makes the search deterministic."""
    solutions = current_app.config.get("SOLVE_SOLUTION_LIMIT")
    if solutions:
        return SolveParams(time_limit=None, solution_limit=int(solutions))
    return SolveParams(time_limit=limit)


# ---------------------------------------------------------------------------------------------
# Hand edits: move (with its price first), pin, publish
# ---------------------------------------------------------------------------------------------


@bp.get("/move")
@roles_required(*ROLES)
def preview() -> Any:
    """What moving a visit would cost, with a form to confirm it."""
    plan = _plan(_int_arg("plan"))
    visit_id = _required_int(request.args.get("visit"), "visit")
    tech_id = _optional_int(request.args.get("technician"), "technician")
    number = _optional_int(request.args.get("number"), "number")  # 1-based, from the plain form
    position = number - 1 if number is not None else _position(request.args.get("position"))
    cost = preview_move(db(), plan, visit_id, tech_id, position)
    if _wants_json():
        return jsonify(_cost_json(cost, plan))
    return render_template("board/move.html", plan=plan, cost=cost, lang=current_language(),
                           technician=db().get(m.Technician, tech_id) if tech_id else None,
                           minutes=_minutes)


@bp.post("/move")
@roles_required(*ROLES)
def move() -> Any:
    """Move a visit (after its price was shown); a stale plan version answers 409."""
    plan = _plan(_required_int(request.form.get("plan"), "plan"))
    changed = move_visit(
        db(), plan, _required_int(request.form.get("visit"), "visit"),
        _optional_int(request.form.get("technician"), "technician"),
        _position(request.form.get("position")),
        expected_version=_required_int(request.form.get("version"), "version"),
        actor=current_user.username)
    dispatch_db.commit(db())
    if changed.id != plan.id:
        flash(_("The published plan is unchanged; your change is in the new draft #%(number)s.",
                number=changed.number), "info")
    else:
        flash(_("The visit was moved."), "info")
    return redirect(_board_url(changed))


@bp.post("/pin")
@roles_required(*ROLES)
def pin() -> Any:
    """Pin a visit to a technician and/or a start range, or unpin it (both empty)."""
    visit_id, version = _visit_and_version()
    visit = _visit(visit_id)
    tech_id = _optional_int(request.form.get("technician"), "technician")
    start_range = _start_range(visit, request.form.get("start_from"), request.form.get("start_to"))
    if request.form.get("unpin"):
        tech_id, start_range = None, None
    pin_visit(db(), visit.id, tech_id, start_range, expected_version=version,
              actor=current_user.username)
    dispatch_db.commit(db())
    if tech_id is None and start_range is None:
        flash(_("Visit %(code)s is no longer pinned.", code=visit.code), "info")
    else:
        flash(_("Visit %(code)s is pinned; the next solve keeps it so.", code=visit.code), "info")
    return redirect(_return_url(visit.outlet.code, visit.day))


@bp.post("/publish")
@roles_required(*ROLES)
def publish() -> Any:
    """Publish a plan; a plan changed meanwhile answers 409 and stays as it is."""
    plan = _plan(_required_int(request.form.get("plan"), "plan"))
    publish_plan(db(), plan, _required_int(request.form.get("version"), "version"),
                 actor=current_user.username)
    dispatch_db.commit(db())
    flash(_("Plan #%(number)s is published; technicians now see it.", number=plan.number),
          "info")
    return redirect(_board_url(plan))


def _cost_json(cost: MoveCost, plan: m.Plan) -> dict[str, Any]:
    lang = current_language()
    return {
        "visit_id": cost.visit_id, "visit_code": cost.visit_code,
        "technician_id": cost.technician_id, "position": cost.position,
        "allowed": cost.allowed, "feasible": cost.feasible,
        "added_travel_seconds": cost.added_travel_seconds,
        "added_lateness_seconds": cost.added_lateness_seconds,
        "added_overtime_seconds": cost.added_overtime_seconds,
        "windows_broken": list(cost.windows_broken),
        "reason": cost.reason(lang), "warnings": list(cost.warnings(lang)),
        "plan": {"id": plan.id, "version": plan.version, "status": str(plan.status)},
        "summary": [
            _("Travel: %(delta)s min", delta=_minutes(cost.added_travel_seconds)),
            _("Lateness: %(delta)s min", delta=_minutes(cost.added_lateness_seconds)),
            _("Overtime: %(delta)s min", delta=_minutes(cost.added_overtime_seconds)),
        ],
    }


def _minutes(seconds: int) -> str:
    """Signed whole minutes, e.g. "+12" or "−3" or "0"."""
    value = round(seconds / 60)
    return f"+{value}" if value > 0 else ("0" if value == 0 else f"−{-value}")


# ---------------------------------------------------------------------------------------------
# Errors: one mapping for the board's actions
# ---------------------------------------------------------------------------------------------


@bp.errorhandler(ConflictError)
def conflict(error: ConflictError) -> Any:
    """A concurrent change: 409 with a clear message, nothing overwritten."""
    return _error_response(error, 409, _("Someone else changed this plan meanwhile"))


@bp.errorhandler(NotFoundError)
def not_found(error: NotFoundError) -> Any:
    """A record named in the request does not exist."""
    return _error_response(error, 404, _("This record does not exist"))


@bp.errorhandler(ValidationError)
def invalid(error: ValidationError) -> Any:
    """Bad input or a refused edit: 422 with the reason."""
    return _error_response(error, 422, _("This cannot be done"))


@bp.errorhandler(DispatchError)
def failed(error: DispatchError) -> Any:
    """Any other application error."""
    return _error_response(error, 400, _("This cannot be done"))


def _error_response(error: DispatchError, status: int, title: str) -> Any:
    db().rollback()
    message = error.message(current_language())
    if _wants_json():
        return jsonify({"error": title, "message": message, "status": status}), status
    back = request.form.get("back") or request.args.get("back") or url_for("board.board")
    return render_template("board/error.html", title=title, message=message,
                           back=back if back.startswith("/") and not back.startswith("//")
                           else url_for("board.board"), status=status), status


# ---------------------------------------------------------------------------------------------
# Leaflet, served from the installed package (no CDN)
# ---------------------------------------------------------------------------------------------


@leaflet.get("/<path:filename>")
def leaflet_file(filename: str) -> Any:
    """A file of Leaflet 1.9.4 from the django-js-lib-leaflet package."""
    folder = files("js_lib_leaflet") / "static" / "js_lib_leaflet"
    return send_from_directory(str(folder), filename, max_age=86400)


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > \
        request.accept_mimetypes["text/html"]


def _chosen_outlet(all_outlets: list[m.Outlet], code: str | None) -> m.Outlet:
    if not code:
        mine = getattr(current_user, "outlet_id", None)
        return next((o for o in all_outlets if o.id == mine), all_outlets[0])
    for outlet in all_outlets:
        if outlet.code == code:
            return outlet
    abort(404)


def _outlet_by_code(code: str | None) -> m.Outlet:
    outlet = db().scalar(select(m.Outlet).where(m.Outlet.code == (code or "")))
    if outlet is None:
        abort(404)
    return outlet


def _chosen_day(text: str | None, tz: str) -> date:
    if not text:
        return utc_to_local(datetime.now(UTC), tz).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(400)


def _int_arg(name: str) -> int | None:
    return _optional_int(request.args.get(name), name)


def _optional_int(text: str | None, field: str) -> int | None:
    if text is None or not text.strip():
        return None
    return _required_int(text, field)


def _required_int(text: str | None, field: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise ValidationError(f"{text!r} is not a whole number", f"{text!r} 不是整数",
                              field=field) from None


def _visit_and_version() -> tuple[int, int]:
    """The visit and the version the form saw: "id:version" in one field, or two fields."""
    text = request.form.get("visit", "")
    if ":" in text:
        visit, version = text.split(":", 1)
        return _required_int(visit, "visit"), _required_int(version, "version")
    return _required_int(text, "visit"), _required_int(request.form.get("version"), "version")


def _position(text: str | None) -> int:
    value = _optional_int(text, "position")
    return max(0, value) if value is not None else 0


def _plan(plan_id: int | None) -> m.Plan:
    plan = db().get(m.Plan, plan_id) if plan_id is not None else None
    if plan is None:
        raise NotFoundError("plan", plan_id, "方案")
    return plan


def _visit(visit_id: int) -> m.Visit:
    visit = db().get(m.Visit, visit_id)
    if visit is None:
        raise NotFoundError("visit", visit_id, "工单")
    return visit


def _start_range(visit: m.Visit, start: str | None,
                 end: str | None) -> tuple[datetime, datetime] | None:
    """A pinned start range from two local "HH:MM" fields (both empty: none)."""
    if not (start or "").strip() and not (end or "").strip():
        return None
    tz = visit.outlet.timezone
    return (local_time_to_utc(visit.day, _clock(start, "start_from"), tz),
            local_time_to_utc(visit.day, _clock(end, "start_to"), tz))


def _clock(text: str | None, field: str) -> time:
    try:
        return time.fromisoformat((text or "").strip())
    except ValueError:
        raise ValidationError(f"{text!r} is not a time like 09:30", f"{text!r} 不是 09:30 这样的时间",
                              field=field) from None


def _board_url(plan: m.Plan) -> str:
    return url_for("board.board", outlet=plan.outlet.code, date=plan.day.isoformat(),
                   plan=plan.id)


def _return_url(outlet_code: str, day: date) -> str:
    back = request.form.get("back", "")
    if back.startswith("/board") and not back.startswith("//"):
        return back
    return url_for("board.board", outlet=outlet_code, date=day.isoformat())


def _window_text(stop: Any) -> str:
    return _spans_text((stop.agreed,) if stop.agreed else stop.windows)


def _spans_text(spans: Any) -> str:
    return ", ".join(f"{a.strftime('%H:%M')}–{b.strftime('%H:%M')}" for a, b in spans)


def _move_choices(view: Board) -> list[dict[str, Any]]:
    """Every visit of the plan for the plain move form (planned first, in route order)."""
    choices = [{"id": s.visit_id, "text": f"{s.code} · {s.customer} ({lane.name} #{s.number})"}
               for lane in view.lanes for s in lane.visits]
    choices += [{"id": u.visit_id, "text": f"{u.code} · {u.customer} ({_('Not planned')})"}
                for u in view.unassigned]
    return choices
