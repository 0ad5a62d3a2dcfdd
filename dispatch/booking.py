"""Booking a customer while on the phone: the request, the slots to offer, and the answer.

1. ``find_customers`` / ``create_customer`` / ``add_product``: who is calling and about what.
2. ``create_request``: a ServiceTicket with its SLA deadline and an unconfirmed Visit whose
   skills and duration are suggested by ``dispatch.worktypes``.
3. ``slot_suggestions``: the outlet's standard two-hour slots over the rest of today and the
   next days, ranked by the solver's insertion into each day's current plan (a confirmed visit is
   never moved by a suggestion: its agreed window is its only window).
4. ``record_answer``: confirmed (the agreed window is set through ``dispatch.confirmation``;
   a chargeable visit needs the charge explained first), declined or unreachable.

Functions flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dispatch import config, db
from dispatch import models as m
from dispatch.dayview import shown_plan
from dispatch.errors import NotFoundError, ValidationError
from dispatch.planning import PlanningInput, build_problem
from dispatch.timeutil import from_seconds, local_time_to_utc, to_seconds, utc_to_local
from dispatch.travel import TravelProvider, provider_for
from dispatch.worktypes import suggest_work
from solver import Problem, TimeWindow
from solver import Visit as SolverVisit

if TYPE_CHECKING:
    from solver.slots import SlotOption

#: The outlet's standard appointment slots (local start hour, end hour).
STANDARD_SLOTS: tuple[tuple[int, int], ...] = ((8, 10), (10, 12), (12, 14), (14, 16), (16, 18),
                                               (18, 20))
#: Days offered after today.
FOLLOWING_DAYS = 3
#: A slot today must leave the technician this long to get there.
LEAD_TIME = timedelta(minutes=45)
#: Added travel within this many seconds counts as equal, so the earlier slot ranks first.
TRAVEL_BUCKET_SECONDS = 300
#: Answers the dispatcher can record.
ANSWERS = ("confirmed", "declined", "unreachable")

PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9 \-]{4,19}$")


@dataclass(frozen=True)
class CustomerData:
    """A new customer as the dispatcher types them in."""

    name: str
    phone: str
    address: str
    honorific: str = ""
    phone_alt: str = ""
    district: str = ""
    lat: float | None = None
    lon: float | None = None
    language: str = "zh"


@dataclass(frozen=True)
class ProductData:
    """A product the customer owns, new to the records."""

    category: str
    brand: str
    model: str
    serial: str = ""
    invoice_date: date | None = None


@dataclass(frozen=True)
class RequestData:
    """What the customer asks for; duration and skills default to the suggestion."""

    kind: str
    symptom: str = ""
    duration_minutes: int | None = None
    skills: Mapping[str, int] | None = None
    priority: int = 2
    channel: str = "phone"


@dataclass(frozen=True)
class SlotSuggestion:
    """One slot to offer: the day and window (local), who would come, what it costs."""

    day: date
    start: datetime  # the slot's local start, as promised to the customer
    end: datetime
    technician_id: int
    technician: str
    planned_start: datetime  # when the technician would start, local
    added_travel_seconds: int
    slack_seconds: int

    @property
    def key(self) -> str:
        """A compact text naming the choice, for forms: "2025-03-10T08:00/10:00/12"."""
        return (f"{self.day.isoformat()}T{self.start:%H:%M}/{self.end:%H:%M}/"
                f"{self.technician_id}")


@dataclass(frozen=True)
class SlotChoice:
    """The slot the dispatcher picked, parsed back from ``SlotSuggestion.key``."""

    day: date
    start: time
    end: time
    technician_id: int | None


# ---------------------------------------------------------------------------------------------
# Customers and products
# ---------------------------------------------------------------------------------------------


def find_customers(session: Session, query: str, limit: int = 10) -> list[m.Customer]:
    """Customers whose phone (either number) or name contains ``query``; phones match on
    digits only, so "138-0000" finds 13800001111."""
    text = query.strip()
    digits = re.sub(r"\D", "", text)
    conditions = []
    if len(digits) >= 3:
        conditions += [m.Customer.phone.contains(digits), m.Customer.phone_alt.contains(digits)]
    elif text and not digits:  # a name; one Chinese character (a surname) is a fair query
        conditions.append(m.Customer.name.contains(text))
    if not conditions:
        return []
    return list(session.scalars(select(m.Customer).where(or_(*conditions))
                                .order_by(m.Customer.name, m.Customer.id).limit(limit)))


def create_customer(session: Session, data: CustomerData, *,
                    geocoder: object | None = None) -> m.Customer:
    """A new customer; without coordinates the address is geocoded when a geocoder is given
    (``dispatch.geocoding``), else the coordinates are required."""
    name, phone, address = data.name.strip(), data.phone.strip(), data.address.strip()
    _require(name, "name", "the customer's name", "客户姓名")
    _require(address, "address", "the address", "地址")
    if not PHONE_PATTERN.match(phone):
        raise ValidationError(f"{phone!r} is not a phone number", f"{phone!r} 不是有效的电话号码",
                              field="phone")
    if data.phone_alt.strip() and not PHONE_PATTERN.match(data.phone_alt.strip()):
        raise ValidationError(f"{data.phone_alt!r} is not a phone number",
                              f"{data.phone_alt!r} 不是有效的电话号码", field="phone_alt")
    lat, lon = _coordinates(data, geocoder)
    customer = m.Customer(
        code=_next_code(session, m.Customer, "C"), name=name, honorific=data.honorific.strip(),
        phone=phone, phone_alt=data.phone_alt.strip() or None, address=address,
        district=data.district.strip(), lat=lat, lon=lon, language=data.language)
    session.add(customer)
    db.flush(session)
    return customer


def add_product(session: Session, customer: m.Customer, data: ProductData) -> m.CustomerProduct:
    """Record a product the customer owns (a blank serial gets a generated one)."""
    _require(data.brand.strip(), "brand", "the brand", "品牌")
    _require(data.model.strip(), "model", "the model", "型号")
    serial = data.serial.strip()
    if serial and session.scalar(select(m.CustomerProduct.id)
                                 .where(m.CustomerProduct.serial == serial)) is not None:
        raise ValidationError(f"serial {serial} is already registered",
                              f"序列号 {serial} 已登记", field="serial")
    product = m.CustomerProduct(
        serial=serial or _next_code(session, m.CustomerProduct, "NS", column="serial"),
        customer=customer, category=data.category, brand=data.brand.strip(),
        model=data.model.strip(), invoice_date=data.invoice_date)
    session.add(product)
    db.flush(session)
    return product


def _require(value: str, field: str, what_en: str, what_zh: str) -> None:
    if not value:
        raise ValidationError(f"{what_en} is required", f"请填写{what_zh}", field=field)


def _coordinates(data: CustomerData, geocoder: object | None) -> tuple[float, float]:
    if data.lat is not None and data.lon is not None:
        if not (-90 <= data.lat <= 90 and -180 <= data.lon <= 180):
            raise ValidationError("the coordinates are not on the globe", "坐标超出范围",
                                  field="lat")
        return float(data.lat), float(data.lon)
    if geocoder is None:
        raise ValidationError(
            "give the coordinates (no geocoding server is configured)",
            "请填写经纬度（未配置地址解析服务）", field="lat")
    found = geocoder.locate(f"{data.district}{data.address}")  # type: ignore[attr-defined]
    if found is None:
        raise ValidationError(f"the address {data.address!r} could not be located; give the "
                              "coordinates", f"无法定位地址 {data.address!r}，请填写经纬度",
                              field="address")
    return float(found[0]), float(found[1])


def _next_code(session: Session, entity: type, prefix: str, column: str = "code") -> str:
    """The next free code "<prefix><number>" for ``entity`` (numbers only grow)."""
    attribute = getattr(entity, column)
    count = session.scalar(select(func.count()).select_from(entity)) or 0
    number = count + 1
    while session.scalar(select(attribute).where(attribute == f"{prefix}{number:06d}")):
        number += 1
    return f"{prefix}{number:06d}"


# ---------------------------------------------------------------------------------------------
# The request
# ---------------------------------------------------------------------------------------------


def create_request(session: Session, outlet: m.Outlet, customer: m.Customer,
                   product: m.CustomerProduct | None, request: RequestData, *, actor: str,
                   now: datetime | None = None) -> m.Visit:
    """A ticket (owned by ``actor``, first-contact ownership; SLA deadline from the rules) and
    its unconfirmed visit, dated today until a slot is agreed."""
    from dispatch.sla import response_deadline  # the rules module

    now = now or m.utcnow()
    if product is not None and product.customer_id != customer.id:
        raise ValidationError("the product belongs to another customer", "该产品不属于此客户",
                              field="product")
    if product is None and request.kind != m.TicketKind.FOLLOW_UP.value:
        raise ValidationError("choose or add the product", "请选择或新增产品", field="product")
    category = product.category if product is not None else m.ProductCategory.AIR_CONDITIONER
    suggestion = suggest_work(request.kind, category, request.symptom)
    minutes = request.duration_minutes or suggestion.duration_minutes
    if not 10 <= minutes <= 600:
        raise ValidationError("the duration must be 10 to 600 minutes", "时长应为 10 至 600 分钟",
                              field="duration_minutes")
    if not 1 <= request.priority <= 4:
        raise ValidationError("the priority must be 1 to 4", "优先级应为 1 至 4", field="priority")
    ticket = m.ServiceTicket(
        code=_next_code(session, m.ServiceTicket, "K"), customer=customer, product=product,
        outlet=outlet, kind=request.kind, symptom=request.symptom.strip(), reported_at=now,
        channel=request.channel, owner=actor, priority=request.priority,
        sla_deadline=response_deadline(outlet, now))
    visit = m.Visit(
        code=_next_code(session, m.Visit, "V"), ticket=ticket, outlet=outlet,
        day=utc_to_local(now, outlet.timezone).date(), duration_minutes=minutes,
        priority=request.priority,
        skills=_visit_skills(session, request.skills or suggestion.skills))
    session.add_all([ticket, visit])
    db.flush(session)
    session.add(m.AuditEvent(actor=actor, action="ticket.create", entity_type="ticket",
                             entity_id=str(ticket.id), after={"visit": visit.code}))
    db.flush(session)
    return visit


def _visit_skills(session: Session, skills: Mapping[str, int]) -> list[m.VisitSkill]:
    found = {s.code: s for s in session.scalars(select(m.Skill)
                                                 .where(m.Skill.code.in_(list(skills))))}
    rows = []
    for code, level in skills.items():
        if code not in found:
            raise ValidationError(f"unknown skill {code!r}", f"未知技能 {code!r}", field="skills",
                                  row=code)
        if not 1 <= int(level) <= 3:
            raise ValidationError(f"skill {code}: the level must be 1 to 3",
                                  f"技能 {code}：等级应为 1 至 3", field="skills", row=code)
        rows.append(m.VisitSkill(skill=found[code], min_level=int(level)))
    return rows


# ---------------------------------------------------------------------------------------------
# Slots
# ---------------------------------------------------------------------------------------------


def slot_suggestions(session: Session, visit: m.Visit, *, now: datetime | None = None,
                     following_days: int = FOLLOWING_DAYS, limit: int = 12,
                     travel: TravelProvider | None = None) -> list[SlotSuggestion]:
    """The standard slots of the rest of today and the next days in which the visit fits the
    day's current plan, each with its best technician, cheapest extra driving first (near-equal
    ones: earliest first)."""
    now = now or m.utcnow()
    outlet = visit.outlet
    today = utc_to_local(now, outlet.timezone).date()
    found: list[SlotSuggestion] = []
    for offset in range(following_days + 1):
        found += _day_slots(session, visit, today + timedelta(days=offset), now, travel)
    found.sort(key=lambda s: (s.added_travel_seconds // TRAVEL_BUCKET_SECONDS, s.day, s.start,
                              -s.slack_seconds))
    # One offer per slot: the best technician for it (the customer chooses a time, not a person).
    best: dict[tuple[date, datetime], SlotSuggestion] = {}
    for suggestion in found:
        best.setdefault((suggestion.day, suggestion.start), suggestion)
    return list(best.values())[:limit]


def _day_slots(session: Session, visit: m.Visit, day: date, now: datetime,
               travel: TravelProvider | None) -> list[SlotSuggestion]:
    from solver.slots import recommend_slots  # the solver stack is heavy; load it on use

    outlet = visit.outlet
    planning = build_problem(session, outlet, day, travel=travel)
    if not planning.problem.technicians:
        return []
    problem, new_visit = _with_new_visit(planning, visit, outlet, travel)
    windows = _candidate_windows(outlet, day, planning.epoch, now)
    if not windows:
        return []
    routes = _current_routes(session, planning, visit)
    suggestions = []
    for tech in problem.technicians:
        if not tech.can_do(new_visit):
            continue
        try:
            options = recommend_slots(problem, routes, replace(new_visit, pinned_technician=tech.id),
                                      [w for w, _ in windows], limit=len(windows))
        except ValueError:
            continue  # the technician's current route no longer fits the rules: offer nothing
        promised = dict(windows)
        for option in options:
            suggestions.append(_suggestion(planning, option, promised[option.window], tech.id,
                                           session))
    return suggestions


def _with_new_visit(planning: PlanningInput, visit: m.Visit, outlet: m.Outlet,
                    travel: TravelProvider | None) -> tuple[Problem, SolverVisit]:
    """The day's problem with the booked visit at the customer's place (one more matrix row)."""
    problem = planning.problem
    others = tuple(v for v in problem.visits if v.id != visit.code)
    customer = visit.ticket.customer
    points = [*planning.places, (float(customer.lat), float(customer.lon))]
    provider = travel or provider_for(outlet.speed_kmh, outlet.detour_factor,
                                      config.load_config().get("OSRM_URL"))
    durations, distances = provider.matrices(points)
    new_visit = SolverVisit(id=visit.code, location=len(points) - 1,
                            duration=visit.duration_minutes * 60,
                            skills=visit.required_skills(), priority=visit.priority)
    extended = Problem(durations=np.asarray(durations), distances=np.asarray(distances),
                       technicians=problem.technicians, visits=(*others, new_visit),
                       weights=problem.weights)
    return extended, new_visit



def _candidate_windows(outlet: m.Outlet, day: date, epoch: datetime, now: datetime
                       ) -> list[tuple[TimeWindow, tuple[datetime, datetime]]]:
    """(start window in solver seconds, promised local slot) for each slot still open."""
    earliest = now + LEAD_TIME
    windows = []
    for start_hour, end_hour in STANDARD_SLOTS:
        start = local_time_to_utc(day, time(start_hour), outlet.timezone)
        end = local_time_to_utc(day, time(end_hour), outlet.timezone)
        if end <= earliest:
            continue
        # Service starts inside the slot; a slot already begun keeps only its remaining part.
        window = TimeWindow(to_seconds(max(start, earliest), epoch), to_seconds(end, epoch))
        windows.append((window, (utc_to_local(start, outlet.timezone),
                                 utc_to_local(end, outlet.timezone))))
    return windows


def _current_routes(session: Session, planning: PlanningInput,
                    visit: m.Visit) -> dict[str, tuple[str, ...]]:
    """Technician code -> visit codes of the day's current plan still in the problem."""
    plan = shown_plan(session, planning.outlet_id, planning.day)
    if plan is None:
        return {}
    codes = {tech_id: code for code, tech_id in planning.technician_ids.items()}
    visit_codes = {vid: code for code, vid in planning.visit_ids.items() if code != visit.code}
    routes: dict[str, list[str]] = {}
    for stop in sorted(plan.stops, key=lambda s: (s.technician_id, s.sequence)):
        if stop.visit_id in visit_codes and stop.technician_id in codes:
            routes.setdefault(codes[stop.technician_id], []).append(visit_codes[stop.visit_id])
    return {tech: tuple(stops) for tech, stops in routes.items()}


def _suggestion(planning: PlanningInput, option: SlotOption, promised: tuple[datetime, datetime],
                tech_code: str, session: Session) -> SlotSuggestion:
    tech_id = planning.technician_ids[tech_code]
    technician = session.get(m.Technician, tech_id)
    assert technician is not None  # it came from the day's shifts
    start_at = from_seconds(option.start, planning.epoch)
    return SlotSuggestion(
        day=planning.day, start=promised[0], end=promised[1], technician_id=tech_id,
        technician=technician.name, planned_start=start_at.astimezone(promised[0].tzinfo),
        added_travel_seconds=int(option.added_travel), slack_seconds=int(option.slack))



def parse_slot(text: str) -> SlotChoice:
    """Read back a ``SlotSuggestion.key`` ("2025-03-10T08:00/10:00/12"; technician optional)."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/(\d{2}:\d{2})(?:/(\d+))?",
                         text.strip())
    if match is None:
        raise ValidationError(f"{text!r} is not a slot", f"{text!r} 不是有效的时段", field="slot")
    try:
        day = date.fromisoformat(match.group(1))
        start, end = time.fromisoformat(match.group(2)), time.fromisoformat(match.group(3))
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not a slot", f"{text!r} 不是有效的时段",
                              field="slot") from exc
    if end <= start:
        raise ValidationError("the slot ends before it starts", "时段结束早于开始", field="slot")
    technician = int(match.group(4)) if match.group(4) else None
    return SlotChoice(day, start, end, technician)


def slot_window(outlet: m.Outlet, choice: SlotChoice) -> tuple[datetime, datetime]:
    """The chosen slot as aware UTC instants."""
    return (local_time_to_utc(choice.day, choice.start, outlet.timezone),
            local_time_to_utc(choice.day, choice.end, outlet.timezone))


# ---------------------------------------------------------------------------------------------
# The customer's answer
# ---------------------------------------------------------------------------------------------


def record_answer(session: Session, visit: m.Visit, answer: str, *, actor: str,
                  choice: SlotChoice | None = None, charge_explained: bool = False,
                  note: str = "", now: datetime | None = None) -> m.ConfirmationEvent:
    """Record what the customer said to the offered slot and return the confirmation event.

    "confirmed" moves the visit to the slot's day and window and confirms it (with the chosen
    technician as the one promised); a chargeable visit is confirmed only when the charge was
    explained (``charge_explained`` records that now). "declined" records the refusal;
    "unreachable" counts a failed attempt (the visit becomes unreachable after the rules'
    maximum).
    """
    from dispatch import confirmation  # the rules module

    now = now or m.utcnow()
    if answer not in ANSWERS:
        raise ValidationError(f"{answer!r} is not one of: {', '.join(ANSWERS)}",
                              f"{answer!r} 不是有效的答复（{'、'.join(ANSWERS)}）", field="answer")
    if charge_explained and visit.ticket.charge_explained_at is None:
        visit.ticket.charge_explained_at = now
    if answer == "confirmed":
        if choice is None:
            raise ValidationError("choose the slot the customer accepted", "请选择客户同意的时段",
                                  field="slot")
        technician = _chosen_technician(session, visit, choice)
        window = slot_window(visit.outlet, choice)
        visit.day = choice.day
        # The accepted window becomes the chosen slot (old rows go first: starts are unique).
        visit.windows.clear()
        db.flush(session)
        visit.windows.append(m.VisitWindow(starts_at=window[0], ends_at=window[1]))
        db.flush(session)
        event = confirmation.confirm(session, visit, window, actor, technician=technician,
                                     note=note, at=now)
    elif answer == "declined":
        event = confirmation.transition(session, visit, m.ConfirmationStatus.DECLINED, actor,
                                        outcome=answer, note=note, at=now)
    else:
        event = confirmation.record_failed_attempt(session, visit, actor, note=note, at=now)
    db.flush(session)
    return event


def _chosen_technician(session: Session, visit: m.Visit,
                       choice: SlotChoice) -> m.Technician | None:
    if choice.technician_id is None:
        return None
    technician = session.get(m.Technician, choice.technician_id)
    if technician is None or technician.outlet_id != visit.outlet_id:
        raise NotFoundError("technician", choice.technician_id, "技师")
    return technician


def customer_products(customer: m.Customer) -> Sequence[m.CustomerProduct]:
    """The customer's products, newest invoice first."""
    return sorted(customer.products, key=lambda p: (p.invoice_date or date.min), reverse=True)
