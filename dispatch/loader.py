"""Load a fixtures ``Dataset`` into the database, and read one service day back as a ``Dataset``.

``load_dataset`` is an idempotent upsert keyed by the records' codes (serials, usernames, and
technician + day for shifts): a second run with the same dataset creates and changes nothing.
The dataset is authoritative for the small lists it owns (a technician's skills, a visit's
windows and skills, a product's repairs); rows it does not mention elsewhere are left alone.
Functions here flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

import fixtures
from dispatch import db
from dispatch import models as m
from dispatch.errors import ValidationError
from dispatch.security import hash_password
from dispatch.timeutil import utc_to_local

Row = TypeVar("Row", bound=m.Base)

#: Keys per IN (...) query; well below SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 500
EXPORT_NAME = "db"

# English and Chinese names of each kind of record, for messages.
KIND_NAMES: dict[str, tuple[str, str]] = {
    "skill": ("skill", "技能"),
    "outlet": ("outlet", "网点"),
    "technician": ("technician", "技师"),
    "shift": ("shift", "班次"),
    "customer": ("customer", "客户"),
    "product": ("product", "产品"),
    "ticket": ("ticket", "工单"),
    "visit": ("visit", "上门服务"),
    "user": ("user", "用户"),
}


@dataclass
class LoadReport:
    """How many rows of each kind a load created, updated and removed."""

    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: dict[str, int], kind: str, n: int = 1) -> None:
        """Add ``n`` to ``kind`` in one of the three buckets."""
        if n:
            bucket[kind] = bucket.get(kind, 0) + n

    @property
    def total_created(self) -> int:
        """Rows created, all kinds together."""
        return sum(self.created.values())

    @property
    def total_updated(self) -> int:
        """Rows changed or removed, all kinds together."""
        return sum(self.updated.values()) + sum(self.removed.values())

    def summary(self) -> str:
        """One bilingual line per kind touched, for command-line output."""
        kinds = sorted({*self.created, *self.updated, *self.removed})
        if not kinds:
            return "没有变化 / Nothing changed"
        return "\n".join(
            f"{kind}: 新建 {self.created.get(kind, 0)}，更新 {self.updated.get(kind, 0)}，"
            f"删除 {self.removed.get(kind, 0)} / created {self.created.get(kind, 0)}, "
            f"updated {self.updated.get(kind, 0)}, removed {self.removed.get(kind, 0)}"
            for kind in kinds
        )


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_dataset(session: Session, dataset: fixtures.Dataset) -> LoadReport:
    """Upsert every record of ``dataset`` into ``session`` and return what changed.

    Unknown references (an outlet, technician, customer, product, ticket or skill code that is
    neither in the dataset nor in the database) raise ``ValidationError`` naming the record's
    code (``row``) and the field. Existing users keep their password.
    """
    loader = _Loader(session)
    loader.skills(dataset.skills)
    loader.outlets(dataset.outlets)
    loader.technicians(dataset.technicians)
    loader.shifts(dataset.shifts)
    loader.customers(dataset.customers)
    loader.products(dataset.products)
    loader.tickets(dataset.tickets)
    loader.visits(dataset.visits)
    loader.users(dataset.users)
    return loader.report


class _Loader:
    """One load: the session, the report, and the rows already resolved by their keys."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.report = LoadReport()
        self.known: dict[tuple[type, Any], Any] = {}

    # --- references -------------------------------------------------------------------------

    def ref(self, model: type[Row], key: InstrumentedAttribute[Any], value: str, *, kind: str,
            owner: str, field_name: str, target: str) -> Row:
        """The row of ``model`` whose ``key`` is ``value``; ValidationError when there is none."""
        found = self.known.get((model, value))
        if found is None:
            found = self.session.scalar(select(model).where(key == value))
            if found is None:
                raise _unknown(kind, owner, field_name, target, value)
            self.known[(model, value)] = found
        return found

    def optional_ref(self, model: type[Row], key: InstrumentedAttribute[Any], value: str | None,
                     **where: str) -> Row | None:
        """Like ``ref``, but an empty value means no reference."""
        return None if not value else self.ref(model, key, value, **where)  # type: ignore[arg-type]

    def existing(self, model: type[Row], key: InstrumentedAttribute[Any], values: Iterable[str],
                 *options: Any) -> dict[str, Row]:
        """The rows of ``model`` already stored under ``values`` of ``key``."""
        found: dict[str, Row] = {}
        values = list(values)
        for start in range(0, len(values), CHUNK):
            query: Select[tuple[Row]] = select(model).where(key.in_(values[start:start + CHUNK]))
            for row in self.session.scalars(query.options(*options)):
                found[getattr(row, key.key)] = row
        return found

    # --- the generic upsert ------------------------------------------------------------------

    def upsert(self, kind: str, model: type[Row], key: InstrumentedAttribute[Any],
               records: Sequence[Any], code_of: Callable[[Any], str],
               values_of: Callable[[Any], dict[str, Any]], *options: Any,
               collections: tuple[str, ...] = ()) -> list[tuple[Any, Row]]:
        """Create or update one row per record; return (record, row) pairs, flushed.

        ``collections`` of a new row start empty, so filling them later loads nothing.
        """
        stored = self.existing(model, key, [code_of(r) for r in records], *options)
        pairs = []
        for record in records:
            code = code_of(record)
            with _about(code):
                values = values_of(record)
                row = stored.get(code)
                if row is None:
                    row = model(**{key.key: code}, **values,
                                **{name: [] for name in collections})
                    self.session.add(row)
                    self.report.count(self.report.created, kind)
                elif _apply(row, values):
                    self.report.count(self.report.updated, kind)
            self.known[(model, code)] = row
            pairs.append((record, row))
        db.flush(self.session)
        return pairs

    def sync_children(self, kind: str, children: list[Any], key_of: Callable[[Any], Any],
                      wanted: Mapping[Any, dict[str, Any]], make: Callable[[dict[str, Any]], Any],
                      ) -> None:
        """Make ``children`` hold exactly the ``wanted`` rows (key -> column values)."""
        current = {key_of(child): child for child in children}
        for key, child in current.items():
            if key not in wanted:
                children.remove(child)
                self.report.count(self.report.removed, kind)
        for key, values in wanted.items():
            child = current.get(key)
            if child is None:
                children.append(make(values))
                self.report.count(self.report.created, kind)
            elif _apply(child, values):
                self.report.count(self.report.updated, kind)

    # --- each kind ---------------------------------------------------------------------------

    def skills(self, records: Sequence[fixtures.Skill]) -> None:
        """Upsert skills by code."""
        self.upsert("skills", m.Skill, m.Skill.code, records, lambda r: r.code,
                    lambda r: {"name_zh": r.name_zh, "name_en": r.name_en})

    def outlets(self, records: Sequence[fixtures.Outlet]) -> None:
        """Upsert outlets by code."""
        self.upsert("outlets", m.Outlet, m.Outlet.code, records, lambda r: r.code,
                    lambda r: _fields(r, exclude={"code"}))

    def technicians(self, records: Sequence[fixtures.Technician]) -> None:
        """Upsert technicians by code, and make their skills those of the dataset."""
        def values(r: fixtures.Technician) -> dict[str, Any]:
            outlet = self.ref(m.Outlet, m.Outlet.code, r.outlet_code, kind="technician",
                              owner=r.code, field_name="outlet_code", target="outlet")
            return {**_fields(r, exclude={"code", "outlet_code", "skills"}),
                    "languages": list(r.languages), "outlet_id": outlet.id}

        pairs = self.upsert("technicians", m.Technician, m.Technician.code, records,
                            lambda r: r.code, values, selectinload(m.Technician.skills),
                            collections=("skills",))
        for record, row in pairs:
            with _about(record.code):
                wanted = {skill_id: {"skill_id": skill_id, "level": level}
                          for skill_id, level in ((self.skill_id(code, "technician", record.code),
                                                   level) for code, level in record.skills)}
            self.sync_children("technician_skills", row.skills, lambda s: s.skill_id, wanted,
                               lambda v: m.TechnicianSkill(**v))
        db.flush(self.session)

    def skill_id(self, code: str, kind: str, owner: str) -> int:
        """The id of the skill ``code`` that ``owner`` (a technician or visit) refers to."""
        return self.ref(m.Skill, m.Skill.code, code, kind=kind, owner=owner,
                        field_name="skills", target="skill").id

    def shifts(self, records: Sequence[fixtures.TechnicianShift]) -> None:
        """Upsert shifts, one per technician and day."""
        tech_ids = {}
        for r in records:
            owner = f"{r.technician_code}@{r.day.isoformat()}"
            tech_ids[r.technician_code] = self.ref(
                m.Technician, m.Technician.code, r.technician_code, kind="shift", owner=owner,
                field_name="technician_code", target="technician").id
        stored = self.existing_shifts(set(tech_ids.values()), {r.day for r in records})
        for r in records:
            key = (tech_ids[r.technician_code], r.day)
            with _about(f"{r.technician_code}@{r.day.isoformat()}"):
                values = _fields(r, exclude={"technician_code", "day"})
                row = stored.get(key)
                if row is None:
                    row = m.TechnicianShift(technician_id=key[0], day=key[1], **values)
                    self.session.add(row)
                    stored[key] = row
                    self.report.count(self.report.created, "shifts")
                elif _apply(row, values):
                    self.report.count(self.report.updated, "shifts")
        db.flush(self.session)

    def existing_shifts(self, tech_ids: set[int], days: set[date],
                        ) -> dict[tuple[int, date], m.TechnicianShift]:
        """The stored shifts of these technicians on these days, by (technician id, day)."""
        if not tech_ids:
            return {}
        found = {}
        ids = sorted(tech_ids)
        for start in range(0, len(ids), CHUNK):
            query = select(m.TechnicianShift).where(
                m.TechnicianShift.technician_id.in_(ids[start:start + CHUNK]),
                m.TechnicianShift.day.in_(sorted(days)))
            for row in self.session.scalars(query):
                found[(row.technician_id, row.day)] = row
        return found

    def customers(self, records: Sequence[fixtures.Customer]) -> None:
        """Upsert customers by code."""
        self.upsert("customers", m.Customer, m.Customer.code, records, lambda r: r.code,
                    lambda r: _fields(r, exclude={"code"}))

    def products(self, records: Sequence[fixtures.CustomerProduct]) -> None:
        """Upsert products by serial, and make their repair history that of the dataset."""
        def values(r: fixtures.CustomerProduct) -> dict[str, Any]:
            customer = self.ref(m.Customer, m.Customer.code, r.customer_code, kind="product",
                                owner=r.serial, field_name="customer_code", target="customer")
            return {**_fields(r, exclude={"serial", "customer_code", "repairs"}),
                    "customer_id": customer.id}

        pairs = self.upsert("products", m.CustomerProduct, m.CustomerProduct.serial, records,
                            lambda r: r.serial, values, selectinload(m.CustomerProduct.repairs),
                            collections=("repairs",))
        for record, row in pairs:
            wanted = {(rep.repaired_on, rep.description): {"repaired_on": rep.repaired_on,
                                                           "description": rep.description,
                                                           "fixed": rep.fixed}
                      for rep in record.repairs}
            self.sync_children("repairs", row.repairs, lambda x: (x.repaired_on, x.description),
                               wanted, lambda v: m.ProductRepair(**v))
        db.flush(self.session)

    def tickets(self, records: Sequence[fixtures.ServiceTicket]) -> None:
        """Upsert service tickets by code."""
        def values(r: fixtures.ServiceTicket) -> dict[str, Any]:
            where = {"kind": "ticket", "owner": r.code}
            customer = self.ref(m.Customer, m.Customer.code, r.customer_code,
                                field_name="customer_code", target="customer", **where)
            product = self.optional_ref(m.CustomerProduct, m.CustomerProduct.serial,
                                        r.product_serial, field_name="product_serial",
                                        target="product", **where)
            outlet = self.ref(m.Outlet, m.Outlet.code, r.outlet_code, field_name="outlet_code",
                              target="outlet", **where)
            return {**_fields(r, exclude={"code", "customer_code", "product_serial",
                                          "outlet_code"}),
                    "customer_id": customer.id, "outlet_id": outlet.id,
                    "product_id": product.id if product else None}

        self.upsert("tickets", m.ServiceTicket, m.ServiceTicket.code, records, lambda r: r.code,
                    values)

    def visits(self, records: Sequence[fixtures.Visit]) -> None:
        """Upsert visits by code, and make their windows and skills those of the dataset."""
        def values(r: fixtures.Visit) -> dict[str, Any]:
            where = {"kind": "visit", "owner": r.code}
            ticket = self.ref(m.ServiceTicket, m.ServiceTicket.code, r.ticket_code,
                              field_name="ticket_code", target="ticket", **where)
            outlet = self.ref(m.Outlet, m.Outlet.code, r.outlet_code, field_name="outlet_code",
                              target="outlet", **where)
            pinned = self.optional_ref(m.Technician, m.Technician.code, r.pinned_technician_code,
                                       field_name="pinned_technician_code",
                                       target="technician", **where)
            return {**_fields(r, exclude={"code", "ticket_code", "outlet_code", "windows",
                                          "required_skills", "pinned_technician_code"}),
                    "ticket_id": ticket.id, "outlet_id": outlet.id,
                    "pinned_technician_id": pinned.id if pinned else None}

        pairs = self.upsert("visits", m.Visit, m.Visit.code, records, lambda r: r.code, values,
                            selectinload(m.Visit.windows), selectinload(m.Visit.skills),
                            collections=("windows", "skills"))
        for record, row in pairs:
            with _about(record.code):
                windows = {_utc(a): {"starts_at": a, "ends_at": b} for a, b in record.windows}
                skills = {self.skill_id(code, "visit", record.code): {"min_level": level}
                          for code, level in record.required_skills}
            self.sync_children("visit_windows", row.windows, lambda w: _utc(w.starts_at),
                               windows, lambda v: m.VisitWindow(**v))
            self.sync_children("visit_skills", row.skills, lambda s: s.skill_id,
                               {k: {"skill_id": k, **v} for k, v in skills.items()},
                               lambda v: m.VisitSkill(**v))
        db.flush(self.session)

    def users(self, records: Sequence[fixtures.User]) -> None:
        """Upsert users by username; a new user's password is hashed, an existing one kept."""
        def values(r: fixtures.User) -> dict[str, Any]:
            where = {"kind": "user", "owner": r.username}
            technician = self.optional_ref(m.Technician, m.Technician.code, r.technician_code,
                                           field_name="technician_code", target="technician",
                                           **where)
            outlet = self.optional_ref(m.Outlet, m.Outlet.code, r.outlet_code,
                                       field_name="outlet_code", target="outlet", **where)
            if outlet is None and technician is not None:
                outlet = technician.outlet
            return {"role": r.role, "technician_id": technician.id if technician else None,
                    "outlet_id": outlet.id if outlet else None}

        stored = self.existing(m.User, m.User.username, [r.username for r in records])
        # Hashing is deliberately slow (~0.1 s); a dataset's demo accounts share one published
        # password, so each distinct password is hashed once per load.
        hashes: dict[str, str] = {}
        for record in records:
            with _about(record.username):
                row = stored.get(record.username)
                fields = values(record)
                if row is None:
                    if record.password not in hashes:
                        hashes[record.password] = hash_password(record.password)
                    self.session.add(m.User(username=record.username,
                                            password_hash=hashes[record.password], **fields))
                    self.report.count(self.report.created, "users")
                elif _apply(row, fields):
                    self.report.count(self.report.updated, "users")
        db.flush(self.session)


def _fields(record: Any, exclude: set[str]) -> dict[str, Any]:
    """A frozen record's fields as column values (its own names match the model's)."""
    names = record.__dataclass_fields__
    return {name: getattr(record, name) for name in names if name not in exclude}


def _apply(row: Any, values: Mapping[str, Any]) -> bool:
    """Set the values that differ on ``row``; tell whether anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


def _unknown(kind: str, owner: str, field_name: str, target: str, value: str) -> ValidationError:
    kind_en, kind_zh = KIND_NAMES[kind]
    target_en, target_zh = KIND_NAMES[target]
    return ValidationError(
        f"{kind_en} {owner} refers to an unknown {target_en} {value!r}",
        f"{kind_zh} {owner} 引用了不存在的{target_zh} {value!r}",
        field=field_name,
        row=owner,
    )


@contextmanager
def _about(code: str) -> Iterator[None]:
    """Attach the record's code to a ValidationError raised while writing it (bad enum etc.)."""
    try:
        yield
    except ValidationError as exc:
        if exc.row is not None:
            raise
        raise ValidationError(exc.reason_en, exc.reason_zh, field=exc.field, row=code,
                              file=exc.file) from exc


# ---------------------------------------------------------------------------------------------
# Reading a day back
# ---------------------------------------------------------------------------------------------


def dataset_from_db(session: Session, day: date,
                    outlet_codes: Sequence[str] | None = None) -> fixtures.Dataset:
    """The stored service ``day`` of the given outlets (default: all) as a ``Dataset``.

    Holds the outlets, their technicians and shifts that day, the day's visits with their
    tickets, customers and the customers' products, and every skill; users are left out (their
    passwords are not exportable). Instants are given in the outlet's time zone.
    """
    outlet_query = select(m.Outlet).order_by(m.Outlet.code)
    if outlet_codes is not None:
        outlet_query = outlet_query.where(m.Outlet.code.in_(list(outlet_codes)))
    outlets = list(session.scalars(outlet_query))
    if outlet_codes is not None:
        missing = sorted(set(outlet_codes) - {o.code for o in outlets})
        if missing:
            raise ValidationError(f"unknown outlet {missing[0]!r}", f"不存在的网点 {missing[0]!r}",
                                  field="outlet")
    tz = outlets[0].timezone if outlets else "Asia/Shanghai"
    outlet_ids = [o.id for o in outlets]
    technicians = list(session.scalars(
        select(m.Technician).where(m.Technician.outlet_id.in_(outlet_ids))
        .options(selectinload(m.Technician.skills).selectinload(m.TechnicianSkill.skill),
                 selectinload(m.Technician.outlet))
        .order_by(m.Technician.code)))
    shifts = list(session.scalars(
        select(m.TechnicianShift).join(m.Technician)
        .where(m.Technician.outlet_id.in_(outlet_ids), m.TechnicianShift.day == day)
        .options(selectinload(m.TechnicianShift.technician))
        .order_by(m.Technician.code)))
    visits = list(session.scalars(
        select(m.Visit).where(m.Visit.outlet_id.in_(outlet_ids), m.Visit.day == day)
        .options(selectinload(m.Visit.windows),
                 selectinload(m.Visit.skills).selectinload(m.VisitSkill.skill),
                 selectinload(m.Visit.ticket).selectinload(m.ServiceTicket.customer)
                 .selectinload(m.Customer.products).selectinload(m.CustomerProduct.repairs),
                 selectinload(m.Visit.ticket).selectinload(m.ServiceTicket.product),
                 selectinload(m.Visit.ticket).selectinload(m.ServiceTicket.outlet),
                 selectinload(m.Visit.pinned_technician), selectinload(m.Visit.outlet))
        .order_by(m.Visit.code)))
    tickets = {v.ticket.code: v.ticket for v in visits}
    customers = {t.customer.code: t.customer for t in tickets.values()}
    products = {p.serial: p for c in customers.values() for p in c.products}
    local = _localiser(tz)
    records = {
        "outlets": tuple(_outlet_record(o) for o in outlets),
        "technicians": tuple(_technician_record(t) for t in technicians),
        "shifts": tuple(_shift_record(s, local) for s in shifts),
        "customers": tuple(_customer_record(customers[c]) for c in sorted(customers)),
        "products": tuple(_product_record(products[s]) for s in sorted(products)),
        "tickets": tuple(_ticket_record(tickets[c], local) for c in sorted(tickets)),
        "visits": tuple(_visit_record(v, local) for v in visits),
    }
    return fixtures.Dataset(
        name=EXPORT_NAME, day=day, seed=0, timezone=tz,
        bounding_box=_bounding_box(outlets, technicians, customers.values()),
        unskilled_visit_codes=_unskilled_visits(visits, technicians, shifts),
        skills=tuple(fixtures.Skill(s.code, s.name_zh, s.name_en)
                     for s in session.scalars(select(m.Skill).order_by(m.Skill.code))),
        users=(),
        **records,
    )


def _localiser(tz: str) -> Callable[[datetime | None], datetime | None]:
    def local(dt: datetime | None) -> datetime | None:
        return None if dt is None else utc_to_local(dt, tz)
    return local


def _outlet_record(o: m.Outlet) -> fixtures.Outlet:
    return fixtures.Outlet(
        code=o.code, name=o.name, name_en=o.name_en, address=o.address, lat=o.lat, lon=o.lon,
        timezone=o.timezone, business_open=o.business_open, business_close=o.business_close,
        calling_start=o.calling_start, calling_end=o.calling_end, phone=o.phone,
        speed_kmh=o.speed_kmh, detour_factor=o.detour_factor)


def _technician_record(t: m.Technician) -> fixtures.Technician:
    return fixtures.Technician(
        code=t.code, outlet_code=t.outlet.code, name=t.name, phone=t.phone,
        home_address=t.home_address, home_lat=t.home_lat, home_lon=t.home_lon,
        skills=tuple(sorted(t.skill_levels().items())), languages=tuple(t.languages),
        active=t.active, duration_factor=t.duration_factor, max_visits=t.max_visits)


def _shift_record(s: m.TechnicianShift, local: Callable[[Any], Any]) -> fixtures.TechnicianShift:
    return fixtures.TechnicianShift(
        technician_code=s.technician.code, day=s.day, starts_at=local(s.starts_at),
        ends_at=local(s.ends_at), lunch_window_start=local(s.lunch_window_start),
        lunch_window_end=local(s.lunch_window_end), lunch_minutes=s.lunch_minutes,
        start_place=str(s.start_place), end_place=str(s.end_place), absent=s.absent,
        absence_reason=s.absence_reason)


def _customer_record(c: m.Customer) -> fixtures.Customer:
    return fixtures.Customer(
        code=c.code, name=c.name, honorific=c.honorific, phone=c.phone, phone_alt=c.phone_alt,
        address=c.address, district=c.district, lat=c.lat, lon=c.lon, language=str(c.language),
        calling_start=c.calling_start, calling_end=c.calling_end, notes=c.notes)


def _product_record(p: m.CustomerProduct) -> fixtures.CustomerProduct:
    return fixtures.CustomerProduct(
        serial=p.serial, customer_code=p.customer.code, category=str(p.category), brand=p.brand,
        model=p.model, invoice_date=p.invoice_date, warranty_months=p.warranty_months,
        main_parts_warranty_months=p.main_parts_warranty_months,
        repairs=tuple(fixtures.Repair(r.repaired_on, r.description, r.fixed) for r in p.repairs))


def _ticket_record(t: m.ServiceTicket, local: Callable[[Any], Any]) -> fixtures.ServiceTicket:
    return fixtures.ServiceTicket(
        code=t.code, customer_code=t.customer.code,
        product_serial=t.product.serial if t.product else "", outlet_code=t.outlet.code,
        kind=str(t.kind), symptom=t.symptom, reported_at=local(t.reported_at),
        channel=str(t.channel), owner=t.owner, sla_deadline=local(t.sla_deadline),
        priority=t.priority, status=str(t.status), escalation_level=t.escalation_level)


def _visit_record(v: m.Visit, local: Callable[[Any], Any]) -> fixtures.Visit:
    return fixtures.Visit(
        code=v.code, ticket_code=v.ticket.code, outlet_code=v.outlet.code, day=v.day,
        required_skills=tuple(sorted(v.required_skills().items())),
        duration_minutes=v.duration_minutes,
        windows=tuple((local(w.starts_at), local(w.ends_at)) for w in v.windows),
        agreed_start=local(v.agreed_start), agreed_end=local(v.agreed_end),
        confirmation_status=str(v.confirmation_status),
        pinned_technician_code=v.pinned_technician.code if v.pinned_technician else None,
        pinned_start_from=local(v.pinned_start_from), pinned_start_to=local(v.pinned_start_to),
        status=str(v.status), actual_arrival=local(v.actual_arrival),
        actual_start=local(v.actual_start), actual_end=local(v.actual_end), outcome=v.outcome,
        priority=v.priority)


def _bounding_box(outlets: Sequence[m.Outlet], technicians: Sequence[m.Technician],
                  customers: Iterable[m.Customer]) -> tuple[float, float, float, float]:
    points = [(o.lat, o.lon) for o in outlets] + [(t.home_lat, t.home_lon) for t in technicians]
    points += [(c.lat, c.lon) for c in customers]
    if not points:
        return (0.0, 0.0, 0.0, 0.0)
    lats, lons = zip(*points)
    return (min(lats), min(lons), max(lats), max(lons))


def _unskilled_visits(visits: Sequence[m.Visit], technicians: Sequence[m.Technician],
                      shifts: Sequence[m.TechnicianShift]) -> tuple[str, ...]:
    """Visits that no active technician of their outlet working that day could do."""
    working = {s.technician_id for s in shifts if not s.absent}
    crews: dict[int, list[dict[str, int]]] = {}
    for t in technicians:
        if t.active and t.id in working:
            crews.setdefault(t.outlet_id, []).append(t.skill_levels())
    unskilled = []
    for v in visits:
        needed = v.required_skills()
        if not any(all(held.get(c, 0) >= lvl for c, lvl in needed.items())
                   for held in crews.get(v.outlet_id, [])):
            unskilled.append(v.code)
    return tuple(unskilled)
