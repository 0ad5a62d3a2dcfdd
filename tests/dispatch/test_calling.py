"""Calling hours: outlet hours, quiet periods, holidays, customer preference, DST zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.calling import (
    calling_window,
    is_callable_at,
    latest_call_time,
    may_text_at,
    next_call_time,
    next_calling_day,
    working_day,
)
from dispatch.errors import ValidationError
from tests.dispatch.builders import DAY, build_graph, local

SHANGHAI = ZoneInfo("Asia/Shanghai")


def outlet(tz: str = "Asia/Shanghai", **fields: object) -> m.Outlet:
    """A detached outlet (no holidays) with the default calling hours unless given."""
    return m.Outlet(code="O1", name="网点", name_en="Outlet", address="-", lat=36.0, lon=120.0,
                    timezone=tz, **fields)


def clocks(intervals: list[tuple[datetime, datetime]], tz: str) -> list[tuple[str, str]]:
    """The intervals as local HH:MM pairs."""
    zone = ZoneInfo(tz)
    return [(a.astimezone(zone).strftime("%H:%M"), b.astimezone(zone).strftime("%H:%M"))
            for a, b in intervals]


def test_default_window_is_ten_to_eight_without_lunch_rest() -> None:
    """By default calls are allowed 10:00-12:00 and 13:30-20:00 local."""
    assert clocks(calling_window(outlet(), None, DAY), "Asia/Shanghai") == [
        ("10:00", "12:00"), ("13:30", "20:00")]


def test_customer_preference_narrows_the_window() -> None:
    """A customer who takes calls only 17:00-21:00 is called 17:00-20:00."""
    customer = m.Customer(calling_start=time(17, 0), calling_end=time(21, 0))
    assert clocks(calling_window(outlet(), customer, DAY), "Asia/Shanghai") == [
        ("17:00", "20:00")]


def test_custom_quiet_periods_are_removed() -> None:
    """Configured quiet periods (here lunch and dinner) are cut out of the window."""
    row = outlet(quiet_periods=[["12:00", "13:00"], ["18:00", "19:00"]])
    assert clocks(calling_window(row, None, DAY), "Asia/Shanghai") == [
        ("10:00", "12:00"), ("13:00", "18:00"), ("19:00", "20:00")]


def test_malformed_quiet_period_names_the_field() -> None:
    """A quiet period that is not two HH:MM times raises an error naming the field and outlet."""
    with pytest.raises(ValidationError, match=r"quiet_periods\[0\]") as info:
        calling_window(outlet(quiet_periods=[["25:00"]]), None, DAY)
    assert "O1" in str(info.value)


def test_holiday_has_no_calling_time(session: Session) -> None:
    """On a holiday of the outlet (or of every outlet) no call is allowed."""
    graph = build_graph(session)
    session.add(m.Holiday(outlet_id=None, day=DAY, name_zh="节日", name_en="Holiday"))
    session.flush()
    assert calling_window(graph.outlet, None, DAY) == []
    assert calling_window(session, None, DAY, outlet_row=graph.outlet) == []
    assert next_calling_day(graph.outlet, None, DAY, backwards=True) == date(2025, 3, 9)
    assert clocks(calling_window(graph.outlet, None, date(2025, 3, 11)), "Asia/Shanghai")[0] \
        == ("10:00", "12:00")


def test_next_call_time_waits_for_the_window() -> None:
    """Before 10:00 the next call is at 10:00; in the lunch rest it is at 13:30."""
    row = outlet()
    assert next_call_time(row, None, local(8), local(18)) == local(10)
    assert next_call_time(row, None, local(12, 10), local(18)) == local(13, 30)
    assert next_call_time(row, None, local(11), local(18)) == local(11)


def test_no_call_after_eight_in_the_evening() -> None:
    """A call cannot start so late that it runs past 20:00; the next one is tomorrow at 10:00."""
    row = outlet()
    evening = local(19, 58)
    assert not is_callable_at(row, None, evening)
    assert next_call_time(row, None, evening, local(12, day=date(2025, 3, 11))) == local(
        10, day=date(2025, 3, 11))


def test_no_call_time_before_the_latest_useful_moment() -> None:
    """When nothing is allowed in [not_before, latest_useful], there is no call time."""
    row = outlet()
    assert next_call_time(row, None, local(20, 30), local(9, day=date(2025, 3, 11))) is None
    assert latest_call_time(row, None, local(20, 30), local(9, day=date(2025, 3, 11))) is None


def test_latest_call_time_leaves_room_for_the_call() -> None:
    """The latest call starts three minutes before calling hours end or before the latest
    useful moment, whichever is first."""
    assert latest_call_time(outlet(), None, local(15), local(20, 30)) == local(19, 57)
    assert latest_call_time(outlet(), None, local(15), local(16)) == local(15, 57)


def test_berlin_spring_forward_day() -> None:
    """On Europe/Berlin's DST change day (2025-03-30) 10:00 local is 08:00 UTC, the day
    before 09:00 UTC."""
    row = outlet("Europe/Berlin")
    change = calling_window(row, None, date(2025, 3, 30))
    before = calling_window(row, None, date(2025, 3, 29))
    assert change[0][0] == datetime(2025, 3, 30, 8, 0, tzinfo=UTC)
    assert before[0][0] == datetime(2025, 3, 29, 9, 0, tzinfo=UTC)
    assert clocks(change, "Europe/Berlin") == [("10:00", "12:00"), ("13:30", "20:00")]


def test_new_york_fall_back_day() -> None:
    """On America/New_York's fall-back day (2025-11-02) the window is still 10:00-20:00 local."""
    row = outlet("America/New_York")
    window = calling_window(row, None, date(2025, 11, 2))
    assert window[0][0] == datetime(2025, 11, 2, 15, 0, tzinfo=UTC)
    assert window[-1][1] == datetime(2025, 11, 3, 1, 0, tzinfo=UTC)


def test_the_working_day_runs_from_the_first_shift_to_twenty_at_the_latest(
        session: Session) -> None:
    """A delay notice may be texted from the earliest shift start (08:30 in the builders) to
    20:00, even where calls are allowed later: not at 08:29, not at 20:00."""
    graph = build_graph(session)
    graph.outlet.calling_end = time(21, 0)
    assert working_day(graph.outlet, DAY) == (local(8, 30), local(20))
    assert may_text_at(graph.outlet, DAY, local(12, 10))
    assert not may_text_at(graph.outlet, DAY, local(8, 29))
    assert not may_text_at(graph.outlet, DAY, local(20))


def test_without_shifts_the_working_day_opens_with_the_outlet() -> None:
    """An outlet nobody works at that day: its business hours open the working day."""
    row = outlet(business_open=time(9, 0), calling_end=time(19, 0))
    assert clocks([working_day(row, DAY) or (local(0), local(0))], "Asia/Shanghai") == [
        ("09:00", "19:00")]
