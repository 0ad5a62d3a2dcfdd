"""Work for people derived from a published plan: the calls and notices that keep promises.

For each planned visit of a published plan:
- a re-confirmation call, before the technician sets off for it (planned arrival minus travel)
  and inside calling hours: on the visit's day when there is enough calling time before
  departure, otherwise the previous calling day's afternoon (from 15:00, the customary
  reminder time), which is what an early first visit (08:30) gets;
- a delay notice when the planned start passes the end of the agreed window (or, without an
  agreed window, of the accepted window it belongs to), due at least 15 minutes before the
  window starts, with the new arrival time; none when the customer was already told of an
  arrival within ``MOVED_ARRIVAL_THRESHOLD`` of it (by the running-late watch, say);
- a consent request for any change to a confirmed appointment (start outside the agreed window,
  or a technician other than the committed one without an agreed handover), with alternatives;
- a handover notice when the visit passes to another technician (the committed one, or the one
  of the previously published plan).
For each visit of the outlet-day that is done: a follow-up call (回访) on the next calling day.

A task that cannot be done inside calling hours before it is due is flagged for the dispatcher
with the reason. Deriving is idempotent: each task's idempotency key holds the visit, the kind
and the plan data it depends on; deriving again creates nothing new, and open tasks a newer
plan made obsolete are cancelled. Functions flush but never commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dispatch import db
from dispatch import models as m
from dispatch.calling import (
    CALL_DURATION,
    Interval,
    allowed_intervals,
    next_calling_day,
)
from dispatch.confirmation import is_agreed
from dispatch.errors import ValidationError
from dispatch.timeutil import local_day, local_time_to_utc, plan_epoch, require_aware, utc_to_local

K = m.TaskKind

#: Kinds that depend on a plan's times and technicians; a newer plan cancels stale ones.
PLAN_KINDS = frozenset({K.RECONFIRM_CALL, K.DELAY_NOTICE, K.CONSENT_REQUEST, K.HANDOVER_NOTICE})
#: Customer-facing kinds: they must happen inside calling hours.
CALL_KINDS = PLAN_KINDS | {K.CONFIRMATION_CALL, K.FOLLOWUP_CALL, K.CHARGE_NOTICE}
#: A delay is announced at least this long before the agreed time (DOMAIN: 15 minutes).
DELAY_NOTICE_LEAD = timedelta(minutes=15)
#: A customer whose arrival moves by more than this is told (again); within it, the time
#: already given stands (the re-optimization job's threshold for moved arrivals).
MOVED_ARRIVAL_THRESHOLD = timedelta(minutes=15)
#: Less calling time than this before departure on the day: call the afternoon before.
MIN_SAME_DAY_CALLING = timedelta(minutes=30)
#: The customary afternoon reminder time for the next day's visits.
REMINDER_FROM = time(15, 0)
#: Alternative windows offered in a consent request: length, rounding, how many.
ALTERNATIVE_LENGTH = timedelta(hours=2)
MAX_ALTERNATIVES = 3

ACTIVE_VISIT = frozenset({m.VisitStatus.PLANNED})

FLAG_REASONS: dict[str, tuple[str, str]] = {
    "no_calling_time": (
        "在截止时间前的允许通话时段内无法完成（通话时间 10:00-20:00，避开午休和节假日）",
        "cannot be made inside calling hours before it is due (calls 10:00-20:00, not at "
        "meal or rest times or on holidays)"),
    "already_due": ("已过截止时间，请立即处理", "its due time has already passed; act at once"),
}


@dataclass(frozen=True)
class _Due:
    """When a task may be done and by when; flagged when no allowed time is left."""

    due_from: datetime
    due_by: datetime
    flag: str | None = None


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def derive_tasks(session: Session, plan: m.Plan, *, now: datetime) -> list[m.Task]:
    """The tasks the published ``plan`` calls for (new ones added, existing ones kept).

    Open plan-derived tasks of the outlet-day that this plan no longer calls for are cancelled.
    """
    require_aware(now, "now")
    if plan.status != m.PlanStatus.PUBLISHED:
        raise ValidationError(f"plan {plan.number} is not published; publish it first",
                              f"方案 {plan.number} 尚未发布，请先发布", field="status",
                              row=plan.number)
    deriver = _Deriver(session, plan, now)
    wanted = deriver.plan_tasks() + deriver.followups()
    tasks = _get_or_add(session, wanted)
    _cancel_stale(session, plan, {t.idempotency_key for t in tasks}, now)
    db.flush(session)
    return tasks


def tasks_for_day(session: Session, outlet: m.Outlet | str, day: date) -> list[m.Task]:
    """The outlet's tasks due on its local ``day`` (due window overlapping it), by due time."""
    outlet = m.find_outlet(session, outlet)
    start = plan_epoch(day, outlet.timezone)
    end = plan_epoch(day + timedelta(days=1), outlet.timezone)
    query = (select(m.Task)
             .where(m.Task.outlet_id == outlet.id, m.Task.due_from < end, m.Task.due_by >= start)
             .options(selectinload(m.Task.visit), selectinload(m.Task.technician),
                      selectinload(m.Task.ticket))
             .order_by(m.Task.due_from, m.Task.id))
    return list(session.scalars(query))


def flag_text(code: str) -> str:
    """The bilingual flag reason for ``code``, Chinese first."""
    zh, en = FLAG_REASONS[code]
    return f"{zh} / {en}"


def call_due(outlet: m.Outlet, customer: m.Customer, not_before: datetime, latest: datetime,
             now: datetime) -> _Due:
    """When a call to ``customer`` may be made in ``[not_before, latest]`` (calling hours), or
    a due window flagged with why it cannot be (no calling time left, or already past)."""
    intervals = allowed_intervals(outlet, customer, not_before, latest)
    if intervals:
        return _due_from_intervals(intervals)
    flag = "already_due" if latest < now else "no_calling_time"
    return _Due(min(not_before, latest), latest, flag)


def delay_notices(session: Session, visit_ids: Iterable[int]) -> dict[int, m.Task]:
    """Visit id -> its latest delay notice that was not cancelled (given or still to give)."""
    ids = list(visit_ids)
    if not ids:
        return {}
    query = (select(m.Task).where(m.Task.kind == K.DELAY_NOTICE.value,
                                  m.Task.visit_id.in_(ids),
                                  m.Task.status != m.TaskStatus.CANCELLED.value)
             .order_by(m.Task.id))
    return {task.visit_id: task for task in session.scalars(query) if task.visit_id is not None}


def told_arrival(task: m.Task) -> datetime | None:
    """The new arrival a delay notice gives the customer."""
    text = (task.payload or {}).get("new_arrival")
    return datetime.fromisoformat(text) if text else None


def already_told(task: m.Task | None, arrival: datetime,
                 threshold: timedelta = MOVED_ARRIVAL_THRESHOLD) -> bool:
    """Whether the delay notice gives (or gave) the customer an arrival within ``threshold``
    of ``arrival``: telling them again would only repeat it."""
    told = told_arrival(task) if task is not None else None
    return told is not None and abs(told - arrival) <= threshold


def promised_window(visit: m.Visit, start: datetime) -> tuple[datetime, datetime] | None:
    """The agreed window, or else the latest accepted window that opened before ``start``:
    the window a start after which is late."""
    if visit.agreed_start is not None and visit.agreed_end is not None:
        return visit.agreed_start, visit.agreed_end
    opened = [(w.starts_at, w.ends_at) for w in visit.windows if w.starts_at <= start]
    return max(opened) if opened else None


# ---------------------------------------------------------------------------------------------
# Deriving
# ---------------------------------------------------------------------------------------------


class _Deriver:
    """Derives the tasks of one published plan at ``now``."""

    def __init__(self, session: Session, plan: m.Plan, now: datetime) -> None:
        self.session = session
        self.plan = plan
        self.outlet = plan.outlet
        self.now = now
        self.previous = _previous_technicians(session, plan)

    @cached_property
    def told(self) -> dict[int, m.Task]:
        """Visit id -> the delay notice its customer has (or is to be) given: one query for
        the plan's visits."""
        return delay_notices(self.session, [s.visit_id for s in _visit_stops(self.plan)
                                            if s.visit_id is not None])

    # -- per visit stop -------------------------------------------------------------------

    def plan_tasks(self) -> list[m.Task]:
        """Re-confirmation, delay, consent and handover tasks of the plan's visits."""
        tasks: list[m.Task] = []
        for stop in _visit_stops(self.plan):
            visit = stop.visit
            assert visit is not None
            if visit.status not in ACTIVE_VISIT:
                continue
            departure = stop.arrival_at - timedelta(seconds=stop.travel_seconds)
            tasks.append(self.reconfirm(stop, visit, departure))
            tasks.extend(self.delay(stop, visit))
            tasks.extend(self.consent(stop, visit, departure))
            tasks.extend(self.handover(stop, visit, departure))
        return tasks

    def reconfirm(self, stop: m.PlanStop, visit: m.Visit, departure: datetime) -> m.Task:
        """The call that re-confirms the time before the technician sets off."""
        customer = visit.ticket.customer
        due = self.reconfirm_due(customer, visit.day, departure)
        return self.task(
            K.RECONFIRM_CALL, visit, stop, due, m.AssigneeRole.TECHNICIAN,
            key=f"{stop.technician_id}:{_minute(stop.start_at)}",
            payload={"departure": _iso(departure), "planned_arrival": _iso(stop.arrival_at),
                     "planned_start": _iso(stop.start_at)})

    def reconfirm_due(self, customer: m.Customer, day: date, departure: datetime) -> _Due:
        """On the day when there is time enough before departure, else the afternoon before."""
        day_start = plan_epoch(day, self.outlet.timezone)
        same_day = allowed_intervals(self.outlet, customer, max(self.now, day_start), departure)
        if _total(same_day) >= MIN_SAME_DAY_CALLING:
            return _due_from_intervals(same_day)
        before = next_calling_day(self.outlet, customer, day, backwards=True)
        afternoon = (local_time_to_utc(before, REMINDER_FROM, self.outlet.timezone)
                     if before is not None else day_start)
        return self.due_between(customer, max(self.now, afternoon), departure)

    def delay(self, stop: m.PlanStop, visit: m.Visit) -> list[m.Task]:
        """A delay notice when the planned start passes the end of the promised window; the
        notice already given (e.g. by the running-late watch) when it told about this time."""
        window = promised_window(visit, stop.start_at)
        if window is None or stop.start_at <= window[1]:
            return []
        told = self.told.get(visit.id)
        if told is not None and already_told(told, stop.arrival_at):
            return [told]
        latest = window[0] - DELAY_NOTICE_LEAD
        due = self.due_between(visit.ticket.customer, self.now, latest)
        late = int((stop.start_at - window[1]).total_seconds() // 60)
        return [self.task(
            K.DELAY_NOTICE, visit, stop, due, m.AssigneeRole.TECHNICIAN,
            key=_minute(stop.arrival_at),
            payload={"new_arrival": _iso(stop.arrival_at),
                     "new_arrival_local": self.clock(stop.arrival_at),
                     "planned_start": _iso(stop.start_at),
                     "window_start": _iso(window[0]), "window_end": _iso(window[1]),
                     "late_minutes": late})]

    def consent(self, stop: m.PlanStop, visit: m.Visit, departure: datetime) -> list[m.Task]:
        """A consent request when the plan changes a confirmed appointment."""
        if not is_agreed(visit):
            return []
        assert visit.agreed_start is not None and visit.agreed_end is not None
        reasons = []
        if not visit.agreed_start <= stop.start_at <= visit.agreed_end:
            reasons.append("time_changed")
        committed = visit.committed_technician_id
        if committed is not None and committed != stop.technician_id \
                and not visit.handover_agreed:
            reasons.append("technician_changed")
        if not reasons:
            return []
        latest = min(departure, visit.agreed_start)
        due = self.due_between(visit.ticket.customer, self.now, latest)
        return [self.task(
            K.CONSENT_REQUEST, visit, stop, due, m.AssigneeRole.DISPATCHER,
            key=f"{stop.technician_id}:{_minute(stop.start_at)}",
            payload={"reasons": reasons, "planned_start": _iso(stop.start_at),
                     "agreed_start": _iso(visit.agreed_start),
                     "agreed_end": _iso(visit.agreed_end),
                     "old_technician_id": committed, "new_technician_id": stop.technician_id,
                     "alternatives": self.alternatives(visit, stop,
                                                       "time_changed" in reasons)})]

    def alternatives(self, visit: m.Visit, stop: m.PlanStop,
                     time_changed: bool) -> list[dict[str, str]]:
        """Two or three windows to offer (see ``alternatives``)."""
        return alternatives(self.outlet, visit, stop.start_at, time_changed)

    def handover(self, stop: m.PlanStop, visit: m.Visit, departure: datetime) -> list[m.Task]:
        """A handover notice when another technician than before takes the visit."""
        before = visit.committed_technician_id or self.previous.get(visit.id)
        if before is None or before == stop.technician_id:
            return []
        due = self.due_between(visit.ticket.customer, self.now, departure)
        return [self.task(
            K.HANDOVER_NOTICE, visit, stop, due, m.AssigneeRole.DISPATCHER,
            key=f"{before}:{stop.technician_id}",
            payload={"old_technician_id": before, "new_technician_id": stop.technician_id,
                     "old_technician": _technician_name(self.session, before),
                     "new_technician": stop.technician.name,
                     "handover_agreed": visit.handover_agreed})]

    # -- follow-ups -----------------------------------------------------------------------

    def followups(self) -> list[m.Task]:
        """A follow-up call the next calling day after each visit of the day that is done."""
        query = (select(m.Visit)
                 .where(m.Visit.outlet_id == self.outlet.id, m.Visit.day == self.plan.day,
                        m.Visit.status == m.VisitStatus.DONE.value)
                 .options(selectinload(m.Visit.ticket).selectinload(m.ServiceTicket.customer))
                 .order_by(m.Visit.code))
        return [self.followup(visit) for visit in self.session.scalars(query)]

    def followup(self, visit: m.Visit) -> m.Task:
        """The 回访 call for one completed visit."""
        customer = visit.ticket.customer
        done_day = (local_day(visit.actual_end, self.outlet.timezone)
                    if visit.actual_end is not None else visit.day)
        call_day = next_calling_day(self.outlet, customer, done_day) \
            or done_day + timedelta(days=1)
        tz = self.outlet.timezone
        start, end = plan_epoch(call_day, tz), plan_epoch(call_day + timedelta(days=1), tz)
        due = self.due_between(customer, max(self.now, start), end)
        return self.task(K.FOLLOWUP_CALL, visit, None, due, m.AssigneeRole.DISPATCHER,
                         key="", payload={"completed_day": done_day.isoformat()})

    # -- helpers --------------------------------------------------------------------------

    def due_between(self, customer: m.Customer, not_before: datetime,
                    latest: datetime) -> _Due:
        """Allowed calling time in ``[not_before, latest]``, or a flagged due window."""
        return call_due(self.outlet, customer, not_before, latest, self.now)

    def task(self, kind: m.TaskKind, visit: m.Visit, stop: m.PlanStop | None, due: _Due,
             role: m.AssigneeRole, *, key: str, payload: dict[str, Any]) -> m.Task:
        """A task row (not yet added) for ``visit``."""
        return m.Task(
            kind=kind, visit_id=visit.id, ticket_id=visit.ticket_id, outlet_id=visit.outlet_id,
            assignee_role=role, technician_id=stop.technician_id if stop else None,
            due_from=due.due_from, due_by=due.due_by, status=m.TaskStatus.OPEN,
            payload={"visit": visit.code, "plan": self.plan.number,
                     **({"flag_code": due.flag} if due.flag else {}), **payload},
            flagged=due.flag is not None, flag_reason=flag_text(due.flag) if due.flag else "",
            idempotency_key=f"{kind.value}:{visit.id}" + (f":{key}" if key else ""),
            created_at=self.now)

    def clock(self, dt: datetime) -> str:
        """``dt`` as local HH:MM at the outlet."""
        return utc_to_local(dt, self.outlet.timezone).strftime("%H:%M")


def alternatives(outlet: m.Outlet, visit: m.Visit, start: datetime,
                 time_changed: bool) -> list[dict[str, str]]:
    """Two or three windows to offer for a confirmed visit starting at ``start``: that time,
    then the other accepted windows.

    When only the technician changes, the agreed window itself (with the new technician) is an
    alternative too.
    """
    tz = outlet.timezone
    local_start = _floor_half_hour(utc_to_local(start, tz))
    candidates = [(local_start, local_start + ALTERNATIVE_LENGTH)]
    candidates += [(w.starts_at, w.ends_at) for w in visit.windows]
    agreed = (visit.agreed_start, visit.agreed_end)
    chosen: list[tuple[datetime, datetime]] = []
    for a, b in candidates:
        if (time_changed and (a, b) == agreed) or (a, b) in chosen:
            continue
        chosen.append((a, b))
    return [{"start": _iso(a.astimezone(UTC)), "end": _iso(b.astimezone(UTC)),
             "start_local": utc_to_local(a, tz).strftime("%H:%M"),
             "end_local": utc_to_local(b, tz).strftime("%H:%M")}
            for a, b in chosen[:MAX_ALTERNATIVES]]


def _visit_stops(plan: m.Plan) -> list[m.PlanStop]:
    return [s for s in plan.stops if s.kind == m.StopKind.VISIT and s.visit is not None]


def _previous_technicians(session: Session, plan: m.Plan) -> dict[int, int]:
    """Visit id -> technician id in the outlet-day's previously published plan."""
    previous = session.scalar(
        select(m.Plan)
        .where(m.Plan.outlet_id == plan.outlet_id, m.Plan.day == plan.day,
               m.Plan.number < plan.number, m.Plan.published_at.is_not(None),
               m.Plan.id != plan.id)
        .order_by(m.Plan.number.desc()).limit(1))
    if previous is None:
        return {}
    return {s.visit_id: s.technician_id for s in previous.stops
            if s.kind == m.StopKind.VISIT and s.visit_id is not None}


def _due_from_intervals(intervals: list[Interval]) -> _Due:
    if not intervals:
        raise ValueError("no calling intervals")  # callers check; a bug otherwise
    return _Due(intervals[0][0], intervals[-1][1] - CALL_DURATION)


def _total(intervals: Iterable[Interval]) -> timedelta:
    return sum((b - a for a, b in intervals), timedelta())


def _get_or_add(session: Session, wanted: list[m.Task]) -> list[m.Task]:
    """For each wanted task, the stored task with its idempotency key, else the task added."""
    # One query for all the keys, not one per task (a plan of 200 visits has some 250 tasks).
    keys = {task.idempotency_key for task in wanted}
    known = {task.idempotency_key: task for task in session.scalars(
        select(m.Task).where(m.Task.idempotency_key.in_(keys)))}
    tasks = []
    for task in wanted:
        existing = known.get(task.idempotency_key)
        if existing is None:
            session.add(task)
            existing = known[task.idempotency_key] = task
        tasks.append(existing)
    return tasks


def _cancel_stale(session: Session, plan: m.Plan, keep: set[str], now: datetime) -> None:
    """Cancel open plan-derived tasks of the outlet-day that ``plan`` no longer calls for."""
    day_visits = select(m.Visit.id).where(m.Visit.outlet_id == plan.outlet_id,
                                          m.Visit.day == plan.day)
    query = select(m.Task).where(
        m.Task.status == m.TaskStatus.OPEN.value,
        m.Task.kind.in_([k.value for k in PLAN_KINDS]),
        m.Task.visit_id.in_(day_visits))
    for task in session.scalars(query):
        if task.idempotency_key not in keep:
            task.status = m.TaskStatus.CANCELLED
            task.outcome = f"superseded by plan {plan.number}"
            task.completed_at = now
            task.completed_by = "system"


def _technician_name(session: Session, technician_id: int) -> str:
    technician = session.get(m.Technician, technician_id)
    return technician.name if technician is not None else str(technician_id)



def _floor_half_hour(local: datetime) -> datetime:
    return local.replace(minute=local.minute - local.minute % 30, second=0, microsecond=0)


def _minute(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%MZ")


def _iso(dt: datetime) -> str:
    return dt.isoformat()

