"""The re-optimization job: re-plan the rest of an outlet's day as it changes, keep promises.

One run of one outlet-day, at an explicit ``now``:

1. takes the outlet-day's run lock (``dispatch.runlock``); a second run reports "already_running";
2. builds the state it plans from (``build_state``): the outlet-day's problem as
   ``dispatch.planning`` builds it, with finished visits out, visits under way locked, each
   technician starting from where they are at ``now`` (breaks the plan has them take before
   ``now`` taken), confirmed visits kept to their agreed windows and committed technicians, and
   the published plan as the warm start. A promise the published plan already breaks (late,
   left out, handed over) or that can no longer be kept stays relaxed: served late, never
   dropped quietly. Leaving a visit out costs, from dearest: a promise still keepable, a late
   promise, an emergency, an ordinary visit;
3. solves: every promise strict first; promises the search leaves out are then allowed late,
   and then (when the committed technician cannot make them) to another capable technician;
   each solve starts from routes with room made for emergencies and promises (``bumping``);
4. publishes a new plan version only when the published plan can no longer be kept (a route
   breaks a rule or slips past the move threshold) or the candidate is better by more than
   ``MIN_GAIN`` without breaking a promise the published plan keeps. What it publishes changes
   as little as it can: routes that still hold stay as they are (their times too), unless
   re-planning them pays for every further visit moved (``MOVE_COST``);
5. on publishing, derives the people's tasks (``dispatch.tasks``) and queues the notifications
   (``dispatch.notify``): a delay notice to each customer whose arrival moves later beyond the
   threshold, an inbox message to each technician whose list changed, and a call to agree a new
   time for each visit (and each promise) the new plan leaves out, with the reason.

A run is one transaction. A dispatcher's edit between the run's read and its write wins: the run
rolls back and reports "conflict_skipped" (the next tick runs it again). The digest stored on a
published plan is the one the next run computes from what this run wrote, so a retried run with
the same input reports "unchanged" and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from dispatch import db
from dispatch import models as m
from dispatch.bumping import make_room
from dispatch.calling import CALL_DURATION, allowed_intervals
from dispatch.confirmation import is_agreed, keeps_technician
from dispatch.errors import ConflictError, NotFoundError
from dispatch.latewatch import OVERRUN_ALLOWANCE
from dispatch.notify import enqueue
from dispatch.planning import (
    OPEN_END,
    PlanningInput,
    build_problem,
    current_plan,
    fit_locked_work,
    publish_plan,
    solve_input,
    store_plan,
    travel_provider,
)
from dispatch.runlock import run_lock
from dispatch.tasks import MOVED_ARRIVAL_THRESHOLD, already_told, derive_tasks
from dispatch.timeutil import plan_epoch, require_aware, to_seconds, utc_to_local
from dispatch.travel import TravelProvider
from solver import Break, Problem, Result, SolveParams, TimeWindow
from solver import Technician as SolverTechnician
from solver import Visit as SolverVisit
from solver.engine import objective_terms
from solver.result import Route
from solver.schedule import schedule_route

#: A customer whose arrival moves by more than this is told; a plan whose times slip by more
#: than this can no longer be kept.
DEFAULT_MOVE_THRESHOLD = MOVED_ARRIVAL_THRESHOLD
#: How much lower (objective units, about seconds of travel) a new plan must be to replace one
#: that still holds: re-planning for a minute of travel only churns people's lists.
MIN_GAIN = 300
#: What re-planning one more visit than needed costs (objective units: ten minutes of a late
#: promise): a customer told a new time, a technician's list changed.
MOVE_COST = 60_000
#: The ladder of what leaving a visit out costs (the solver's penalty grows fourfold a step):
#: a promise that can still be kept outranks one already broken (served late rather than
#: dropped), which outranks an emergency (the top priority a ticket takes), which outranks any
#: ordinary visit. So an emergency never bumps a promise, nor a late promise a kept one.
EMERGENCY_PRIORITY = 4
LATE_PROMISE_PRIORITY = 5
PROMISE_PRIORITY = 6
#: Cost per second past the agreed window of a promise that can no longer be kept.
RELAXED_LATENESS_COST = 100
#: The solver budget of a production run: with reading, checking and writing, under 10 s.
DEFAULT_PARAMS = SolveParams(time_limit=7.0)

logger = logging.getLogger(__name__)

STATUSES = ("published", "unchanged", "kept", "already_running", "conflict_skipped", "no_plan",
            "failed")
STATUS_TEXT: dict[str, tuple[str, str]] = {
    "published": ("已发布新方案", "a new plan was published"),
    "unchanged": ("输入未变，未写入任何内容", "same input as before; nothing written"),
    "kept": ("新方案并不更好，保留现有方案", "the new plan is not better; the current plan stays"),
    "already_running": ("该网点当天的重新优化正在运行", "a run for this outlet-day is already going"),
    "conflict_skipped": ("调度员同时修改了数据，本次跳过，稍后重试",
                         "a dispatcher changed the data meanwhile; skipped, will retry"),
    "no_plan": ("当天没有已发布的方案", "no published plan for the day"),
    "failed": ("本次运行出错，已全部回滚，下次定时运行会再试",
               "the run failed and was rolled back; the next scheduled run tries again"),
}
FINISHED_VISITS = frozenset({m.VisitStatus.DONE, m.VisitStatus.NO_SHOW,
                             m.VisitStatus.NOT_FINISHED, m.VisitStatus.CANCELLED})
#: Finished visits the technician went to (and so left from).
LEFT_VISITS = frozenset({m.VisitStatus.DONE, m.VisitStatus.NO_SHOW, m.VisitStatus.NOT_FINISHED})


@dataclass(frozen=True)
class RunReport:
    """What one run of one outlet-day did."""

    outlet_id: int
    day: date
    status: str
    plan_id: int | None = None
    plan_number: int | None = None
    moved_visits: tuple[int, ...] = ()
    notifications_queued: int = 0
    tasks_created: int = 0
    input_digest: str = ""
    seconds: float = 0.0
    error: str = ""  # what went wrong, for a "failed" run

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (for a task queue or a log line)."""
        data = asdict(self)
        data["day"] = self.day.isoformat()
        data["moved_visits"] = list(self.moved_visits)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunReport:
        """The report that ``as_dict`` gave ``data`` for."""
        values = dict(data)
        values["day"] = date.fromisoformat(str(values["day"]))
        values["moved_visits"] = tuple(values.get("moved_visits", ()))
        return cls(**values)

    def text(self, language: str = "zh") -> str:
        """The status in words, in ``language`` ("zh" or "en")."""
        zh, en = STATUS_TEXT[self.status]
        return zh if language == "zh" else en


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def run_reoptimization(session_factory: sessionmaker[Session], outlet_id: int, day: date, *,
                       now: datetime, params: SolveParams | None = None, actor: str = "job",
                       travel: TravelProvider | None = None,
                       move_threshold: timedelta = DEFAULT_MOVE_THRESHOLD) -> RunReport:
    """Re-plan the rest of the outlet-day at ``now``; publish only a better or necessary plan.

    Never raises for a run already going or a concurrent edit: the report says so. Raises
    NotFoundError for an unknown outlet.
    """
    require_aware(now, "now")
    began = time.perf_counter()
    session = session_factory()
    run = _Run(session, outlet_id, day, now, params or DEFAULT_PARAMS, actor, travel,
               move_threshold)
    try:
        with run_lock(session, outlet_id, day) as held:
            # Ended inside the lock: the lease goes only once this transaction is over.
            report = _execute(session, run) if held else run.report("already_running")
            session.rollback()  # after a commit: nothing left; else: ends the read
    finally:
        session.close()
    return replace(report, seconds=round(time.perf_counter() - began, 3))


def _execute(session: Session, run: _Run) -> RunReport:
    """Run and commit; a concurrent edit or an unexpected error rolls everything back and is
    reported, so one outlet's trouble never stops the others' runs."""
    try:
        report = run.execute()
        db.commit(session)
    except ConflictError:
        session.rollback()
        return run.report("conflict_skipped")
    except Exception as exc:
        session.rollback()
        logger.exception("re-optimization of outlet %s on %s failed", run.outlet_id, run.day)
        return replace(run.report("failed"), error=f"{type(exc).__name__}: {exc}")
    except BaseException:
        session.rollback()
        raise
    return report


class Runner(Protocol):
    """Runs the job for several outlets of one day (in-process, or fanned out to workers)."""

    def __call__(self, outlet_ids: Sequence[int], day: date, *, now: datetime,
                 params: SolveParams | None) -> list[RunReport]: ...


def reoptimize_all(session_factory: sessionmaker[Session], day: date, *, now: datetime,
                   params: SolveParams | None = None,
                   runner: Runner | None = None) -> list[RunReport]:
    """Run the job for every outlet on ``day``: in this process one by one, or via ``runner``.

    The runs start largest outlet-day first (longest first: workers sharing them finish
    together); the reports come back in outlet code order.
    """
    with db.session_scope(session_factory) as session:
        outlet_ids = list(session.scalars(select(m.Outlet.id).order_by(m.Outlet.code)))
        sizes = open_visit_counts(session, day)
    # Stable: outlet-days of the same size keep the outlet code order.
    largest_first = sorted(outlet_ids, key=lambda outlet_id: -sizes.get(outlet_id, 0))
    if runner is not None:
        reports = runner(largest_first, day, now=now, params=params)
    else:
        reports = [run_reoptimization(session_factory, outlet_id, day, now=now, params=params)
                   for outlet_id in largest_first]
    by_outlet = {report.outlet_id: report for report in reports}
    return [by_outlet[outlet_id] for outlet_id in outlet_ids]


def open_visit_counts(session: Session, day: date) -> dict[int, int]:
    """Outlet id -> how many of its visits on ``day`` are still to do (not finished): the size
    of the outlet-day a run re-plans."""
    finished = [status.value for status in FINISHED_VISITS]
    query = (select(m.Visit.outlet_id, func.count(m.Visit.id))
             .where(m.Visit.day == day, m.Visit.status.not_in(finished))
             .group_by(m.Visit.outlet_id))
    return {int(outlet_id): int(count) for outlet_id, count in session.execute(query)}


def outlets_open_at(session: Session, now: datetime) -> list[tuple[int, date]]:
    """(outlet id, local day) of every outlet inside its business hours at ``now``."""
    open_now = []
    for outlet in session.scalars(select(m.Outlet).order_by(m.Outlet.code)):
        local = utc_to_local(now, outlet.timezone)
        if outlet.business_open <= local.time().replace(tzinfo=None) < outlet.business_close:
            open_now.append((outlet.id, local.date()))
    return open_now


def scheduler_tick(session_factory: sessionmaker[Session], *, now: datetime,
                   params: SolveParams | None = None) -> list[RunReport]:
    """One tick of the scheduler: run the job for each outlet in business hours at ``now``."""
    with db.session_scope(session_factory) as session:
        due = outlets_open_at(session, now)
    return [run_reoptimization(session_factory, outlet_id, day, now=now, params=params)
            for outlet_id, day in due]


# ---------------------------------------------------------------------------------------------
# The state the job plans from
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReoptState:
    """The outlet-day at ``now`` as a solver problem, with what the published plan says."""

    planning: PlanningInput  # its initial_routes: the published plan, still open, in order
    now_s: int
    relaxed: frozenset[str]  # confirmed visits whose agreed window can no longer be kept
    old_routes: Mapping[str, tuple[str, ...]]  # published routes of open visits, all technicians
    old_starts: Mapping[str, int]  # visit code -> published start (seconds)
    overrunning: frozenset[str]  # technicians whose visit on site runs past its planned end
    promised: frozenset[str] = frozenset()  # confirmed visits not under way (kept or relaxed)
    released: frozenset[str] = frozenset()  # promises free to go to another technician

    def digest(self, routes: Mapping[str, Sequence[str]] | None = None) -> str:
        """The sha256 of the problem and a warm start (by default the published routes)."""
        warm = self.planning.initial_routes if routes is None else routes
        canonical = {
            "problem": self.planning.digest(),
            "warm_start": sorted((tech, list(codes)) for tech, codes in (warm or {}).items()
                                 if codes),
            "relaxed": sorted(self.relaxed),
            "released": sorted(self.released),
        }
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_state(session: Session, outlet: m.Outlet, day: date, published: m.Plan, *,
                now: datetime, travel: TravelProvider | None = None) -> ReoptState:
    """The problem the job solves at ``now``, warm-started from ``published``."""
    provider = travel_provider(outlet, travel)
    base = build_problem(session, outlet, day, now=now, travel=provider,
                         release_absent_commitments=True)
    return _StateBuilder(session, base, published, now, provider).build()


class _StateBuilder:
    """Turns planning's problem of the day into the problem of the rest of the day."""

    def __init__(self, session: Session, base: PlanningInput, published: m.Plan, now: datetime,
                 provider: TravelProvider) -> None:
        self.session = session
        self.base = base
        self.published = published
        self.now = now
        self.now_s = max(0, to_seconds(now, base.epoch))
        self.provider = provider
        self.places = list(base.places)
        self.problem = base.problem
        self.rows = _visit_rows(session, base.outlet_id, base.day)
        self.tech_codes = {tech_id: code for code, tech_id in base.technician_ids.items()}
        self.overrunning: set[str] = set()

    def build(self) -> ReoptState:
        """The state: adjusted technicians and visits, re-measured matrices, the warm start."""
        visits = {v.id: v for v in self.problem.visits}
        technicians = [self.technician(t, visits) for t in self.problem.technicians]
        visit_ids = dict(self.base.visit_ids)
        excluded = []
        for item in self.base.excluded:
            row = self.rows.get(item.code)
            if item.reason_code == "window_passed" and row is not None and is_agreed(row):
                # A promise whose whole window has passed is late, not gone.
                visits[row.code] = self.promise_visit(row)
                visit_ids[row.code] = row.id
            else:
                excluded.append(item)
        by_code = {t.id: t for t in technicians}
        old_routes, old_starts = _published_routes(self.published, set(visit_ids))
        old_technician = {code: tech for tech, codes in old_routes.items() for code in codes}
        released = self.handed_over(visits.values(), old_technician, by_code)
        # In the problem's order, then the promises added back; a visit left "on site" behind
        # a later one is gone (see ``technician``).
        codes = [v.id for v in self.problem.visits if v.id in visits] + sorted(
            set(visits) - {v.id for v in self.problem.visits})
        ordered = [self.with_promises(visits[code], by_code, code in released)
                   for code in codes]
        relaxed = (self.unkeepable(ordered, technicians) | self.already_moved(ordered, old_starts)
                   | self.left_out(ordered))
        ordered = [relax(v, self.now_s, self.agreed(v.id)) if v.id in relaxed else v
                   for v in ordered]
        problem = self.problem_with(technicians, ordered)
        warm = {tech: codes for tech, codes in old_routes.items() if tech in by_code and codes}
        planning = replace(self.base, problem=problem, visit_ids=visit_ids,
                           places=tuple(self.places), initial_routes=warm or None,
                           excluded=tuple(excluded))
        promised = frozenset(v.id for v in ordered
                             if not v.locked and is_agreed(self.rows[v.id]))
        return ReoptState(planning, self.now_s, frozenset(relaxed), old_routes, old_starts,
                          frozenset(self.overrunning), promised, frozenset(released))

    # -- technicians ----------------------------------------------------------------------

    def technician(self, tech: SolverTechnician,
                   visits: dict[str, SolverVisit]) -> SolverTechnician:
        """The technician from where they are now: the visit on site, or their last place."""
        live = [v for v in visits.values() if v.locked and v.pinned_technician == tech.id]
        on_site = sorted((v for v in live if self.rows[v.id].status == m.VisitStatus.ON_SITE
                          and self.rows[v.id].actual_start is not None),
                         key=lambda v: (self.rows[v.id].actual_start, v.id))
        for stale in on_site[:-1]:
            # Nobody is on two sites: an earlier visit left "on site" is over in all but name.
            del visits[stale.id]
        taken, lunch_until = self.breaks_taken(tech)
        if on_site:
            start, location = self.on_site(tech, on_site[-1], visits)
            free = start + tech.service_time(visits[on_site[-1].id])
        else:
            location, since = self.position(tech)
            if lunch_until:
                location = self.lunch_place(tech, location, since)
            # Free since they were last seen there; on their way since the plan's departure
            # when that has passed (travel already under way is not added again from now).
            start = max(tech.shift_start, since, lunch_until,
                        min(self.now_s, self.planned_departure(tech)))
            free = start
        for visit in live:
            if self.rows[visit.id].status == m.VisitStatus.EN_ROUTE:
                # En route: the next stop, whenever they get there (not before now).
                visits[visit.id] = replace(visit, pinned_start=TimeWindow(
                    max(free, self.now_s), max(free, self.now_s) + OPEN_END),
                    **_promise_lateness(self, visit))
        latest_end = tech.latest_end
        shift_end = max(tech.shift_end, start)
        return replace(
            tech, start_location=location, shift_start=start, shift_end=shift_end,
            max_overtime=max(0, latest_end - shift_end),
            breaks=tuple(b for b in (_break_from(b, max(start, self.now_s), free)
                                     for b in sorted(tech.breaks, key=lambda b: b.earliest)[taken:])
                         if b is not None and b.latest + b.duration <= max(latest_end, shift_end)),
            max_visits=self.visits_left(tech))

    def breaks_taken(self, tech: SolverTechnician) -> tuple[int, int]:
        """How many breaks the technician has taken or is taking by the published plan (those
        it starts before ``now``), and when one under way ends (0 when none is)."""
        started = self.started_breaks(tech)
        until = max((to_seconds(s.end_at, self.base.epoch) for s in started), default=0)
        return len(started), until if until > self.now_s else 0

    def started_breaks(self, tech: SolverTechnician) -> list[m.PlanStop]:
        """The published plan's breaks of the technician that start before ``now``, in order."""
        tech_id = self.base.technician_ids[tech.id]
        return sorted((s for s in self.published.stops if s.kind == m.StopKind.BREAK
                       and s.technician_id == tech_id and s.start_at <= self.now),
                      key=lambda s: s.start_at)

    def lunch_place(self, tech: SolverTechnician, place: int, since: int) -> int:
        """Where the technician has the break under way: at the next visit's door when the
        published plan drives them there first (they arrive before the break, or it ends too
        late to drive after it) and nothing was heard of them since it began; else ``place``,
        where they were last known."""
        lunch = self.started_breaks(tech)[-1]
        nxt = self.next_open_stop(tech)
        if nxt is None or nxt.visit is None \
                or since >= to_seconds(lunch.start_at, self.base.epoch):
            return place
        drive = timedelta(seconds=nxt.travel_seconds)
        if nxt.arrival_at > lunch.start_at and lunch.end_at + drive <= nxt.start_at:
            return place  # the plan has them set off after the break
        customer = nxt.visit.ticket.customer
        return self.place(customer.lat, customer.lon)

    def on_site(self, tech: SolverTechnician, visit: SolverVisit,
                visits: dict[str, SolverVisit]) -> tuple[int, int]:
        """(start, place) of a technician on site: there, since the actual start; the visit
        lasts until its predicted end (``OVERRUN_ALLOWANCE`` from now when already overdue)."""
        row = self.rows[visit.id]
        assert row.actual_start is not None
        started = max(0, to_seconds(row.actual_start, self.base.epoch))
        predicted_end = started + tech.service_time(visit)
        if predicted_end <= self.now_s:
            self.overrunning.add(tech.id)
            predicted_end = self.now_s + int(OVERRUN_ALLOWANCE.total_seconds())
        duration = math.ceil((predicted_end - started) / tech.duration_factor)
        visits[visit.id] = replace(visit, duration=duration,
                                   pinned_start=TimeWindow(started, started))
        return started, visit.location

    def position(self, tech: SolverTechnician) -> tuple[int, int]:
        """(place, since when) the technician was last known to be today before ``now``: the
        place they last reported, or the visit they last left, whichever is later; else their
        start place at the start of their shift."""
        tech_id = self.base.technician_ids[tech.id]
        since, point = tech.shift_start, None  # point: (lat, lon) when not the start place
        for stop in self.published.stops:
            visit = stop.visit
            if stop.technician_id == tech_id and visit is not None \
                    and visit.status in LEFT_VISITS and visit.actual_end is not None \
                    and visit.actual_end <= self.now \
                    and to_seconds(visit.actual_end, self.base.epoch) > since:
                since = to_seconds(visit.actual_end, self.base.epoch)
                point = (visit.ticket.customer.lat, visit.ticket.customer.lon)
        row = self.session.get(m.Technician, tech_id)
        seen = row.last_seen_at if row is not None else None
        if row is not None and row.last_lat is not None and row.last_lon is not None \
                and seen is not None and self.base.epoch <= seen <= self.now \
                and to_seconds(seen, self.base.epoch) >= since:
            since, point = to_seconds(seen, self.base.epoch), (row.last_lat, row.last_lon)
        place = tech.start_location if point is None else self.place(*point)
        return place, max(0, since)

    def planned_departure(self, tech: SolverTechnician) -> int:
        """When the published plan has the technician set off for their next open visit
        (``now`` when it has none)."""
        nxt = self.next_open_stop(tech)
        if nxt is None:
            return self.now_s
        return to_seconds(nxt.arrival_at, self.base.epoch) - nxt.travel_seconds

    def next_open_stop(self, tech: SolverTechnician) -> m.PlanStop | None:
        """The published plan's next visit of the technician still to make (None if none)."""
        tech_id = self.base.technician_ids[tech.id]
        upcoming = [s for s in self.published.stops
                    if s.technician_id == tech_id and s.kind == m.StopKind.VISIT
                    and s.visit is not None and s.visit.status in (m.VisitStatus.PLANNED,
                                                                   m.VisitStatus.EN_ROUTE)]
        return min(upcoming, key=lambda s: s.start_at, default=None)

    def place(self, lat: float, lon: float) -> int:
        """The matrix index of a point, adding it when new."""
        point = (float(lat), float(lon))
        if point not in self.places:
            self.places.append(point)
        return self.places.index(point)

    def visits_left(self, tech: SolverTechnician) -> int | None:
        """The technician's visit limit less the visits of the day they have finished."""
        if tech.max_visits is None:
            return None
        tech_id = self.base.technician_ids[tech.id]
        finished = sum(1 for stop in self.published.stops
                       if stop.kind == m.StopKind.VISIT and stop.technician_id == tech_id
                       and stop.visit is not None and stop.visit.status in FINISHED_VISITS)
        return max(0, tech.max_visits - finished)

    # -- visits ---------------------------------------------------------------------------

    def promise_visit(self, row: m.Visit) -> SolverVisit:
        """A solver visit for a confirmed visit whose agreed window has already passed."""
        customer = row.ticket.customer
        return SolverVisit(id=row.code, location=self.place(customer.lat, customer.lon),
                           duration=row.duration_minutes * 60, skills=row.required_skills(),
                           priority=row.priority, windows=(TimeWindow(self.now_s,
                                                                      self.now_s + OPEN_END),))

    def agreed(self, code: str) -> tuple[int, int]:
        """The agreed window of a confirmed visit, in seconds."""
        row = self.rows[code]
        assert row.agreed_start is not None and row.agreed_end is not None
        return (to_seconds(row.agreed_start, self.base.epoch),
                to_seconds(row.agreed_end, self.base.epoch))

    def with_promises(self, visit: SolverVisit, technicians: Mapping[str, SolverTechnician],
                      released: bool = False) -> SolverVisit:
        """A confirmed visit outweighs any urgent one and keeps its committed technician,
        unless that commitment is ``released`` (a handover under way)."""
        row = self.rows[visit.id]
        if visit.locked or not is_agreed(row):
            return visit
        changes: dict[str, Any] = {"priority": max(visit.priority, PROMISE_PRIORITY)}
        committed = self.tech_codes.get(keeps_technician(row) or -1)
        if released:
            changes["pinned_technician"] = None
        elif visit.pinned_technician is None and committed in technicians:
            changes["pinned_technician"] = committed
        return replace(visit, **changes)

    def commitment_only(self, visit: SolverVisit) -> bool:
        """Whether the visit's technician is bound only by the customer's promise (no
        dispatcher's pin, not under way): a handover, with consent, may release it."""
        row = self.rows[visit.id]
        return (not visit.locked and row.pinned_technician_id is None
                and keeps_technician(row) is not None)

    def handed_over(self, visits: Iterable[SolverVisit], old_technician: Mapping[str, str],
                    technicians: Mapping[str, SolverTechnician]) -> set[str]:
        """Promises whose committed technician is away, or that the published plan already gives
        to another technician: the handover is being agreed, they are not pinned back."""
        released = set()
        for visit in visits:
            if not self.commitment_only(visit):
                continue
            committed = self.tech_codes.get(keeps_technician(self.rows[visit.id]) or -1)
            planned = old_technician.get(visit.id)
            if committed not in technicians or (planned is not None and planned != committed):
                released.add(visit.id)
        return released

    def left_out(self, visits: Iterable[SolverVisit]) -> set[str]:
        """Confirmed visits the published plan leaves unassigned: that promise is already
        broken, it is served late rather than left out again."""
        unassigned = {u.visit_id for u in self.published.unassigned}
        return {v.id for v in visits if not v.locked and is_agreed(self.rows[v.id])
                and self.rows[v.id].id in unassigned}

    def unkeepable(self, visits: Iterable[SolverVisit],
                   technicians: Sequence[SolverTechnician]) -> set[str]:
        """Confirmed visits no technician can reach before their agreed window closes."""
        durations = self.matrices()[0]
        ready = {t.id: self.ready(t, visits, durations) for t in technicians}
        gone = set()
        for visit in visits:
            row = self.rows[visit.id]
            if visit.locked or not is_agreed(row):
                continue
            assert row.agreed_end is not None
            deadline = to_seconds(row.agreed_end, self.base.epoch)
            able = [t for t in technicians
                    if t.can_do(visit) and visit.pinned_technician in (None, t.id)]
            # Nobody able at all is a matter for the dispatcher (unassigned with the reason).
            if able and not any(
                    ready[t.id][0] + int(durations[ready[t.id][1], visit.location]) <= deadline
                    for t in able):
                gone.add(visit.id)
        return gone

    def already_moved(self, visits: Iterable[SolverVisit],
                      old_starts: Mapping[str, int]) -> set[str]:
        """Confirmed visits the published plan already starts outside their agreed (and
        pinned) time: that promise is being renegotiated, it stays relaxed until agreed anew."""
        moved = set()
        for visit in visits:
            row = self.rows[visit.id]
            if visit.locked or not is_agreed(row) or visit.id not in old_starts:
                continue
            lo, hi = self.agreed(visit.id)
            if row.pinned_start_from is not None:
                lo = max(lo, to_seconds(row.pinned_start_from, self.base.epoch))
            if row.pinned_start_to is not None:
                hi = min(hi, to_seconds(row.pinned_start_to, self.base.epoch))
            if not lo <= old_starts[visit.id] <= hi:
                moved.add(visit.id)
        return moved

    def ready(self, tech: SolverTechnician, visits: Iterable[SolverVisit],
              durations: Any) -> tuple[int, int]:
        """(when, where) the technician is free for new work: after their locked visits."""
        when, where = tech.shift_start, tech.start_location
        heads = sorted((v for v in visits if v.locked and v.pinned_technician == tech.id),
                       key=lambda v: v.pinned_start.start if v.pinned_start else 0)
        for visit in heads:
            arrive = when + int(durations[where, visit.location])
            start = max(arrive, visit.pinned_start.start if visit.pinned_start else arrive)
            when, where = start + tech.service_time(visit), visit.location
        return when, where

    def matrices(self) -> tuple[Any, Any]:
        """The travel matrices over every place, measured again only when places were added."""
        if len(self.places) == self.problem.num_locations:
            return self.problem.durations, self.problem.distances
        cached = getattr(self, "_matrices", None)
        if cached is None or cached[0].shape[0] != len(self.places):
            cached = self.provider.matrices(self.places)
            self._matrices = cached
        return cached

    def problem_with(self, technicians: Sequence[SolverTechnician],
                     visits: Sequence[SolverVisit]) -> Problem:
        """The adjusted problem over the (possibly extended) matrices."""
        durations, distances = self.matrices()
        return fit_locked_work(Problem(
            durations=durations, distances=distances, technicians=tuple(technicians),
            visits=tuple(visits), weights=self.problem.weights))


def relax(visit: SolverVisit, now_s: int, agreed: tuple[int, int]) -> SolverVisit:
    """A promise that can no longer be kept: it may start from its agreed start (or now) on,
    each second past the agreed end costed, so it is served as early as possible and never
    dropped quietly."""
    agreed_start, agreed_end = agreed
    return replace(visit, windows=(TimeWindow(max(now_s, agreed_start), now_s + OPEN_END),),
                   pinned_start=None, due=max(0, agreed_end),
                   lateness_cost=RELAXED_LATENESS_COST, priority=LATE_PROMISE_PRIORITY)


def _promise_lateness(builder: _StateBuilder, visit: SolverVisit) -> dict[str, Any]:
    """For a confirmed visit under way: lateness past its agreed end is costed."""
    row = builder.rows[visit.id]
    if not is_agreed(row):
        return {}
    assert row.agreed_end is not None
    return {"due": max(0, to_seconds(row.agreed_end, builder.base.epoch)),
            "lateness_cost": RELAXED_LATENESS_COST}


def _break_from(brk: Break, earliest: int, busy_until: int) -> Break | None:
    """The break as it can still be taken from ``earliest`` on: right after a visit on site
    that runs past its latest start; None when its time is past."""
    start = max(brk.earliest, earliest)
    latest = max(brk.latest, busy_until) if busy_until > earliest else brk.latest
    return None if start > latest else replace(brk, earliest=start, latest=latest)


def _visit_rows(session: Session, outlet_id: int, day: date) -> dict[str, m.Visit]:
    """Every visit of the outlet-day by code, with what the rules need loaded."""
    query = (select(m.Visit).where(m.Visit.outlet_id == outlet_id, m.Visit.day == day)
             .options(selectinload(m.Visit.ticket).selectinload(m.ServiceTicket.customer),
                      selectinload(m.Visit.skills).selectinload(m.VisitSkill.skill),
                      selectinload(m.Visit.windows)))
    return {row.code: row for row in session.scalars(query)}


def _published_routes(plan: m.Plan, open_codes: set[str],
                      ) -> tuple[dict[str, tuple[str, ...]], dict[str, int]]:
    """The plan's routes (technician code -> visit codes by start) of the visits still open,
    and each such visit's planned start in seconds."""
    epoch = plan_epoch(plan.day, plan.outlet.timezone)
    routes: dict[str, list[tuple[datetime, str]]] = {}
    starts: dict[str, int] = {}
    for stop in plan.stops:
        if stop.kind != m.StopKind.VISIT or stop.visit is None or stop.visit.code not in open_codes:
            continue
        routes.setdefault(stop.technician.code, []).append((stop.start_at, stop.visit.code))
        starts[stop.visit.code] = to_seconds(stop.start_at, epoch)
    return {tech: tuple(code for _, code in sorted(items)) for tech, items in routes.items()}, \
        starts


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Whether the candidate replaces the published plan, and why."""

    publish: bool
    reason: str  # "old_plan_broken" | "better" | "not_better" | "breaks_promise" | "no_change"
    old_objective: int | None
    new_objective: int
    broken: tuple[str, ...] = ()  # technicians whose published route can no longer be kept


@dataclass
class _Changes:
    """What a published plan changed for people."""

    moved: list[int] = field(default_factory=list)  # visit ids
    later: list[tuple[m.PlanStop, datetime]] = field(default_factory=list)  # (stop, old start)
    technicians: list[int] = field(default_factory=list)  # technician ids whose list changed
    dropped: list[int] = field(default_factory=list)  # visit ids planned before, now not


class _Run:
    """One run of one outlet-day inside the caller's transaction."""

    def __init__(self, session: Session, outlet_id: int, day: date, now: datetime,
                 params: SolveParams, actor: str, travel: TravelProvider | None,
                 threshold: timedelta) -> None:
        self.session = session
        self.outlet_id = outlet_id
        self.day = day
        self.now = now
        self.params = params
        self.actor = actor
        self.travel = travel
        self.threshold = threshold

    def report(self, status: str, **values: Any) -> RunReport:
        """A report of this outlet-day."""
        return RunReport(self.outlet_id, self.day, status, **values)

    def execute(self) -> RunReport:
        """Plan, compare, and publish when warranted; ConflictError on a concurrent edit."""
        outlet = self.session.get(m.Outlet, self.outlet_id)
        if outlet is None:
            raise NotFoundError("outlet", self.outlet_id, "网点")
        published = current_plan(self.session, self.outlet_id, self.day)
        if published is None:
            return self.report("no_plan")
        snapshot = _versions(self.session, self.outlet_id, self.day)
        tasks_before = _task_count(self.session, self.outlet_id)
        state = build_state(self.session, outlet, self.day, published, now=self.now,
                            travel=self.travel)
        digest = state.digest()
        if published.input_digest == digest:
            return self.report("unchanged", plan_id=published.id,
                               plan_number=published.number, input_digest=digest)
        state, result = self.solve(state)
        decision = decide(state, result, published, self.threshold)
        if decision.publish:
            result = least_churn(state, result, self.threshold)
            if decision.reason == "better" and not changes_anything(state, result,
                                                                    self.threshold):
                decision = replace(decision, publish=False, reason="no_change")
        # Writes only after the solve: SQLite would hold its write lock through it otherwise.
        self.closed_visit_tasks(outlet)
        if not decision.publish:
            return self.report("kept", plan_id=published.id, plan_number=published.number,
                               input_digest=digest,
                               tasks_created=_task_count(self.session, self.outlet_id)
                               - tasks_before)
        plan = store_plan(self.session, state.planning, result, self.params,
                          created_by=self.actor, input_digest=digest)
        plan.solver_stats = {**plan.solver_stats, "reoptimization": {
            "reason": decision.reason, "old_objective": decision.old_objective,
            "new_objective": decision.new_objective, "broken": list(decision.broken),
            "relaxed": sorted(state.relaxed),
            "released": sorted(state.released), "now": self.now.isoformat()}}
        _carry_finished(self.session, published, plan, self.now)
        db.flush(self.session)
        # A dispatcher's edit since the read wins: checked once the plan row holds the write lock.
        _check_versions(self.session, self.outlet_id, self.day, snapshot)
        publish_plan(self.session, plan, plan.version, actor=self.actor, now=self.now)
        tasks = derive_tasks(self.session, plan, now=self.now)
        changes = compare(published, plan, self.threshold)
        self.rebook_tasks(plan, changes.dropped)
        queued = self.notify(plan, changes, tasks, state)
        # The digest the next run will compute from what this run wrote (publishing commits
        # technicians to promises, late promises stay relaxed): the same input is "unchanged".
        plan.input_digest = build_state(self.session, outlet, self.day, plan, now=self.now,
                                        travel=self.travel).digest()
        db.flush(self.session)
        return self.report("published", plan_id=plan.id, plan_number=plan.number,
                           moved_visits=tuple(sorted(changes.moved)),
                           notifications_queued=queued, input_digest=digest,
                           tasks_created=_task_count(self.session, self.outlet_id)
                           - tasks_before)

    # -- solving --------------------------------------------------------------------------

    def solve(self, state: ReoptState) -> tuple[ReoptState, Result]:
        """Solve with every promise strict; a promise the search could not keep is then served
        late (its window relaxed), and one its committed technician cannot serve even late may
        go to another capable technician (a handover to agree). Each step solves again from
        the previous routes, with room made for the visits it concerns."""
        budgets = _phase_params(self.params)
        result = self.solve_from(state, state.planning.initial_routes, budgets[0],
                                 _outranking(state.planning.problem))
        for step, params in zip((self.relax_windows, self.release_technicians), budgets[1:]):
            stepped, codes = step(state, result)
            if codes:
                state = stepped
                result = self.solve_from(state, result.as_routes(), params, codes)
        return state, result

    def solve_from(self, state: ReoptState, routes: Mapping[str, Sequence[str]] | None,
                   params: SolveParams, wanted: Iterable[str]) -> Result:
        """Solve the state's problem warm-started from ``routes``, with room made for
        ``wanted`` visits; the state keeps the published routes for the comparison."""
        problem = state.planning.problem
        warm = make_room(problem, routes or {}, wanted, protected=state.promised)
        return solve_input(replace(state.planning, initial_routes=warm or None), params)

    def relax_windows(self, state: ReoptState, result: Result) -> tuple[ReoptState, set[str]]:
        """The state with the promises the result leaves out served late if they must (those
        some technician is able to do)."""
        problem = state.planning.problem
        codes = {u.visit for u in result.unassigned
                 if u.visit in state.promised and u.visit not in state.relaxed
                 and problem.capable_technicians(problem.visits[problem.visit_index(u.visit)])}
        epoch = state.planning.epoch
        rows = self.rows(state, codes)
        visits = [relax(v, state.now_s, (to_seconds(rows[v.id].agreed_start, epoch),  # type: ignore[arg-type]
                                         to_seconds(rows[v.id].agreed_end, epoch)))  # type: ignore[arg-type]
                  if v.id in codes else v for v in problem.visits]
        return _with_visits(state, visits, relaxed=codes), codes

    def release_technicians(self, state: ReoptState,
                            result: Result) -> tuple[ReoptState, set[str]]:
        """The state with the late promises the result still leaves out free to go to another
        capable technician, when only the customer's promise (no dispatcher's pin) binds them
        to the committed one."""
        problem = state.planning.problem
        left = {u.visit for u in result.unassigned
                if u.visit in state.relaxed and u.visit not in state.released}
        rows = self.rows(state, left)
        codes = set()
        for code in left:
            visit = problem.visits[problem.visit_index(code)]
            row = rows[code]
            others = [k for k in problem.capable_technicians(replace(visit, pinned_technician=None))
                      if problem.technicians[k].id != visit.pinned_technician]
            if visit.pinned_technician is not None and row.pinned_technician_id is None \
                    and keeps_technician(row) is not None and others:
                codes.add(code)
        visits = [replace(v, pinned_technician=None) if v.id in codes else v
                  for v in problem.visits]
        return _with_visits(state, visits, released=codes), codes

    def rows(self, state: ReoptState, codes: Iterable[str]) -> dict[str, m.Visit]:
        """The visit rows of solver visit codes."""
        return {code: self.session.get(m.Visit, state.planning.visit_ids[code])  # type: ignore[misc]
                for code in codes}

    # -- tasks and notifications ----------------------------------------------------------

    def closed_visit_tasks(self, outlet: m.Outlet) -> None:
        """A follow-up call for each visit of the day closed as a no-show (book it again)."""
        query = (select(m.Visit)
                 .where(m.Visit.outlet_id == self.outlet_id, m.Visit.day == self.day,
                        m.Visit.status == m.VisitStatus.NO_SHOW.value)
                 .options(selectinload(m.Visit.ticket).selectinload(m.ServiceTicket.customer)))
        for visit in self.session.scalars(query):
            self.call_task(outlet, visit, m.TaskKind.FOLLOWUP_CALL,
                           f"followup_call:{visit.id}:no_show",
                           {"reason": "no_show", "outcome": visit.outcome or ""})

    def rebook_tasks(self, plan: m.Plan, dropped: Iterable[int]) -> None:
        """A call to agree a new time with each customer whose visit the new plan leaves out
        after the old one had it, and with each whose confirmed appointment it leaves out (the
        plan's unassigned reason goes with it, for the dispatcher)."""
        reasons = {u.visit_id: u for u in plan.unassigned}
        promised = {u.visit_id for u in plan.unassigned
                    if u.visit is not None and is_agreed(u.visit)}
        for visit_id in sorted(set(dropped) | promised):
            visit = self.session.get(m.Visit, visit_id)
            if visit is None or visit.status != m.VisitStatus.PLANNED:
                continue
            why = reasons.get(visit_id)
            self.call_task(plan.outlet, visit, m.TaskKind.CONFIRMATION_CALL,
                           f"confirmation_call:{visit.id}:rebook:{self.day.isoformat()}",
                           {"reason": "unassigned", "was_confirmed": is_agreed(visit),
                            "reason_code": why.reason_code if why else "",
                            "reason_zh": why.reason_zh if why else "",
                            "reason_en": why.reason_en if why else ""})

    def call_task(self, outlet: m.Outlet, visit: m.Visit, kind: m.TaskKind, key: str,
                  payload: dict[str, Any]) -> None:
        """Add a dispatcher's call task for ``visit`` once (by ``key``), at the next calling
        hours."""
        if self.session.scalar(select(m.Task.id).where(m.Task.idempotency_key == key)):
            return
        due_from, due_by = _next_calling_span(outlet, visit.ticket.customer, self.now)
        self.session.add(m.Task(
            kind=kind, visit_id=visit.id, ticket_id=visit.ticket_id, outlet_id=outlet.id,
            assignee_role=m.AssigneeRole.DISPATCHER, due_from=due_from, due_by=due_by,
            payload={"visit": visit.code, **payload}, idempotency_key=key,
            created_at=self.now))
        db.flush(self.session)

    def notify(self, plan: m.Plan, changes: _Changes, tasks: Sequence[m.Task],
               state: ReoptState) -> int:
        """Queue the customers' delay notices and the technicians' inbox messages."""
        delay_tasks = {t.visit_id: t for t in tasks if t.kind == m.TaskKind.DELAY_NOTICE}
        queued = 0
        for stop, old_start in changes.later:
            queued += self.delay_notice(stop, old_start, delay_tasks.get(stop.visit_id),
                                        "overrun" if stop.technician.code in state.overrunning
                                        else "schedule")
        for technician_id in changes.technicians:
            queued += self.list_changed(plan, technician_id)
        return queued

    def delay_notice(self, stop: m.PlanStop, old_start: datetime, task: m.Task | None,
                     cause: str) -> int:
        """An SMS to the customer: the new arrival, due 15 minutes before the promised time."""
        visit = stop.visit
        assert visit is not None
        if task is not None and task.status == m.TaskStatus.DONE \
                and already_told(task, stop.arrival_at, self.threshold):
            return 0  # the customer was told this time already (the running-late watch)
        customer = visit.ticket.customer
        promised = visit.agreed_start if is_agreed(visit) else old_start
        assert promised is not None
        latest = promised - DELAY_NOTICE_LEAD
        if latest < self.now:  # too late to warn ahead: still warn before they arrive
            latest = max(self.now, stop.arrival_at)
        enqueue(self.session, recipient_kind=m.RecipientKind.CUSTOMER, recipient_id=customer.id,
                channel=m.NotificationChannel.SMS, template="delay_notice",
                language=customer.language,
                payload={"visit_id": visit.id, "new_arrival": stop.arrival_at.isoformat(),
                         "cause": cause, "plan": stop.plan.number},
                not_before=self.now, latest_useful=latest, task=task,
                idempotency_key=f"reopt:delay:{visit.id}:{_minute(stop.arrival_at)}")
        return 1

    def list_changed(self, plan: m.Plan, technician_id: int) -> int:
        """An inbox message to a technician whose list of visits changed."""
        codes = [s.visit.code for s in plan.stops if s.technician_id == technician_id
                 and s.visit is not None and s.visit.status == m.VisitStatus.PLANNED]
        listing = "、".join(codes) if codes else "—"
        enqueue(self.session, recipient_kind=m.RecipientKind.TECHNICIAN,
                recipient_id=technician_id, channel=m.NotificationChannel.INBOX,
                template="plan_changed", language=m.Language.ZH,
                payload={"plan": plan.number, "visits": codes,
                         "subject_zh": "今日工单已调整", "subject_en": "Today's visits changed",
                         "text_zh": f"今日派工已更新（方案 {plan.number}），请查看新的工单顺序：{listing}",
                         "text_en": f"Your visits for today have changed (plan {plan.number}); "
                                    f"please check the new order: {', '.join(codes) or '-'}"},
                not_before=self.now, latest_useful=None,
                idempotency_key=f"reopt:plan:{plan.id}:technician:{technician_id}")
        return 1


#: Of a run's time limit, the shares of its solves: every promise strict; then (only when a
#: promise had to be left out) late promises allowed; then (rarer still) handovers allowed.
PHASE_SHARES = (0.6, 0.25, 0.15)


def _phase_params(params: SolveParams) -> tuple[SolveParams, ...]:
    """The parameters of each solve of a run, within its time limit."""
    if params.time_limit is None:
        return tuple(params for _ in PHASE_SHARES)
    return tuple(replace(params, time_limit=params.time_limit * share) for share in PHASE_SHARES)


def _outranking(problem: Problem) -> list[str]:
    """Visits that may bump ordinary ones: emergencies and promises (not those under way)."""
    return [v.id for v in problem.visits if v.priority >= EMERGENCY_PRIORITY and not v.locked]


def _with_visits(state: ReoptState, visits: Sequence[SolverVisit], *,
                 relaxed: Iterable[str] = (), released: Iterable[str] = ()) -> ReoptState:
    """The state with its problem's visits replaced, and more promises relaxed or released."""
    problem = state.planning.problem
    changed = Problem(durations=problem.durations, distances=problem.distances,
                      technicians=problem.technicians, visits=tuple(visits),
                      weights=problem.weights)
    return replace(state, planning=replace(state.planning, problem=changed),
                   relaxed=state.relaxed | frozenset(relaxed),
                   released=state.released | frozenset(released))


#: A delay is announced at least this long before the promised time (DOMAIN: 15 minutes).
DELAY_NOTICE_LEAD = timedelta(minutes=15)


def decide(state: ReoptState, result: Result, published: m.Plan,
           threshold: timedelta) -> Decision:
    """Publish when the published plan can no longer be kept, or when the candidate is better
    by more than ``MIN_GAIN`` and keeps every promise the published plan keeps."""
    new_total = int(result.objective["total"])
    old = replay_published(state, threshold)
    if old.broken:
        return Decision(True, "old_plan_broken", None, new_total, tuple(sorted(old.broken)))
    old_total = int(old.objective["total"])
    if new_total >= old_total - MIN_GAIN:
        return Decision(False, "not_better", old_total, new_total)
    if _kept_promises(state, old.routes) - _kept_promises(state, result.routes):
        return Decision(False, "breaks_promise", old_total, new_total)
    return Decision(True, "better", old_total, new_total)


@dataclass(frozen=True)
class Replay:
    """The published plan's routes as they would go from ``now``: the same visits in the same
    order, each at its earliest feasible time; the technicians whose route can no longer be
    kept (a rule broken, a visit no longer theirs or no longer to make, or a start slipping
    past the threshold); and, when none is, the objective the routes make in the problem."""

    routes: tuple[Route, ...]  # the routes that can still be made (maybe later)
    broken: frozenset[str]  # technicians whose route cannot be made, or not on time
    objective: Mapping[str, int]


def replay_published(state: ReoptState, threshold: timedelta) -> Replay:
    """The published routes timed from ``now`` by the forward scheduler (the earliest feasible
    timing: the same whatever a search would pick), and which of them are broken."""
    problem = held(state.planning.problem, state.old_starts)
    slack = int(threshold.total_seconds())
    routes, broken = [], set()
    for tech_id, codes in sorted(state.old_routes.items()):
        timed = _replayed_route(problem, tech_id, codes)
        if timed is not None:
            routes.append(timed)
        if timed is None or any(stop.start > state.old_starts[stop.visit] + slack
                                for stop in timed.stops):
            broken.add(tech_id)
    placed = {stop.visit for route in routes for stop in route.stops}
    unassigned = [v.id for v in problem.visits if v.id not in placed]
    objective = {} if broken else objective_terms(problem, routes, unassigned)
    return Replay(tuple(routes), frozenset(broken), objective)


def held(problem: Problem, starts: Mapping[str, int]) -> Problem:
    """The problem with each visit of ``starts`` starting no earlier than that (the time the
    customer was told): a route kept as it was is not moved earlier either."""
    visits = tuple(_not_before(v, starts[v.id]) if v.id in starts and not v.locked else v
                   for v in problem.visits)
    return Problem(durations=problem.durations, distances=problem.distances,
                   technicians=problem.technicians, visits=visits, weights=problem.weights)


def _not_before(visit: SolverVisit, start: int) -> SolverVisit:
    """The visit with its start windows cut at ``start`` (kept whole if none reaches it)."""
    windows = visit.windows or (TimeWindow(0, start + OPEN_END),)
    later = tuple(TimeWindow(max(w.start, start), w.end) for w in windows if w.end >= start)
    return replace(visit, windows=later) if later else visit


def _replayed_route(problem: Problem, tech_id: str, codes: Sequence[str]) -> Route | None:
    """The technician's published visits timed from now; None when they cannot be kept."""
    try:
        tech = problem.technicians[problem.technician_index(tech_id)]
        visits = [problem.visits[problem.visit_index(code)] for code in codes]
    except KeyError:
        return None  # the technician is off, or a visit is no longer to plan
    if any(not tech.can_do(v) or v.pinned_technician not in (None, tech.id) for v in visits):
        return None
    timed = schedule_route(problem, tech, visits)
    return timed.to_route() if timed.feasible else None


def least_churn(state: ReoptState, result: Result, threshold: timedelta) -> Result:
    """The plan to publish: the published routes kept wherever they can still be made (if
    later, in the same order), the candidate's routes for the technicians whose route cannot
    be made any more, the visits left over placed where they fit (room made for emergencies
    and promises); the candidate itself only when it is better than that by more than
    ``MIN_GAIN`` plus ``MOVE_COST`` for each visit it moves beyond (re-planning the whole day
    for less only churns people's lists)."""
    # Imported here, like planning's solve: the solver stack is heavy.
    from solver.engine import RoutingEngine
    from solver.solve import assemble

    replay = replay_published(state, threshold)
    kept = {r.technician: r.visit_ids for r in replay.routes}
    taken = {code for codes in kept.values() for code in codes}
    routes = dict(kept)
    for route in result.routes:
        if route.technician not in kept:
            routes[route.technician] = tuple(c for c in route.visit_ids if c not in taken)
    routes = make_room(state.planning.problem, routes, _outranking(state.planning.problem),
                       protected=state.promised)
    # Routes kept as they were keep their told times too (none moved earlier).
    problem = held(state.planning.problem,
                   {code: state.old_starts[code] for tech, codes in kept.items()
                    if routes.get(tech) == codes for code in codes})
    outcome = RoutingEngine(problem).constructed_outcome(routes)
    if outcome is None:
        return result
    extra = len(_moved_between(outcome.routes, result.routes, threshold))
    if int(result.objective["total"]) < \
            int(outcome.objective["total"]) - MIN_GAIN - MOVE_COST * extra:
        return result
    return assemble(problem, outcome, {**result.stats, "winner": "least_churn",
                                       "candidate_objective": int(result.objective["total"])})


def changes_anything(state: ReoptState, result: Result, threshold: timedelta) -> bool:
    """Whether the plan would change anything for anybody against the published one: a visit
    served or left out, with another technician, or moved by more than the threshold."""
    old = {code: (tech, state.old_starts[code]) for tech, codes in state.old_routes.items()
           for code in codes}
    new = {s.visit: (r.technician, s.start) for r in result.routes for s in r.stops}
    slack = int(threshold.total_seconds())
    return old.keys() != new.keys() or any(
        old[code][0] != new[code][0] or abs(old[code][1] - new[code][1]) > slack
        for code in new)


def _moved_between(a: Sequence[Route], b: Sequence[Route], threshold: timedelta) -> set[str]:
    """Visits planned differently by two sets of routes: on one only, with another
    technician, or starting further apart than the threshold."""
    def stops(routes: Sequence[Route]) -> dict[str, tuple[str, int]]:
        return {s.visit: (r.technician, s.start) for r in routes for s in r.stops}

    first, second = stops(a), stops(b)
    slack = int(threshold.total_seconds())
    return {code for code in set(first) | set(second)
            if code not in first or code not in second or first[code][0] != second[code][0]
            or abs(first[code][1] - second[code][1]) > slack}


def _promises(state: ReoptState) -> set[str]:
    """Confirmed visits still held to their agreed window (not under way, not relaxed)."""
    return set(state.promised - state.relaxed)


def _kept_promises(state: ReoptState, routes: Iterable[Any]) -> set[str]:
    """The confirmed visits the routes serve inside their windows."""
    problem = state.planning.problem
    promises = _promises(state)
    kept = set()
    for route in routes:
        for stop in route.stops:
            if stop.visit in promises:
                visit = problem.visits[problem.visit_index(stop.visit)]
                if any(w.contains(stop.start) for w in visit.start_windows()):
                    kept.add(stop.visit)
    return kept


def compare(old: m.Plan, new: m.Plan, threshold: timedelta) -> _Changes:
    """What the new plan changes against the old one, for the people concerned."""
    before = {s.visit_id: s for s in old.stops if s.kind == m.StopKind.VISIT and s.visit_id}
    after = {s.visit_id: s for s in new.stops if s.kind == m.StopKind.VISIT and s.visit_id}
    changes = _Changes()
    for visit_id, stop in after.items():
        if stop.visit is None or stop.visit.status != m.VisitStatus.PLANNED:
            continue
        previous = before.get(visit_id)
        if previous is None:
            continue
        shift = stop.start_at - previous.start_at
        if previous.technician_id != stop.technician_id or abs(shift) > threshold:
            changes.moved.append(visit_id)
        if shift > threshold:
            changes.later.append((stop, previous.start_at))
    for visit_id, previous in before.items():
        if visit_id not in after and previous.visit is not None \
                and previous.visit.status == m.VisitStatus.PLANNED:
            changes.moved.append(visit_id)
            changes.dropped.append(visit_id)
    changes.technicians = sorted(_changed_lists(before.values(), after.values(), threshold))
    return changes


def _changed_lists(before: Iterable[m.PlanStop], after: Iterable[m.PlanStop],
                   threshold: timedelta) -> set[int]:
    """Technicians whose open visits, their order, or their times (beyond the threshold)
    differ between two plans."""
    def lists(stops: Iterable[m.PlanStop]) -> dict[int, list[tuple[int, datetime]]]:
        out: dict[int, list[tuple[int, datetime]]] = {}
        for s in sorted(stops, key=lambda s: s.start_at):
            if s.visit is not None and s.visit.status == m.VisitStatus.PLANNED:
                out.setdefault(s.technician_id, []).append((s.visit_id or 0, s.start_at))
        return out

    old, new = lists(before), lists(after)
    changed = set()
    for tech in set(old) | set(new):
        a, b = old.get(tech, []), new.get(tech, [])
        if [v for v, _ in a] != [v for v, _ in b] or any(
                abs(x - y) > threshold for (_, x), (_, y) in zip(a, b)):
            changed.add(tech)
    return changed


_RENUMBER_OFFSET = 100_000


def _carry_finished(session: Session, old: m.Plan, new: m.Plan, now: datetime) -> None:
    """Keep the day's finished visits, and the breaks taken (begun before ``now``), on the new
    plan, ahead of each technician's route."""
    finished = [s for s in sorted(old.stops, key=lambda s: (s.technician_id, s.sequence))
                if (s.kind == m.StopKind.VISIT and s.visit is not None
                    and s.visit.status in FINISHED_VISITS)
                or (s.kind == m.StopKind.BREAK and s.start_at <= now)]
    if not finished:
        return
    ahead: dict[int, int] = {}
    for stop in finished:
        ahead[stop.technician_id] = ahead.get(stop.technician_id, 0) + 1
    # Renumbered in two steps: (plan, technician, sequence) is unique at every UPDATE.
    stored = sorted(new.stops, key=lambda s: (s.technician_id, s.sequence))
    for stop in stored:
        stop.sequence += _RENUMBER_OFFSET
    db.flush(session)
    for stop in stored:
        stop.sequence += ahead.get(stop.technician_id, 0) - _RENUMBER_OFFSET
    counters: dict[int, int] = {}
    for stop in finished:
        sequence = counters.get(stop.technician_id, 0)
        counters[stop.technician_id] = sequence + 1
        new.stops.append(m.PlanStop(
            technician_id=stop.technician_id, sequence=sequence, kind=stop.kind,
            visit_id=stop.visit_id, arrival_at=stop.arrival_at, start_at=stop.start_at,
            end_at=stop.end_at, waiting_seconds=stop.waiting_seconds,
            travel_seconds=stop.travel_seconds, travel_meters=stop.travel_meters,
            late_seconds=stop.late_seconds))


# ---------------------------------------------------------------------------------------------
# Concurrent edits
# ---------------------------------------------------------------------------------------------

_Snapshot = dict[str, dict[int, int]]


def _versions(session: Session, outlet_id: int, day: date, *,
              for_update: bool = False) -> _Snapshot:
    """The versions of what the run reads: the day's visits, shifts and plans."""
    def read(query: Any) -> dict[int, int]:
        if for_update:
            query = query.with_for_update()
        return {int(k): int(v) for k, v in session.execute(query)}

    shift_ids = select(m.TechnicianShift.id, m.TechnicianShift.version).join(m.Technician).where(
        m.Technician.outlet_id == outlet_id, m.TechnicianShift.day == day)
    return {
        "visits": read(select(m.Visit.id, m.Visit.version).where(
            m.Visit.outlet_id == outlet_id, m.Visit.day == day)),
        "shifts": read(shift_ids),
        "plans": read(select(m.Plan.id, m.Plan.version).where(
            m.Plan.outlet_id == outlet_id, m.Plan.day == day,
            m.Plan.status == m.PlanStatus.PUBLISHED.value)),
    }


def _check_versions(session: Session, outlet_id: int, day: date, snapshot: _Snapshot) -> None:
    """Raise ConflictError when a row read at ``snapshot`` has changed or gone since; the rows
    are locked (PostgreSQL) so no edit slips in before the commit."""
    current = _versions(session, outlet_id, day, for_update=True)
    for name, versions in snapshot.items():
        for row_id, version in versions.items():
            if current[name].get(row_id) != version:
                raise ConflictError(detail=f"{name} {row_id} changed during re-optimization")


def _task_count(session: Session, outlet_id: int) -> int:
    """How many tasks the outlet has (before and after a run: how many it created)."""
    return int(session.scalar(select(func.count(m.Task.id))
                              .where(m.Task.outlet_id == outlet_id)) or 0)


def _next_calling_span(outlet: m.Outlet, customer: m.Customer,
                       now: datetime) -> tuple[datetime, datetime]:
    """The next day's worth of calling time from ``now`` (due from, due by)."""
    intervals = allowed_intervals(outlet, customer, now, now + timedelta(days=7))
    if not intervals:
        return now, now + timedelta(days=1)
    first_day = utc_to_local(intervals[0][0], outlet.timezone).date()
    same_day = [iv for iv in intervals
                if utc_to_local(iv[0], outlet.timezone).date() == first_day]
    return same_day[0][0], same_day[-1][1] - CALL_DURATION


def _minute(dt: datetime) -> str:
    """The UTC minute of ``dt`` as a compact key part."""
    return dt.strftime("%Y%m%dT%H%MZ")
