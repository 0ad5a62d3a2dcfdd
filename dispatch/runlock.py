"""One re-optimization run per outlet-day at a time.

On PostgreSQL the run holds a transaction-level advisory lock (``pg_try_advisory_xact_lock``)
keyed by the outlet and the day, taken in the run's own transaction: it is released when that
transaction ends, and by the server when a killed run's connection drops. SQLite has no advisory
locks, so a run writes a lease row (``run_leases``) in a short transaction of its own and deletes
it when done; a lease past its expiry may be taken over, so a killed run blocks the outlet-day only
until its lease runs out. Either way a second run finds the lock taken and is told so at once.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.timeutil import require_aware

#: How long a SQLite lease lasts: well above a run's time limit, short enough that a killed run
#: holds up its outlet-day for a few scheduler ticks at most.
LEASE_TTL = timedelta(minutes=10)


def lock_key(outlet_id: int, day: date, schema: str = "") -> int:
    """The advisory-lock key of an outlet-day: a stable signed 64-bit number.

    Advisory locks are shared by the whole database, so the key includes the schema holding the
    data: two data sets in one database (e.g. parallel test workers) never block each other.
    """
    text = f"dispatch.reoptimize:{schema}:{outlet_id}:{day.isoformat()}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big", signed=True)


def new_holder() -> str:
    """A name for one run, unique across processes and machines."""
    return f"run-{uuid.uuid4().hex}"


@contextmanager
def run_lock(session: Session, outlet_id: int, day: date, *, holder: str | None = None,
             ttl: timedelta = LEASE_TTL, at: datetime | None = None) -> Iterator[bool]:
    """Hold the outlet-day's run lock for the body; yields False when another run holds it.

    On PostgreSQL the lock belongs to ``session``'s transaction and ends with it (commit or
    rollback). On SQLite a lease for ``holder`` is written in its own transaction, valid for
    ``ttl`` from ``at`` (the wall clock by default), and removed when the body ends.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        yield try_advisory_lock(session, outlet_id, day)
        return
    engine = bind.engine if isinstance(bind, Connection) else bind
    holder = holder or new_holder()
    acquired = acquire_lease(engine, outlet_id, day, holder, ttl=ttl, at=at)
    try:
        yield acquired
    finally:
        if acquired:
            release_lease(engine, outlet_id, day, holder)


def try_advisory_lock(session: Session, outlet_id: int, day: date) -> bool:
    """Take the outlet-day's PostgreSQL advisory lock for the session's transaction, if free."""
    schema = str(session.scalar(select(func.current_schema())) or "")
    key = lock_key(outlet_id, day, schema)
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(key))))


def acquire_lease(engine: Engine, outlet_id: int, day: date, holder: str, *,
                  ttl: timedelta = LEASE_TTL, at: datetime | None = None) -> bool:
    """Write ``holder``'s lease on the outlet-day unless a live lease of another run exists."""
    now = require_aware(at, "at") if at is not None else m.utcnow()
    with Session(engine) as session:
        lease = session.scalar(select(m.RunLease).where(m.RunLease.outlet_id == outlet_id,
                                                        m.RunLease.day == day))
        if lease is None:
            session.add(m.RunLease(outlet_id=outlet_id, day=day, holder=holder,
                                   expires_at=now + ttl))
            try:
                session.commit()
            except IntegrityError:  # another run wrote its lease first
                session.rollback()
                return False
            return True
        if lease.expires_at > now and lease.holder != holder:
            return False
        # Expired (a killed run): take it over, unless another run just did.
        taken = session.execute(
            update(m.RunLease)
            .where(m.RunLease.id == lease.id, m.RunLease.holder == lease.holder)
            .values(holder=holder, expires_at=now + ttl))
        session.commit()
        return taken.rowcount == 1


def release_lease(engine: Engine, outlet_id: int, day: date, holder: str) -> None:
    """Remove ``holder``'s lease on the outlet-day (a lease taken over by another run stays)."""
    with Session(engine) as session:
        session.execute(delete(m.RunLease).where(m.RunLease.outlet_id == outlet_id,
                                                 m.RunLease.day == day,
                                                 m.RunLease.holder == holder))
        session.commit()
