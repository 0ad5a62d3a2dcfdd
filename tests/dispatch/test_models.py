"""The domain model's constraints, value checks, aware timestamps and optimistic locking."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from dispatch import db
from dispatch import models as m
from dispatch.errors import ConflictError, ValidationError
from tests.dispatch.builders import DAY, Graph, build_graph, local

Mutation = Callable[[Graph, Session], Any]


def sql(statement: str) -> Mutation:
    """Return a mutation that runs ``statement`` directly (bypassing the ORM's own checks)."""
    return lambda graph, session: session.execute(text(statement))


def stop_times(**changes: Any) -> Mutation:
    """Return a mutation changing the plan's first stop."""
    def mutate(graph: Graph, session: Session) -> None:
        for field, value in changes.items():
            setattr(graph.plan.stops[0], field, value)
    return mutate


BAD_ROWS: list[Any] = [
    pytest.param(sql("UPDATE outlets SET lat = 91"), id="outlet-lat"),
    pytest.param(sql("UPDATE outlets SET lon = -181"), id="outlet-lon"),
    pytest.param(sql("UPDATE outlets SET business_close = business_open"),
                 id="outlet-business-hours"),
    pytest.param(sql("UPDATE outlets SET calling_end = calling_start"), id="outlet-calling-hours"),
    pytest.param(sql("UPDATE outlets SET speed_kmh = 0"), id="outlet-speed"),
    pytest.param(sql("UPDATE outlets SET detour_factor = 0.9"), id="outlet-detour"),
    pytest.param(sql("UPDATE technicians SET home_lat = -91"), id="technician-lat"),
    pytest.param(sql("UPDATE technicians SET home_lon = 181"), id="technician-lon"),
    pytest.param(sql("UPDATE technicians SET duration_factor = 0"),
                 id="technician-duration-factor"),
    pytest.param(sql("UPDATE technicians SET max_visits = 0"), id="technician-max-visits"),
    pytest.param(sql("UPDATE technicians SET outlet_id = 9999"), id="technician-foreign-key"),
    pytest.param(sql("UPDATE technician_skills SET level = 0"), id="skill-level-low"),
    pytest.param(sql("UPDATE technician_skills SET level = 4"), id="skill-level-high"),
    pytest.param(sql("UPDATE technician_shifts SET ends_at = starts_at"), id="shift-window"),
    pytest.param(
        sql("UPDATE technician_shifts SET lunch_window_end = lunch_window_start"), id="shift-lunch"
    ),
    pytest.param(sql("UPDATE technician_shifts SET lunch_minutes = -1"), id="shift-lunch-minutes"),
    pytest.param(sql("UPDATE technician_shifts SET start_place = 'office'"),
                 id="shift-start-place"),
    pytest.param(sql("UPDATE technician_shifts SET end_place = 'office'"), id="shift-end-place"),
    pytest.param(sql("UPDATE customers SET lat = 100"), id="customer-lat"),
    pytest.param(sql("UPDATE customers SET lon = 200"), id="customer-lon"),
    pytest.param(sql("UPDATE customers SET language = 'fr'"), id="customer-language"),
    pytest.param(
        sql("UPDATE customers SET calling_start = '12:00:00', calling_end = '11:00:00'"),
        id="customer-calling-hours",
    ),
    pytest.param(sql("UPDATE customer_products SET category = 'phone'"), id="product-category"),
    pytest.param(sql("UPDATE customer_products SET warranty_months = -1"), id="product-warranty"),
    pytest.param(
        sql("UPDATE customer_products SET main_parts_warranty_months = -1"), id="product-parts"
    ),
    pytest.param(sql("UPDATE service_tickets SET kind = 'sale'"), id="ticket-kind"),
    pytest.param(sql("UPDATE service_tickets SET channel = 'fax'"), id="ticket-channel"),
    pytest.param(sql("UPDATE service_tickets SET status = 'lost'"), id="ticket-status"),
    pytest.param(sql("UPDATE service_tickets SET priority = 0"), id="ticket-priority-low"),
    pytest.param(sql("UPDATE service_tickets SET priority = 5"), id="ticket-priority-high"),
    pytest.param(sql("UPDATE service_tickets SET escalation_level = 3"), id="ticket-escalation"),
    pytest.param(sql("UPDATE visits SET duration_minutes = 0"), id="visit-duration"),
    pytest.param(sql("UPDATE visits SET confirmation_status = 'maybe'"), id="visit-confirmation"),
    pytest.param(sql("UPDATE visits SET status = 'lost'"), id="visit-status"),
    pytest.param(sql("UPDATE visits SET priority = 9"), id="visit-priority"),
    pytest.param(
        lambda g, s: (setattr(g.visit, "agreed_start", local(10)),
                      setattr(g.visit, "agreed_end", local(9))),
        id="visit-agreed-window",
    ),
    pytest.param(
        lambda g, s: (setattr(g.visit, "pinned_start_from", local(10)),
                      setattr(g.visit, "pinned_start_to", local(10))),
        id="visit-pinned-window",
    ),
    pytest.param(sql("UPDATE visit_windows SET ends_at = starts_at"), id="visit-window"),
    pytest.param(sql("UPDATE visit_skills SET min_level = 4"), id="visit-skill-level"),
    pytest.param(sql("UPDATE confirmation_events SET from_status = 'x'"), id="event-from"),
    pytest.param(sql("UPDATE confirmation_events SET to_status = 'x'"), id="event-to"),
    pytest.param(sql("UPDATE confirmation_events SET channel = 'pigeon'"), id="event-channel"),
    pytest.param(sql("UPDATE plans SET status = 'final'"), id="plan-status"),
    pytest.param(sql("UPDATE plans SET number = 0"), id="plan-number"),
    pytest.param(sql("UPDATE plan_stops SET kind = 'lunch'"), id="stop-kind"),
    pytest.param(sql("UPDATE plan_stops SET kind = 'break'"), id="stop-break-with-visit"),
    pytest.param(sql("UPDATE plan_stops SET visit_id = NULL"), id="stop-visit-without-visit"),
    pytest.param(sql("UPDATE plan_stops SET sequence = -1"), id="stop-sequence"),
    pytest.param(stop_times(start_at=local(8)), id="stop-start-before-arrival"),
    pytest.param(stop_times(end_at=local(8, 59)), id="stop-end-before-start"),
    pytest.param(sql("UPDATE plan_stops SET waiting_seconds = -1"), id="stop-waiting"),
    pytest.param(sql("UPDATE plan_stops SET travel_seconds = -1"), id="stop-travel-seconds"),
    pytest.param(sql("UPDATE plan_stops SET travel_meters = -1"), id="stop-travel-meters"),
    pytest.param(sql("UPDATE plan_stops SET late_seconds = -1"), id="stop-late"),
    pytest.param(sql("UPDATE service_records SET rating = 0"), id="rating-low"),
    pytest.param(sql("UPDATE service_records SET rating = 6"), id="rating-high"),
    pytest.param(sql("UPDATE notifications SET recipient_kind = 'robot'"), id="notice-recipient"),
    pytest.param(sql("UPDATE notifications SET channel = 'fax'"), id="notice-channel"),
    pytest.param(sql("UPDATE notifications SET language = 'fr'"), id="notice-language"),
    pytest.param(sql("UPDATE notifications SET status = 'lost'"), id="notice-status"),
    pytest.param(sql("UPDATE notifications SET attempts = -1"), id="notice-attempts"),
    pytest.param(sql("UPDATE users SET role = 'god'"), id="user-role"),
    pytest.param(sql("UPDATE users SET language = 'fr'"), id="user-language"),
    pytest.param(sql("UPDATE users SET technician_id = NULL"), id="user-technician-link"),
]


def test_valid_graph_is_stored(session: Session) -> None:
    """A complete, valid set of records is accepted by the database."""
    build_graph(session)
    db.commit(session)
    assert session.scalar(select(m.Visit.code)) == "V01"


@pytest.mark.parametrize("mutation", BAD_ROWS)
def test_database_rejects_bad_row(session: Session, mutation: Mutation) -> None:
    """Each CHECK (and foreign key) constraint rejects a row that breaks it."""
    graph = build_graph(session)
    with pytest.raises(IntegrityError):
        mutation(graph, session)
        session.flush()


def test_latest_useful_before_not_before_is_rejected(session: Session) -> None:
    """A notification cannot stop being useful before it may be sent."""
    graph = build_graph(session)
    notification = session.scalar(select(m.Notification))
    assert notification is not None and graph
    notification.latest_useful = notification.not_before - timedelta(minutes=1)
    with pytest.raises(IntegrityError):
        session.flush()


def test_plan_number_is_unique_per_outlet_and_day(session: Session) -> None:
    """Two plans of one outlet and day cannot share a version number."""
    graph = build_graph(session)
    session.add(m.Plan(outlet=graph.outlet, day=DAY, number=1, created_by="disp1"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_naive_datetime_is_refused_at_assignment() -> None:
    """Assigning a naive datetime raises ValidationError naming the entity and field."""
    visit = m.Visit()
    with pytest.raises(ValidationError) as caught:
        visit.agreed_start = datetime(2025, 3, 10, 9, 0)
    assert caught.value.field == "Visit.agreed_start"


def test_naive_datetime_is_refused_by_core_insert(session: Session) -> None:
    """A naive datetime is refused even when the ORM is bypassed."""
    statement = insert(m.AuditEvent).values(
        actor="a", action="b", entity_type="c", entity_id="d", at=datetime(2025, 1, 1)
    )
    with pytest.raises(StatementError, match="no time zone"):
        session.execute(statement)


def test_unknown_enumeration_value_is_refused() -> None:
    """Assigning a value outside an enumeration raises ValidationError naming the field."""
    with pytest.raises(ValidationError) as caught:
        m.Visit(status="lost")
    assert caught.value.field == "Visit.status"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2025, 3, 10, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8))),
        datetime(2025, 3, 9, 23, 59, 59, tzinfo=UTC),
        datetime(2025, 3, 9, 2, 30, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_aware_timestamps_round_trip(engine: Engine, moment: datetime) -> None:
    """An aware instant comes back as the same instant, in UTC, on every backend."""
    with Session(engine) as session:
        build_graph(session).shift.starts_at = moment - timedelta(hours=1)
        session.scalar(select(m.AuditEvent)).at = moment  # type: ignore[union-attr]
        db.commit(session)
    with Session(engine) as session:
        loaded = session.scalar(select(m.AuditEvent.at))
    assert loaded == moment
    assert loaded is not None and loaded.utcoffset() == timedelta(0)


def test_enumerations_load_as_members(engine: Engine) -> None:
    """Enumerated columns come back as their StrEnum members."""
    with Session(engine) as session:
        build_graph(session)
        db.commit(session)
    with Session(engine) as session:
        visit = session.scalar(select(m.Visit))
        assert visit is not None
        assert visit.status is m.VisitStatus.PLANNED
        assert visit.confirmation_status is m.ConfirmationStatus.UNCONFIRMED


VERSIONED_CHANGES = [
    pytest.param(lambda g: g.visit, "duration_minutes", 90, 120, id="visit"),
    pytest.param(lambda g: g.plan, "status", m.PlanStatus.PUBLISHED, m.PlanStatus.SUPERSEDED,
                 id="plan"),
    pytest.param(lambda g: g.ticket, "priority", 3, 4, id="ticket"),
    pytest.param(lambda g: g.shift, "lunch_minutes", 30, 60, id="shift"),
    pytest.param(lambda g: g.technician, "max_visits", 8, 12, id="technician"),
]


@pytest.mark.parametrize("pick, field, first, second", VERSIONED_CHANGES)
def test_stale_write_raises_conflict(
    engine: Engine, pick: Callable[[Graph], Any], field: str, first: Any, second: Any
) -> None:
    """Two sessions edit the same row; the second commit raises ConflictError, not overwrite."""
    with Session(engine) as session:
        row = pick(build_graph(session))
        db.commit(session)
        entity, key = type(row), row.id
    with Session(engine) as dispatcher, Session(engine) as job:
        mine, theirs = dispatcher.get(entity, key), job.get(entity, key)
        setattr(mine, field, first)
        db.commit(dispatcher)
        setattr(theirs, field, second)
        with pytest.raises(ConflictError):
            db.commit(job)
    with Session(engine) as session:
        stored = session.get(entity, key)
        assert getattr(stored, field) == first
        assert stored.version == 2


def test_flush_converts_stale_write(engine: Engine) -> None:
    """dispatch.db.flush also turns a stale write into ConflictError."""
    with Session(engine) as session:
        key = build_graph(session).visit.id
        db.commit(session)
    with Session(engine) as first, Session(engine) as second:
        a, b = first.get(m.Visit, key), second.get(m.Visit, key)
        assert a is not None and b is not None
        a.priority = 3
        db.commit(first)
        b.priority = 4
        with pytest.raises(ConflictError):
            db.flush(second)
