"""The running-late watch (dispatch.latewatch): a technician running late on the day tells the
next customers in time, once per new arrival: by calls inside calling hours, by SMS when no
call may be made then but the outlet's working day has begun, never at night."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dispatch import calllist, db, fieldwork
from dispatch import models as m
from dispatch.calling import is_callable_at
from dispatch.confirmation import confirm
from dispatch.db import session_factory
from dispatch.latewatch import TEXTED, watch_open_outlets, watch_outlet_day
from dispatch.notify import OutgoingMessage, deliver_pending, enqueue
from dispatch.planning import publish_plan
from dispatch.scripts import render_script
from dispatch.tasks import MOVED_ARRIVAL_THRESHOLD, derive_tasks
from tests.dispatch.builders import DAY, Graph, build_graph, local

K = m.TaskKind
LEAD = timedelta(minutes=15)
#: The drive from the first customer to the next one.
TRAVEL = timedelta(minutes=20)


@dataclass
class Day:
    """A technician on site at a first customer; a confirmed appointment next on the route."""

    graph: Graph
    first: m.Visit
    second: m.Visit
    agreed: tuple[datetime, datetime]


def day_with_next_customer(session: Session, first_start: datetime,
                           agreed: tuple[datetime, datetime]) -> Day:
    """The builder's visit from ``first_start`` for an hour, on site since then; then a
    40-minute visit confirmed for ``agreed``, planned right after it; the plan published."""
    graph = build_graph(session)
    first = graph.plan.stops[0]
    first.arrival_at = first.start_at = first_start
    first.end_at = first_start + timedelta(hours=1)
    customer = m.Customer(code="C02", name="张", honorific="先生", phone="13900000000",
                          address="山东路 20 号", lat=36.09, lon=120.41)
    ticket = m.ServiceTicket(code="K02", customer=customer, outlet=graph.outlet,
                             kind=m.TicketKind.REPAIR, symptom="漏水", owner="disp1",
                             reported_at=local(9) - timedelta(days=1),
                             charge_explained_at=local(9) - timedelta(days=1))
    second = m.Visit(code="V02", ticket=ticket, outlet=graph.outlet, day=DAY,
                     duration_minutes=40,
                     windows=[m.VisitWindow(starts_at=agreed[0], ends_at=agreed[1])])
    session.add(second)
    session.flush()
    confirm(session, second, agreed, "disp1", graph.technician, at=local(9) - timedelta(days=1))
    arrival = first.end_at + TRAVEL
    start = max(arrival, agreed[0])
    graph.plan.stops.append(m.PlanStop(
        technician=graph.technician, sequence=1, kind=m.StopKind.VISIT, visit=second,
        arrival_at=arrival, start_at=start, end_at=start + timedelta(minutes=40),
        travel_seconds=int(TRAVEL.total_seconds())))
    publish_plan(session, graph.plan, graph.plan.version, now=first_start - timedelta(hours=2))
    fieldwork.change_status(session, graph.visit, "on_site", technician_id=graph.technician.id,
                            actor="wang", now=first_start)
    return Day(graph, graph.visit, second, agreed)


def watch(session: Session, day: Day, now: datetime) -> list[m.Task]:
    """One pass of the watch over the outlet-day at ``now``."""
    return watch_outlet_day(session, day.graph.outlet.id, DAY, now=now)


def delays(tasks: list[m.Task]) -> list[m.Task]:
    """The delay notices among ``tasks``."""
    return [t for t in tasks if t.kind == K.DELAY_NOTICE]


def notices(session: Session, day: Day) -> list[m.Task]:
    """The next customer's delay notices, oldest first."""
    return list(session.scalars(select(m.Task).where(
        m.Task.kind == K.DELAY_NOTICE.value, m.Task.visit_id == day.second.id)
        .order_by(m.Task.id)))


def first_notice(session: Session, day: Day, start: datetime, end: datetime) -> datetime:
    """Run the watch each minute from ``start`` to ``end``; the minute a notice first appears."""
    now = start
    while now <= end:
        if watch(session, day, now):
            return now
        now += timedelta(minutes=1)
    raise AssertionError(f"no delay notice between {start} and {end}")


def test_an_overrun_is_told_at_least_15_minutes_before_the_window_ends(session: Session) -> None:
    """Still on site past the planned 10:00 end, with a 20-minute drive to a customer promised
    10:00-11:00: the notice is due, callable, by 10:45, with a new arrival that is no longer 15
    minutes inside the window."""
    day = day_with_next_customer(session, local(9), (local(10), local(11)))
    noticed = first_notice(session, day, local(10), local(11))
    [task] = notices(session, day)
    assert task.due_from == noticed <= day.agreed[1] - LEAD
    assert is_callable_at(day.graph.outlet, day.second.ticket.customer, task.due_from)
    assert not task.flagged and task.assignee_role == m.AssigneeRole.DISPATCHER
    new_arrival = datetime.fromisoformat(task.payload["new_arrival"])
    assert new_arrival > day.agreed[1] - LEAD and task.payload["cause"] == "overrun"
    assert task in [call.task for call in calllist.due_calls(session, day.graph.outlet, noticed)]


def on_the_way_at_ten(session: Session, agreed: tuple[datetime, datetime]) -> Day:
    """Done at the first customer at 10:00 and on the way to the next one (promised
    ``agreed``), planned to arrive at 10:20."""
    day = day_with_next_customer(session, local(9), agreed)
    tech = day.graph.technician.id
    fieldwork.save_record(session, day.first, tech, fieldwork.RecordInput(
        fault_found="电容老化", work_done="更换电容", customer_verified=True, verified_name="李"))
    fieldwork.change_status(session, day.first, "done", technician_id=tech, actor="wang",
                            now=local(10))
    fieldwork.change_status(session, day.second, "en_route", technician_id=tech, actor="wang",
                            now=local(10))
    return day


def consents(session: Session, day: Day) -> list[m.Task]:
    """The consent requests for the next customer's appointment."""
    return list(session.scalars(select(m.Task).where(
        m.Task.kind == K.CONSENT_REQUEST.value, m.Task.visit_id == day.second.id)))


def test_a_customer_not_reached_by_the_last_call_is_told_then(session: Session) -> None:
    """On the way since 10:00 to a customer promised 10:00-10:45 (planned arrival 10:20), the
    technician is not there at 10:25, the last moment to call 15 minutes ahead: the customer
    hears then, in words that say "near the end of the window", not "late"; the time still
    keeps the appointment, so nobody asks them to agree to another."""
    day = on_the_way_at_ten(session, (local(10), local(10, 45)))
    assert first_notice(session, day, local(10, 1), local(10, 45)) == local(10, 25)
    [task] = notices(session, day)
    assert task.payload["cause"] == "traffic" and task.payload["late_minutes"] == 0
    assert task.due_from <= day.agreed[1] - LEAD
    script = render_script(session, day.second, "delay_notice", "en", now=local(10, 25),
                           extra=calllist.script_extra(task))
    assert "near the end of our appointment window" in script.text and "late" not in script.text
    assert script.elements["arrival"] == "10:25"
    chinese = render_script(session, day.second, "delay_notice", "zh", now=local(10, 25),
                            extra=calllist.script_extra(task))
    assert "时段快结束时" in chinese.text and "要晚一些" not in chinese.text
    assert consents(session, day) == []


def test_an_arrival_just_inside_the_window_also_asks_consent(session: Session) -> None:
    """Expected at 10:20 by a customer whose appointment ends at 10:24: a minute more of traffic
    breaks it, so at the last call (10:04) the customer is also asked to agree to a later time,
    the half hour around the expected arrival offered first."""
    day = on_the_way_at_ten(session, (local(9, 30), local(10, 24)))
    assert first_notice(session, day, local(10, 1), local(10, 24)) == local(10, 4)
    [consent] = consents(session, day)
    assert consent.payload["alternatives"][0]["start_local"] == "10:00"


def test_no_notice_while_the_projection_stays_inside_the_window(session: Session) -> None:
    """Ten minutes past the planned end the technician still makes 11:00: nobody is called."""
    day = day_with_next_customer(session, local(9), (local(10), local(11)))
    assert watch(session, day, local(10, 10)) == []
    assert notices(session, day) == []


def test_a_lunch_at_the_next_door_is_not_a_delay(session: Session) -> None:
    """The plan drives to the next customer first (arriving 11:20) and takes the 45-minute lunch
    at the door before the 12:05 start: on time at 11:00, nobody is told of a delay."""
    day = day_with_next_customer(session, local(10, 0), (local(11, 30), local(12, 15)))
    stop = next(s for s in day.graph.plan.stops if s.visit_id == day.second.id)
    stop.arrival_at, stop.start_at = local(11, 20), local(12, 5)
    stop.end_at = stop.start_at + timedelta(minutes=40)
    stop.sequence = 2
    day.graph.plan.stops.append(m.PlanStop(
        technician=day.graph.technician, sequence=1, kind=m.StopKind.BREAK,
        arrival_at=local(11, 20), start_at=local(11, 20), end_at=local(12, 5), travel_seconds=0))
    session.flush()
    assert delays(watch(session, day, local(10, 50))) == []
    assert notices(session, day) == []


def test_a_second_pass_adds_nothing(session: Session) -> None:
    """The same delay seen again adds nothing; a minute on, it is still the one notice."""
    day = day_with_next_customer(session, local(9), (local(10), local(11)))
    noticed = first_notice(session, day, local(10), local(11))
    assert watch(session, day, noticed) == []
    later = watch(session, day, noticed + timedelta(minutes=1))
    assert K.DELAY_NOTICE not in {t.kind for t in later}
    assert len(notices(session, day)) == 1


def late_at_first_customer(session: Session, day: Day, at: datetime) -> list[m.Task]:
    """The technician reports arriving at the first customer only at ``at`` (an hour's work
    still to do); the tasks the watch changed at once."""
    day.first.status, day.first.actual_start = m.VisitStatus.PLANNED, None
    fieldwork.change_status(session, day.first, "on_site", technician_id=day.graph.technician.id,
                            actor="wang", now=at)
    return notices(session, day)


def texts(session: Session, day: Day) -> list[m.Notification]:
    """The delay notices queued as text messages to the next customer."""
    return [n for n in session.scalars(select(m.Notification).where(
        m.Notification.template == "delay_notice",
        m.Notification.channel == m.NotificationChannel.SMS.value).order_by(m.Notification.id))
        if (n.payload or {}).get("visit_id") == day.second.id]


def assert_texted(session: Session, day: Day, task: m.Task, at: datetime) -> m.Notification:
    """The notice was given by SMS at ``at``: the task says so and is off the call list."""
    assert task.status == m.TaskStatus.DONE and task.outcome == TEXTED
    assert task.payload["told_by"] == "sms" and task.completed_at == at
    assert not task.flagged
    [sms] = texts(session, day)
    assert sms.task_id == task.id and sms.not_before == at
    assert sms.address == day.second.ticket.customer.phone
    assert sms.payload["new_arrival"] == task.payload["new_arrival"]
    return sms


def test_a_delay_before_calling_hours_is_texted_at_once(engine: Engine,
                                                        session: Session) -> None:
    """Promised 08:00-10:00, the technician reaches the first customer only at 09:20: calls
    start at 10:00, after the last moment to warn (09:45), so the customer gets the delay
    notice by SMS at 09:20, in their language, and no call is asked for before 10:00 or after
    for the same arrival."""
    day = day_with_next_customer(session, local(8, 30), (local(8), local(10)))
    day.second.ticket.customer.language = m.Language.EN
    [task] = late_at_first_customer(session, day, local(9, 20))
    assert_texted(session, day, task, local(9, 20))
    assert datetime.fromisoformat(task.payload["new_arrival"]) == local(10, 40)
    outlet = day.graph.outlet
    assert not [c for c in calllist.due_calls(session, outlet, local(10))
                if c.task.kind == K.DELAY_NOTICE]
    session.commit()
    sent: list[OutgoingMessage] = []
    report = deliver_pending(session_factory(engine), now=local(9, 20), config={},
                             senders={m.NotificationChannel.SMS: sent.append})
    assert len(report.sent) == 1
    assert "10:40" in sent[0].text and "late" in sent[0].text


def test_a_delay_in_the_rest_time_is_texted(session: Session) -> None:
    """At 12:10, in the 12:00-13:30 rest, the technician reaches the first customer late: the
    next customer (promised 12:00-13:00) hears by SMS at once, not by a call at 13:30."""
    day = day_with_next_customer(session, local(11), (local(12), local(13)))
    [task] = late_at_first_customer(session, day, local(12, 10))
    assert_texted(session, day, task, local(12, 10))


def test_a_delay_at_night_sends_nothing(session: Session) -> None:
    """At 21:00, after the working day, nothing is texted: the notice stays a call to make,
    flagged for the dispatcher as none fits before the technician arrives."""
    day = day_with_next_customer(session, local(19, 30), (local(20, 30), local(21, 30)))
    [task] = late_at_first_customer(session, day, local(21))
    assert texts(session, day) == []
    assert task.status == m.TaskStatus.OPEN and task.flagged


def test_nothing_is_texted_before_the_working_day(session: Session) -> None:
    """Late at 08:10, before the first shift starts (08:30): the notice waits, and the pass at
    08:30 texts it."""
    day = day_with_next_customer(session, local(7, 30), (local(8), local(9)))
    [task] = late_at_first_customer(session, day, local(8, 10))
    assert texts(session, day) == [] and task.status == m.TaskStatus.OPEN
    assert watch(session, day, local(8, 29)) == []
    assert watch(session, day, local(8, 30)) == [task]
    assert_texted(session, day, task, local(8, 30))


def test_inside_calling_hours_the_notice_stays_a_call(session: Session) -> None:
    """At 10:26, in calling hours, the notice is a call on the dispatcher's list, not a text."""
    day = day_with_next_customer(session, local(9), (local(10), local(11)))
    noticed = first_notice(session, day, local(10), local(11))
    [task] = notices(session, day)
    assert task.status == m.TaskStatus.OPEN and texts(session, day) == []
    assert task in [call.task for call in calllist.due_calls(session, day.graph.outlet, noticed)]


def test_a_plans_notice_no_call_can_give_in_time_is_texted(session: Session) -> None:
    """A plan published at 09:00 starts the next customer (promised 08:00-10:00) at 10:40: no
    call fits before it is due, so the watch's next pass texts the plan's notice."""
    day = day_with_next_customer(session, local(8, 30), (local(8), local(10)))
    plan_late(session, day, local(10, 20))
    [task] = notices(session, day)
    assert task.flagged and task.status == m.TaskStatus.OPEN
    assert task in watch(session, day, local(9))
    assert_texted(session, day, task, local(9))


def test_the_jobs_queued_text_is_not_repeated(session: Session) -> None:
    """The job queued its own SMS with the plan's notice: the watch records that one, and the
    customer gets one text."""
    day = day_with_next_customer(session, local(8, 30), (local(8), local(10)))
    plan_late(session, day, local(10, 20))
    [task] = notices(session, day)
    customer = day.second.ticket.customer
    queued = enqueue(session, recipient_kind="customer", recipient_id=customer.id,
                     channel="sms", template="delay_notice", language="zh",
                     payload={"visit_id": day.second.id,
                              "new_arrival": task.payload["new_arrival"]},
                     not_before=local(9), latest_useful=local(10, 20), task=task,
                     idempotency_key="reopt:delay:V02")
    watch(session, day, local(9))
    assert assert_texted(session, day, task, local(9)).id == queued.id
    assert task.payload["notification"] == "reopt:delay:V02"


def plan_late(session: Session, day: Day, arrival: datetime) -> None:
    """A newer plan, published at 09:00, has the technician reach the next customer at
    ``arrival``; its tasks derived then."""
    stop = next(s for s in day.graph.plan.stops if s.visit_id == day.second.id)
    stop.arrival_at = stop.start_at = arrival
    stop.end_at = arrival + timedelta(minutes=40)
    derive_tasks(session, day.graph.plan, now=local(9))


def test_a_later_further_delay_updates_the_notice_still_to_give(session: Session) -> None:
    """Not yet called, the notice takes the new time when the arrival slips beyond 15 minutes
    more; it stays one notice."""
    day = day_with_next_customer(session, local(9), (local(10), local(11)))
    noticed = first_notice(session, day, local(10), local(11))
    [task] = notices(session, day)
    told = datetime.fromisoformat(task.payload["new_arrival"])
    later = noticed + MOVED_ARRIVAL_THRESHOLD + timedelta(minutes=1)
    assert delays(watch(session, day, later)) == [task]
    [again] = notices(session, day)
    assert datetime.fromisoformat(again.payload["new_arrival"]) > told + MOVED_ARRIVAL_THRESHOLD
    assert again.due_from == later


def test_a_further_delay_after_the_call_is_a_new_notice(session: Session) -> None:
    """Once the customer was told, a further slip beyond 15 minutes is told again, anew."""
    day = day_with_next_customer(session, local(9), (local(10), local(11)))
    noticed = first_notice(session, day, local(10), local(11))
    [task] = notices(session, day)
    calllist.record_outcome(session, task, "done", actor="disp1", now=noticed)
    later = noticed + MOVED_ARRIVAL_THRESHOLD + timedelta(minutes=1)
    [new] = delays(watch(session, day, later))
    assert new.id != task.id and new.status == m.TaskStatus.OPEN
    assert [t.status for t in notices(session, day)] == [m.TaskStatus.DONE, m.TaskStatus.OPEN]


def test_a_status_report_runs_the_watch(session: Session) -> None:
    """Arriving late at the first customer (10:05, an hour's work) tells the next customer
    at once, from the report."""
    day = day_with_next_customer(session, local(9), (local(10), local(11)))
    day.first.status, day.first.actual_start = m.VisitStatus.PLANNED, None
    fieldwork.change_status(session, day.first, "on_site", technician_id=day.graph.technician.id,
                            actor="wang", now=local(10, 5))
    [task] = notices(session, day)
    assert task.due_from == local(10, 5)
    assert datetime.fromisoformat(task.payload["new_arrival"]) == local(11, 25)


def test_arrival_cancels_a_notice_not_yet_given(session: Session) -> None:
    """The technician reaching the customer makes the notice still to give pointless."""
    day = day_with_next_customer(session, local(9), (local(10), local(11)))
    first_notice(session, day, local(10), local(11))
    tech = day.graph.technician.id
    fieldwork.save_record(session, day.first, tech, fieldwork.RecordInput(
        fault_found="电容老化", work_done="更换电容", customer_verified=True, verified_name="李"))
    for status, minute in (("done", 50), ("en_route", 50), ("on_site", 59)):
        visit = day.first if status == "done" else day.second
        fieldwork.change_status(session, visit, status, technician_id=tech, actor="wang",
                                now=local(10, minute))
    [task] = notices(session, day)
    assert task.status == m.TaskStatus.CANCELLED


def test_the_plans_own_notice_does_not_repeat_the_watchs(session: Session) -> None:
    """A plan published later with about the arrival already told derives no second notice."""
    day = day_with_next_customer(session, local(9), (local(10), local(11)))
    noticed = first_notice(session, day, local(10), local(11))
    [task] = notices(session, day)
    calllist.record_outcome(session, task, "done", actor="disp1", now=noticed)
    stop = next(s for s in day.graph.plan.stops if s.visit_id == day.second.id)
    stop.arrival_at = stop.start_at = datetime.fromisoformat(task.payload["new_arrival"]) \
        + timedelta(minutes=5)
    stop.end_at = stop.start_at + timedelta(minutes=40)
    derive_tasks(session, day.graph.plan, now=noticed + timedelta(minutes=5))
    assert notices(session, day) == [task]


def test_nothing_to_watch_without_a_published_plan(session: Session) -> None:
    """An outlet-day whose plan is not published has nothing to project."""
    graph = build_graph(session)
    assert graph.plan.status != m.PlanStatus.PUBLISHED
    assert watch_outlet_day(session, graph.outlet.id, DAY, now=local(12)) == []


def test_a_promise_that_will_be_broken_asks_the_customers_consent(session: Session) -> None:
    """Projected to start after the agreed 11:00, the appointment changes: one consent request,
    offering the projected time first, besides the delay notice."""
    day = day_with_next_customer(session, local(9), (local(10), local(11)))
    for minute in (30, 31, 45):
        watch(session, day, local(10, minute))
    [consent] = session.scalars(select(m.Task).where(
        m.Task.kind == K.CONSENT_REQUEST.value, m.Task.visit_id == day.second.id)).all()
    assert consent.payload["reasons"] == ["time_changed"]
    assert consent.payload["alternatives"][0]["start_local"] == "11:00"
    assert consent.assignee_role == m.AssigneeRole.DISPATCHER and not consent.flagged


def test_a_customer_further_on_is_told_when_their_window_end_draws_near(
        session: Session) -> None:
    """A customer after the next one, projected late for a window ending at 16:00, is told
    from 15:15 (45 minutes before), not hours ahead."""
    day = day_with_next_customer(session, local(9), (local(10), local(11)))
    third = m.Visit(code="V03", ticket=day.second.ticket, outlet=day.graph.outlet, day=DAY,
                    duration_minutes=30,
                    windows=[m.VisitWindow(starts_at=local(14), ends_at=local(16))])
    day.graph.plan.stops.append(m.PlanStop(
        technician=day.graph.technician, sequence=2, kind=m.StopKind.VISIT, visit=third,
        arrival_at=local(15, 40), start_at=local(15, 40), end_at=local(16, 10),
        travel_seconds=600))
    session.flush()
    # On site until 14:50 at the first customer: the next ones are hours late.
    day.first.actual_start = local(13, 50)
    assert third.id not in {t.visit_id for t in watch(session, day, local(14))}
    assert third.id in {t.visit_id for t in watch(session, day, local(15, 15))}


def test_the_scheduled_pass_watches_outlets_in_business_hours(engine: Engine,
                                                              session: Session) -> None:
    """The scheduler's pass (each minute) tells the customer at 10:30, inside business hours
    (08:30-18:00), and looks at nothing at 19:00."""
    day_with_next_customer(session, local(9), (local(10), local(11)))
    session.commit()
    factory = db.session_factory(engine)
    assert watch_open_outlets(factory, now=local(19)) == 0
    assert watch_open_outlets(factory, now=local(10, 30)) >= 1
    session.expire_all()
    assert session.scalar(select(m.Task).where(m.Task.kind == K.DELAY_NOTICE.value))
