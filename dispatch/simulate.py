"""The day simulator: replay a service day minute by minute and measure how the job keeps it.

``simulate`` loads a dataset into a fresh database, plans and publishes each outlet-day, then
moves a clock from 08:00 to 20:00 (the outlet's local time) one minute at a time:

- technicians follow the published plan: they set off in time for each planned start, travel
  (the planned travel time with seeded noise), wait for the window, work (the visit's duration
  with seeded noise and a few long overruns) and report en route / on site / done through
  ``dispatch.fieldwork``, with the actual times; a customer who is not home (about 3%) makes the
  visit a no-show after a short wait; lunch is taken where the plan puts it;
- disturbances arrive as in a real day: a few priority-4 emergency repairs booked mid-morning,
  new bookings through the day, one technician going home sick around 11:00;
- the re-optimization job runs every N minutes per outlet with ``now`` = the simulated clock;
- the running-late watch (``dispatch.latewatch``) runs every minute per outlet, as the scheduler
  runs it, and after each status report, as ``dispatch.fieldwork`` runs it;
- the dispatcher "sends" the delay notices, consent requests and handover notices the rules
  derive, as soon as they are due and only inside calling hours; a customer asked for consent
  agrees;
- the outbox (``dispatch.notify``) runs a delivery pass every minute; nothing real leaves: the
  SMS and e-mail channels are stubs that accept every message, so a row is sent when the outbox
  would send it (a delay notice the watch texts, the job's delay messages).

The report says how many confirmed appointments were kept (started within the agreed window,
or moved only with a consent task raised before the start; apart, how many with the customer's
consent obtained on a call), how many customers with a delay (a start after the
promised window, or a delay notice about that window) first heard of it at least 15 minutes
before the window ended (a notice is given when called or when a text linked to it was sent,
whichever came first), how many of all delay notices, revised arrivals included, went out that
far ahead (apart, of the delays known that early, how many were told by then), calls outside calling
hours (must be 0; a text is not a call), texts sent outside calling hours (same-day delay
notices, allowed in the working day) and outside the working day (must be 0), SLA met, travel,
overtime, unassigned visits, plan churn and the job's time per run. The same settings and seed
give the same day of events.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import fixtures
from dispatch import db
from dispatch import models as m
from dispatch.calling import is_callable_at, may_text_at
from dispatch.errors import DispatchError, ValidationError
from dispatch.notify import DELAY_NOTICE, customer_outlet
from dispatch.tasks import promised_window
from dispatch.timeutil import local_time_to_utc, utc_to_local
from solver import SolveParams

S = m.VisitStatus
K = m.TaskKind
ACTOR = "simulation"
#: The tasks the simulated dispatcher carries out: the calls that keep customers informed, and
#: the calls that agree a new time for a visit the plan had to leave out.
SENT_KINDS = frozenset({K.DELAY_NOTICE, K.CONSENT_REQUEST, K.HANDOVER_NOTICE,
                        K.CONFIRMATION_CALL})
#: Customer-facing calls; none may happen outside calling hours.
CALL_KINDS = frozenset({K.RECONFIRM_CALL, K.DELAY_NOTICE, K.CONSENT_REQUEST, K.HANDOVER_NOTICE,
                        K.CONFIRMATION_CALL, K.FOLLOWUP_CALL, K.CHARGE_NOTICE})
#: A technician waits this long at the door before recording "customer not home".
NO_SHOW_WAIT = timedelta(minutes=10)
#: A delay notice counts as in time when sent at least this long before the agreed time.
DELAY_LEAD = timedelta(minutes=15)
#: New requests are offered windows ending by this local time at the latest.
LATEST_WINDOW_END = time(20, 0)
#: The outbox's channels in the simulation: they accept every message and deliver nothing.
STUB_CHANNELS = {m.NotificationChannel.SMS: lambda message: None,
                 m.NotificationChannel.EMAIL: lambda message: None}


# ---------------------------------------------------------------------------------------------
# Settings and report
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disturbances:
    """How the simulated day departs from the plan (shares are of visits; counts per outlet)."""

    duration_sigma: float = 0.15  # log-normal noise on a visit's duration
    long_overrun_share: float = 0.04
    long_overrun_minutes: tuple[int, int] = (40, 90)
    travel_noise: tuple[float, float] = (0.85, 1.35)  # factor on the planned travel time
    no_show_share: float = 0.03
    visits_per_emergency: int = 60  # one priority-4 emergency per this many visits (at least 1)
    emergency_between: tuple[time, time] = (time(9, 30), time(11, 30))
    visits_per_booking: int = 40  # one new booking per this many visits (at least 1)
    booking_between: tuple[time, time] = (time(9, 0), time(14, 0))
    sick_around: time | None = time(11, 0)  # one technician goes home sick; None: nobody


@dataclass(frozen=True)
class SimulationSettings:
    """What to simulate and how often the job runs."""

    dataset: str
    day: date
    seed: int = 0
    every_minutes: int = 15
    time_limit: float = 3.0  # the job's solve time per run
    plan_time_limit: float = 5.0  # the morning plan's solve time per outlet
    start: time = time(8, 0)
    end: time = time(20, 0)
    disturbances: Disturbances = field(default_factory=Disturbances)
    params: SolveParams | None = None  # overrides time_limit for the job (tests)

    def __post_init__(self) -> None:
        if self.dataset not in fixtures.DATASETS:
            raise ValidationError(f"unknown dataset {self.dataset!r}; choose one of "
                                  f"{', '.join(fixtures.DATASETS)}",
                                  f"未知数据集 {self.dataset!r}；可选：{', '.join(fixtures.DATASETS)}",
                                  field="dataset")
        if self.every_minutes < 1:
            raise ValidationError("must be at least 1 minute", "至少为 1 分钟", field="every")
        if self.time_limit <= 0 or self.plan_time_limit <= 0:
            raise ValidationError("must be positive", "必须为正数", field="time_limit")
        if self.end <= self.start:
            raise ValidationError("the simulated day must end after it starts",
                                  "模拟结束时间须晚于开始时间", field="end")

    def job_params(self) -> SolveParams:
        """The solver parameters of each job run."""
        return self.params or SolveParams(time_limit=self.time_limit)


@dataclass(frozen=True)
class SimulationReport:
    """The measured day. Percentages are None when nothing was there to measure."""

    dataset: str
    day: str
    seed: int
    outlets: int
    technicians: int
    visits: int
    confirmed_appointments: int
    confirmed_unplannable: int  # confirmed, but unassigned by the morning plan already
    confirmed_kept_pct: float | None  # in the window, or moved only with a consent task
    confirmed_not_kept: tuple[str, ...]
    confirmed_agreed_pct: float | None  # in the window, or moved with the customer's consent
    confirmed_not_agreed: tuple[str, ...]  # moved with a consent task no call could make
    customers_delayed: int  # (visit, promised window) late or told of a delay
    customers_told_ahead_pct: float | None  # ... first told >= 15 min before the window's end
    delay_notices: int
    delay_notices_ahead_pct: float | None  # sent >= 15 min before the agreed window's end
    delay_notices_ahead_of_start_pct: float | None  # ... before the agreed window's start
    delay_notices_texted: int  # given by SMS first (before any call)
    delay_notices_known_early: int  # created >= 15 min before the agreed window's end
    delay_notices_known_early_ahead_pct: float | None  # ... of those, given by then
    calls_outside_hours: int
    calls_made: int
    texts_sent: int  # SMS to customers
    texts_outside_calling_hours: int  # same-day delay notices in the working day
    texts_outside_working_day: int  # must be 0
    consents_obtained: int
    sla_visits: int
    sla_met_pct: float | None
    travel_km: float
    travel_minutes: int
    overtime_minutes: int
    unassigned: int
    served: int
    in_progress: int  # en route or on site when the simulation stopped
    no_shows: int
    emergencies: int
    emergencies_served: int
    bookings: int
    long_overruns: int
    sick_technicians: tuple[str, ...]
    runs: int
    runs_by_status: dict[str, int]
    churn_per_run: float
    churn_per_publish: float
    job_seconds_median: float
    job_seconds_max: float
    anomalies: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        data = asdict(self)
        for key in ("confirmed_not_kept", "confirmed_not_agreed", "sick_technicians",
                    "anomalies"):
            data[key] = list(data[key])
        return data

    def table(self) -> str:
        """The report as a bilingual two-column table."""
        rows = [(label, _cell(value)) for label, value in self.rows()]
        width = max(_width(label) for label, _ in rows)
        lines = [f"模拟 / Simulation: {self.dataset} {self.day} seed {self.seed} — "
                 f"{self.outlets} 网点 outlets, {self.technicians} 技师 technicians, "
                 f"{self.visits} 上门 visits"]
        lines += [label + " " * (width - _width(label)) + "  " + value for label, value in rows]
        if self.confirmed_not_kept:
            lines.append("未守约 / Not kept: " + ", ".join(self.confirmed_not_kept))
        if self.confirmed_not_agreed:
            lines.append("已建征求同意任务但未能联系客户 / Moved with a consent task no call "
                         "could make: " + ", ".join(self.confirmed_not_agreed))
        if self.anomalies:
            lines.append("异常 / Anomalies: " + "; ".join(self.anomalies[:10]))
        return "\n".join(lines)

    def rows(self) -> list[tuple[str, Any]]:
        """(bilingual label, value) of each figure, in the table's order."""
        return [
            ("已确认预约守约率（准时，或变更前已建征求同意任务）/ Confirmed appointments kept, "
             "or moved only with a consent task (%)", self.confirmed_kept_pct),
            ("其中准时或已获客户同意 / ... on time, or moved with the customer's consent (%)",
             self.confirmed_agreed_pct),
            ("已确认预约数 / Confirmed appointments", self.confirmed_appointments),
            ("早间方案即无法安排的已确认预约 / Confirmed but unplannable from the start",
             self.confirmed_unplannable),
            ("延误客户提前 15 分钟以上获告知（相对约定时段结束）/ Customers with a delay told "
             ">= 15 min before their window ends (%)", self.customers_told_ahead_pct),
            ("延误客户（迟到或获延误通知）/ Customers with a delay (late, or told of a delay)",
             self.customers_delayed),
            ("延误通知（含更新的到达时间）提前 15 分钟以上 / Delay notices, revised arrivals "
             "included, >= 15 min before the window ends (%)", self.delay_notices_ahead_pct),
            ("延误通知提前 15 分钟以上（相对约定时段开始）/ Delay notices >= 15 min before "
             "the agreed window starts (%)", self.delay_notices_ahead_of_start_pct),
            ("延误通知数 / Delay notices", self.delay_notices),
            ("其中以短信告知 / ... of which told by SMS", self.delay_notices_texted),
            ("提前 15 分钟以上获知的延误 / Delays known >= 15 min before the window ends",
             self.delay_notices_known_early),
            ("其中提前 15 分钟以上告知 / ... of which told by then (%)",
             self.delay_notices_known_early_ahead_pct),
            ("通话时段外的呼叫 / Calls outside calling hours", self.calls_outside_hours),
            ("已拨打电话 / Calls made", self.calls_made),
            ("已发短信 / Texts sent", self.texts_sent),
            ("通话时段外发送的短信（当天迟到通知）/ Texts sent outside calling hours "
             "(same-day delay notices)", self.texts_outside_calling_hours),
            ("工作日以外发送的短信 / Texts sent outside the working day",
             self.texts_outside_working_day),
            ("客户同意变更 / Consents obtained", self.consents_obtained),
            ("SLA 达成率 / SLA met (%)", self.sla_met_pct),
            ("行驶里程（公里）/ Travel (km)", self.travel_km),
            ("行驶时间（分钟）/ Travel (min)", self.travel_minutes),
            ("加班（分钟）/ Overtime (min)", self.overtime_minutes),
            ("未上门（未安排或未开始）/ Unassigned (not started)", self.unassigned),
            ("已上门 / Served", self.served),
            ("模拟结束时进行中 / In progress at the end", self.in_progress),
            ("客户不在家 / No-shows", self.no_shows),
            ("紧急维修（已上门）/ Emergencies (served)",
             f"{self.emergencies} ({self.emergencies_served})"),
            ("新预约 / New bookings", self.bookings),
            ("严重超时 / Long overruns", self.long_overruns),
            ("病假技师 / Sick technicians", ", ".join(self.sick_technicians) or "-"),
            ("优化运行次数 / Job runs", self.runs),
            ("运行结果 / Runs by status",
             ", ".join(f"{k} {v}" for k, v in sorted(self.runs_by_status.items()))),
            ("每次运行变动的上门 / Visits moved per run", self.churn_per_run),
            ("每次发布变动的上门 / Visits moved per publish", self.churn_per_publish),
            ("单次运行耗时中位数（秒）/ Job time median (s)", self.job_seconds_median),
            ("单次运行耗时最大值（秒）/ Job time max (s)", self.job_seconds_max),
        ]


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def _width(text: str) -> int:
    # Chinese characters take two columns in a terminal.
    return sum(2 if "\u2e80" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" else 1
               for ch in text)


# ---------------------------------------------------------------------------------------------
# Running a simulation
# ---------------------------------------------------------------------------------------------


def simulate(settings: SimulationSettings, database_url: str | None = None) -> SimulationReport:
    """Simulate the day on ``database_url`` (default: a fresh SQLite file in a temporary folder)
    and return the report."""
    if database_url is not None:
        return _simulate_on(settings, database_url)
    with tempfile.TemporaryDirectory(prefix="dispatch-sim-") as folder:
        return _simulate_on(settings, f"sqlite:///{Path(folder) / 'simulation.db'}")


def _simulate_on(settings: SimulationSettings, url: str) -> SimulationReport:
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        day = _Day(settings, db.session_factory(engine))
        day.prepare()
        day.run()
        return day.report()
    finally:
        engine.dispose()


@dataclass
class _Tech:
    """A technician as the simulation moves them: where, doing what, until when."""

    id: int
    code: str
    outlet_id: int
    lat: float
    lon: float
    home: tuple[float, float]
    shift_end: datetime
    free_at: datetime  # idle from then on, unless busy
    phase: str = "idle"  # idle | travel | wait | onsite | noshow | break | gone
    until: datetime | None = None
    visit_id: int | None = None
    took_break: bool = False
    sick: bool = False
    travel_seconds: float = 0.0
    travel_meters: float = 0.0
    last_end: datetime | None = None  # when the last visit ended
    skipped: set[int] = field(default_factory=set)  # visits their phone could not report on


@dataclass(frozen=True)
class _Promise:
    """A confirmed appointment as it stood when the day began."""

    visit_id: int
    code: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class _Stop:
    """A stop of the published plan as a technician's phone shows it."""

    is_break: bool
    visit_id: int | None
    start_at: datetime
    end_at: datetime


@dataclass
class _Injection:
    """A disturbance due at ``at``: "emergency", "booking" or "sick"."""

    at: datetime
    kind: str
    outlet_id: int
    technician_id: int | None = None


class _Day:
    """One simulated day: the database, the clock, the technicians, the records."""

    def __init__(self, settings: SimulationSettings, factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.factory = factory
        self.rng = random.Random(f"simulate:{settings.dataset}:{settings.seed}")
        self.outlets: dict[int, tuple[str, str]] = {}  # id -> (code, timezone)
        self.techs: dict[int, _Tech] = {}
        self.promises: dict[int, _Promise] = {}
        self.unplannable: set[int] = set()  # unassigned by the morning plan already
        self.promises_unplannable = 0
        self.started: dict[int, datetime] = {}  # visit id -> start (or arrival for a no-show)
        self.no_show: set[int] = set()
        self.overrun: dict[int, int] = {}  # visit id -> extra seconds of a long overrun
        self.injections: list[_Injection] = []
        self.routes: dict[int, dict[int, list[_Stop]]] = {}  # outlet -> technician -> stops
        self.flagged: dict[int, list[int]] = {}  # outlet -> visits waiting for a handover
        self.emergencies: list[int] = []
        self.bookings: list[int] = []
        self.sick: list[str] = []
        self.runs: list[Any] = []  # RunReport
        self.consents = 0
        self.handover_calls: dict[int, datetime] = {}  # visit id -> when the customer agreed
        self.anomalies: list[str] = []
        self.clock = datetime.min

    # -- preparing ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Load the dataset, plan and publish each outlet-day, draw the day's disturbances."""
        from dispatch.loader import load_dataset
        from dispatch.planning import plan_day, publish_plan
        from dispatch.tasks import derive_tasks

        dataset = fixtures.generate(self.settings.dataset, self.settings.day, self.settings.seed)
        params = SolveParams(time_limit=self.settings.plan_time_limit)
        with db.session_scope(self.factory) as session:
            load_dataset(session, dataset)
            for outlet in session.scalars(select(m.Outlet).order_by(m.Outlet.code)):
                self.outlets[outlet.id] = (outlet.code, outlet.timezone)
                morning = self.local(outlet.timezone, self.settings.start) - timedelta(hours=1)
                plan = plan_day(session, outlet, self.settings.day, params=params,
                                created_by=ACTOR, now=morning)
                publish_plan(session, plan, plan.version, actor=ACTOR, now=morning)
                derive_tasks(session, plan, now=morning)
                self.unplannable |= {u.visit_id for u in plan.unassigned}
            self.clock = min(self.local(tz, self.settings.start)
                             for _, tz in self.outlets.values())
            self.meet_technicians(session)
            self.note_promises(session)
            self.draw_disturbances(session)
        self.read_plans()

    def local(self, timezone: str, clock: time) -> datetime:
        """The UTC instant of ``clock`` on the simulated day in ``timezone``."""
        return local_time_to_utc(self.settings.day, clock, timezone)

    def meet_technicians(self, session: Session) -> None:
        """Every technician working today, at their start place when the shift starts."""
        shifts = session.scalars(
            select(m.TechnicianShift).join(m.Technician)
            .where(m.TechnicianShift.day == self.settings.day,
                   m.TechnicianShift.absent.is_(False), m.Technician.active.is_(True))
            .order_by(m.Technician.code))
        for shift in shifts:
            tech = shift.technician
            outlet = tech.outlet
            start = ((tech.home_lat, tech.home_lon) if shift.start_place == m.Place.HOME
                     else (outlet.lat, outlet.lon))
            end = ((tech.home_lat, tech.home_lon) if shift.end_place == m.Place.HOME
                   else (outlet.lat, outlet.lon))
            self.techs[tech.id] = _Tech(tech.id, tech.code, tech.outlet_id, start[0], start[1],
                                        end, shift.ends_at, shift.starts_at)

    def note_promises(self, session: Session) -> None:
        """The confirmed appointments of the day, as agreed before it began; those the morning
        plan could not serve at all (e.g. nobody has the skill) are counted apart: no
        re-planning can keep them."""
        for visit in self.day_visits(session):
            if visit.confirmation_status in (m.ConfirmationStatus.CONFIRMED,
                                             m.ConfirmationStatus.RECONFIRMED) \
                    and visit.agreed_start is not None and visit.agreed_end is not None:
                if visit.id in self.unplannable:
                    self.promises_unplannable += 1
                    continue
                self.promises[visit.id] = _Promise(visit.id, visit.code, visit.agreed_start,
                                                   visit.agreed_end)

    def day_visits(self, session: Session) -> list[m.Visit]:
        """Every visit of the simulated day at the simulated outlets."""
        return list(session.scalars(select(m.Visit).where(
            m.Visit.day == self.settings.day, m.Visit.outlet_id.in_(list(self.outlets)))
            .order_by(m.Visit.code)))

    def draw_disturbances(self, session: Session) -> None:
        """Which visits overrun or find nobody home, when emergencies and bookings come in,
        who goes home sick: all from the seed."""
        d = self.settings.disturbances
        visits = self.day_visits(session)
        for visit in visits:
            draw = self.rng.random()
            if draw < d.no_show_share:
                self.no_show.add(visit.id)
            elif draw < d.no_show_share + d.long_overrun_share:
                self.overrun[visit.id] = 60 * self.rng.randint(*d.long_overrun_minutes)
        for outlet_id, (_, tz) in self.outlets.items():
            count = sum(1 for v in visits if v.outlet_id == outlet_id)
            for _ in range(max(1, round(count / d.visits_per_emergency))):
                self.injections.append(_Injection(self.moment(tz, *d.emergency_between),
                                                  "emergency", outlet_id))
            for _ in range(max(1, round(count / d.visits_per_booking))):
                self.injections.append(_Injection(self.moment(tz, *d.booking_between),
                                                  "booking", outlet_id))
        if d.sick_around is not None and self.techs:
            tech = self.rng.choice(sorted(self.techs.values(), key=lambda t: t.code))
            tz = self.outlets[tech.outlet_id][1]
            base = self.local(tz, d.sick_around)
            at = base + timedelta(minutes=self.rng.randint(-20, 20))
            self.injections.append(_Injection(at, "sick", tech.outlet_id, tech.id))
        self.injections.sort(key=lambda i: i.at)

    def moment(self, timezone: str, first: time, last: time) -> datetime:
        """A seeded instant between two local clock times of the day, to the minute."""
        lo, hi = self.local(timezone, first), self.local(timezone, last)
        minutes = int((hi - lo).total_seconds() // 60)
        return lo + timedelta(minutes=self.rng.randint(0, max(0, minutes)))

    # -- the clock ------------------------------------------------------------------------

    def run(self) -> None:
        """Move the clock a minute at a time to the end of the day."""
        end = max(self.local(tz, self.settings.end) for _, tz in self.outlets.values())
        first = self.clock
        while self.clock <= end:
            with db.session_scope(self.factory) as session:
                self.inject(session)
                self.move_technicians(session)
            minute = int((self.clock - first).total_seconds() // 60)
            if minute % self.settings.every_minutes == 0:
                self.run_job()
            with db.session_scope(self.factory) as session:
                self.watch(session)
                self.send_due_tasks(session)
                self.ask_handovers(session)
            self.deliver()
            self.clock += timedelta(minutes=1)
        with db.session_scope(self.factory) as session:
            self.go_home(session)

    def run_job(self) -> None:
        """The re-optimization job for every outlet, at the simulated clock."""
        from dispatch.reoptimize import run_reoptimization

        published = False
        for outlet_id in self.outlets:
            report = run_reoptimization(self.factory, outlet_id, self.settings.day,
                                        now=self.clock, params=self.settings.job_params(),
                                        actor=ACTOR)
            self.runs.append(report)
            published |= report.status == "published"
        if published:
            self.read_plans()

    def watch(self, session: Session) -> None:
        """The running-late watch for every outlet, at the simulated clock."""
        from dispatch.latewatch import watch_outlet_day

        for outlet_id in self.outlets:
            watch_outlet_day(session, outlet_id, self.settings.day, now=self.clock)

    def deliver(self) -> None:
        """The outbox's delivery pass at the simulated clock, through the stub channels."""
        from dispatch.notify import deliver_pending

        deliver_pending(self.factory, now=self.clock, config={}, senders=STUB_CHANNELS)

    # -- disturbances ---------------------------------------------------------------------

    def inject(self, session: Session) -> None:
        """Book the emergencies and new requests, send home the sick, that are due."""
        while self.injections and self.injections[0].at <= self.clock:
            item = self.injections.pop(0)
            if item.kind == "sick":
                assert item.technician_id is not None
                tech = self.techs[item.technician_id]
                tech.sick = True
                self.sick.append(tech.code)
            else:
                self.book(session, item)

    def book(self, session: Session, item: _Injection) -> None:
        """A new request from a known customer: an urgent repair or an ordinary booking."""
        from dispatch.booking import RequestData, create_request

        outlet = session.get(m.Outlet, item.outlet_id)
        assert outlet is not None
        tickets = list(session.scalars(
            select(m.ServiceTicket).where(m.ServiceTicket.outlet_id == outlet.id,
                                          m.ServiceTicket.product_id.is_not(None))
            .order_by(m.ServiceTicket.code)))
        ticket = self.rng.choice(tickets)
        urgent = item.kind == "emergency"
        request = RequestData(kind=m.TicketKind.REPAIR.value, priority=4 if urgent else 2,
                              symptom="紧急故障 / urgent fault" if urgent else "")
        visit = create_request(session, outlet, ticket.customer, ticket.product, request,
                               actor=ACTOR, now=item.at)
        close = self.local(outlet.timezone, LATEST_WINDOW_END)
        if urgent:
            start, end = item.at, min(item.at + timedelta(hours=4), close)
            self.emergencies.append(visit.id)
        else:
            hour = utc_to_local(item.at, outlet.timezone).hour + 2
            start = self.local(outlet.timezone, time(min(hour, 18), 0))
            end = min(start + timedelta(hours=2), close)
            self.bookings.append(visit.id)
        visit.windows.append(m.VisitWindow(starts_at=start, ends_at=end))
        if self.rng.random() < self.settings.disturbances.no_show_share:
            self.no_show.add(visit.id)
        db.flush(session)

    # -- technicians ----------------------------------------------------------------------

    def move_technicians(self, session: Session) -> None:
        """Every technician does whatever falls due up to the clock."""
        for tech in self.techs.values():
            for _ in range(20):  # a handful of steps a minute at most; guards against a loop
                if not self.step(session, tech):
                    break

    def read_plans(self) -> None:
        """Read every outlet's published plan (after the morning plan and each new version):
        technicians look at their phone's copy, which changes only when a plan is published."""
        from dispatch.planning import current_plan

        with db.session_scope(self.factory) as session:
            for outlet_id in self.outlets:
                plan = current_plan(session, outlet_id, self.settings.day)
                routes: dict[int, list[_Stop]] = {}
                for stop in sorted(plan.stops if plan is not None else [],
                                   key=lambda s: (s.technician_id, s.sequence)):
                    routes.setdefault(stop.technician_id, []).append(
                        _Stop(stop.kind == m.StopKind.BREAK, stop.visit_id, stop.start_at,
                              stop.end_at))
                self.routes[outlet_id] = routes
                self.flagged[outlet_id] = [u.visit_id for u in
                                           (plan.unassigned if plan is not None else [])
                                           if u.reason_code == "pinned_absent"]

    def route(self, tech: _Tech) -> list[_Stop]:
        """The technician's stops in the published plan, in order."""
        return self.routes.get(tech.outlet_id, {}).get(tech.id, [])

    def step(self, session: Session, tech: _Tech) -> bool:
        """Take the technician's next step if it is due; whether one was taken."""
        if tech.phase == "gone":
            return False
        if tech.phase == "idle":
            return self.next_stop(session, tech)
        assert tech.until is not None
        if tech.until > self.clock:
            return False
        at = tech.until
        if tech.phase == "travel":
            self.arrive(session, tech, at)
        elif tech.phase == "wait":
            self.start_work(session, tech, at)
        elif tech.phase == "onsite":
            self.finish(session, tech, at, S.DONE)
        elif tech.phase == "noshow":
            self.finish(session, tech, at, S.NO_SHOW)
        else:  # break over
            self.idle(tech, at)
        return True

    def idle(self, tech: _Tech, at: datetime) -> None:
        """The technician is free from ``at``."""
        tech.phase, tech.until, tech.visit_id, tech.free_at = "idle", None, None, at

    def next_stop(self, session: Session, tech: _Tech) -> bool:
        """An idle technician sets off for their next planned visit or takes lunch, in time."""
        if tech.sick:
            self.send_home_sick(session, tech)
            return False
        for stop in self.route(tech):
            if stop.is_break:
                if tech.took_break:
                    continue
                begin = max(tech.free_at, stop.start_at)
                if begin > self.clock:
                    return False
                tech.took_break = True
                tech.phase, tech.until = "break", begin + (stop.end_at - stop.start_at)
                return True
            visit = session.get(m.Visit, stop.visit_id) if stop.visit_id else None
            if visit is None or visit.status != S.PLANNED or visit.id in tech.skipped:
                continue
            return self.depart(session, tech, stop, visit)
        return False

    def depart(self, session: Session, tech: _Tech, stop: _Stop, visit: m.Visit) -> bool:
        """Set off for ``visit`` when it is time to arrive by its planned start."""
        customer = visit.ticket.customer
        seconds, metres = self.travel(visit.outlet, (tech.lat, tech.lon),
                                      (customer.lat, customer.lon))
        leave = max(tech.free_at, stop.start_at - timedelta(seconds=seconds))
        if leave > self.clock:
            return False
        if not self.report_status(session, tech, visit, S.EN_ROUTE, leave):
            return True
        low, high = self.settings.disturbances.travel_noise
        actual = seconds * self.rng.uniform(low, high)
        tech.travel_seconds += actual
        tech.travel_meters += metres
        tech.phase, tech.until, tech.visit_id = "travel", leave + timedelta(seconds=actual), \
            visit.id
        return True

    def arrive(self, session: Session, tech: _Tech, at: datetime) -> None:
        """At the door: nobody home (wait, then no-show), or wait for the window, or start."""
        visit = self.visit(session, tech)
        customer = visit.ticket.customer
        tech.lat, tech.lon = customer.lat, customer.lon
        self.seen(session, tech, at)
        # Following the plan: start at its planned start, never before the agreed time.
        planned = next((s.start_at for s in self.route(tech) if s.visit_id == visit.id), at)
        begin = max(at, planned, visit.agreed_start or at)
        if visit.id in self.no_show:
            # Early at the door, they ring at the time to start, like at any visit: nobody.
            self.started[visit.id] = begin
            tech.phase, tech.until = "noshow", begin + NO_SHOW_WAIT
            return
        tech.phase, tech.until = "wait", begin

    def start_work(self, session: Session, tech: _Tech, at: datetime) -> None:
        """On site: the work starts and lasts the (noisy) duration, sometimes much longer."""
        visit = self.visit(session, tech)
        if not self.report_status(session, tech, visit, S.ON_SITE, at):
            return
        self.started[visit.id] = at
        row = session.get(m.Technician, tech.id)
        factor = row.duration_factor if row is not None else 1.0
        sigma = self.settings.disturbances.duration_sigma
        seconds = visit.duration_minutes * 60 * factor * math.exp(self.rng.gauss(0.0, sigma))
        seconds += self.overrun.get(visit.id, 0)
        tech.phase, tech.until = "onsite", at + timedelta(seconds=max(600.0, seconds))

    def finish(self, session: Session, tech: _Tech, at: datetime, status: S) -> None:
        """The visit ends: done with a verified service record, or nobody was home."""
        from dispatch.fieldwork import RecordInput, save_record

        visit = self.visit(session, tech)
        if status == S.DONE:
            save_record(session, visit, tech.id, RecordInput(
                fault_found="模拟 / simulated", work_done="模拟完成 / simulated work",
                customer_verified=True, verified_name=visit.ticket.customer.name), now=at)
            self.report_status(session, tech, visit, S.DONE, at)
        else:
            self.report_status(session, tech, visit, S.NOT_FINISHED, at,
                               reason="customer_not_home")
        tech.last_end = at
        self.idle(tech, at)

    def visit(self, session: Session, tech: _Tech) -> m.Visit:
        """The visit the technician is busy with."""
        assert tech.visit_id is not None
        visit = session.get(m.Visit, tech.visit_id)
        assert visit is not None
        return visit

    def report_status(self, session: Session, tech: _Tech, visit: m.Visit, status: S,
                      at: datetime, reason: str | None = None) -> bool:
        """Record the status as the technician's phone would; an refusal is noted, and the
        technician drops the visit."""
        from dispatch.fieldwork import change_status

        try:
            change_status(session, visit, status, technician_id=tech.id, actor=ACTOR, now=at,
                          reason=reason)
        except DispatchError as exc:
            self.anomalies.append(f"{tech.code} {visit.code} -> {status.value}: "
                                  f"{exc.message('en')}")
            tech.skipped.add(visit.id)
            self.idle(tech, at)
            return False
        self.seen(session, tech, at)
        return True

    def seen(self, session: Session, tech: _Tech, at: datetime) -> None:
        """The technician's phone reports where they are."""
        row = session.get(m.Technician, tech.id)
        if row is not None:
            row.last_lat, row.last_lon, row.last_seen_at = tech.lat, tech.lon, at

    def send_home_sick(self, session: Session, tech: _Tech) -> None:
        """A sick technician with nothing under way goes home; the shift becomes an absence."""
        shift = session.scalar(select(m.TechnicianShift).where(
            m.TechnicianShift.technician_id == tech.id,
            m.TechnicianShift.day == self.settings.day))
        if shift is not None:
            shift.absent = True
            shift.absence_reason = "病假 / sick"
        # The dispatcher frees the visits pinned to them, so the job may hand them over.
        for visit in session.scalars(select(m.Visit).where(
                m.Visit.pinned_technician_id == tech.id, m.Visit.day == self.settings.day,
                m.Visit.status == S.PLANNED.value)):
            visit.pinned_technician_id = None
        tech.phase = "gone"
        if tech.last_end is not None:
            tech.last_end = max(tech.last_end, self.clock)
        self.go_home_travel(tech)

    def go_home(self, session: Session) -> None:
        """At the end of the day, everyone still out drives home (for the overtime figure)."""
        for tech in self.techs.values():
            if tech.phase != "gone":
                self.go_home_travel(tech)
                tech.phase = "gone"

    def go_home_travel(self, tech: _Tech) -> None:
        """The trip home after the last visit, counted in travel and overtime."""
        if tech.last_end is None:
            return
        seconds, metres = self.travel_between(tech.outlet_id, (tech.lat, tech.lon), tech.home)
        tech.travel_seconds += seconds
        tech.travel_meters += metres
        tech.last_end += timedelta(seconds=seconds)
        tech.lat, tech.lon = tech.home

    def travel(self, outlet: m.Outlet, origin: tuple[float, float],
               target: tuple[float, float]) -> tuple[float, float]:
        """(seconds, metres) of the trip by the outlet's travel model."""
        from dispatch.planning import travel_provider

        durations, distances = travel_provider(outlet).matrices([origin, target])
        return float(durations[0, 1]), float(distances[0, 1])

    def travel_between(self, outlet_id: int, origin: tuple[float, float],
                       target: tuple[float, float]) -> tuple[float, float]:
        """(seconds, metres) between two points for a technician of ``outlet_id``."""
        with self.factory() as session:
            outlet = session.get(m.Outlet, outlet_id)
            assert outlet is not None
            return self.travel(outlet, origin, target)

    # -- the dispatcher -------------------------------------------------------------------

    def send_due_tasks(self, session: Session) -> None:
        """Make the due calls that may be made now; a customer asked for consent agrees."""
        tasks = session.scalars(
            select(m.Task).where(m.Task.outlet_id.in_(list(self.outlets)),
                                 m.Task.status == m.TaskStatus.OPEN.value,
                                 m.Task.kind.in_([k.value for k in SENT_KINDS]),
                                 m.Task.due_from <= self.clock)
            .order_by(m.Task.due_from, m.Task.id))
        for task in list(tasks):
            visit = task.visit
            if visit is None or visit.day != self.settings.day:
                continue
            if not is_callable_at(task.outlet, visit.ticket.customer, self.clock):
                continue
            task.status = m.TaskStatus.DONE
            task.completed_at = self.clock
            task.completed_by = ACTOR
            task.outcome = "sent"
            if task.kind == K.CONSENT_REQUEST and visit.status == S.PLANNED:
                self.consent(session, task, visit)
        db.flush(session)

    def ask_handovers(self, session: Session) -> None:
        """A confirmed visit whose committed technician is away cannot be planned until the
        customer agrees to another technician: the dispatcher calls (in calling hours) and the
        customer agrees."""
        from dispatch.confirmation import agree_handover, is_agreed

        for visit_id in [v for flagged in self.flagged.values() for v in flagged]:
            visit = session.get(m.Visit, visit_id)
            if visit is None or visit.status != S.PLANNED or visit.handover_agreed \
                    or not is_agreed(visit) or visit.id in self.handover_calls:
                continue
            if not is_callable_at(visit.outlet, visit.ticket.customer, self.clock):
                continue
            agree_handover(session, visit, ACTOR, at=self.clock)
            self.handover_calls[visit.id] = self.clock
            self.consents += 1
        db.flush(session)

    def consent(self, session: Session, task: m.Task, visit: m.Visit) -> None:
        """The customer agrees to the change the consent request proposed."""
        from dispatch.confirmation import agree_handover, confirm, transition

        payload = task.payload or {}
        reasons = payload.get("reasons", [])
        new_tech = session.get(m.Technician, payload.get("new_technician_id") or -1)
        try:
            if "time_changed" in reasons and payload.get("alternatives"):
                window = payload["alternatives"][0]
                if visit.confirmation_status != m.ConfirmationStatus.NEEDS_CONSENT:
                    transition(session, visit, m.ConfirmationStatus.NEEDS_CONSENT, ACTOR,
                               at=self.clock)
                if visit.ticket.charge_explained_at is None:
                    visit.ticket.charge_explained_at = self.clock  # explained on the same call
                confirm(session, visit, (datetime.fromisoformat(window["start"]),
                                         datetime.fromisoformat(window["end"])),
                        ACTOR, new_tech, at=self.clock)
            elif "technician_changed" in reasons:
                agree_handover(session, visit, ACTOR, new_tech, at=self.clock)
            self.consents += 1
        except DispatchError as exc:
            self.anomalies.append(f"consent {visit.code}: {exc.message('en')}")

    # -- the report -----------------------------------------------------------------------

    def report(self) -> SimulationReport:
        """Measure the day that was simulated."""
        with db.session_scope(self.factory) as session:
            visits = self.day_visits(session)
            tasks = list(session.scalars(select(m.Task).where(
                m.Task.outlet_id.in_(list(self.outlets)))))
            texts = list(session.scalars(select(m.Notification).where(
                m.Notification.recipient_kind == m.RecipientKind.CUSTOMER.value,
                m.Notification.channel == m.NotificationChannel.SMS.value,
                m.Notification.status == m.NotificationStatus.SENT.value)))
            return self.measure(session, visits, tasks, texts)

    def measure(self, session: Session, visits: Sequence[m.Visit], tasks: Sequence[m.Task],
                texts: Sequence[m.Notification]) -> SimulationReport:
        """The report's figures from the day's visits, tasks and the customer texts sent."""
        consented = {t.visit_id for t in tasks if _consent_call(t)}
        # A promise whose window is still open when the simulation stops is not judged.
        judged = [p for p in self.promises.values()
                  if p.end <= self.clock or p.visit_id in self.started]
        moved = [p for p in judged if not (p.visit_id in self.started
                                           and p.start <= self.started[p.visit_id] <= p.end)]
        not_agreed = [p for p in moved if p.visit_id not in consented]
        asked = _consent_asked(tasks)
        not_kept = [p.code for p in not_agreed if p.visit_id not in asked
                    or asked[p.visit_id] > self.started.get(p.visit_id, p.end)]
        delays = [t for t in tasks if t.kind == K.DELAY_NOTICE
                  and t.status != m.TaskStatus.CANCELLED]
        texted = _first_texts(texts)
        told = _first_told(delays, texted, _late_starts(visits, self.started),
                           [t for t in tasks if _consent_call(t)])
        told_ahead = [key for key, at in told.items()
                      if at is not None and at <= _instant(key[1]) - DELAY_LEAD]
        ahead = [t for t in delays if _given_ahead(t, texted, "window_end")]
        ahead_of_start = [t for t in delays if _given_ahead(t, texted, "window_start")]
        known_early = [t for t in delays if _known_early(t)]
        calls = [t for t in tasks if t.kind in CALL_KINDS and t.status == m.TaskStatus.DONE
                 and t.completed_at is not None and not _told_by_text(t)]
        outside = [t for t in calls if not _callable(t)]
        texts_outside = [n for n in texts if not _callable_text(session, n)]
        outside_handovers = [v for v in visits if v.id in self.handover_calls
                             and not is_callable_at(v.outlet, v.ticket.customer,
                                                    self.handover_calls[v.id])]
        sla = [v for v in visits if v.ticket.sla_deadline is not None
               and v.status != S.CANCELLED]
        sla_met = [v for v in sla if v.id in self.started
                   and self.started[v.id] <= v.ticket.sla_deadline]  # type: ignore[operator]
        seconds = [r.seconds for r in self.runs]
        published = [r for r in self.runs if r.status == "published"]
        moved = sum(len(r.moved_visits) for r in self.runs)
        return SimulationReport(
            dataset=self.settings.dataset, day=self.settings.day.isoformat(),
            seed=self.settings.seed, outlets=len(self.outlets), technicians=len(self.techs),
            visits=len(visits), confirmed_appointments=len(judged),
            confirmed_unplannable=self.promises_unplannable,
            confirmed_kept_pct=_pct(len(judged) - len(not_kept), len(judged)),
            confirmed_not_kept=tuple(sorted(not_kept)),
            confirmed_agreed_pct=_pct(len(judged) - len(not_agreed), len(judged)),
            confirmed_not_agreed=tuple(sorted({p.code for p in not_agreed} - set(not_kept))),
            customers_delayed=len(told),
            customers_told_ahead_pct=_pct(len(told_ahead), len(told)),
            delay_notices=len(delays),
            delay_notices_ahead_pct=_pct(len(ahead), len(delays)),
            delay_notices_ahead_of_start_pct=_pct(len(ahead_of_start), len(delays)),
            delay_notices_texted=sum(1 for t in delays if _given_by_text(t, texted)),
            delay_notices_known_early=len(known_early),
            delay_notices_known_early_ahead_pct=_pct(
                sum(1 for t in known_early if t in ahead), len(known_early)),
            calls_outside_hours=len(outside) + len(outside_handovers),
            calls_made=len(calls) + len(self.handover_calls), consents_obtained=self.consents,
            texts_sent=len(texts), texts_outside_calling_hours=len(texts_outside),
            texts_outside_working_day=sum(1 for n in texts_outside
                                          if not _same_day_delay_text(session, n)),
            sla_visits=len(sla), sla_met_pct=_pct(len(sla_met), len(sla)),
            travel_km=round(sum(t.travel_meters for t in self.techs.values()) / 1000, 1),
            travel_minutes=round(sum(t.travel_seconds for t in self.techs.values()) / 60),
            overtime_minutes=round(sum(_overtime(t) for t in self.techs.values()) / 60),
            unassigned=sum(1 for v in visits if v.status == S.PLANNED),
            served=sum(1 for v in visits if v.status == S.DONE),
            in_progress=sum(1 for v in visits if v.status in (S.EN_ROUTE, S.ON_SITE)),
            no_shows=sum(1 for v in visits if v.status == S.NO_SHOW),
            emergencies=len(self.emergencies),
            emergencies_served=sum(1 for v in visits if v.id in self.emergencies
                                   and v.status == S.DONE),
            bookings=len(self.bookings),
            long_overruns=sum(1 for v in visits if v.id in self.overrun and v.id in self.started
                              and v.status == S.DONE),
            sick_technicians=tuple(self.sick), runs=len(self.runs),
            runs_by_status=dict(Counter(r.status for r in self.runs)),
            churn_per_run=round(moved / len(self.runs), 2) if self.runs else 0.0,
            churn_per_publish=round(moved / len(published), 2) if published else 0.0,
            job_seconds_median=round(statistics.median(seconds), 3) if seconds else 0.0,
            job_seconds_max=round(max(seconds), 3) if seconds else 0.0,
            anomalies=tuple(self.anomalies))


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 1)


def _consent_call(task: m.Task) -> bool:
    """Whether the task was a call, made, that asked the customer to accept a change."""
    return task.status == m.TaskStatus.DONE and _consent_task(task)


def _consent_task(task: m.Task) -> bool:
    """Whether the task asks the customer to accept a change: a consent request, or a call
    agreeing a new time for a visit the plan left out."""
    rebook = (task.payload or {}).get("reason") == "unassigned"
    return task.kind == K.CONSENT_REQUEST or (task.kind == K.CONFIRMATION_CALL and rebook)


def _consent_asked(tasks: Sequence[m.Task]) -> dict[int, datetime]:
    """Visit id -> when the first task asking the customer to accept a change was raised."""
    asked: dict[int, datetime] = {}
    for task in tasks:
        if task.visit_id is not None and _consent_task(task):
            asked[task.visit_id] = min(task.created_at, asked.get(task.visit_id, task.created_at))
    return asked


def _first_texts(texts: Sequence[m.Notification]) -> dict[int, datetime]:
    """Task id -> when the first delay-notice text linked to it was sent."""
    first: dict[int, datetime] = {}
    for text in texts:
        if text.template == DELAY_NOTICE and text.task_id is not None \
                and text.sent_at is not None:
            first[text.task_id] = min(text.sent_at, first.get(text.task_id, text.sent_at))
    return first


def _told_by_text(task: m.Task) -> bool:
    """Whether the task was closed by a text message, not by a call."""
    return (task.payload or {}).get("told_by") == "sms"


def _given_at(task: m.Task, texted: dict[int, datetime]) -> datetime | None:
    """When the customer first heard of a delay notice: called, or sent a text for it."""
    called = task.completed_at if task.status == m.TaskStatus.DONE \
        and not _told_by_text(task) else None
    moments = [at for at in (called, texted.get(task.id)) if at is not None]
    return min(moments, default=None)


def _late_starts(visits: Sequence[m.Visit],
                 started: dict[int, datetime]) -> list[tuple[int, int]]:
    """(visit id, promised window's end as a timestamp) of each visit started after it."""
    late = []
    for visit in visits:
        window = promised_window(visit, started[visit.id]) if visit.id in started else None
        if window is not None and started[visit.id] > window[1]:
            late.append((visit.id, int(window[1].timestamp())))
    return late


def _first_told(delays: Sequence[m.Task], texted: dict[int, datetime],
                late: Sequence[tuple[int, int]],
                changes: Sequence[m.Task] = ()) -> dict[tuple[int, int], datetime | None]:
    """Each customer with a delay, as (visit id, promised window's end as a timestamp): the
    late starts and the windows delay notices were about, with when the customer first heard
    of a delay for that window (None: never). A call made to agree a change (``changes``:
    a consent request, or a new time for a visit the plan left out) tells them too."""
    first: dict[tuple[int, int], datetime | None] = dict.fromkeys(late)
    for task in delays:
        end = (task.payload or {}).get("window_end")
        if task.visit_id is not None and end:
            _note_told(first, (task.visit_id, _stamp(end)), _given_at(task, texted))
    for task in changes:
        end = (task.payload or {}).get("agreed_end")
        keys = [(task.visit_id, _stamp(end))] if end else \
            [key for key in first if key[0] == task.visit_id]
        for key in keys:
            if key in first:
                _note_told(first, key, task.completed_at)
    return first


def _note_told(first: dict[tuple[int, int], datetime | None], key: tuple[int, int],
               given: datetime | None) -> None:
    """Keep the earlier of the moment noted for ``key`` and ``given`` (None: not given)."""
    first[key] = min((at for at in (first.get(key), given) if at is not None), default=None)


def _stamp(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def _instant(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _given_by_text(task: m.Task, texted: dict[int, datetime]) -> bool:
    """Whether a text told the customer first (no call before it)."""
    at = texted.get(task.id)
    return at is not None and _given_at(task, texted) == at


def _given_ahead(task: m.Task, texted: dict[int, datetime], bound: str) -> bool:
    """Whether a delay notice was given at least DELAY_LEAD before the agreed window's
    ``bound`` ("window_end": the last promised moment, or "window_start")."""
    moment = (task.payload or {}).get(bound)
    given = _given_at(task, texted)
    if given is None or not moment:
        return False
    return given <= datetime.fromisoformat(moment) - DELAY_LEAD


def _known_early(task: m.Task) -> bool:
    """Whether the delay was known (its notice created) at least DELAY_LEAD before the agreed
    window's end: only then can the customer be told that far ahead."""
    end = (task.payload or {}).get("window_end")
    return bool(end) and task.created_at <= datetime.fromisoformat(end) - DELAY_LEAD


def _callable_text(session: Session, text: m.Notification) -> bool:
    """Whether a text went at a time the customer could have been called."""
    customer = session.get(m.Customer, text.recipient_id)
    outlet = customer_outlet(session, text)
    assert text.sent_at is not None
    return outlet is not None and is_callable_at(outlet, customer, text.sent_at)


def _same_day_delay_text(session: Session, text: m.Notification) -> bool:
    """Whether a text was a delay notice sent in the working day of its visit's day."""
    visit = session.get(m.Visit, int((text.payload or {}).get("visit_id") or 0))
    assert text.sent_at is not None
    return text.template == DELAY_NOTICE and visit is not None \
        and may_text_at(visit.outlet, visit.day, text.sent_at)


def _callable(task: m.Task) -> bool:
    """Whether the call was made at a time calls are allowed to that customer."""
    customer = task.visit.ticket.customer if task.visit is not None else None
    assert task.completed_at is not None
    return is_callable_at(task.outlet, customer, task.completed_at)


def _overtime(tech: _Tech) -> float:
    """Seconds the technician worked (and drove home) past the end of the shift."""
    if tech.last_end is None:
        return 0.0
    return max(0.0, (tech.last_end - tech.shift_end).total_seconds())


# ---------------------------------------------------------------------------------------------
# `dispatch simulate`
# ---------------------------------------------------------------------------------------------


@click.command("simulate")
@click.option("--dataset", default="qingdao", show_default=True,
              type=click.Choice(list(fixtures.DATASETS)), help="数据集 / Dataset.")
@click.option("--date", "day_text", required=True, metavar="YYYY-MM-DD",
              help="模拟的日期 / Day to simulate.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="随机种子 / Random seed.")
@click.option("--every", "every_minutes", default=15, show_default=True,
              type=click.IntRange(min=1), help="优化间隔（分钟）/ Minutes between job runs.")
@click.option("--time-limit", default=3.0, show_default=True, type=click.FloatRange(min=0.1),
              help="每次优化的求解时间（秒）/ Solve time per job run, in seconds.")
@click.option("--plan-time-limit", default=5.0, show_default=True,
              type=click.FloatRange(min=0.1),
              help="早上规划的求解时间（秒）/ Solve time of the morning plan, in seconds.")
@click.option("--json", "json_path", default=None, metavar="PATH",
              help="另存 JSON 报告（- 为输出到屏幕）/ Also write the report as JSON (- prints it).")
@click.pass_context
def simulate_command(ctx: click.Context, dataset: str, day_text: str, seed: int,
                     every_minutes: int, time_limit: float, plan_time_limit: float,
                     json_path: str | None) -> None:
    """模拟一个服务日并评估重新优化 / Simulate a service day and measure the re-optimization."""
    try:
        day = date.fromisoformat(day_text.strip())
    except ValueError as exc:
        raise ValidationError(f"{day_text!r} is not a date like 2025-03-10",
                              f"{day_text!r} 不是有效日期（如 2025-03-10）",
                              field="--date") from exc
    settings = SimulationSettings(dataset=dataset, day=day, seed=seed,
                                  every_minutes=every_minutes, time_limit=time_limit,
                                  plan_time_limit=plan_time_limit)
    root = ctx.find_root().obj or {}
    report = simulate(settings, root.get("database_url"))
    click.echo(report.table())
    if json_path == "-":
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    elif json_path:
        Path(json_path).write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2)
                                   + "\n", encoding="utf-8")
        click.echo(f"报告已写入 {json_path} / Report written to {json_path}")


__all__ = ["Disturbances", "SimulationReport", "SimulationSettings", "simulate",
           "simulate_command"]
