"""Small valid object graphs for database tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.security import hash_password

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2025, 3, 10)


def local(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    """Return the Shanghai wall time ``hour:minute`` on ``day`` as an aware datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI)


@dataclass
class Graph:
    """One row in every table, all linked and valid."""

    outlet: m.Outlet
    technician: m.Technician
    shift: m.TechnicianShift
    customer: m.Customer
    product: m.CustomerProduct
    ticket: m.ServiceTicket
    visit: m.Visit
    plan: m.Plan
    user: m.User


def build_graph(session: Session) -> Graph:
    """Add a small, fully valid graph of records to ``session`` and flush it."""
    skill = m.Skill(code="ac_repair", name_zh="空调维修", name_en="AC repair")
    outlet = m.Outlet(
        code="QD01", name="青岛市南网点", name_en="Qingdao Shinan", address="香港中路 1 号",
        lat=36.06, lon=120.38, phone="0532-0000000",
    )
    technician = m.Technician(
        code="T01", outlet=outlet, name="王师傅", home_lat=36.07, home_lon=120.40,
        skills=[m.TechnicianSkill(skill=skill, level=2)],
    )
    shift = m.TechnicianShift(
        technician=technician, day=DAY, starts_at=local(8, 30), ends_at=local(17, 30),
        lunch_window_start=local(11, 30), lunch_window_end=local(13, 30),
    )
    customer = m.Customer(
        code="C01", name="李", honorific="女士", phone="13800000000", address="福州路 8 号",
        lat=36.08, lon=120.39,
    )
    product = m.CustomerProduct(
        serial="SN-1", customer=customer, category=m.ProductCategory.AIR_CONDITIONER,
        brand="海尔", model="KFR-35", invoice_date=date(2024, 6, 1),
        repairs=[m.ProductRepair(repaired_on=date(2024, 12, 1), description="换电容")],
    )
    ticket = m.ServiceTicket(
        code="K01", customer=customer, product=product, outlet=outlet, kind=m.TicketKind.REPAIR,
        symptom="不制冷", reported_at=local(9) - timedelta(days=1), owner="disp1",
        sla_deadline=local(18),
    )
    visit = m.Visit(
        code="V01", ticket=ticket, outlet=outlet, day=DAY, duration_minutes=60,
        windows=[m.VisitWindow(starts_at=local(9), ends_at=local(11))],
        skills=[m.VisitSkill(skill=skill, min_level=1)],
        events=[m.ConfirmationEvent(
            from_status=m.ConfirmationStatus.UNCONFIRMED,
            to_status=m.ConfirmationStatus.CONFIRMED, actor="disp1",
            at=local(9) - timedelta(hours=20),
        )],
    )
    plan = m.Plan(outlet=outlet, day=DAY, number=1, created_by="job")
    plan.stops = [m.PlanStop(
        technician=technician, sequence=0, kind=m.StopKind.VISIT, visit=visit,
        arrival_at=local(9), start_at=local(9), end_at=local(10), travel_seconds=600,
    )]
    plan.unassigned = []
    record = m.ServiceRecord(visit=visit, technician=technician, rating=5, parts_used=["电容"])
    notification = m.Notification(
        recipient_kind=m.RecipientKind.CUSTOMER, recipient_id=1, template="confirm",
        not_before=local(10), latest_useful=local(12), idempotency_key="confirm:V01",
    )
    user = m.User(
        username="wang", password_hash=hash_password("password1", n=2**4),
        role=m.Role.TECHNICIAN, technician=technician,
    )
    audit = m.AuditEvent(
        actor="disp1", action="visit.confirm", entity_type="visit", entity_id="V01", after={}
    )
    session.add_all([plan, shift, record, notification, user, audit])
    session.flush()
    return Graph(outlet, technician, shift, customer, product, ticket, visit, plan, user)
