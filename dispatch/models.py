"""The domain model: SQLAlchemy 2 typed mappings of everything after-sales service keeps.

Conventions:
- Keys between rows are integer ids; every business record also has a unique ``code`` (or a
  ``serial``/``username``) that people and fixtures use.
- Instants are ``UTCDateTime`` columns: aware datetimes in, aware UTC datetimes out, on every
  backend; a naive datetime is refused. Local clock times (business hours) are ``time`` values in
  the outlet's zone; plan days are local dates.
- Enumerations are ``StrEnum`` classes stored as lower-case strings and guarded by CHECK
  constraints; other code compares against the enum members, never bare strings.
- Rows that dispatchers and the re-optimization job both edit carry a ``version`` column used by
  SQLAlchemy's optimistic locking; a stale write raises, see ``dispatch.db.commit``.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    UniqueConstraint,
    event,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Mapper,
    Session,
    declared_attr,
    mapped_column,
    relationship,
)
from sqlalchemy.types import TypeDecorator

from dispatch.errors import NotFoundError, ValidationError

# ---------------------------------------------------------------------------------------------
# Enumerations
# ---------------------------------------------------------------------------------------------


class Language(enum.StrEnum):
    """Languages the product speaks to people."""

    ZH = "zh"
    EN = "en"


class Place(enum.StrEnum):
    """Where a technician starts or ends the day."""

    HOME = "home"
    OUTLET = "outlet"


class ProductCategory(enum.StrEnum):
    """Kinds of appliance the network services."""

    AIR_CONDITIONER = "air_conditioner"
    WATER_HEATER = "water_heater"
    WASHING_MACHINE = "washing_machine"
    REFRIGERATOR = "refrigerator"
    TV = "tv"
    KITCHEN = "kitchen"
    WATER_PURIFIER = "water_purifier"


class TicketKind(enum.StrEnum):
    """What the customer asked for."""

    INSTALLATION = "installation"
    REPAIR = "repair"
    MAINTENANCE = "maintenance"
    FOLLOW_UP = "follow_up"


class Channel(enum.StrEnum):
    """How a request reached the service network."""

    PHONE = "phone"
    WECHAT = "wechat"
    WEB = "web"
    DEALER = "dealer"


class TicketStatus(enum.StrEnum):
    """Life cycle of a service ticket."""

    OPEN = "open"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class ConfirmationStatus(enum.StrEnum):
    """Where the appointment stands with the customer."""

    UNCONFIRMED = "unconfirmed"
    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    RECONFIRMED = "reconfirmed"
    DECLINED = "declined"
    UNREACHABLE = "unreachable"
    NEEDS_CONSENT = "needs_consent"


class VisitStatus(enum.StrEnum):
    """Live status of a visit on the day."""

    PLANNED = "planned"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    DONE = "done"
    NOT_FINISHED = "not_finished"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class ContactChannel(enum.StrEnum):
    """How the service network contacted a customer about an appointment."""

    PHONE = "phone"
    WECHAT = "wechat"
    SMS = "sms"
    EMAIL = "email"
    WEB = "web"
    IN_PERSON = "in_person"
    SYSTEM = "system"


class PlanStatus(enum.StrEnum):
    """Life cycle of a plan version."""

    DRAFT = "draft"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"


class SolveJobStatus(enum.StrEnum):
    """Life cycle of a background solve of an outlet-day."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"


class StopKind(enum.StrEnum):
    """What a technician does at a plan stop."""

    VISIT = "visit"
    BREAK = "break"


class RecipientKind(enum.StrEnum):
    """Who a notification is for."""

    CUSTOMER = "customer"
    TECHNICIAN = "technician"
    USER = "user"


class NotificationChannel(enum.StrEnum):
    """How a notification is delivered."""

    INBOX = "inbox"
    EMAIL = "email"
    SMS = "sms"


class NotificationStatus(enum.StrEnum):
    """Delivery state of an outbox row."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Role(enum.StrEnum):
    """What a user may do."""

    ADMIN = "admin"
    MANAGER = "manager"
    DISPATCHER = "dispatcher"
    TECHNICIAN = "technician"


class TaskKind(enum.StrEnum):
    """What a task asks a person to do (a call, a notice, a review)."""

    CONFIRMATION_CALL = "confirmation_call"
    RECONFIRM_CALL = "reconfirm_call"
    DELAY_NOTICE = "delay_notice"
    CONSENT_REQUEST = "consent_request"
    HANDOVER_NOTICE = "handover_notice"
    FOLLOWUP_CALL = "followup_call"
    CHARGE_NOTICE = "charge_notice"
    ESCALATION = "escalation"
    SUPERVISOR_REVIEW = "supervisor_review"


class TaskStatus(enum.StrEnum):
    """Life cycle of a task."""

    OPEN = "open"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class AssigneeRole(enum.StrEnum):
    """Who is expected to carry out a task."""

    DISPATCHER = "dispatcher"
    TECHNICIAN = "technician"
    MANAGER = "manager"
    SUPERVISOR = "supervisor"


# ---------------------------------------------------------------------------------------------
# Column types
# ---------------------------------------------------------------------------------------------


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: accepts aware datetimes only, stores UTC, returns aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC for storage; refuse a naive one."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValidationError(
                f"expected a datetime, got {value!r}", f"应为日期时间，实际为 {value!r}"
            )
        utc = _aware_to_utc(value, "datetime")
        # SQLite keeps no offset: store the UTC wall clock and reattach UTC on the way out.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored instant as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EnumText(TypeDecorator[enum.StrEnum]):
    """A ``StrEnum`` stored as its lower-case value; loads back as the enum member."""

    impl = String(24)
    cache_ok = True

    def __init__(self, enum_class: type[enum.StrEnum]) -> None:
        super().__init__(24)
        self.enum_class = enum_class

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Return the member's value; refuse values outside the enumeration."""
        if value is None:
            return None
        return str(_to_enum(self.enum_class, value, "value"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> enum.StrEnum | None:
        """Return the enum member for the stored value."""
        return None if value is None else self.enum_class(value)


def _aware_to_utc(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValidationError(
            f"datetime {value.isoformat()} has no time zone; give an aware datetime",
            f"时间 {value.isoformat()} 缺少时区，请使用带时区的时间",
            field=field,
        )
    return value.astimezone(UTC)


def _to_enum(enum_class: type[enum.StrEnum], value: Any, field: str) -> enum.StrEnum:
    try:
        return enum_class(value)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in enum_class)
        raise ValidationError(
            f"{value!r} is not one of: {allowed}",
            f"{value!r} 不是允许的取值（{allowed}）",
            field=field,
        ) from exc


# ---------------------------------------------------------------------------------------------
# Base, shared pieces
# ---------------------------------------------------------------------------------------------

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; constraint names follow NAMING_CONVENTION."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Versioned:
    """Optimistic locking: every UPDATE checks and bumps ``version``; a stale one raises."""

    version: Mapped[int] = mapped_column(Integer, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


def utcnow() -> datetime:
    """Return the current instant as an aware UTC datetime."""
    return datetime.now(UTC)


def enum_check(column: str, enum_class: type[enum.StrEnum]) -> CheckConstraint:
    """Return a CHECK constraint keeping ``column`` inside ``enum_class``'s values."""
    values = ", ".join(f"'{member.value}'" for member in enum_class)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_valid")


def latlon_checks(lat: str = "lat", lon: str = "lon") -> tuple[CheckConstraint, CheckConstraint]:
    """Return CHECK constraints keeping a coordinate pair on the globe."""
    return (
        CheckConstraint(f"{lat} BETWEEN -90 AND 90", name=f"{lat}_range"),
        CheckConstraint(f"{lon} BETWEEN -180 AND 180", name=f"{lon}_range"),
    )


def ends_after_starts(start: str, end: str, name: str | None = None) -> CheckConstraint:
    """Return a CHECK constraint requiring ``end > start`` when both are set."""
    return CheckConstraint(
        f"{start} IS NULL OR {end} IS NULL OR {end} > {start}",
        name=name or f"{end}_after_{start}",
    )


def level_check(column: str) -> CheckConstraint:
    """Return a CHECK constraint keeping a skill level in 1..3."""
    return CheckConstraint(f"{column} BETWEEN 1 AND 3", name=f"{column}_range")


def non_negative(column: str) -> CheckConstraint:
    """Return a CHECK constraint requiring ``column >= 0``."""
    return CheckConstraint(f"{column} >= 0", name=f"{column}_non_negative")


def positive(column: str) -> CheckConstraint:
    """Return a CHECK constraint requiring ``column > 0``."""
    return CheckConstraint(f"{column} > 0", name=f"{column}_positive")


def _fk(target: str, *, cascade: bool = False) -> ForeignKey:
    return ForeignKey(target, ondelete="CASCADE" if cascade else None)


# ---------------------------------------------------------------------------------------------
# Reference data: skills, outlets, technicians
# ---------------------------------------------------------------------------------------------


class Skill(Base):
    """A skill a visit may require and a technician may hold (e.g. "ac_install")."""

    __tablename__ = "skills"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))


class Outlet(Base):
    """A service outlet (网点): technicians' base, business and calling hours, travel model."""

    __tablename__ = "outlets"
    __table_args__ = (
        *latlon_checks(),
        ends_after_starts("business_open", "business_close"),
        ends_after_starts("calling_start", "calling_end"),
        positive("speed_kmh"),
        CheckConstraint("detour_factor >= 1", name="detour_factor_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    business_open: Mapped[time] = mapped_column(Time, default=time(8, 30))
    business_close: Mapped[time] = mapped_column(Time, default=time(18, 0))
    calling_start: Mapped[time] = mapped_column(Time, default=time(10, 0))
    calling_end: Mapped[time] = mapped_column(Time, default=time(20, 0))
    phone: Mapped[str] = mapped_column(String(40), default="")
    speed_kmh: Mapped[float] = mapped_column(Float, default=25.0)
    detour_factor: Mapped[float] = mapped_column(Float, default=1.35)
    # Local ["HH:MM", "HH:MM"] periods when customers are not called (meal and rest times).
    quiet_periods: Mapped[list[list[str]]] = mapped_column(
        JSON, default=lambda: [["12:00", "13:30"]]
    )

    technicians: Mapped[list[Technician]] = relationship(back_populates="outlet")


class Technician(Versioned, Base):
    """A technician (师傅) of one outlet."""

    __tablename__ = "technicians"
    __table_args__ = (
        *latlon_checks("home_lat", "home_lon"),
        positive("duration_factor"),
        positive("max_visits"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    outlet_id: Mapped[int] = mapped_column(_fk("outlets.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(40), default="")
    home_address: Mapped[str] = mapped_column(String(400), default="")
    home_lat: Mapped[float] = mapped_column(Float)
    home_lon: Mapped[float] = mapped_column(Float)
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["zh"])
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    duration_factor: Mapped[float] = mapped_column(Float, default=1.0)
    max_visits: Mapped[int] = mapped_column(Integer, default=10)
    # Where the technician's phone last reported itself (for the dispatcher's map).
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    outlet: Mapped[Outlet] = relationship(back_populates="technicians")
    skills: Mapped[list[TechnicianSkill]] = relationship(
        back_populates="technician", cascade="all, delete-orphan"
    )
    shifts: Mapped[list[TechnicianShift]] = relationship(
        back_populates="technician", cascade="all, delete-orphan"
    )

    def skill_levels(self) -> dict[str, int]:
        """Return the technician's skills as {skill code: level}."""
        return {row.skill.code: row.level for row in self.skills}


class TechnicianSkill(Base):
    """A skill a technician holds, at level 1 (basic) to 3 (expert)."""

    __tablename__ = "technician_skills"
    __table_args__ = (level_check("level"),)

    technician_id: Mapped[int] = mapped_column(
        _fk("technicians.id", cascade=True), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(_fk("skills.id"), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, default=1)

    technician: Mapped[Technician] = relationship(back_populates="skills")
    skill: Mapped[Skill] = relationship()


class TechnicianShift(Versioned, Base):
    """One technician's working day: hours, lunch break, start and end place, absence."""

    __tablename__ = "technician_shifts"
    __table_args__ = (
        UniqueConstraint("technician_id", "day"),
        ends_after_starts("starts_at", "ends_at"),
        ends_after_starts("lunch_window_start", "lunch_window_end"),
        non_negative("lunch_minutes"),
        enum_check("start_place", Place),
        enum_check("end_place", Place),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    technician_id: Mapped[int] = mapped_column(_fk("technicians.id", cascade=True))
    day: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lunch_window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lunch_window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lunch_minutes: Mapped[int] = mapped_column(Integer, default=45)
    start_place: Mapped[Place] = mapped_column(EnumText(Place), default=Place.HOME)
    end_place: Mapped[Place] = mapped_column(EnumText(Place), default=Place.HOME)
    absent: Mapped[bool] = mapped_column(Boolean, default=False)
    absence_reason: Mapped[str | None] = mapped_column(String(200))

    technician: Mapped[Technician] = relationship(back_populates="shifts")


# ---------------------------------------------------------------------------------------------
# Customers and their products
# ---------------------------------------------------------------------------------------------


class Customer(Base):
    """A customer: how to address and reach them, where they are, when they may be called."""

    __tablename__ = "customers"
    __table_args__ = (
        *latlon_checks(),
        enum_check("language", Language),
        ends_after_starts("calling_start", "calling_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    honorific: Mapped[str] = mapped_column(String(20), default="")
    phone: Mapped[str] = mapped_column(String(40))
    phone_alt: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str] = mapped_column(String(400))
    district: Mapped[str] = mapped_column(String(100), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    language: Mapped[Language] = mapped_column(EnumText(Language), default=Language.ZH)
    calling_start: Mapped[time | None] = mapped_column(Time)
    calling_end: Mapped[time | None] = mapped_column(Time)
    notes: Mapped[str] = mapped_column(Text, default="")

    products: Mapped[list[CustomerProduct]] = relationship(
        back_populates="customer", cascade="all, delete-orphan"
    )


class CustomerProduct(Base):
    """An appliance a customer owns, with its warranty terms and repair history."""

    __tablename__ = "customer_products"
    __table_args__ = (
        enum_check("category", ProductCategory),
        non_negative("warranty_months"),
        non_negative("main_parts_warranty_months"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(80), unique=True)
    customer_id: Mapped[int] = mapped_column(_fk("customers.id", cascade=True), index=True)
    category: Mapped[ProductCategory] = mapped_column(EnumText(ProductCategory))
    brand: Mapped[str] = mapped_column(String(80))
    model: Mapped[str] = mapped_column(String(80))
    invoice_date: Mapped[date | None] = mapped_column(Date)
    warranty_months: Mapped[int] = mapped_column(Integer, default=12)
    main_parts_warranty_months: Mapped[int] = mapped_column(Integer, default=36)

    customer: Mapped[Customer] = relationship(back_populates="products")
    repairs: Mapped[list[ProductRepair]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="ProductRepair.repaired_on"
    )


class ProductRepair(Base):
    """A past repair of a customer product (counts towards the "repaired twice" rule)."""

    __tablename__ = "product_repairs"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(_fk("customer_products.id", cascade=True), index=True)
    repaired_on: Mapped[date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text, default="")
    fixed: Mapped[bool] = mapped_column(Boolean, default=True)

    product: Mapped[CustomerProduct] = relationship(back_populates="repairs")


# ---------------------------------------------------------------------------------------------
# Tickets, visits, confirmations
# ---------------------------------------------------------------------------------------------


class ServiceTicket(Versioned, Base):
    """A customer's request, owned by whoever first took it, with its SLA and escalation."""

    __tablename__ = "service_tickets"
    __table_args__ = (
        enum_check("kind", TicketKind),
        enum_check("channel", Channel),
        enum_check("status", TicketStatus),
        CheckConstraint("priority BETWEEN 1 AND 4", name="priority_range"),
        CheckConstraint("escalation_level BETWEEN 0 AND 2", name="escalation_level_range"),
        Index(None, "outlet_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[int] = mapped_column(_fk("customers.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(_fk("customer_products.id"))
    outlet_id: Mapped[int] = mapped_column(_fk("outlets.id"))
    kind: Mapped[TicketKind] = mapped_column(EnumText(TicketKind))
    symptom: Mapped[str] = mapped_column(Text, default="")
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    channel: Mapped[Channel] = mapped_column(EnumText(Channel), default=Channel.PHONE)
    owner: Mapped[str] = mapped_column(String(80))
    sla_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    priority: Mapped[int] = mapped_column(Integer, default=2)
    status: Mapped[TicketStatus] = mapped_column(EnumText(TicketStatus), default=TicketStatus.OPEN)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    # Codes of the 三包 exclusions found (e.g. "misuse"); see dispatch.warranty.
    warranty_exclusions: Mapped[list[str]] = mapped_column(JSON, default=list)
    # When the customer was told about the charge; a chargeable visit needs it to be confirmed.
    charge_explained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    charge_note: Mapped[str] = mapped_column(Text, default="")
    supervisor_flag: Mapped[bool] = mapped_column(Boolean, default=False)

    customer: Mapped[Customer] = relationship()
    product: Mapped[CustomerProduct | None] = relationship()
    outlet: Mapped[Outlet] = relationship()
    visits: Mapped[list[Visit]] = relationship(back_populates="ticket")


class Visit(Versioned, Base):
    """A trip to the customer: skills, duration, accepted windows, agreement, live status."""

    __tablename__ = "visits"
    __table_args__ = (
        positive("duration_minutes"),
        ends_after_starts("agreed_start", "agreed_end"),
        ends_after_starts("pinned_start_from", "pinned_start_to", "pinned_start_to_after_from"),
        enum_check("confirmation_status", ConfirmationStatus),
        enum_check("status", VisitStatus),
        CheckConstraint("priority BETWEEN 1 AND 4", name="priority_range"),
        Index(None, "outlet_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    ticket_id: Mapped[int] = mapped_column(_fk("service_tickets.id"), index=True)
    outlet_id: Mapped[int] = mapped_column(_fk("outlets.id"))
    day: Mapped[date] = mapped_column(Date)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    agreed_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agreed_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmation_status: Mapped[ConfirmationStatus] = mapped_column(
        EnumText(ConfirmationStatus), default=ConfirmationStatus.UNCONFIRMED
    )
    pinned_technician_id: Mapped[int | None] = mapped_column(_fk("technicians.id"))
    pinned_start_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pinned_start_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[VisitStatus] = mapped_column(EnumText(VisitStatus), default=VisitStatus.PLANNED)
    actual_arrival: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actual_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actual_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, default=2)
    # The technician promised to the customer when the visit was confirmed.
    committed_technician_id: Mapped[int | None] = mapped_column(_fk("technicians.id"))
    # The customer agreed that another technician may come (a handover).
    handover_agreed: Mapped[bool] = mapped_column(Boolean, default=False)
    reconfirm_attempts: Mapped[int] = mapped_column(Integer, default=0)

    ticket: Mapped[ServiceTicket] = relationship(back_populates="visits")
    outlet: Mapped[Outlet] = relationship()
    pinned_technician: Mapped[Technician | None] = relationship(
        foreign_keys=[pinned_technician_id]
    )
    committed_technician: Mapped[Technician | None] = relationship(
        foreign_keys=[committed_technician_id]
    )
    windows: Mapped[list[VisitWindow]] = relationship(
        back_populates="visit", cascade="all, delete-orphan", order_by="VisitWindow.starts_at"
    )
    skills: Mapped[list[VisitSkill]] = relationship(
        back_populates="visit", cascade="all, delete-orphan"
    )
    events: Mapped[list[ConfirmationEvent]] = relationship(
        back_populates="visit", cascade="all, delete-orphan", order_by="ConfirmationEvent.at"
    )

    def required_skills(self) -> dict[str, int]:
        """Return the skills the visit needs as {skill code: minimum level}."""
        return {row.skill.code: row.min_level for row in self.skills}


class VisitWindow(Base):
    """A window the customer accepts; the visit must start inside one of them."""

    __tablename__ = "visit_windows"
    __table_args__ = (
        UniqueConstraint("visit_id", "starts_at"),
        ends_after_starts("starts_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(_fk("visits.id", cascade=True))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)

    visit: Mapped[Visit] = relationship(back_populates="windows")


class VisitSkill(Base):
    """A skill a visit requires, at a minimum level."""

    __tablename__ = "visit_skills"
    __table_args__ = (level_check("min_level"),)

    visit_id: Mapped[int] = mapped_column(_fk("visits.id", cascade=True), primary_key=True)
    skill_id: Mapped[int] = mapped_column(_fk("skills.id"), primary_key=True)
    min_level: Mapped[int] = mapped_column(Integer, default=1)

    visit: Mapped[Visit] = relationship(back_populates="skills")
    skill: Mapped[Skill] = relationship()


class ConfirmationEvent(Base):
    """One step in an appointment's confirmation history (who, when, how, with what result)."""

    __tablename__ = "confirmation_events"
    __table_args__ = (
        enum_check("from_status", ConfirmationStatus),
        enum_check("to_status", ConfirmationStatus),
        enum_check("channel", ContactChannel),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(_fk("visits.id", cascade=True), index=True)
    from_status: Mapped[ConfirmationStatus | None] = mapped_column(EnumText(ConfirmationStatus))
    to_status: Mapped[ConfirmationStatus] = mapped_column(EnumText(ConfirmationStatus))
    actor: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[ContactChannel] = mapped_column(
        EnumText(ContactChannel), default=ContactChannel.PHONE
    )
    outcome: Mapped[str | None] = mapped_column(String(80))
    note: Mapped[str] = mapped_column(Text, default="")

    visit: Mapped[Visit] = relationship(back_populates="events")


# ---------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------


class Plan(Versioned, Base):
    """One version of an outlet's plan for a day, with its KPIs and how it was made."""

    __tablename__ = "plans"
    __table_args__ = (
        UniqueConstraint("outlet_id", "day", "number"),
        enum_check("status", PlanStatus),
        positive("number"),
        Index(None, "outlet_id", "day", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    outlet_id: Mapped[int] = mapped_column(_fk("outlets.id"))
    day: Mapped[date] = mapped_column(Date)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[PlanStatus] = mapped_column(EnumText(PlanStatus), default=PlanStatus.DRAFT)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kpis: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    objective: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    solver_stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    input_digest: Mapped[str] = mapped_column(String(64), default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    outlet: Mapped[Outlet] = relationship()
    stops: Mapped[list[PlanStop]] = relationship(
        back_populates="plan",
        cascade="all, delete-orphan",
        order_by="(PlanStop.technician_id, PlanStop.sequence)",
    )
    unassigned: Mapped[list[UnassignedVisit]] = relationship(
        back_populates="plan", cascade="all, delete-orphan"
    )


class SolveJob(Base):
    """A background solve of one outlet-day started from the board: progress, outcome, plan."""

    __tablename__ = "solve_jobs"
    __table_args__ = (
        enum_check("status", SolveJobStatus),
        CheckConstraint("progress BETWEEN 0 AND 1", name="progress_range"),
        positive("time_limit_seconds"),
        Index(None, "outlet_id", "day", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    outlet_id: Mapped[int] = mapped_column(_fk("outlets.id"))
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[SolveJobStatus] = mapped_column(
        EnumText(SolveJobStatus), default=SolveJobStatus.QUEUED
    )
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    started_by: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    time_limit_seconds: Mapped[float] = mapped_column(Float, default=10.0)
    # The draft the job produced; a plan deleted later leaves the job's history in place.
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="SET NULL"))
    message_zh: Mapped[str] = mapped_column(Text, default="")
    message_en: Mapped[str] = mapped_column(Text, default="")
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)

    outlet: Mapped[Outlet] = relationship()
    plan: Mapped[Plan | None] = relationship()


class RunLease(Base):
    """Who is re-optimizing an outlet-day right now, until when (the SQLite run lock).

    PostgreSQL uses an advisory lock instead; a lease past ``expires_at`` may be taken over, so a
    killed run blocks the outlet-day only until its lease runs out.
    """

    __tablename__ = "run_leases"
    __table_args__ = (UniqueConstraint("outlet_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    outlet_id: Mapped[int] = mapped_column(_fk("outlets.id", cascade=True))
    day: Mapped[date] = mapped_column(Date)
    holder: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PlanStop(Base):
    """A technician's visit or break in a plan, in route order, with its planned times."""

    __tablename__ = "plan_stops"
    __table_args__ = (
        UniqueConstraint("plan_id", "technician_id", "sequence"),
        enum_check("kind", StopKind),
        CheckConstraint(
            "(kind = 'visit' AND visit_id IS NOT NULL) OR (kind = 'break' AND visit_id IS NULL)",
            name="visit_matches_kind",
        ),
        non_negative("sequence"),
        CheckConstraint("start_at >= arrival_at", name="start_at_not_before_arrival"),
        CheckConstraint("end_at >= start_at", name="end_at_not_before_start"),
        non_negative("waiting_seconds"),
        non_negative("travel_seconds"),
        non_negative("travel_meters"),
        non_negative("late_seconds"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(_fk("plans.id", cascade=True))
    technician_id: Mapped[int] = mapped_column(_fk("technicians.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[StopKind] = mapped_column(EnumText(StopKind), default=StopKind.VISIT)
    visit_id: Mapped[int | None] = mapped_column(_fk("visits.id"), index=True)
    arrival_at: Mapped[datetime] = mapped_column(UTCDateTime)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    waiting_seconds: Mapped[int] = mapped_column(Integer, default=0)
    travel_seconds: Mapped[int] = mapped_column(Integer, default=0)
    travel_meters: Mapped[int] = mapped_column(Integer, default=0)
    late_seconds: Mapped[int] = mapped_column(Integer, default=0)

    plan: Mapped[Plan] = relationship(back_populates="stops")
    technician: Mapped[Technician] = relationship()
    visit: Mapped[Visit | None] = relationship()


class UnassignedVisit(Base):
    """A visit a plan could not serve, with a machine reason and its text in both languages."""

    __tablename__ = "unassigned_visits"
    __table_args__ = (UniqueConstraint("plan_id", "visit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(_fk("plans.id", cascade=True))
    visit_id: Mapped[int] = mapped_column(_fk("visits.id"), index=True)
    reason_code: Mapped[str] = mapped_column(String(40))
    reason_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason_zh: Mapped[str] = mapped_column(Text, default="")
    reason_en: Mapped[str] = mapped_column(Text, default="")

    plan: Mapped[Plan] = relationship(back_populates="unassigned")
    visit: Mapped[Visit] = relationship()


# ---------------------------------------------------------------------------------------------
# Service records, notifications, audit
# ---------------------------------------------------------------------------------------------


class ServiceRecord(Base):
    """What the technician found and did on a visit, and what the customer said about it."""

    __tablename__ = "service_records"
    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(_fk("visits.id"), unique=True)
    technician_id: Mapped[int] = mapped_column(_fk("technicians.id"), index=True)
    fault_found: Mapped[str] = mapped_column(Text, default="")
    cause: Mapped[str] = mapped_column(Text, default="")
    parts_used: Mapped[list[Any]] = mapped_column(JSON, default=list)
    work_done: Mapped[str] = mapped_column(Text, default="")
    customer_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verified_name: Mapped[str | None] = mapped_column(String(100))
    rating: Mapped[int | None] = mapped_column(Integer)
    feedback: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    visit: Mapped[Visit] = relationship()
    technician: Mapped[Technician] = relationship()


class Notification(Base):
    """An outbox row: a message to deliver once, not before a time, while it is still useful."""

    __tablename__ = "notifications"
    __table_args__ = (
        enum_check("recipient_kind", RecipientKind),
        enum_check("channel", NotificationChannel),
        enum_check("language", Language),
        enum_check("status", NotificationStatus),
        non_negative("attempts"),
        CheckConstraint(
            "latest_useful IS NULL OR latest_useful >= not_before", name="latest_useful_after"
        ),
        Index(None, "status", "not_before"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_kind: Mapped[RecipientKind] = mapped_column(EnumText(RecipientKind))
    recipient_id: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[NotificationChannel] = mapped_column(
        EnumText(NotificationChannel), default=NotificationChannel.INBOX
    )
    template: Mapped[str] = mapped_column(String(80))
    language: Mapped[Language] = mapped_column(EnumText(Language), default=Language.ZH)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    latest_useful: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[NotificationStatus] = mapped_column(
        EnumText(NotificationStatus), default=NotificationStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the delivery worker may retry after a failed attempt (back-off).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    task_id: Mapped[int | None] = mapped_column(_fk("tasks.id"), index=True)


class Task(Versioned, Base):
    """Work for a person derived from the rules: a call, a notice, an escalation, a review.

    ``due_from`` is the earliest useful moment and ``due_by`` the latest; a task that cannot be
    done inside calling hours in time is ``flagged`` for the dispatcher with the reason.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        enum_check("kind", TaskKind),
        enum_check("status", TaskStatus),
        enum_check("assignee_role", AssigneeRole),
        CheckConstraint("due_by >= due_from", name="due_by_not_before_due_from"),
        Index(None, "outlet_id", "due_by"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TaskKind] = mapped_column(EnumText(TaskKind))
    visit_id: Mapped[int | None] = mapped_column(_fk("visits.id", cascade=True), index=True)
    ticket_id: Mapped[int | None] = mapped_column(_fk("service_tickets.id"), index=True)
    outlet_id: Mapped[int] = mapped_column(_fk("outlets.id"))
    assignee_role: Mapped[AssigneeRole] = mapped_column(EnumText(AssigneeRole))
    technician_id: Mapped[int | None] = mapped_column(_fk("technicians.id"))
    due_from: Mapped[datetime] = mapped_column(UTCDateTime)
    due_by: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[TaskStatus] = mapped_column(EnumText(TaskStatus), default=TaskStatus.OPEN)
    outcome: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(80))

    visit: Mapped[Visit | None] = relationship()
    ticket: Mapped[ServiceTicket | None] = relationship()
    outlet: Mapped[Outlet] = relationship()
    technician: Mapped[Technician | None] = relationship()


class Holiday(Base):
    """A public or outlet holiday: no calls to customers that day."""

    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("outlet_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # None: the holiday applies to every outlet.
    outlet_id: Mapped[int | None] = mapped_column(_fk("outlets.id", cascade=True))
    day: Mapped[date] = mapped_column(Date)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))


class AuditEvent(Base):
    """Who did what to which record, with the record before and after."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80))
    entity_type: Mapped[str] = mapped_column(String(80))
    entity_id: Mapped[str] = mapped_column(String(80))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# ---------------------------------------------------------------------------------------------
# Users and API tokens
# ---------------------------------------------------------------------------------------------


class User(Base):
    """A person who signs in: admin, manager, dispatcher or technician."""

    __tablename__ = "users"
    __table_args__ = (
        enum_check("role", Role),
        enum_check("language", Language),
        CheckConstraint(
            "role <> 'technician' OR technician_id IS NOT NULL", name="technician_role_has_link"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(EnumText(Role))
    technician_id: Mapped[int | None] = mapped_column(_fk("technicians.id"), unique=True)
    outlet_id: Mapped[int | None] = mapped_column(_fk("outlets.id"))
    language: Mapped[Language] = mapped_column(EnumText(Language), default=Language.ZH)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    technician: Mapped[Technician | None] = relationship()
    outlet: Mapped[Outlet | None] = relationship()
    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class ApiToken(Base):
    """An API token of a user; only its SHA-256 digest is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(_fk("users.id", cascade=True), index=True)
    name: Mapped[str] = mapped_column(String(80))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship(back_populates="tokens")


# ---------------------------------------------------------------------------------------------
# Attribute-level checks: refuse naive datetimes and unknown enumeration values at assignment,
# so the error names the entity and the field instead of surfacing at flush time.
# ---------------------------------------------------------------------------------------------


@event.listens_for(Mapper, "mapper_configured")
def _install_value_checks(mapper: Mapper[Any], cls: type) -> None:
    if not issubclass(cls, Base):
        return
    for prop in mapper.column_attrs:
        column_type = prop.columns[0].type
        if isinstance(column_type, UTCDateTime | EnumText):
            event.listen(
                getattr(cls, prop.key), "set", _value_checker(cls.__name__, prop.key, column_type),
                retval=True,
            )


def _value_checker(entity: str, field: str, column_type: UTCDateTime | EnumText) -> Any:
    label = f"{entity}.{field}"

    def check(target: Any, value: Any, oldvalue: Any, initiator: Any) -> Any:
        if value is None:
            return None
        if isinstance(column_type, EnumText):
            return _to_enum(column_type.enum_class, value, label)
        if not isinstance(value, datetime):
            raise ValidationError(
                f"expected a datetime, got {value!r}",
                f"应为日期时间，实际为 {value!r}",
                field=label,
            )
        return _aware_to_utc(value, label)

    return check


def find_outlet(session: Session, outlet: Outlet | str) -> Outlet:
    """The outlet itself, or the one with that code; NotFoundError when there is none."""
    if isinstance(outlet, Outlet):
        return outlet
    found = session.scalar(select(Outlet).where(Outlet.code == outlet))
    if found is None:
        raise NotFoundError("outlet", outlet, "网点")
    return found
