"""The re-optimization job: re-plan the rest of an outlet's day as it changes, keep promises.

One run of one outlet-day, at an explicit ``now``:

1. takes the outlet-day's run lock (``dispatch.runlock``); a second run reports "already_running";
2. builds the state it plans from (``build_state``): the outlet-day's problem as
   ``dispatch.planning`` builds it, with finished visits out, visits under way locked, each
   technician starting from where they are at ``now``, confirmed visits kept to their agreed
   windows and committed technicians (a promise that can no longer be kept becomes a soft
   lateness instead of a silent drop), and the published plan as the warm start;
3. solves; publishes a new plan version only when it is better by more than ``MIN_GAIN`` without
   breaking a promise the published plan keeps, or when the published plan can no longer be kept
   (a visit of it is now infeasible, or its times slip by more than the move threshold);
4. on publishing, derives the people's tasks (``dispatch.tasks``) and queues the notifications
   (``dispatch.notify``): a delay notice to each customer whose arrival moves later beyond the
   threshold, an inbox message to each technician whose list changed.

A run is one transaction. A dispatcher's edit between the run's read and its write wins: the run
rolls back and reports "conflict_skipped" (the next tick runs it again). An input digest stored on
the plan makes a retried run with the same input report "unchanged" and write nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from dispatch import db
from dispatch import models as m
from dispatch.calling import CALL_DURATION, allowed_intervals
from dispatch.confirmation import is_agreed, keeps_technician
from dispatch.errors import ConflictError, NotFoundError
from dispatch.notify import enqueue
from dispatch.planning import (
    OPEN_END,
    PlanningInput,
    build_problem,
    current_plan,
    publish_plan,
    solve_input,
    store_plan,
    travel_provider,
)
from dispatch.runlock import run_lock
from dispatch.tasks import derive_tasks
from dispatch.timeutil import plan_epoch, require_aware, to_seconds, utc_to_local
from dispatch.travel import TravelProvider
from solver import Problem, Result, SolveParams, TimeWindow
from solver import Technician as SolverTechnician
from solver import Visit as SolverVisit
from solver.engine import RoutingEngine

#: A customer whose arrival moves by more than this is told; a plan whose times slip by more
#: than this can no longer be kept.
DEFAULT_MOVE_THRESHOLD = timedelta(minutes=15)
#: How much lower (objective units, about seconds of travel) a new plan must be to replace one
#: that still holds: re-planning for a minute of travel only churns people's lists.
MIN_GAIN = 300
#: A visit still on site past its planned end: assume it needs this much longer.
OVERRUN_ALLOWANCE = timedelta(minutes=15)
#: Confirmed visits weigh more than any urgent visit: an emergency never bumps a promise.
CONFIRMED_PRIORITY = 5
#: Cost per second past the agreed window of a promise that can no longer be kept.
RELAXED_LATENESS_COST = 100
#: The budget of a production run.
DEFAULT_PARAMS = SolveParams(time_limit=10.0)

STATUSES = ("published", "unchanged", "kept", "already_running", "conflict_skipped", "no_plan")
STATUS_TEXT: dict[str, tuple[str, str]] = {
    "published": ("已发布新方案", "a new plan was published"),
    "unchanged": ("输入未变，未写入任何内容", "same input as before; nothing written"),
    "kept": ("新方案并不更好，保留现有方案", "the new plan is not better; the current plan stays"),
    "already_running": ("该网点当天的重新优化正在运行", "a run for this outlet-day is already going"),
    "conflict_skipped": ("调度员同时修改了数据，本次跳过，稍后重试",
                         "a dispatcher changed the data meanwhile; skipped, will retry"),
    "no_plan": ("当天没有已发布的方案", "no published plan for the day"),
}
FINISHED_VISITS = frozenset({m.VisitStatus.DONE, m.VisitStatus.NO_SHOW,
                             m.VisitStatus.NOT_FINISHED, m.VisitStatus.CANCELLED})


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
    try:
        with run_lock(session, outlet_id, day) as held:
            if not held:
                session.rollback()
                report = RunReport(outlet_id, day, "already_running")
            else:
                run = _Run(session, outlet_id, day, now, params or DEFAULT_PARAMS, actor,
                           travel, move_threshold)
                report = run.execute()
                db.commit(session)
    except ConflictError:
        session.rollback()
        report = RunReport(outlet_id, day, "conflict_skipped")
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    return replace(report, seconds=round(time.perf_counter() - began, 3))


class Runner(Protocol):
    """Runs the job for several outlets of one day (in-process, or fanned out to workers)."""

    def __call__(self, outlet_ids: Sequence[int], day: date, *, now: datetime,
                 params: SolveParams | None) -> list[RunReport]: ...


def reoptimize_all(session_factory: sessionmaker[Session], day: date, *, now: datetime,
                   params: SolveParams | None = None,
                   runner: Runner | None = None) -> list[RunReport]:
    """Run the job for every outlet on ``day``: in this process one by one, or via ``runner``."""
    with db.session_scope(session_factory) as session:
        outlet_ids = list(session.scalars(select(m.Outlet.id).order_by(m.Outlet.code)))
    if runner is not None:
        return runner(outlet_ids, day, now=now, params=params)
    return [run_reoptimization(session_factory, outlet_id, day, now=now, params=params)
            for outlet_id in outlet_ids]


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

    def digest(self, routes: Mapping[str, Sequence[str]] | None = None) -> str:
        """The sha256 of the problem and a warm start (by default the published routes)."""
        warm = self.planning.initial_routes if routes is None else routes
        canonical = {
            "problem": self.planning.digest(),
            "warm_start": sorted((tech, list(codes)) for tech, codes in (warm or {}).items()
                                 if codes),
            "relaxed": sorted(self.relaxed),
        }
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_state(session: Session, outlet: m.Outlet, day: date, published: m.Plan, *,
                now: datetime, travel: TravelProvider | None = None) -> ReoptState:
    """The problem the job solves at ``now``, warm-started from ``published``."""
    provider = travel_provider(outlet, travel)
    base = build_problem(session, outlet, day, now=now, travel=provider)
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
        ordered = [self.with_promises(visits[code], by_code) for code in
                   [v.id for v in self.problem.visits] + sorted(set(visits) - {
                       v.id for v in self.problem.visits})]
        relaxed = self.unkeepable(ordered, technicians)
        ordered = [relax(v, self.now_s, self.agreed(v.id)) if v.id in relaxed else v
                   for v in ordered]
        problem = self.problem_with(technicians, ordered)
        old_routes, old_starts = _published_routes(self.published, set(visit_ids))
        warm = {tech: codes for tech, codes in old_routes.items() if tech in by_code and codes}
        planning = replace(self.base, problem=problem, visit_ids=visit_ids,
                           places=tuple(self.places), initial_routes=warm or None,
                           excluded=tuple(excluded))
        return ReoptState(planning, self.now_s, frozenset(relaxed), old_routes, old_starts,
                          frozenset(self.overrunning))

    # -- technicians ----------------------------------------------------------------------

    def technician(self, tech: SolverTechnician,
                   visits: dict[str, SolverVisit]) -> SolverTechnician:
        """The technician from where they are now: the visit on site, or their last place."""
        live = [v for v in visits.values() if v.locked and v.pinned_technician == tech.id]
        on_site = next((v for v in live if self.rows[v.id].status == m.VisitStatus.ON_SITE
                        and self.rows[v.id].actual_start is not None), None)
        if on_site is not None:
            start, location = self.on_site(tech, on_site, visits)
        else:
            start, location = max(tech.shift_start, self.now_s), self.position(tech)
            for visit in live:  # en route: the next stop, whenever they get there
                visits[visit.id] = replace(visit, pinned_start=TimeWindow(
                    start, start + OPEN_END), **_promise_lateness(self, visit))
        latest_end = tech.latest_end
        shift_end = max(tech.shift_end, start)
        return replace(
            tech, start_location=location, shift_start=start, shift_end=shift_end,
            max_overtime=max(0, latest_end - shift_end),
            breaks=tuple(b for b in (_break_from(b, max(start, self.now_s)) for b in tech.breaks)
                         if b is not None and b.latest + b.duration <= max(latest_end, shift_end)),
            max_visits=self.visits_left(tech))

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

    def position(self, tech: SolverTechnician) -> int:
        """The place the technician last reported today (before ``now``), else their start."""
        row = self.session.get(m.Technician, self.base.technician_ids[tech.id])
        seen = row.last_seen_at if row is not None else None
        if row is None or row.last_lat is None or row.last_lon is None or seen is None \
                or not self.base.epoch <= seen <= self.now:
            return tech.start_location
        return self.place(row.last_lat, row.last_lon)

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

    def with_promises(self, visit: SolverVisit,
                      technicians: Mapping[str, SolverTechnician]) -> SolverVisit:
        """A confirmed visit outweighs any urgent one and keeps its committed technician."""
        row = self.rows[visit.id]
        if visit.locked or not is_agreed(row):
            return visit
        changes: dict[str, Any] = {"priority": max(visit.priority, CONFIRMED_PRIORITY)}
        committed = self.tech_codes.get(keeps_technician(row) or -1)
        if visit.pinned_technician is None and committed in technicians:
            changes["pinned_technician"] = committed
        return replace(visit, **changes)

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
            reachable = any(
                ready[t.id][0] + int(durations[ready[t.id][1], visit.location]) <= deadline
                for t in technicians if t.can_do(visit)
                and visit.pinned_technician in (None, t.id))
            if not reachable:
                gone.add(visit.id)
        return gone

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
        return Problem(durations=durations, distances=distances, technicians=tuple(technicians),
                       visits=tuple(visits), weights=self.problem.weights)


def relax(visit: SolverVisit, now_s: int, agreed: tuple[int, int]) -> SolverVisit:
    """A promise that can no longer be kept: it may start from its agreed start (or now) on,
    each second past the agreed end costed, so it is served as early as possible and never
    dropped quietly."""
    agreed_start, agreed_end = agreed
    return replace(visit, windows=(TimeWindow(max(now_s, agreed_start), now_s + OPEN_END),),
                   pinned_start=None, due=max(0, agreed_end),
                   lateness_cost=RELAXED_LATENESS_COST,
                   priority=max(visit.priority, CONFIRMED_PRIORITY))


def _promise_lateness(builder: _StateBuilder, visit: SolverVisit) -> dict[str, Any]:
    """For a confirmed visit under way: lateness past its agreed end is costed."""
    row = builder.rows[visit.id]
    if not is_agreed(row):
        return {}
    assert row.agreed_end is not None
    return {"due": max(0, to_seconds(row.agreed_end, builder.base.epoch)),
            "lateness_cost": RELAXED_LATENESS_COST}


def _break_from(brk: Any, earliest: int) -> Any:
    """The break as it can still be taken from ``earliest`` on; None when its time is past."""
    start = max(brk.earliest, earliest)
    return None if start > brk.latest else replace(brk, earliest=start)


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
