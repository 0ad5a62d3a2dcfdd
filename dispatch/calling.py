"""Calling hours: when a customer may be called or messaged.

A day's allowed calling intervals are the outlet's calling hours (default 10:00-20:00 local),
minus its quiet periods (meal and rest times, default 12:00-13:30), none at all on a holiday,
and intersected with the customer's own calling hours when they gave any. Weekends are ordinary
calling days: customers are usually at home then and service networks work seven days a week.

Every boundary is a local wall time converted on its own through ``dispatch.timeutil``, so the
intervals stay right on a daylight-saving change day. Intervals are half-open ``[start, end)``
in aware UTC datetimes; a call needs ``CALL_DURATION`` of room before the interval ends, and
must be over by the latest useful moment.

One written message is exempt from calling hours: a delay notice about an appointment of the
same day, which may be texted at any moment of the outlet's working day (``working_day``: from
its technicians' earliest shift start, e.g. 08:00, to the end of calling hours, 20:00 at the
latest), rest times and the customer's own calling hours included. A customer waiting at home
for a technician who will come late must hear in time, and an 08:00-10:00 window ends when
calls may begin; a text does not ring at lunch the way a call does. Never at night: outside
the working day such a notice waits like any other message.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, object_session

from dispatch import models as m
from dispatch.errors import ValidationError
from dispatch.timeutil import local_day, local_time_to_utc, require_aware

#: A customer call takes about three minutes (DOMAIN.md); it must fit before calling hours end.
CALL_DURATION = timedelta(minutes=3)
#: How far ahead (in days) to look for the next calling day, e.g. across a holiday week.
MAX_SEARCH_DAYS = 10
#: A same-day delay notice is never texted after this local time, whatever the calling hours.
LATEST_MESSAGE = time(20, 0)

Interval = tuple[datetime, datetime]
_Minutes = tuple[int, int]  # local minutes since midnight, half-open

DAY_MINUTES = 24 * 60


# ---------------------------------------------------------------------------------------------
# Holidays
# ---------------------------------------------------------------------------------------------


def holidays(outlet: m.Outlet, first: date, last: date,
             session: Session | None = None) -> set[date]:
    """The outlet's holidays (its own and those of every outlet) between two days, inclusive.

    The session is the outlet's own unless given; a detached outlet without one has none.
    """
    session = session or object_session(outlet)
    if session is None:
        return set()
    query = select(m.Holiday.day).where(
        m.Holiday.day >= first, m.Holiday.day <= last,
        or_(m.Holiday.outlet_id.is_(None), m.Holiday.outlet_id == outlet.id))
    return set(session.scalars(query))


def is_holiday(outlet: m.Outlet, day: date, session: Session | None = None) -> bool:
    """Whether ``day`` is a holiday at the outlet."""
    return day in holidays(outlet, day, day, session)


# ---------------------------------------------------------------------------------------------
# The day's calling intervals
# ---------------------------------------------------------------------------------------------


def calling_window(outlet: m.Outlet | Session, customer: m.Customer | None, day: date, *,
                   holiday_days: Collection[date] | None = None,
                   outlet_row: m.Outlet | None = None) -> list[Interval]:
    """The allowed calling intervals of the outlet's local ``day`` for ``customer`` (UTC).

    ``outlet`` is the outlet (its session is used for holidays), or a session together with
    ``outlet_row``. ``holiday_days`` replaces the database lookup (useful in loops). An empty
    list means the customer may not be called that day.
    """
    row = _outlet_of(outlet, outlet_row)
    session = outlet if isinstance(outlet, Session) else None
    off = holiday_days if holiday_days is not None else holidays(row, day, day, session)
    if day in off:
        return []
    minutes = _day_minutes(row, customer)
    return [(_utc(row, day, a), _utc(row, day, b)) for a, b in minutes]


def _outlet_of(outlet: m.Outlet | Session, outlet_row: m.Outlet | None) -> m.Outlet:
    if isinstance(outlet, m.Outlet):
        return outlet
    if outlet_row is None:
        raise ValidationError("calling_window: give the outlet when passing a session",
                              "calling_window：传入会话时须同时给出网点", field="outlet")
    return outlet_row


def _day_minutes(outlet: m.Outlet, customer: m.Customer | None) -> list[_Minutes]:
    """Local calling minutes of any non-holiday day: hours, minus quiet periods, per customer."""
    start = _minutes(outlet.calling_start or time(10, 0))
    end = _minutes(outlet.calling_end or time(20, 0))
    if customer is not None and (customer.calling_start or customer.calling_end):
        start = max(start, _minutes(customer.calling_start or time(0, 0)))
        end = min(end, _minutes(customer.calling_end) if customer.calling_end else DAY_MINUTES)
    spans = [(start, end)] if end > start else []
    for quiet in quiet_periods(outlet):
        spans = _subtract(spans, quiet)
    return spans


def quiet_periods(outlet: m.Outlet) -> list[_Minutes]:
    """The outlet's quiet periods as local minutes; a malformed entry raises ValidationError."""
    periods = outlet.quiet_periods if outlet.quiet_periods is not None else [["12:00", "13:30"]]
    parsed = []
    for index, period in enumerate(periods):
        where = f"quiet_periods[{index}]"
        if not isinstance(period, (list, tuple)) or len(period) != 2:
            raise _quiet_error(outlet, where, period)
        start, end = (_parse_clock(outlet, where, text) for text in period)
        if end <= start:
            raise _quiet_error(outlet, where, period)
        parsed.append((start, end))
    return parsed


def _parse_clock(outlet: m.Outlet, where: str, text: object) -> int:
    try:
        hours, minutes = str(text).split(":")
        value = int(hours) * 60 + int(minutes)
    except ValueError as exc:
        raise _quiet_error(outlet, where, text) from exc
    if not 0 <= value <= DAY_MINUTES or not 0 <= int(minutes) < 60:
        raise _quiet_error(outlet, where, text)
    return value


def _quiet_error(outlet: m.Outlet, where: str, value: object) -> ValidationError:
    return ValidationError(
        f"{value!r} is not a local period like [\"12:00\", \"13:30\"]",
        f"{value!r} 不是有效的本地时段（如 [\"12:00\", \"13:30\"]）",
        field=f"Outlet.{where}", row=outlet.code)


def _subtract(spans: list[_Minutes], cut: _Minutes) -> list[_Minutes]:
    out = []
    for start, end in spans:
        if cut[1] <= start or cut[0] >= end:
            out.append((start, end))
            continue
        if cut[0] > start:
            out.append((start, cut[0]))
        if cut[1] < end:
            out.append((cut[1], end))
    return out


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _utc(outlet: m.Outlet, day: date, minutes: int) -> datetime:
    # 24:00 is the next local midnight.
    if minutes >= DAY_MINUTES:
        return local_time_to_utc(day + timedelta(days=1), time(0, 0), outlet.timezone)
    return local_time_to_utc(day, time(minutes // 60, minutes % 60), outlet.timezone)


# ---------------------------------------------------------------------------------------------
# When to call
# ---------------------------------------------------------------------------------------------


def allowed_intervals(outlet: m.Outlet, customer: m.Customer | None, not_before: datetime,
                      latest_useful: datetime) -> list[Interval]:
    """Every allowed calling interval inside ``[not_before, latest_useful]`` with room for a
    whole call, clipped to that range."""
    require_aware(not_before, "not_before")
    require_aware(latest_useful, "latest_useful")
    if latest_useful < not_before:
        return []
    first = local_day(not_before, outlet.timezone)
    last = local_day(latest_useful, outlet.timezone)
    off = holidays(outlet, first, last)
    out = []
    day = first
    while day <= last:
        for start, end in calling_window(outlet, customer, day, holiday_days=off):
            lo, hi = max(start, not_before), min(end, latest_useful)
            if lo + CALL_DURATION <= hi:
                out.append((lo, hi))
        day += timedelta(days=1)
    return out


def next_call_time(outlet: m.Outlet, customer: m.Customer | None, not_before: datetime,
                   latest_useful: datetime) -> datetime | None:
    """The earliest moment a call may start and be over by ``latest_useful``; None if none."""
    intervals = allowed_intervals(outlet, customer, not_before, latest_useful)
    return intervals[0][0] if intervals else None


def latest_call_time(outlet: m.Outlet, customer: m.Customer | None, not_before: datetime,
                     latest_useful: datetime) -> datetime | None:
    """The latest moment a call may start and be over by ``latest_useful``; None if none."""
    intervals = allowed_intervals(outlet, customer, not_before, latest_useful)
    return intervals[-1][1] - CALL_DURATION if intervals else None


def is_callable_at(outlet: m.Outlet, customer: m.Customer | None, at: datetime) -> bool:
    """Whether a call may start at ``at`` (and fit before calling hours end)."""
    return next_call_time(outlet, customer, at, at + CALL_DURATION) == at


def next_calling_day(outlet: m.Outlet, customer: m.Customer | None, after: date,
                     *, backwards: bool = False) -> date | None:
    """The first day after (or, ``backwards``, before) ``after`` with any calling interval."""
    step = timedelta(days=-1 if backwards else 1)
    span = sorted([after + step, after + step * MAX_SEARCH_DAYS])
    off = holidays(outlet, span[0], span[1])
    day = after
    for _ in range(MAX_SEARCH_DAYS):
        day += step
        if calling_window(outlet, customer, day, holiday_days=off):
            return day
    return None


# ---------------------------------------------------------------------------------------------
# Texting a same-day delay notice
# ---------------------------------------------------------------------------------------------


def working_day(outlet: m.Outlet, day: date, session: Session | None = None) -> Interval | None:
    """The outlet's working ``day`` (UTC): from the earliest shift start of its technicians
    working that day (the business opening when none is) to the end of calling hours, 20:00 at
    the latest; None when that leaves nothing.

    The session is the outlet's own unless given; a detached outlet has no shifts.
    """
    session = session or object_session(outlet)
    first_shift = _first_shift_start(session, outlet, day) if session is not None else None
    start = first_shift or _utc(outlet, day, _minutes(outlet.business_open or time(8, 30)))
    end = _utc(outlet, day, min(_minutes(outlet.calling_end or LATEST_MESSAGE),
                                _minutes(LATEST_MESSAGE)))
    return (start, end) if start < end else None


def _first_shift_start(session: Session, outlet: m.Outlet, day: date) -> datetime | None:
    return session.scalar(
        select(func.min(m.TechnicianShift.starts_at))
        .join(m.Technician, m.Technician.id == m.TechnicianShift.technician_id)
        .where(m.Technician.outlet_id == outlet.id, m.TechnicianShift.day == day,
               m.TechnicianShift.absent.is_(False)))


def next_message_time(outlet: m.Outlet, day: date, not_before: datetime,
                      latest_useful: datetime) -> datetime | None:
    """The earliest moment in ``[not_before, latest_useful]`` at which a delay notice about an
    appointment on ``day`` may be texted (the outlet's working day); None if none."""
    require_aware(not_before, "not_before")
    require_aware(latest_useful, "latest_useful")
    span = working_day(outlet, day)
    if span is None:
        return None
    at = max(span[0], not_before)
    return at if at < span[1] and at <= latest_useful else None


def may_text_at(outlet: m.Outlet, day: date, at: datetime) -> bool:
    """Whether a delay notice about an appointment on ``day`` may be texted at ``at``."""
    return next_message_time(outlet, day, at, at) == at
