"""The one module that converts between aware datetimes and the solver's integer seconds.

Outside ``solver/`` every instant is a timezone-aware ``datetime``; inside it, an instant is a
whole number of seconds since the plan's *epoch*, the local midnight that starts the plan's day.
Seconds are real elapsed seconds, so on a daylight-saving change day the day is 23 or 25 hours
long and travel times stay true.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatch.errors import ValidationError

ZoneLike = str | tzinfo


def zone(tz: ZoneLike) -> tzinfo:
    """Return the time zone named ``tz`` (an IANA name such as "Asia/Shanghai") or ``tz`` itself."""
    if not isinstance(tz, str):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"unknown time zone {tz!r}", f"未知时区 {tz!r}", field="timezone"
        ) from exc


def require_aware(dt: datetime, field: str = "datetime") -> datetime:
    """Return ``dt`` unchanged if it carries a time zone; raise ValidationError otherwise."""
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValidationError(
            f"datetime {dt.isoformat()} has no time zone",
            f"时间 {dt.isoformat()} 缺少时区",
            field=field,
        )
    return dt


def plan_epoch(day: date, tz: ZoneLike) -> datetime:
    """Return the local midnight that starts ``day`` in ``tz``, as an aware UTC datetime."""
    return local_time_to_utc(day, time(0, 0), tz)


def to_seconds(dt: datetime, epoch: datetime) -> int:
    """Return whole seconds from ``epoch`` to ``dt`` (rounded down, negative before the epoch)."""
    require_aware(dt)
    require_aware(epoch, "epoch")
    # Floor, not round: a start "inside" a window must never be pushed past its end.
    return math.floor((dt - epoch).total_seconds())


def from_seconds(seconds: int, epoch: datetime) -> datetime:
    """Return the aware UTC instant ``seconds`` after ``epoch``."""
    require_aware(epoch, "epoch")
    return (epoch + timedelta(seconds=seconds)).astimezone(UTC)


def local_time_to_utc(day: date, t: time, tz: ZoneLike) -> datetime:
    """Return the aware UTC instant of the local wall time ``t`` on ``day`` in ``tz``.

    A wall time repeated by a DST fall-back means its first occurrence; a wall time skipped by a
    spring-forward gap lands the same distance past the gap (02:30 in a 02:00-03:00 gap is 03:30).
    """
    local = datetime.combine(day, t.replace(tzinfo=None), tzinfo=zone(tz))
    return local.astimezone(UTC)


def utc_to_local(dt: datetime, tz: ZoneLike) -> datetime:
    """Return the aware instant ``dt`` expressed in the zone ``tz``."""
    return require_aware(dt).astimezone(zone(tz))


def local_time_to_seconds(day: date, t: time, tz: ZoneLike) -> int:
    """Return the solver seconds of the local wall time ``t`` on the plan day ``day`` in ``tz``."""
    return to_seconds(local_time_to_utc(day, t, tz), plan_epoch(day, tz))


def local_day(dt: datetime, tz: ZoneLike) -> date:
    """Return the local calendar date of the aware instant ``dt`` in ``tz``."""
    return utc_to_local(dt, tz).date()
