"""Booking (dispatcher, desktop): find or create the customer, the request, the ranked slots,
the confirmation script and the customer's answer."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from dispatch import booking
from dispatch import db as dispatch_db
from dispatch import models as m
from dispatch.dayview import outlets
from dispatch.errors import DispatchError, ValidationError
from dispatch.fieldwork import charge_summary
from dispatch.geocoding import geocoder_from_config
from dispatch.timeutil import utc_to_local
from web import clock
from web.auth import roles_required
from web.extensions import current_language, db
from web.labels import label

bp = Blueprint("booking", __name__, url_prefix="/booking")

KINDS = [kind.value for kind in m.TicketKind]
CATEGORIES = [category.value for category in m.ProductCategory]


@bp.get("/")
@roles_required("dispatcher", "manager")
def search() -> Any:
    """Find the caller by phone or name, or start with a new customer."""
    query = request.args.get("q", "").strip()
    found = booking.find_customers(db(), query) if query else []
    return render_template("booking/search.html", query=query, customers=found, label=label)


@bp.route("/new", methods=["GET", "POST"])
@roles_required("dispatcher", "manager")
def new() -> Any:
    """The request form: customer (chosen or new), product (owned or new), kind and symptom."""
    customer = _customer(request.values.get("customer"))
    if request.method == "POST":
        try:
            visit = _create(request.form, customer)
            dispatch_db.commit(db())
        except DispatchError as exc:
            db().rollback()
            flash(exc.message(current_language()), "error")
            customer = _customer(request.values.get("customer"))
        else:
            return redirect(url_for("booking.visit", visit_id=visit.id))
    return render_template(
        "booking/new.html", customer=customer, form=request.form, kinds=KINDS,
        categories=CATEGORIES, outlets=outlets(db()), default_outlet=current_user.outlet_id,
        products=booking.customer_products(customer) if customer else [], label=label), \
        (400 if request.method == "POST" else 200)


@bp.get("/<int:visit_id>")
@roles_required("dispatcher", "manager")
def visit(visit_id: int) -> Any:
    """The booked request with its ranked slots; a chosen slot shows the script to read."""
    row = _visit(visit_id)
    now = clock.now()
    choice = _choice(request.args.get("slot"))
    slots = booking.slot_suggestions(db(), row, now=now)
    script = _script(row, choice, request.args.get("script_lang")) if choice else None
    return render_template(
        "booking/visit.html", visit=row, ticket=row.ticket, customer=row.ticket.customer,
        product=row.ticket.product, slots=slots, choice=choice,
        chosen_key=request.args.get("slot", ""), script=script, charge=charge_summary(row),
        events=list(reversed(row.events)), label=label, zone=row.outlet.timezone,
        local=lambda dt: utc_to_local(dt, row.outlet.timezone) if dt else None)


@bp.post("/<int:visit_id>/answer")
@roles_required("dispatcher", "manager")
def answer(visit_id: int) -> Any:
    """Record the customer's answer: confirmed (with the slot), declined or unreachable."""
    row = _visit(visit_id)
    slot = request.form.get("slot", "")
    try:
        booking.record_answer(
            db(), row, request.form.get("answer", ""), actor=current_user.username,
            choice=booking.parse_slot(slot) if slot else None,
            charge_explained=request.form.get("charge_explained") == "1",
            note=request.form.get("note", ""))
        dispatch_db.commit(db())
    except DispatchError as exc:
        db().rollback()
        flash(exc.message(current_language()), "error")
        return redirect(url_for("booking.visit", visit_id=visit_id, slot=slot or None))
    flash(_("The answer is recorded: %(status)s", status=label(str(row.confirmation_status))),
          "ok")
    return redirect(url_for("booking.visit", visit_id=visit_id))


def _visit(visit_id: int) -> m.Visit:
    row = db().get(m.Visit, visit_id)
    if row is None:
        abort(404)
    return row


def _customer(text: str | None) -> m.Customer | None:
    if not text:
        return None
    if not text.isdigit():
        abort(400)
    customer = db().get(m.Customer, int(text))
    if customer is None:
        abort(404)
    return customer


def _choice(text: str | None) -> booking.SlotChoice | None:
    if not text:
        return None
    try:
        return booking.parse_slot(text)
    except ValidationError:
        abort(400)


def _script(row: m.Visit, choice: booking.SlotChoice, lang: str | None) -> Any:
    """The confirmation script for the chosen slot (customer's language unless asked)."""
    from dispatch.scripts import render_script

    extra: dict[str, Any] = {"window": booking.slot_window(row.outlet, choice)}
    if choice.technician_id is not None:
        technician = db().get(m.Technician, choice.technician_id)
        if technician is not None:
            extra["technician"] = technician.name
    chosen = lang if lang in ("zh", "en") else None
    try:
        return render_script(db(), row, "confirmation", chosen, now=clock.now(),
                             extra=extra)
    except DispatchError as exc:
        return {"title": _("Confirmation call"), "text": exc.message(current_language()),
                "lang": current_language()}


def _create(form: MultiDict[str, str], customer: m.Customer | None) -> m.Visit:
    """Create the customer (if new), the product (if new), the ticket and the visit."""
    outlet = db().get(m.Outlet, _number(form, "outlet", int) or 0)
    if outlet is None:
        raise ValidationError("choose the outlet", "请选择网点", field="outlet")
    if customer is None:
        customer = booking.create_customer(db(), booking.CustomerData(
            name=form.get("name", ""), phone=form.get("phone", ""),
            address=form.get("address", ""), honorific=form.get("honorific", ""),
            phone_alt=form.get("phone_alt", ""), district=form.get("district", ""),
            lat=_number(form, "lat", float), lon=_number(form, "lon", float),
            language=form.get("language", "zh")), geocoder=geocoder_from_config())
    product = _product(form, customer)
    return booking.create_request(db(), outlet, customer, product, booking.RequestData(
        kind=form.get("kind", ""), symptom=form.get("symptom", ""),
        duration_minutes=_number(form, "duration_minutes", int),
        priority=_number(form, "priority", int) or 2), actor=current_user.username)


def _product(form: MultiDict[str, str], customer: m.Customer) -> m.CustomerProduct | None:
    choice = form.get("product", "new")
    if choice not in ("new", ""):
        product = db().get(m.CustomerProduct, _number(form, "product", int) or 0)
        if product is None or product.customer_id != customer.id:
            raise ValidationError("choose one of the customer's products",
                                  "请选择该客户名下的产品", field="product")
        return product
    if not form.get("brand") and not form.get("model"):
        return None
    return booking.add_product(db(), customer, booking.ProductData(
        category=form.get("category", ""), brand=form.get("brand", ""),
        model=form.get("model", ""), serial=form.get("serial", ""),
        invoice_date=_date(form.get("invoice_date", ""))))


def _number(form: MultiDict[str, str], name: str, kind: type) -> Any:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not a number", f"{text!r} 不是数字",
                              field=name) from exc


def _date(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not a date (YYYY-MM-DD)",
                              f"{text!r} 不是日期（年-月-日）", field="invoice_date") from exc
