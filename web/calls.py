"""The dispatcher's call list: calls and notices due now, each with its script and outcomes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from dispatch import calllist
from dispatch import db as dispatch_db
from dispatch import models as m
from dispatch.dayview import outlets
from dispatch.errors import ConflictError, DispatchError
from dispatch.timeutil import utc_to_local
from web import clock
from web.auth import roles_required
from web.extensions import current_language, db
from web.labels import label

bp = Blueprint("calls", __name__, url_prefix="/calls")

TASK_LABELS = {
    "confirmation_call": _l("Confirmation call"),
    "reconfirm_call": _l("Re-confirmation call"),
    "delay_notice": _l("Delay notice"),
    "consent_request": _l("Ask consent to a change"),
    "handover_notice": _l("Change of technician"),
    "followup_call": _l("Follow-up call"),
    "charge_notice": _l("Explain the charge"),
}


def task_label(code: str) -> str:
    """The reader's-language name of a kind of task."""
    text = TASK_LABELS.get(str(code))
    return str(text) if text is not None else label(str(code))

@bp.get("/")
@roles_required("dispatcher", "manager")
def due() -> Any:
    """The calls and notices due now for one outlet, flagged ones first."""
    all_outlets = outlets(db())
    outlet = _outlet(all_outlets, request.args.get("outlet"))
    now = clock.now()
    calls = calllist.due_calls(db(), outlet, now) if outlet else []
    return render_template(
        "calls/due.html", outlets=all_outlets, outlet=outlet, now=now,
        items=[(call, _script(call)) for call in calls], label=label, task_label=task_label,
        local=lambda dt: utc_to_local(dt, outlet.timezone) if dt and outlet else dt)


@bp.post("/<int:task_id>/outcome")
@roles_required("dispatcher", "manager")
def outcome(task_id: int) -> Any:
    """Record what came of the call; a customer who wants another time goes to booking."""
    task = db().get(m.Task, task_id)
    if task is None:
        abort(404)
    chosen = request.form.get("outcome", "")
    outlet_code = task.outlet.code
    visit_id = task.visit_id
    try:
        calllist.record_outcome(db(), task, chosen, actor=current_user.username,
                                note=request.form.get("note", ""),
                                expected_version=_int(request.form.get("version")))
        dispatch_db.commit(db())
    except ConflictError:
        db().rollback()
        flash(_("Someone else has just handled this call. The list is up to date now."), "error")
    except DispatchError as exc:
        db().rollback()
        flash(exc.message(current_language()), "error")
    else:
        flash(_("Call recorded."), "ok")
        if chosen == "wants_change" and visit_id is not None:
            return redirect(url_for("booking.visit", visit_id=visit_id))
    return redirect(url_for("calls.due", outlet=outlet_code))


def _outlet(all_outlets: list[m.Outlet], code: str | None) -> m.Outlet | None:
    if code:
        for outlet in all_outlets:
            if outlet.code == code:
                return outlet
        abort(404)
    mine = [o for o in all_outlets if o.id == current_user.outlet_id]
    return (mine or all_outlets or [None])[0]


def _script(call: calllist.DueCall) -> dict[str, str]:
    """The task's script in the customer's language; a script that cannot be made says why."""
    from dispatch.scripts import render_script

    kind = calllist.CALL_SCRIPTS[call.task.kind]
    try:
        script = render_script(db(), call.visit, kind, now=clock.now(),
                               extra=calllist.script_extra(call.task))
        return {"title": script.title, "text": script.text, "lang": script.lang}
    except DispatchError as exc:
        return {"title": task_label(call.task.kind.value), "text": exc.message(current_language()),
                "lang": current_language()}


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None
