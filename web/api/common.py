"""Look-ups and conversions the API's views share."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask import request
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.dayview import VisitRow, day_visits
from dispatch.errors import NotFoundError, ValidationError
from dispatch.timeutil import utc_to_local


def body(model: type) -> Any:
    """The request's validated JSON body (spectree put it on the request)."""
    parsed = getattr(getattr(request, "context", None), "json", None)
    if parsed is None:
        raise ValidationError("send the body as a JSON object", "请以 JSON 对象发送请求内容",
                              field="body")
    assert isinstance(parsed, model)
    return parsed


def query(model: type) -> Any:
    """The request's validated query parameters."""
    parsed = request.context.query  # type: ignore[attr-defined]
    assert isinstance(parsed, model)
    return parsed


def today_at(outlet: m.Outlet) -> date:
    """Today in the outlet's zone."""
    return utc_to_local(datetime.now(UTC), outlet.timezone).date()


def visit_by_id(session: Session, visit_id: int) -> m.Visit:
    """The visit ``visit_id``; NotFoundError otherwise."""
    visit = session.get(m.Visit, visit_id)
    if visit is None:
        raise NotFoundError("visit", visit_id, "工单")
    return visit


def visit_json(row: VisitRow, visit: m.Visit) -> dict[str, Any]:
    """A day-list row of the visit as the ``VisitOut`` schema."""
    return {
        "id": row.id, "code": row.code, "outlet": visit.outlet.code, "day": visit.day,
        "kind": row.kind, "customer": row.customer, "phone": row.phone, "address": row.address,
        "district": row.district, "product": row.product, "category": row.category,
        "windows": [{"start": s, "end": e} for s, e in row.windows],
        "agreed": {"start": row.agreed[0], "end": row.agreed[1]} if row.agreed else None,
        "duration_minutes": row.duration_minutes, "skills": list(row.skills),
        "confirmation": row.confirmation, "status": row.status, "priority": row.priority,
        "technician_id": row.technician_id, "technician": row.technician,
        "planned_start": row.planned_start, "lat": row.lat, "lon": row.lon,
        "version": visit.version,
    }


def visit_detail(session: Session, visit: m.Visit) -> dict[str, Any]:
    """One visit as the ``VisitOut`` schema (with its place in the current plan)."""
    rows = {row.id: row for row in day_visits(session, visit.outlet, visit.day)}
    return visit_json(rows[visit.id], visit)


def local(dt: datetime | None, outlet: m.Outlet) -> datetime | None:
    """``dt`` in the outlet's zone (None stays None)."""
    return utc_to_local(dt, outlet.timezone) if dt is not None else None
