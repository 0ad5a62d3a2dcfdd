"""One run per outlet-day: the PostgreSQL advisory lock and the SQLite lease."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.runlock import (
    LEASE_TTL,
    acquire_lease,
    lock_key,
    release_lease,
    run_lock,
)
from tests.dispatch.builders import build_graph, local

DAY = date(2025, 3, 10)


def outlet_id(engine: Engine) -> int:
    """An outlet in the database."""
    with Session(engine) as session:
        graph = build_graph(session)
        session.commit()
        return graph.outlet.id


def test_second_holder_is_refused_while_the_first_holds(engine: Engine) -> None:
    """Inside one run's lock, another run of the same outlet-day is told it is taken."""
    oid = outlet_id(engine)
    with Session(engine) as first, Session(engine) as second:
        with run_lock(first, oid, DAY) as held:
            with run_lock(second, oid, DAY) as also:
                assert held and not also


def test_lock_is_free_again_after_the_run(engine: Engine) -> None:
    """Once a run has ended (committed), the next run of the outlet-day gets the lock."""
    oid = outlet_id(engine)
    with Session(engine) as session:
        with run_lock(session, oid, DAY) as held:
            assert held
        session.commit()
    with Session(engine) as session, run_lock(session, oid, DAY) as held:
        assert held


def test_other_outlet_days_are_not_blocked(engine: Engine) -> None:
    """A run of one day does not block a run of the next day."""
    oid = outlet_id(engine)
    with Session(engine) as first, Session(engine) as second:
        with run_lock(first, oid, DAY) as held, \
                run_lock(second, oid, DAY + timedelta(days=1)) as other:
            assert held and other


def test_expired_lease_is_taken_over(engine: Engine) -> None:
    """A lease left by a killed run blocks until it expires, then another run takes it."""
    oid = outlet_id(engine)
    start = local(10)
    assert acquire_lease(engine, oid, DAY, "killed", at=start)
    assert not acquire_lease(engine, oid, DAY, "next", at=start + LEASE_TTL / 2)
    assert acquire_lease(engine, oid, DAY, "next", at=start + LEASE_TTL + timedelta(seconds=1))
    with Session(engine) as session:
        lease = session.scalar(select(m.RunLease))
        assert lease is not None and lease.holder == "next"


def test_release_removes_only_the_holders_lease(engine: Engine) -> None:
    """A run that lost its lease to another does not remove the other's lease."""
    oid = outlet_id(engine)
    assert acquire_lease(engine, oid, DAY, "new", at=local(10))
    release_lease(engine, oid, DAY, "old")
    with Session(engine) as session:
        assert session.scalar(select(m.RunLease.holder)) == "new"


def test_lock_keys_differ_by_outlet_day_and_schema_and_are_stable() -> None:
    """Each outlet-day of each schema has its own key, the same in every process."""
    assert lock_key(1, DAY) == lock_key(1, DAY)
    assert len({lock_key(1, DAY), lock_key(2, DAY), lock_key(1, DAY + timedelta(days=1)),
                lock_key(1, DAY, "other")}) == 4
    assert -(2**63) <= lock_key(1, DAY) < 2**63
