"""The running-late watch: tell a customer as soon as the technician's day says they will be late.

The re-optimization job sees a delay only when it runs and tells the customer only when it
publishes a plan. The watch needs no solver: it runs every minute and after each status report,
and for each technician of an outlet-day projects the rest of the published route forward from
where they are now:

- on site: busy until the later of the planned end and the actual start plus the planned
  duration; once that has passed, until ``OVERRUN_ALLOWANCE`` from now (as the job assumes);
- en route: arriving the planned travel time after setting off, not before now;
- otherwise: setting off for the next visit when the plan says, or now if that has passed;
- then each visit after the planned travel, waiting for its planned start, for its planned
  duration; the lunch break where the plan puts it, not before: before setting off, or at the
  next customer's door when the plan drives there first.

A customer must hear of a delay (``running_late``) when the projected start passes the end of
the window promised to them (the agreed window, else the accepted one, as ``dispatch.tasks``
judges delays), or when the technician, behind the plan, has not set off by the latest departure
that reaches them 15 minutes before it ends: the new time is then "now + the remaining work +
the travel", and the customer hears at least 15 minutes ahead. A delay can also begin later
(an overrun in the last minutes, a trip slowed by traffic) and could then no longer be told in
time; so a customer whose technician is not there by the last moment to call 15 minutes ahead
(``CALL_TIME`` before that) hears then where the technician is and when they now expect to
arrive, even when that is still inside the window (the script says "near the end of the
window" then, not "late"). They get a delay notice: a call for the dispatcher, due now, with
the projected arrival. A confirmed appointment projected to start after its agreed window, or
within ``CONSENT_MARGIN`` of its end, changes (or may), so the customer is also asked to agree
(a consent request offering the projected time first, once per agreed window), as
``dispatch.tasks`` does for a plan that moves it.

The customer the technician goes to next is told at once. One further down the route is told
from ``NOTICE_HORIZON`` before their window ends: until then the re-optimization job (every 15
to 20 minutes) may still re-plan the day so that nobody is late, and a projection hours ahead
is no accurate time to give (on the qingdao day, most such early notices proved wrong).

One notice per visit and new arrival: a notice given (or still to give) with an arrival within
``MOVED_ARRIVAL_THRESHOLD`` of the projection stands; a move beyond it updates the notice still to
give, or adds a new one. A watch notice not yet given that is no longer needed (back inside the
window, the technician there) is cancelled.

Calls are made in calling hours only. A notice due at once that no call may give now (before
10:00, in the 12:00-13:30 rest, outside the customer's own hours) goes at once as a text message
instead (an SMS through the outbox, ``dispatch.notify``, template ``delay_notice`` in the
customer's language), when that is inside the outlet's working day on the visit's day
(``dispatch.calling.may_text_at``: from the earliest shift start to 20:00 at the latest). The
task then records that the customer was told by SMS at that time and is done, so the call list
does not ask for a call about the same arrival; a later move beyond the threshold is a new notice
(a call in calling hours). Due at once are the watch's notices, and a plan's notice that no call
can give before it is due (flagged by ``dispatch.tasks``). At night nothing is texted: the notice
waits for the next calling moment before the technician arrives, or is flagged for the
dispatcher (``dispatch.tasks.call_due``). Functions flush but never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from dispatch import db
from dispatch import models as m
from dispatch.calling import is_callable_at, may_text_at
from dispatch.confirmation import is_agreed
from dispatch.errors import ConflictError
from dispatch.notify import DELAY_NOTICE, enqueue
from dispatch.tasks import (
    DELAY_NOTICE_LEAD,
    already_told,
    alternatives,
    call_due,
    delay_notices,
    flag_text,
    promised_window,
    told_arrival,
)
from dispatch.timeutil import require_aware, utc_to_local

S = m.VisitStatus
K = m.TaskKind

#: A visit still on site past its expected end: assume it needs this much longer.
OVERRUN_ALLOWANCE = timedelta(minutes=15)
#: A customer further down the route than the next one is told of a delay from this long before
#: their window ends: 15 minutes' notice, plus time for a re-optimization run and the call.
NOTICE_HORIZON = timedelta(minutes=45)
#: How long a call takes to make (about 3 minutes, and a moment to dial): the last call that
#: tells a customer ``DELAY_NOTICE_LEAD`` ahead starts this much earlier.
CALL_TIME = timedelta(minutes=5)
#: A confirmed appointment projected to start this close to its window's end may well start
#: after it (a minute's more traffic): the customer is asked to agree to the later time too.
CONSENT_MARGIN = timedelta(minutes=5)
#: How the idempotency key of a watch notice starts, after the kind and the visit.
WATCH = "watch"
#: Visits the technician has left (they are free from the actual end).
LEFT = frozenset({S.DONE, S.NO_SHOW, S.NOT_FINISHED})
#: Visits still to reach: their customer may need telling.
AHEAD = frozenset({S.PLANNED, S.EN_ROUTE})
#: The outcome of a notice given by text message, and who gave it.
TEXTED = "told by SMS / 已短信告知"
SYSTEM = "system"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Projected:
    """A visit still to reach, as the watch projects it: arrival, start, and why it slips."""

    stop: m.PlanStop
    arrival: datetime
    start: datetime
    cause: str  # "overrun", "traffic" or "schedule" (dispatch.scripts.CAUSES)


# ---------------------------------------------------------------------------------------------
# Running the watch
# ---------------------------------------------------------------------------------------------


def watch_open_outlets(session_factory: sessionmaker[Session], *, now: datetime) -> int:
    """One pass over every outlet in business hours at ``now``, each in its own transaction;
    how many notices were added or changed. A concurrent edit skips that outlet until the next
    pass."""
    from dispatch.reoptimize import outlets_open_at  # the job's module loads the solver

    require_aware(now, "now")
    with db.session_scope(session_factory) as session:
        due = outlets_open_at(session, now)
    changed = 0
    for outlet_id, day in due:
        try:
            with db.session_scope(session_factory) as session:
                changed += len(watch_outlet_day(session, outlet_id, day, now=now))
        except ConflictError:
            logger.info("running-late watch of outlet %s skipped: edited meanwhile", outlet_id)
    return changed


def watch_outlet_day(session: Session, outlet_id: int, day: date, *,
                     now: datetime) -> list[m.Task]:
    """The delay notices the outlet-day's published plan calls for at ``now`` (added or
    changed)."""
    plan = _published(session, outlet_id, day)
    if plan is None:
        return []
    away = _absent(session, day)
    technicians = sorted({s.technician_id for s in plan.stops} - away)
    return [task for tech in technicians for task in _watch(session, plan, tech, now)]


def watch_technician(session: Session, technician_id: int, day: date, *,
                     now: datetime) -> list[m.Task]:
    """The delay notices the technician's remaining visits of ``day`` call for at ``now``."""
    technician = session.get(m.Technician, technician_id)
    if technician is None or technician_id in _absent(session, day):
        return []
    plan = _published(session, technician.outlet_id, day)
    return [] if plan is None else _watch(session, plan, technician_id, now)


def _absent(session: Session, day: date) -> set[int]:
    """Technicians off on ``day`` (gone home sick, say): the job hands their visits over, the
    watch does not project them."""
    return set(session.scalars(select(m.TechnicianShift.technician_id).where(
        m.TechnicianShift.day == day, m.TechnicianShift.absent.is_(True))))


def _published(session: Session, outlet_id: int, day: date) -> m.Plan | None:
    return session.scalar(
        select(m.Plan)
        .where(m.Plan.outlet_id == outlet_id, m.Plan.day == day,
               m.Plan.status == m.PlanStatus.PUBLISHED.value)
        .options(selectinload(m.Plan.stops).selectinload(m.PlanStop.visit)
                 .selectinload(m.Visit.windows))
        .order_by(m.Plan.number.desc()).limit(1))


def _watch(session: Session, plan: m.Plan, technician_id: int, now: datetime) -> list[m.Task]:
    require_aware(now, "now")
    stops = sorted((s for s in plan.stops if s.technician_id == technician_id),
                   key=lambda s: s.sequence)
    told = delay_notices(session, [s.visit_id for s in stops if s.visit_id is not None])
    changed = []
    for stop in stops:
        task = told.get(stop.visit_id or 0)
        if task is not None and stop.visit is not None and stop.visit.status not in AHEAD:
            changed += _cancel(task, now, "technician there / 技师已到达")
    for position, item in enumerate(project_route(session, stops, now)):
        changed += _notice(session, plan, item, told.get(item.stop.visit_id or 0), now,
                           soon=position == 0)
    changed += [task for task in _text_due(session, stops, now) if task not in changed]
    db.flush(session)
    return changed


# ---------------------------------------------------------------------------------------------
# Projecting a route
# ---------------------------------------------------------------------------------------------


def project_route(session: Session, stops: Sequence[m.PlanStop],
                  now: datetime) -> list[Projected]:
    """A technician's visits still to reach, in route order (``stops``: their published stops),
    with the arrival and start their progress at ``now`` makes likely."""
    free: datetime | None = None  # when the technician is free for what comes next
    lunch: m.PlanStop | None = None  # a lunch not yet placed: before the drive or at the door
    cause = "schedule"
    out = []
    for stop in sorted(stops, key=lambda s: s.sequence):
        visit = stop.visit
        if visit is None:
            lunch = stop
            continue
        if lunch is not None and not (visit.status in AHEAD and stop.arrival_at <= lunch.start_at):
            free, lunch = _after_lunch(lunch, free), None  # taken before setting off
        if visit.status in LEFT:
            free, cause = visit.actual_end or stop.end_at, "schedule"
        elif visit.status == S.ON_SITE:
            free, cause = _busy_until(stop, visit, now)
        elif visit.status in AHEAD:
            arrival, cause = _arrival(session, stop, visit, free, now, cause)
            # The plan drives there first and takes the lunch at the door.
            ready = arrival if lunch is None else _after_lunch(lunch, arrival)
            start, lunch = max(ready, stop.start_at), None
            out.append(Projected(stop, arrival, start, cause))
            free = start + (stop.end_at - stop.start_at)
    return out


def _after_lunch(lunch: m.PlanStop, free: datetime | None) -> datetime:
    """When a lunch taken once free (where the plan puts it, not before) ends."""
    begin = max(free or lunch.start_at, lunch.start_at)
    return begin + (lunch.end_at - lunch.start_at)


def _busy_until(stop: m.PlanStop, visit: m.Visit, now: datetime) -> tuple[datetime, str]:
    """When the visit on site will likely end, and whether it overruns its plan."""
    started = visit.actual_start or stop.start_at
    expected = max(stop.end_at, started + (stop.end_at - stop.start_at))
    if expected <= now:
        return now + OVERRUN_ALLOWANCE, "overrun"
    return expected, "overrun" if expected > stop.end_at else "schedule"


def _arrival(session: Session, stop: m.PlanStop, visit: m.Visit, free: datetime | None,
             now: datetime, cause: str) -> tuple[datetime, str]:
    """When the technician will likely reach the visit: on the way since they set off, or
    setting off when the plan says, when free, and not before now."""
    travel = timedelta(seconds=stop.travel_seconds)
    planned_departure = stop.arrival_at - travel
    if visit.status == S.EN_ROUTE:
        expected = (_set_off(session, visit) or planned_departure) + travel
        return (now, "traffic") if expected < now else (expected, cause)
    return max(now, planned_departure, free or planned_departure) + travel, cause


def _set_off(session: Session, visit: m.Visit) -> datetime | None:
    """When the technician reported setting off for the visit (its audit trail)."""
    events = session.scalars(
        select(m.AuditEvent)
        .where(m.AuditEvent.entity_type == "visit", m.AuditEvent.entity_id == str(visit.id),
               m.AuditEvent.action == "visit.status")
        .order_by(m.AuditEvent.id.desc()))
    for event in events:
        after = event.after or {}
        if after.get("status") == S.EN_ROUTE.value and after.get("at"):
            return datetime.fromisoformat(str(after["at"]))
    return None


# ---------------------------------------------------------------------------------------------
# Notices
# ---------------------------------------------------------------------------------------------


def _notice(session: Session, plan: m.Plan, item: Projected, told: m.Task | None,
            now: datetime, *, soon: bool) -> list[m.Task]:
    """Add, change or cancel the visit's notices for its projection (``soon``: the
    technician's next visit, told at once); the tasks changed."""
    visit = item.stop.visit
    assert visit is not None
    window = promised_window(visit, item.start)
    if window is None or not running_late(item, window, now):
        return _cancel(told, now, "no longer late / 不再迟到") if told is not None else []
    if not soon and now < window[1] - NOTICE_HORIZON:
        return []  # the job may still re-plan it; told once the window's end draws near
    changed = _consent(session, plan, item, now) \
        if item.start > window[1] - CONSENT_MARGIN else []
    if already_told(told, item.arrival):
        return changed  # the customer has (or will have) this time already
    task = told if told is not None and told.status == m.TaskStatus.OPEN else \
        _reopened(session, K.DELAY_NOTICE, visit, f"{WATCH}:{_minute(item.arrival)}", now)
    if task.status != m.TaskStatus.OPEN:
        return changed  # this very arrival was told before
    _fill(task, plan, item, _delay_payload(plan, item, window), now)
    session.add(task)  # once filled: filling reads the database (holidays), which flushes
    return changed + [task]


def running_late(item: Projected, window: tuple[datetime, datetime], now: datetime) -> bool:
    """Whether the customer must hear of a delay now: the projected start passes the window's
    end; or the last moment to call them ``DELAY_NOTICE_LEAD`` ahead has come and the
    technician is not there yet (a delay still to come, an overrun or traffic, could no longer
    be told in time); or the technician, behind the plan, has not set off by the latest
    departure that reaches them by that moment."""
    stop = item.stop
    last_call = window[1] - DELAY_NOTICE_LEAD - CALL_TIME
    if item.start > window[1] or now >= last_call:
        return True
    latest_departure = last_call - timedelta(seconds=stop.travel_seconds)
    behind = stop.visit is not None and stop.visit.status == S.PLANNED \
        and item.start > stop.start_at
    return behind and now >= latest_departure


def _consent(session: Session, plan: m.Plan, item: Projected, now: datetime) -> list[m.Task]:
    """A confirmed appointment that will (or may) start after its agreed window changes: the
    customer is asked to agree to the new time (DOMAIN rule 2), once for each agreed window."""
    visit = item.stop.visit
    assert visit is not None
    if not is_agreed(visit):
        return []
    assert visit.agreed_start is not None and visit.agreed_end is not None
    if _consent_asked(session, visit):
        return []
    task = _reopened(session, K.CONSENT_REQUEST, visit,
                     f"{WATCH}:{_minute(visit.agreed_start)}:{_minute(visit.agreed_end)}", now)
    _fill(task, plan, item, {
        "visit": visit.code, "plan": plan.number, "source": WATCH, "reasons": ["time_changed"],
        "planned_start": item.start.isoformat(), "agreed_start": visit.agreed_start.isoformat(),
        "agreed_end": visit.agreed_end.isoformat(), "cause": item.cause,
        "old_technician_id": visit.committed_technician_id,
        "new_technician_id": item.stop.technician_id,
        "alternatives": alternatives(plan.outlet, visit, item.start, time_changed=True)}, now)
    session.add(task)
    return [task]


def _consent_asked(session: Session, visit: m.Visit) -> bool:
    """Whether the customer is asked (or was) to agree to a change of the agreed window as it
    stands, by the watch or by a plan."""
    asked = session.scalars(select(m.Task).where(
        m.Task.kind == K.CONSENT_REQUEST.value, m.Task.visit_id == visit.id,
        m.Task.status != m.TaskStatus.CANCELLED.value))
    return any(_instant(t, "agreed_start") == visit.agreed_start
               and _instant(t, "agreed_end") == visit.agreed_end for t in asked)


def _instant(task: m.Task, key: str) -> datetime | None:
    text = (task.payload or {}).get(key)
    return datetime.fromisoformat(text) if text else None


def _reopened(session: Session, kind: m.TaskKind, visit: m.Visit, key: str,
              now: datetime) -> m.Task:
    """The watch's task of ``kind`` for the visit by key: new, or the stored one (opened again,
    its payload emptied, when it was cancelled)."""
    full_key = f"{kind.value}:{visit.id}:{key}"
    task = session.scalar(select(m.Task).where(m.Task.idempotency_key == full_key))
    if task is None:
        return m.Task(kind=kind, visit_id=visit.id, ticket_id=visit.ticket_id,
                      outlet_id=visit.outlet_id, assignee_role=m.AssigneeRole.DISPATCHER,
                      status=m.TaskStatus.OPEN, idempotency_key=full_key, created_at=now)
    if task.status == m.TaskStatus.CANCELLED:
        task.status, task.outcome, task.completed_at, task.completed_by = \
            m.TaskStatus.OPEN, None, None, None
        task.payload = {}
    return task


def _fill(task: m.Task, plan: m.Plan, item: Projected, payload: dict[str, Any],
          now: datetime) -> None:
    """Give the task its payload and when to call: from now until the technician arrives, in
    calling hours; flagged when no calling time is left."""
    visit = item.stop.visit
    assert visit is not None
    due = call_due(plan.outlet, visit.ticket.customer, now, max(now, item.arrival), now)
    task.technician_id = item.stop.technician_id
    task.due_from, task.due_by = due.due_from, due.due_by
    task.flagged = due.flag is not None
    task.flag_reason = flag_text(due.flag) if due.flag else ""
    task.payload = {**payload, **({"flag_code": due.flag} if due.flag else {})}


def _delay_payload(plan: m.Plan, item: Projected,
                   window: tuple[datetime, datetime]) -> dict[str, Any]:
    visit = item.stop.visit
    assert visit is not None
    late = max(0, int((item.start - window[1]).total_seconds() // 60))
    return {"visit": visit.code, "plan": plan.number, "source": WATCH,
            "new_arrival": item.arrival.isoformat(),
            "new_arrival_local": utc_to_local(item.arrival, plan.outlet.timezone).strftime("%H:%M"),
            "projected_start": item.start.isoformat(), "window_start": window[0].isoformat(),
            "window_end": window[1].isoformat(),
            "window": [window[0].isoformat(), window[1].isoformat()], "late_minutes": late,
            "cause": item.cause,
            "technician": item.stop.technician.name}


def _text_due(session: Session, stops: Sequence[m.PlanStop], now: datetime) -> list[m.Task]:
    """Text the notices due at once to the customers still ahead that no call may give now;
    the tasks told so."""
    ahead = [s.visit_id for s in stops if s.visit is not None and s.visit.status in AHEAD]
    notices = delay_notices(session, [visit_id for visit_id in ahead if visit_id is not None])
    return [task for task in notices.values()
            if _due_at_once(task) and text_notice(session, task, now)]


def _due_at_once(task: m.Task) -> bool:
    """Whether a notice is still to give at once: the watch's, or a plan's that no call can
    give before it is due (flagged)."""
    return task.status == m.TaskStatus.OPEN \
        and ((task.payload or {}).get("source") == WATCH or task.flagged)


def text_notice(session: Session, task: m.Task, now: datetime) -> bool:
    """Give the delay notice now as an SMS when no call may be made now but a text may (the
    working day of the visit's day), and record on the task that the customer was told so;
    whether it was texted. A message already queued for the task (the job's) is not repeated."""
    visit = task.visit
    arrival = told_arrival(task)
    if visit is None or arrival is None:
        return False
    customer = visit.ticket.customer
    if is_callable_at(task.outlet, customer, now) or not may_text_at(task.outlet, visit.day, now):
        return False
    db.flush(session)  # the message names the task by its id
    payload = task.payload or {}
    message = _queued_text(session, task) or enqueue(
        session, recipient_kind=m.RecipientKind.CUSTOMER, recipient_id=customer.id,
        channel=m.NotificationChannel.SMS, template=DELAY_NOTICE, language=customer.language,
        payload={"visit_id": visit.id, "new_arrival": arrival.isoformat(),
                 **{key: payload[key] for key in ("cause", "technician", "window")
                    if payload.get(key)}},
        not_before=now, latest_useful=max(now, arrival), task=task,
        idempotency_key=f"sms:{task.idempotency_key}")
    task.status, task.outcome = m.TaskStatus.DONE, TEXTED
    task.completed_at, task.completed_by = now, SYSTEM
    task.due_from = task.due_by = now
    task.flagged, task.flag_reason = False, ""
    task.payload = {key: value for key, value in payload.items() if key != "flag_code"} | {
        "told_by": "sms", "texted_at": now.isoformat(), "notification": message.idempotency_key}
    return True


def _queued_text(session: Session, task: m.Task) -> m.Notification | None:
    """The delay SMS already queued or sent for the task (the re-optimization job queues one
    with each notice of a plan it publishes)."""
    return session.scalar(select(m.Notification).where(
        m.Notification.task_id == task.id, m.Notification.template == DELAY_NOTICE,
        m.Notification.channel == m.NotificationChannel.SMS.value,
        m.Notification.status.in_([m.NotificationStatus.PENDING.value,
                                   m.NotificationStatus.SENT.value]))
        .order_by(m.Notification.id).limit(1))


def _cancel(task: m.Task, now: datetime, why: str) -> list[m.Task]:
    """Cancel a watch notice not yet given; the tasks changed (none for any other)."""
    if task.status != m.TaskStatus.OPEN or (task.payload or {}).get("source") != WATCH:
        return []
    task.status = m.TaskStatus.CANCELLED
    task.outcome = why
    task.completed_at, task.completed_by = now, SYSTEM
    return [task]


def _minute(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


__all__ = ["NOTICE_HORIZON", "OVERRUN_ALLOWANCE", "TEXTED", "Projected", "project_route",
           "running_late", "text_notice", "watch_open_outlets", "watch_outlet_day",
           "watch_technician"]
