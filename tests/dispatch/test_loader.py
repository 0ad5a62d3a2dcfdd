"""Loading datasets into the database (idempotent upsert by codes) and reading a day back."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import fixtures
from dispatch import models as m
from dispatch.errors import ValidationError
from dispatch.loader import dataset_from_db, load_dataset
from dispatch.security import verify_password

DAY = date(2025, 3, 10)
COUNTED = (m.Skill, m.Outlet, m.Technician, m.TechnicianSkill, m.TechnicianShift, m.Customer,
           m.CustomerProduct, m.ProductRepair, m.ServiceTicket, m.Visit, m.VisitWindow,
           m.VisitSkill, m.User)


@pytest.fixture(scope="module")
def tiny() -> fixtures.Dataset:
    """The tiny dataset for the test day."""
    return fixtures.generate("tiny", DAY, 0)


def row_counts(session: Session) -> dict[str, int]:
    """Rows per table of every kind the loader writes."""
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in COUNTED}


def with_first(dataset: fixtures.Dataset, kind: str, **changes: Any) -> fixtures.Dataset:
    """The dataset with the first record of ``kind`` changed."""
    records = list(getattr(dataset, kind))
    records[0] = dataclasses.replace(records[0], **changes)
    return dataclasses.replace(dataset, **{kind: tuple(records)})


def test_loading_twice_creates_nothing_new(session: Session, tiny: fixtures.Dataset) -> None:
    """A second load of the same dataset creates, changes and removes no row."""
    first = load_dataset(session, tiny)
    counts = row_counts(session)
    second = load_dataset(session, tiny)
    assert first.created["visits"] == len(tiny.visits)
    assert (second.created, second.updated, second.removed) == ({}, {}, {})
    assert row_counts(session) == counts
    assert counts["visits"] == len(tiny.visits) and counts["users"] == len(tiny.users)


def test_changed_record_is_updated_in_place(session: Session, tiny: fixtures.Dataset) -> None:
    """A record whose fields changed is updated (same row), not duplicated."""
    load_dataset(session, tiny)
    code = tiny.customers[0].code
    before = session.scalar(select(m.Customer).where(m.Customer.code == code))
    report = load_dataset(session, with_first(tiny, "customers", phone="13900000000"))
    assert report.updated == {"customers": 1} and report.created == {}
    after = session.scalar(select(m.Customer).where(m.Customer.code == code))
    assert after is before and after.phone == "13900000000"


def test_visit_windows_follow_the_dataset(session: Session, tiny: fixtures.Dataset) -> None:
    """A visit's windows become exactly the dataset's: a dropped window is removed."""
    visit = next(v for v in tiny.visits if len(v.windows) > 1)
    load_dataset(session, tiny)
    changed = dataclasses.replace(tiny, visits=tuple(
        dataclasses.replace(v, windows=v.windows[:1]) if v.code == visit.code else v
        for v in tiny.visits))
    report = load_dataset(session, changed)
    row = session.scalar(select(m.Visit).where(m.Visit.code == visit.code))
    assert report.removed == {"visit_windows": len(visit.windows) - 1}
    assert [(w.starts_at, w.ends_at) for w in row.windows] == list(visit.windows[:1])


def test_existing_users_keep_their_password(session: Session, tiny: fixtures.Dataset) -> None:
    """Loading a user that already exists leaves the stored password alone."""
    load_dataset(session, tiny)
    username = tiny.users[0].username
    load_dataset(session, with_first(tiny, "users", password="another-password"))
    user = session.scalar(select(m.User).where(m.User.username == username))
    assert verify_password(tiny.users[0].password, user.password_hash)
    assert not verify_password("another-password", user.password_hash)


@pytest.mark.parametrize(("kind", "changes", "field", "value"), [
    ("technicians", {"outlet_code": "NOWHERE"}, "outlet_code", "NOWHERE"),
    ("tickets", {"customer_code": "NOBODY"}, "customer_code", "NOBODY"),
    ("visits", {"ticket_code": "NO-TICKET"}, "ticket_code", "NO-TICKET"),
    ("visits", {"pinned_technician_code": "NO-TECH"}, "pinned_technician_code", "NO-TECH"),
    ("visits", {"required_skills": (("juggling", 1),)}, "skills", "juggling"),
    ("shifts", {"technician_code": "NO-TECH"}, "technician_code", "NO-TECH"),
    ("users", {"technician_code": "NO-TECH"}, "technician_code", "NO-TECH"),
])
def test_unknown_reference_names_code_and_field(session: Session, tiny: fixtures.Dataset,
                                                kind: str, changes: dict[str, Any],
                                                field: str, value: str) -> None:
    """A reference to a code that exists nowhere raises ValidationError naming code and field."""
    bad = with_first(tiny, kind, **changes)
    record = getattr(bad, kind)[0]
    code = getattr(record, "code", None) or getattr(record, "username", None) \
        or f"{record.technician_code}@{record.day.isoformat()}"
    with pytest.raises(ValidationError) as caught:
        load_dataset(session, bad)
    assert caught.value.field == field
    assert caught.value.row == code
    assert code in caught.value.message_en and code in caught.value.message_zh
    assert value in caught.value.message_en


def test_bad_enumeration_value_names_the_record(session: Session, tiny: fixtures.Dataset) -> None:
    """A value outside an enumeration is refused with the record's code and the field."""
    bad = with_first(tiny, "visits", status="lost")
    with pytest.raises(ValidationError) as caught:
        load_dataset(session, bad)
    assert caught.value.row == tiny.visits[0].code
    assert caught.value.field == "Visit.status"


def normalised(dataset: fixtures.Dataset) -> dict[str, set[Any]]:
    """The dataset's records as comparable sets (skill lists sorted)."""
    technicians = {dataclasses.replace(t, skills=tuple(sorted(t.skills)))
                   for t in dataset.technicians}
    visits = {dataclasses.replace(v, required_skills=tuple(sorted(v.required_skills)))
              for v in dataset.visits}
    return {"skills": set(dataset.skills), "outlets": set(dataset.outlets),
            "technicians": technicians, "shifts": set(dataset.shifts),
            "customers": set(dataset.customers), "products": set(dataset.products),
            "tickets": set(dataset.tickets), "visits": visits}


def test_dataset_from_db_gives_the_loaded_day_back(session: Session,
                                                   tiny: fixtures.Dataset) -> None:
    """Reading the day back returns the records that were loaded, without users."""
    load_dataset(session, tiny)
    back = dataset_from_db(session, DAY)
    assert normalised(back) == normalised(tiny)
    assert back.users == ()
    assert back.unskilled_visit_codes == tiny.unskilled_visit_codes


def test_dataset_from_db_filters_outlets(session: Session, tiny: fixtures.Dataset) -> None:
    """Asking for an outlet that does not exist is an error naming the outlet field."""
    load_dataset(session, tiny)
    assert len(dataset_from_db(session, DAY, [tiny.outlets[0].code]).visits) == len(tiny.visits)
    with pytest.raises(ValidationError) as caught:
        dataset_from_db(session, DAY, ["NOWHERE"])
    assert caught.value.field == "outlet"
