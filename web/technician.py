"""The technician's pages (phone first): the day's visits in order, a visit with its scripts,
status buttons and service record, and the inbox."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from dispatch import db as dispatch_db
from dispatch import calllist, fieldwork
from dispatch import models as m
from dispatch.errors import ConflictError, DispatchError, NotFoundError
from dispatch.notify import delivered_text, inbox as notify_inbox
from dispatch.tasks import delay_notices
from dispatch.timeutil import utc_to_local
from web import clock
from web.auth import roles_required
from web.extensions import current_language, db
from web.labels import label

bp = Blueprint("technician", __name__, url_prefix="/tech")

#: Scripts a technician reads on a visit, in the order of the day's work.
VISIT_SCRIPTS = ("reconfirmation", "delay_notice", "confirmation", "completion")
#: How late the delay script may say the technician will be (minutes).
DELAY_CHOICES = (15, 30, 45, 60, 90)
DEFAULT_DELAY = 30


def _technician() -> m.Technician:
    """The signed-in technician's record (404 when the account is not linked to one)."""
    if current_user.technician_id is None:
        abort(404)
    tech = db().get(m.Technician, current_user.technician_id)
    if tech is None:
        abort(404)
    return tech


def _visit(visit_id: int, tech: m.Technician) -> m.Visit:
    """The technician's own visit; any other id answers 404."""
    try:
        return fieldwork.assigned_visit(db(), visit_id, tech.id)
    except NotFoundError:
        abort(404)


@bp.get("/")
@roles_required("technician")
def day() -> Any:
    """The signed-in technician's visits today (or on ``?date=``), in the order of the plan."""
    tech = _technician()
    today = utc_to_local(clock.now(), tech.outlet.timezone).date()
    if request.args.get("date"):
        try:
            today = date.fromisoformat(request.args["date"])
        except ValueError:
            abort(400)
    cards = fieldwork.day_cards(db(), tech.id, today)
    unread = len(notify_inbox(db(), tech))
    return render_template("technician/day.html", tech=tech, day=today, cards=cards,
                           label=label, unread=unread)


@bp.get("/visit/<int:visit_id>")
@roles_required("technician")
def visit(visit_id: int) -> Any:
    """One visit: customer, work, scripts in the customer's language, status and record."""
    tech = _technician()
    row = _visit(visit_id, tech)
    delay = _delay_minutes(request.args.get("late"))
    # The delay the customer is (to be) told of, unless the technician picks another.
    notice = None if request.args.get("late") else delay_notices(db(), [row.id]).get(row.id)
    return render_template(
        "technician/visit.html", tech=tech, visit=row, ticket=row.ticket,
        customer=row.ticket.customer, product=row.ticket.product, label=label,
        scripts=_scripts(row, tech, delay, notice), delay=delay, delay_choices=DELAY_CHOICES,
        allowed={str(s) for s in fieldwork.allowed_next(row)},
        reasons=_reasons(), record=fieldwork.record_of(db(), row),
        charge=fieldwork.charge_summary(row), eta=fieldwork.planned_arrival(db(), row),
        geo=fieldwork.geo_uri(row.ticket.customer.lat, row.ticket.customer.lon,
                              f"{row.ticket.customer.district}{row.ticket.customer.address}"),
        zone=row.outlet.timezone, local=lambda dt: utc_to_local(dt, row.outlet.timezone)
        if dt else None)


@bp.post("/visit/<int:visit_id>/status")
@roles_required("technician")
def status(visit_id: int) -> Any:
    """Move the visit one step (en route, arrived, done, could not finish)."""
    tech = _technician()
    row = _visit(visit_id, tech)
    try:
        fieldwork.change_status(
            db(), row, request.form.get("to", ""), technician_id=tech.id,
            actor=current_user.username, reason=request.form.get("reason") or None,
            note=request.form.get("note", ""),
            expected_version=_int(request.form.get("version")))
        dispatch_db.commit(db())
    except ConflictError:
        db().rollback()
        flash(_("This visit was changed meanwhile (perhaps a double tap). Check it and try "
                "again."), "error")
    except DispatchError as exc:
        db().rollback()
        flash(exc.message(current_language()), "error")
    else:
        flash(_("Status saved: %(status)s", status=label(str(row.status))), "ok")
        if row.status in (m.VisitStatus.DONE, m.VisitStatus.NOT_FINISHED, m.VisitStatus.NO_SHOW):
            return redirect(url_for("technician.day"))
    return redirect(url_for("technician.visit", visit_id=visit_id))


@bp.post("/visit/<int:visit_id>/record")
@roles_required("technician")
def record(visit_id: int) -> Any:
    """Save the service record (fault, cause, parts, work done, customer verification)."""
    tech = _technician()
    row = _visit(visit_id, tech)
    form = request.form
    try:
        data = fieldwork.RecordInput(
            fault_found=form.get("fault_found", ""), cause=form.get("cause", ""),
            parts_used=fieldwork.parse_parts(form.get("parts_used", "")),
            work_done=form.get("work_done", ""),
            customer_verified=form.get("customer_verified") == "1",
            verified_name=form.get("verified_name", ""), rating=_int(form.get("rating")),
            feedback=form.get("feedback", ""))
        fieldwork.save_record(db(), row, tech.id, data)
        dispatch_db.commit(db())
    except DispatchError as exc:
        db().rollback()
        flash(exc.message(current_language()), "error")
    else:
        flash(_("Service record saved."), "ok")
    return redirect(url_for("technician.visit", visit_id=visit_id) + "#record")


@bp.get("/inbox")
@roles_required("technician")
def inbox() -> Any:
    """Messages for the technician (plan changes, handovers), newest first."""
    tech = _technician()
    messages = []
    for note in notify_inbox(db(), tech):
        subject, text = delivered_text(note)
        when = note.sent_at or note.created_at
        messages.append({"subject": subject or note.template, "text": text,
                         "at": utc_to_local(when, tech.outlet.timezone)})
    return render_template("technician/inbox.html", tech=tech, messages=messages)


def _scripts(row: m.Visit, tech: m.Technician, delay: int,
             notice: m.Task | None = None) -> list[dict[str, str]]:
    """Each script in the customer's language; a script that cannot be made says why. The
    delay script gives the arrival of the visit's delay notice when there is one, else the
    planned arrival plus the minutes late chosen."""
    from dispatch.scripts import render_script

    now = clock.now()
    arrival = fieldwork.planned_arrival(db(), row)
    chosen = {"new_arrival": max(now, arrival or now) + timedelta(minutes=delay),
              "cause": "traffic"}
    extras: dict[str, dict[str, Any]] = {
        "reconfirmation": {"arrival": arrival} if arrival else {},
        "delay_notice": chosen | (calllist.script_extra(notice) if notice is not None else {}),
    }
    scripts = []
    for kind in VISIT_SCRIPTS:
        try:
            script = render_script(db(), row, kind, now=now,
                                   extra={**extras.get(kind, {}), "technician": tech.name})
            scripts.append({"kind": kind, "title": script.title, "text": script.text})
        except DispatchError as exc:
            scripts.append({"kind": kind, "title": kind, "text": exc.message(current_language())})
    return scripts


def _reasons() -> list[tuple[str, str]]:
    index = 0 if current_language() == "zh" else 1
    return [(code, texts[index]) for code, texts in fieldwork.NOT_FINISHED_REASONS.items()]


def _delay_minutes(text: str | None) -> int:
    value = _int(text)
    return value if value in DELAY_CHOICES else DEFAULT_DELAY


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None
