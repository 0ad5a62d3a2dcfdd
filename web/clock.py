"""The web pages' clock: one place to read the current instant (tests set it)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current instant, aware UTC."""
    return datetime.now(UTC)
