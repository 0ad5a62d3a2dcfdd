"""Conversions between aware datetimes and solver seconds, including daylight-saving days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dispatch.errors import ValidationError
from dispatch.timeutil import (
    from_seconds,
    local_day,
    local_time_to_seconds,
    local_time_to_utc,
    plan_epoch,
    to_seconds,
    utc_to_local,
    zone,
)

NEW_YORK = ZoneInfo("America/New_York")
SPRING_FORWARD = date(2025, 3, 9)  # 02:00 EST -> 03:00 EDT
FALL_BACK = date(2025, 11, 2)  # 02:00 EDT -> 01:00 EST


def test_plan_epoch_is_local_midnight_in_utc() -> None:
    """The epoch of a Shanghai plan day is 16:00 UTC the day before."""
    assert plan_epoch(date(2025, 3, 10), "Asia/Shanghai") == datetime(2025, 3, 9, 16, tzinfo=UTC)


def test_to_seconds_counts_from_the_epoch() -> None:
    """09:30 local on the plan day is 34,200 seconds after the epoch."""
    epoch = plan_epoch(date(2025, 3, 10), "Asia/Shanghai")
    nine_thirty = datetime(2025, 3, 10, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert to_seconds(nine_thirty, epoch) == 34_200


def test_to_seconds_rounds_down_fractions() -> None:
    """A fraction of a second is dropped, never rounded up past a window's end."""
    epoch = datetime(2025, 1, 1, tzinfo=UTC)
    assert to_seconds(epoch + timedelta(seconds=10, microseconds=999_999), epoch) == 10
    assert to_seconds(epoch - timedelta(microseconds=1), epoch) == -1


@pytest.mark.parametrize("day", [SPRING_FORWARD, FALL_BACK, date(2025, 7, 1)])
@pytest.mark.parametrize("seconds", [0, 3_600, 7_200, 10_800, 43_200, 86_399, -60, 100_000])
def test_seconds_round_trip_in_new_york(day: date, seconds: int) -> None:
    """from_seconds then to_seconds gives back the same seconds, across DST change days."""
    epoch = plan_epoch(day, NEW_YORK)
    assert to_seconds(from_seconds(seconds, epoch), epoch) == seconds


@pytest.mark.parametrize("day", [SPRING_FORWARD, FALL_BACK])
@pytest.mark.parametrize("minute", range(0, 24 * 60, 17))
def test_datetime_round_trip_in_new_york(day: date, minute: int) -> None:
    """to_seconds then from_seconds gives back the same instant, across DST change days."""
    epoch = plan_epoch(day, NEW_YORK)
    instant = epoch + timedelta(minutes=minute)
    assert from_seconds(to_seconds(instant, epoch), epoch) == instant


def test_seconds_are_elapsed_time_on_spring_forward_day() -> None:
    """On the 23-hour spring-forward day, local 12:00 is 11 hours after midnight."""
    assert local_time_to_seconds(SPRING_FORWARD, time(12), NEW_YORK) == 11 * 3600


def test_seconds_are_elapsed_time_on_fall_back_day() -> None:
    """On the 25-hour fall-back day, local 12:00 is 13 hours after midnight."""
    assert local_time_to_seconds(FALL_BACK, time(12), NEW_YORK) == 13 * 3600


def test_skipped_wall_time_lands_after_the_gap() -> None:
    """02:30 does not exist on the spring-forward day; it means 03:30 EDT."""
    converted = local_time_to_utc(SPRING_FORWARD, time(2, 30), NEW_YORK)
    assert utc_to_local(converted, NEW_YORK).replace(tzinfo=None) == datetime(2025, 3, 9, 3, 30)


def test_repeated_wall_time_means_its_first_occurrence() -> None:
    """01:30 happens twice on the fall-back day; it means the first (EDT, UTC-4)."""
    assert local_time_to_utc(FALL_BACK, time(1, 30), NEW_YORK) == datetime(
        2025, 11, 2, 5, 30, tzinfo=UTC
    )


def test_utc_to_local_keeps_the_instant() -> None:
    """Converting to a zone changes the wall clock, not the instant."""
    instant = datetime(2025, 3, 10, 1, 0, tzinfo=UTC)
    local = utc_to_local(instant, "Asia/Shanghai")
    assert local == instant and local.hour == 9


def test_local_day_uses_the_zone() -> None:
    """20:00 UTC is already the next calendar day in Shanghai."""
    assert local_day(datetime(2025, 3, 9, 20, tzinfo=UTC), "Asia/Shanghai") == date(2025, 3, 10)


def test_naive_datetime_is_refused() -> None:
    """A naive datetime raises ValidationError instead of guessing its zone."""
    with pytest.raises(ValidationError):
        to_seconds(datetime(2025, 3, 10, 9), plan_epoch(date(2025, 3, 10), "UTC"))


def test_unknown_zone_is_refused() -> None:
    """An unknown zone name raises ValidationError naming the timezone field."""
    with pytest.raises(ValidationError) as caught:
        zone("Mars/Olympus")
    assert caught.value.field == "timezone"


def test_fixed_offset_zone_is_accepted() -> None:
    """A tzinfo object can stand in for a zone name."""
    plus8 = timezone(timedelta(hours=8))
    assert plan_epoch(date(2025, 3, 10), plus8) == plan_epoch(date(2025, 3, 10), "Asia/Shanghai")
