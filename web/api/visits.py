"""Visits: list, read, create, update; slot suggestions; the technician's status and record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from dispatch import booking, fieldwork
from dispatch import db as dispatch_db
from dispatch import models as m
from dispatch.dayview import day_visits, technician_day
from dispatch.errors import NotFoundError, ValidationError
from dispatch.visit_updates import update_visit
from web.api import schemas as s
from web.api.blueprint import bp
from web.api.common import (
    body,
    query,
    today_at,
    visit_by_id,
    visit_detail,
    visit_json,
)
from web.api.spec import responses, spec
from web.api.tokens import DISPATCH_ROLES, TECHNICIAN_ROLES, actor, api_roles, current
from web.extensions import db

TAGS = ["visits"]


@bp.get("/visits")
@api_roles(*DISPATCH_ROLES, *TECHNICIAN_ROLES)
@spec.validate(query=s.VisitQuery, resp=responses(200, s.VisitList, 404, 422), tags=TAGS)
def list_visits() -> Any:
    """工单列表 / The visits of an outlet-day in plan order (a technician: their own day)."""
    args: s.VisitQuery = query(s.VisitQuery)
    session = db()
    user = current()
    if user.role == "technician":
        tech = session.get(m.Technician, user.technician_id)
        if tech is None:
            raise NotFoundError("technician", user.technician_id, "技师")
        day = args.date or today_at(tech.outlet)
        rows = technician_day(session, tech.id, day)
        outlet = tech.outlet
    else:
        if args.outlet is None:
            raise ValidationError("name the outlet (its code)", "请指定网点编号", field="outlet")
        outlet = m.find_outlet(session, args.outlet)
        day = args.date or today_at(outlet)
        rows = day_visits(session, outlet, day)
    visits = {v.id: v for v in session.scalars(
        select(m.Visit).where(m.Visit.id.in_([r.id for r in rows])))}
    return s.VisitList(outlet=outlet.code, day=day,
                       items=[s.VisitOut(**visit_json(r, visits[r.id])) for r in rows])


@bp.get("/visits/<int:visit_id>")
@api_roles(*DISPATCH_ROLES, *TECHNICIAN_ROLES)
@spec.validate(resp=responses(200, s.VisitOut, 404), tags=TAGS)
def get_visit(visit_id: int) -> Any:
    """工单详情 / One visit (a technician only their own: any other id answers 404)."""
    session = db()
    visit = _readable_visit(visit_id)
    return s.VisitOut(**visit_detail(session, visit))


@bp.post("/visits")
@api_roles(*DISPATCH_ROLES)
@spec.validate(json=s.VisitCreate, resp=responses(201, s.VisitOut, 404, 422), tags=TAGS)
def create_visit() -> Any:
    """新建工单 / A new request for a customer on file: ticket (with SLA) and unconfirmed visit."""
    data: s.VisitCreate = body(s.VisitCreate)
    session = db()
    outlet = m.find_outlet(session, data.outlet)
    customer = session.scalar(select(m.Customer).where(m.Customer.code == data.customer))
    if customer is None:
        raise NotFoundError("customer", data.customer, "客户")
    product = None
    if data.product is not None:
        product = session.scalar(select(m.CustomerProduct)
                                 .where(m.CustomerProduct.serial == data.product))
        if product is None:
            raise NotFoundError("product", data.product, "产品")
    request_data = booking.RequestData(kind=data.kind, symptom=data.symptom,
                                       duration_minutes=data.duration_minutes,
                                       skills=data.skills, priority=data.priority,
                                       channel="web")
    visit = booking.create_request(session, outlet, customer, product, request_data,
                                   actor=actor())
    dispatch_db.commit(session)
    return s.VisitOut(**visit_detail(session, visit)), 201


@bp.patch("/visits/<int:visit_id>")
@api_roles(*DISPATCH_ROLES)
@spec.validate(json=s.VisitUpdate, resp=responses(200, s.VisitOut, 404, 409, 422), tags=TAGS)
def patch_visit(visit_id: int) -> Any:
    """修改工单 / Change a visit's duration or priority, against the version read (409 if
    stale)."""
    data: s.VisitUpdate = body(s.VisitUpdate)
    session = db()
    visit = visit_by_id(session, visit_id)
    update_visit(session, visit, expected_version=data.expected_version, actor=actor(),
                 duration_minutes=data.duration_minutes, priority=data.priority)
    dispatch_db.commit(session)
    return s.VisitOut(**visit_detail(session, visit))


@bp.get("/visits/<int:visit_id>/slots")
@api_roles(*DISPATCH_ROLES)
@spec.validate(query=s.SlotQuery, resp=responses(200, s.SlotList, 404, 422), tags=TAGS)
def visit_slots(visit_id: int) -> Any:
    """推荐时段 / The slots to offer for a visit, cheapest extra driving first."""
    args: s.SlotQuery = query(s.SlotQuery)
    session = db()
    visit = visit_by_id(session, visit_id)
    found = booking.slot_suggestions(session, visit, following_days=args.days, limit=args.limit)
    items = [s.SlotOut(key=x.key, day=x.day, start=x.start, end=x.end,
                       technician_id=x.technician_id, technician=x.technician,
                       planned_start=x.planned_start,
                       added_travel_seconds=x.added_travel_seconds,
                       slack_seconds=x.slack_seconds) for x in found]
    return s.SlotList(visit_id=visit.id, items=items)


@bp.post("/visits/<int:visit_id>/status")
@api_roles(*TECHNICIAN_ROLES)
@spec.validate(json=s.StatusChange, resp=responses(200, s.VisitOut, 404, 409, 422), tags=TAGS)
def change_status(visit_id: int) -> Any:
    """更新状态 / A technician's status step for their own visit (another's answers 404)."""
    data: s.StatusChange = body(s.StatusChange)
    session = db()
    tech_id = _own_technician_id()
    visit = fieldwork.assigned_visit(session, visit_id, tech_id)
    fieldwork.change_status(session, visit, data.status, technician_id=tech_id, actor=actor(),
                            reason=data.reason, note=data.note,
                            expected_version=data.expected_version)
    dispatch_db.commit(session)
    return s.VisitOut(**visit_detail(session, visit))


@bp.put("/visits/<int:visit_id>/record")
@api_roles(*TECHNICIAN_ROLES)
@spec.validate(json=s.RecordIn, resp=responses(200, s.RecordOut, 404, 422), tags=TAGS)
def put_record(visit_id: int) -> Any:
    """服务记录 / Write the service record of the technician's own visit."""
    data: s.RecordIn = body(s.RecordIn)
    session = db()
    tech_id = _own_technician_id()
    visit = fieldwork.assigned_visit(session, visit_id, tech_id)
    record = fieldwork.save_record(session, visit, tech_id, fieldwork.RecordInput(
        fault_found=data.fault_found, cause=data.cause,
        parts_used=tuple(p.model_dump() for p in data.parts_used), work_done=data.work_done,
        customer_verified=data.customer_verified, verified_name=data.verified_name,
        rating=data.rating, feedback=data.feedback))
    dispatch_db.commit(session)
    return s.RecordOut(visit_id=record.visit_id, technician_id=record.technician_id,
                       fault_found=record.fault_found, cause=record.cause,
                       parts_used=list(record.parts_used), work_done=record.work_done,
                       customer_verified=record.customer_verified,
                       verified_name=record.verified_name, rating=record.rating,
                       feedback=record.feedback)


def _own_technician_id() -> int:
    tech_id = current().technician_id
    if tech_id is None:
        raise NotFoundError("technician", current().username, "技师")
    return tech_id


def _readable_visit(visit_id: int) -> m.Visit:
    """The visit if the user may read it; a technician's view is limited to their own."""
    session = db()
    if current().role == "technician":
        return fieldwork.assigned_visit(session, visit_id, _own_technician_id())
    return visit_by_id(session, visit_id)
