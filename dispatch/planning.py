"""Planning one outlet-day: the database state becomes a solver problem, the solution a plan.

``build_problem`` applies the service rules (who works, which windows a visit may take, what is
locked), ``plan_day`` solves and stores a new draft plan, ``publish_plan`` makes a plan the one
technicians follow. Solver ids are the technicians' and visits' codes; every instant goes
through ``dispatch.timeutil``. Functions flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from dispatch import config, db
from dispatch import models as m
from dispatch.confirmation import is_agreed, keeps_technician, planning_windows
from dispatch.errors import ConflictError, ValidationError
from dispatch.timeutil import from_seconds, plan_epoch, to_seconds
from dispatch.travel import TravelProvider, provider_for
from solver import Break, Problem, Result, SolveParams, TimeWindow
from solver import Technician as SolverTechnician
from solver import Visit as SolverVisit
from solver.jsonio import json_ready, problem_to_json
from solver.schedule import Relax, schedule_route

#: Technicians may work up to an hour past their shift, at a cost per second.
MAX_OVERTIME_SECONDS = 3600
OVERTIME_COST_PER_SECOND = 2
#: An open end for windows and pinned starts (the engine clips everything to the day).
OPEN_END = 3 * 24 * 3600
#: A confirmed appointment is planned to start at least this long before its agreed window
#: closes where the day allows: a plan that starts it in the window's last minutes breaks the
#: promise as soon as a visit before it runs a little long or the traffic is slow.
PROMISE_MARGIN_SECONDS = 15 * 60
#: Cost per second a confirmed appointment's planned start reaches into that margin (or past
#: its SLA deadline): the whole margin weighs like 75 minutes of driving, enough to reorder a
#: route for it, far below leaving a visit out (on the qingdao day: promises starting in their
#: window's last 15 minutes 12 -> 2 of 149, driving +5%).
PROMISE_MARGIN_COST = 5

#: Visits that are over, or that the customer turned down, are not planned.
CLOSED_VISIT_STATUSES = frozenset({m.VisitStatus.CANCELLED, m.VisitStatus.DONE,
                                   m.VisitStatus.NO_SHOW, m.VisitStatus.NOT_FINISHED})
#: Visits under way: locked to their technician when re-planning at a known ``now``.
LIVE_VISIT_STATUSES = frozenset({m.VisitStatus.EN_ROUTE, m.VisitStatus.ON_SITE})


@dataclass(frozen=True)
class ExcludedVisit:
    """A visit of the day that cannot go to the solver at all, with the reason why."""

    visit_id: int
    code: str
    reason_code: str
    message_en: str
    message_zh: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanningInput:
    """Everything one solve of an outlet-day needs, and the maps back to database rows."""

    outlet_id: int
    day: date
    epoch: datetime
    problem: Problem
    technician_ids: Mapping[str, int]  # solver technician id -> Technician.id
    visit_ids: Mapping[str, int]  # solver visit id -> Visit.id
    places: tuple[tuple[float, float], ...]  # (lat, lon) of each matrix index
    initial_routes: Mapping[str, tuple[str, ...]] | None  # from the published plan
    sla_deadlines: Mapping[str, datetime]  # solver visit id -> ticket's SLA deadline
    excluded: tuple[ExcludedVisit, ...] = ()

    def digest(self) -> str:
        """The sha256 of a canonical JSON of the problem: equal inputs, equal digests."""
        canonical = {
            "epoch": self.epoch.isoformat(),
            "problem": problem_to_json(self.problem),
            "excluded": sorted((e.code, e.reason_code) for e in self.excluded),
        }
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Building the problem
# ---------------------------------------------------------------------------------------------


def build_problem(session: Session, outlet: m.Outlet | str, day: date, *,
                  now: datetime | None = None,
                  travel: TravelProvider | None = None,
                  release_absent_commitments: bool = False) -> PlanningInput:
    """Turn the outlet's day (working technicians, open visits, current plan) into a problem.

    With ``now``, visits en route or on site are locked to their technician of the published
    plan, and no other visit may start before ``now``. A confirmed visit committed to a
    technician who is not working is left out for the dispatcher ("pinned_absent"), or with
    ``release_absent_commitments`` offered to any capable technician (a handover to agree).
    """
    outlet = m.find_outlet(session, outlet)
    epoch = plan_epoch(day, outlet.timezone)
    now_s = None if now is None else max(0, to_seconds(now, epoch))
    places = _Places()
    places.add(outlet.lat, outlet.lon)  # index 0: the outlet, so the matrix is never empty
    shifts = _working_shifts(session, outlet, day)
    technicians = [_technician(shift, outlet, epoch, places) for shift in shifts]
    tech_ids = {t.id: shift.technician.id for t, shift in zip(technicians, shifts)}
    published = current_plan(session, outlet.id, day)
    planned = _planned_stops(published)
    builder = _VisitBuilder(epoch, now_s, set(tech_ids), planned, release_absent_commitments)
    visits: list[SolverVisit] = []
    visit_ids: dict[str, int] = {}
    deadlines: dict[str, datetime] = {}
    excluded: list[ExcludedVisit] = []
    for row in _open_visits(session, outlet, day):
        if not technicians:
            excluded.append(_no_technician(row))
            continue
        location = places.add(row.ticket.customer.lat, row.ticket.customer.lon)
        built = builder.build(row, location)
        if isinstance(built, ExcludedVisit):
            excluded.append(built)
            continue
        visits.append(built)
        visit_ids[built.id] = row.id
        if row.ticket.sla_deadline is not None:
            deadlines[built.id] = row.ticket.sla_deadline
    durations, distances = travel_provider(outlet, travel).matrices(places.points)
    try:
        problem = fit_locked_work(Problem(durations=durations, distances=distances,
                                          technicians=tuple(technicians), visits=tuple(visits)))
    except ValueError as exc:
        raise ValidationError(str(exc), f"规划数据有误：{exc}", field="problem",
                              row=outlet.code) from exc
    return PlanningInput(
        outlet_id=outlet.id, day=day, epoch=epoch, problem=problem, technician_ids=tech_ids,
        visit_ids=visit_ids, places=tuple(places.points),
        initial_routes=_warm_start(planned, set(tech_ids), set(visit_ids)),
        sla_deadlines=deadlines, excluded=tuple(excluded))


class _Places:
    """Distinct (lat, lon) points, each with its matrix index."""

    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []
        self.index: dict[tuple[float, float], int] = {}

    def add(self, lat: float, lon: float) -> int:
        """The index of the point, adding it when new."""
        point = (float(lat), float(lon))
        if point not in self.index:
            self.index[point] = len(self.points)
            self.points.append(point)
        return self.index[point]



def travel_provider(outlet: m.Outlet, travel: TravelProvider | None = None) -> TravelProvider:
    """The travel-time provider for the outlet: ``travel`` when given, else the configured one."""
    if travel is not None:
        return travel
    osrm_url = config.load_config().get("OSRM_URL")
    return provider_for(outlet.speed_kmh, outlet.detour_factor, osrm_url)


def _working_shifts(session: Session, outlet: m.Outlet, day: date) -> list[m.TechnicianShift]:
    """Shifts that day of the outlet's active technicians who are not absent."""
    query = (select(m.TechnicianShift).join(m.Technician)
             .where(m.Technician.outlet_id == outlet.id, m.Technician.active.is_(True),
                    m.TechnicianShift.day == day, m.TechnicianShift.absent.is_(False))
             .options(selectinload(m.TechnicianShift.technician)
                      .selectinload(m.Technician.skills).selectinload(m.TechnicianSkill.skill))
             .order_by(m.Technician.code))
    return list(session.scalars(query))


def _technician(shift: m.TechnicianShift, outlet: m.Outlet, epoch: datetime,
                places: _Places) -> SolverTechnician:
    tech = shift.technician
    start, end = to_seconds(shift.starts_at, epoch), to_seconds(shift.ends_at, epoch)
    if start < 0:
        raise _shift_error(tech.code, "starts_at", "the shift starts before the plan's day",
                           "班次开始时间早于规划日")
    home = places.add(tech.home_lat, tech.home_lon)
    base = places.add(outlet.lat, outlet.lon)
    return SolverTechnician(
        id=tech.code,
        start_location=home if shift.start_place == m.Place.HOME else base,
        end_location=home if shift.end_place == m.Place.HOME else base,
        shift_start=start, shift_end=end, skills=tech.skill_levels(),
        max_overtime=MAX_OVERTIME_SECONDS, overtime_cost=OVERTIME_COST_PER_SECOND,
        breaks=_lunch(shift, epoch, start, end + MAX_OVERTIME_SECONDS),
        max_visits=tech.max_visits, duration_factor=tech.duration_factor)


def _lunch(shift: m.TechnicianShift, epoch: datetime, day_start: int,
           day_end: int) -> tuple[Break, ...]:
    """Lunch "between a and b, m minutes" is a break starting in [a, b - m], within the day."""
    if not shift.lunch_minutes or shift.lunch_window_start is None \
            or shift.lunch_window_end is None:
        return ()
    duration = shift.lunch_minutes * 60
    earliest = max(to_seconds(shift.lunch_window_start, epoch), day_start)
    latest = min(to_seconds(shift.lunch_window_end, epoch), day_end) - duration
    if latest < earliest:
        raise _shift_error(shift.technician.code, "lunch_window_end",
                           f"the lunch window is shorter than {shift.lunch_minutes} minutes "
                           "or lies outside the shift",
                           f"午休时段短于 {shift.lunch_minutes} 分钟或不在班次内")
    return (Break(earliest=earliest, latest=latest, duration=duration),)


def _shift_error(code: str, field_name: str, en: str, zh: str) -> ValidationError:
    return ValidationError(f"technician {code}: {en}", f"技师 {code}：{zh}", field=field_name,
                           row=code)


def _open_visits(session: Session, outlet: m.Outlet, day: date) -> list[m.Visit]:
    """The outlet-day's visits still to plan: not over, not declined by the customer."""
    query = (select(m.Visit)
             .where(m.Visit.outlet_id == outlet.id, m.Visit.day == day,
                    m.Visit.status.not_in([s.value for s in CLOSED_VISIT_STATUSES]),
                    m.Visit.confirmation_status != m.ConfirmationStatus.DECLINED.value)
             .options(selectinload(m.Visit.windows),
                      selectinload(m.Visit.skills).selectinload(m.VisitSkill.skill),
                      selectinload(m.Visit.ticket).selectinload(m.ServiceTicket.customer),
                      selectinload(m.Visit.pinned_technician),
                      selectinload(m.Visit.committed_technician))
             .order_by(m.Visit.code))
    return list(session.scalars(query))


def current_plan(session: Session, outlet_id: int, day: date) -> m.Plan | None:
    """The published plan of the outlet-day, if there is one."""
    return session.scalar(
        select(m.Plan)
        .where(m.Plan.outlet_id == outlet_id, m.Plan.day == day,
               m.Plan.status == m.PlanStatus.PUBLISHED.value)
        .options(selectinload(m.Plan.stops).selectinload(m.PlanStop.technician),
                 selectinload(m.Plan.stops).selectinload(m.PlanStop.visit))
        .order_by(m.Plan.number.desc()))


@dataclass(frozen=True)
class _PlannedStop:
    technician: str
    start_at: datetime


def _planned_stops(plan: m.Plan | None) -> dict[str, _PlannedStop]:
    """Visit code -> its technician and start in the published plan."""
    if plan is None:
        return {}
    return {stop.visit.code: _PlannedStop(stop.technician.code, stop.start_at)
            for stop in plan.stops if stop.kind == m.StopKind.VISIT and stop.visit is not None}


def _warm_start(planned: Mapping[str, _PlannedStop], technicians: set[str],
                visits: set[str]) -> dict[str, tuple[str, ...]] | None:
    """The published plan's routes, kept to the technicians and visits still in the problem."""
    routes: dict[str, list[tuple[datetime, str]]] = {}
    for code, stop in planned.items():
        if stop.technician in technicians and code in visits:
            routes.setdefault(stop.technician, []).append((stop.start_at, code))
    if not routes:
        return None
    return {tech: tuple(code for _, code in sorted(stops)) for tech, stops in routes.items()}


class _VisitBuilder:
    """Applies the appointment rules to one visit row."""

    def __init__(self, epoch: datetime, now_s: int | None, technicians: set[str],
                 planned: Mapping[str, _PlannedStop], release_absent: bool = False) -> None:
        self.epoch = epoch
        self.now_s = now_s
        self.technicians = technicians
        self.planned = planned
        self.release_absent = release_absent

    def seconds(self, dt: datetime | None) -> int | None:
        """Solver seconds of an optional instant."""
        return None if dt is None else to_seconds(dt, self.epoch)

    def build(self, row: m.Visit, location: int) -> SolverVisit | ExcludedVisit:
        """The solver visit for ``row``, or why it cannot be planned."""
        common = {"id": row.code, "location": location, "duration": row.duration_minutes * 60,
                  "skills": row.required_skills(), "priority": row.priority,
                  **self.deadline(row)}
        locked = self.lock(row)
        if locked is not None:
            technician, start = locked
            return SolverVisit(**common, windows=(), pinned_technician=technician,
                               pinned_start=start, locked=True)
        pinned = row.pinned_technician.code if row.pinned_technician else None
        if pinned is None and keeps_technician(row) is not None and row.committed_technician:
            pinned = row.committed_technician.code  # a confirmed promise keeps its technician
            if pinned not in self.technicians and self.release_absent:
                pinned = None  # the committed technician is away: another one, with consent
        if pinned is not None and pinned not in self.technicians:
            return _pinned_absent(row, pinned)
        windows = self.windows(row)
        if windows is None:
            return _window_passed(row)
        return SolverVisit(**common, windows=windows, pinned_technician=pinned,
                           pinned_start=self.pinned_start(row))

    def due(self, row: m.Visit) -> int | None:
        """The ticket's SLA deadline in seconds (a deadline already past counts from 0)."""
        deadline = self.seconds(row.ticket.sla_deadline)
        return None if deadline is None else max(0, deadline)

    def deadline(self, row: m.Visit) -> dict[str, int | None]:
        """The soft deadline of the visit's start (``due`` and ``lateness_cost``): the SLA's;
        for a confirmed appointment also ``PROMISE_MARGIN_SECONDS`` before its agreed window
        closes, whichever comes first."""
        due = self.due(row)
        if not is_agreed(row):
            return {"due": due}
        assert row.agreed_start is not None and row.agreed_end is not None
        start, end = self.seconds(row.agreed_start), self.seconds(row.agreed_end)
        assert start is not None and end is not None
        margin = max(0, start, end - PROMISE_MARGIN_SECONDS)
        return {"due": margin if due is None else min(due, margin),
                "lateness_cost": PROMISE_MARGIN_COST}

    def lock(self, row: m.Visit) -> tuple[str, TimeWindow] | None:
        """(technician, start) of a visit under way at ``now``; None when it is not locked."""
        if self.now_s is None or row.status not in LIVE_VISIT_STATUSES:
            return None
        stop = self.planned.get(row.code)
        technician = stop.technician if stop else (
            row.pinned_technician.code if row.pinned_technician else None)
        if technician is None or technician not in self.technicians:
            return None
        if row.status == m.VisitStatus.ON_SITE and row.actual_start is not None:
            start = max(0, self.seconds(row.actual_start) or 0)
            return technician, TimeWindow(start, start)
        planned_start = self.seconds(stop.start_at) if stop else None
        # En route: arriving from now on, no later than planned if the plan still holds.
        return technician, TimeWindow(self.now_s, max(self.now_s, planned_start or self.now_s))

    def windows(self, row: m.Visit) -> tuple[TimeWindow, ...] | None:
        """The start windows the visit may take on the day; None when none is left.

        A confirmed time is the only window; otherwise any window the customer accepts. With
        ``now``, nothing starts in the past.
        """
        pairs = planning_windows(row)
        floor = self.now_s or 0
        if not pairs:
            return () if self.now_s is None else (TimeWindow(floor, floor + OPEN_END),)
        spans = sorted((max(floor, to_seconds(a, self.epoch)), to_seconds(b, self.epoch))
                       for a, b in pairs)
        merged: list[list[int]] = []
        for start, end in spans:
            if end < start:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return tuple(TimeWindow(a, b) for a, b in merged) or None

    def pinned_start(self, row: m.Visit) -> TimeWindow | None:
        """The dispatcher's pinned start range, open-ended where only one bound is set."""
        lo, hi = self.seconds(row.pinned_start_from), self.seconds(row.pinned_start_to)
        if lo is None and hi is None:
            return None
        return TimeWindow(max(0, lo or 0), hi if hi is not None else OPEN_END)


def _no_technician(row: m.Visit) -> ExcludedVisit:
    return ExcludedVisit(
        row.id, row.code, "no_technician",
        "No technician of the outlet is working on this day.",
        "该网点当天没有技师上班。")


def _pinned_absent(row: m.Visit, technician: str) -> ExcludedVisit:
    return ExcludedVisit(
        row.id, row.code, "pinned_absent",
        f"The visit is assigned to technician {technician}, who is not working on this day. "
        "Please assign another technician or agree a new day with the customer.",
        f"此工单指定由技师 {technician} 完成，但该技师当天不上班。请改派其他技师，或与客户另约日期。",
        {"technician": technician})


def _window_passed(row: m.Visit) -> ExcludedVisit:
    return ExcludedVisit(
        row.id, row.code, "window_passed",
        "None of the times the customer accepted is still open on this day. "
        "Please agree a new time with the customer.",
        "客户接受的时间段在当天均已过去。请与客户另约时间。")


# ---------------------------------------------------------------------------------------------
# Planning, storing, publishing
# ---------------------------------------------------------------------------------------------


def plan_day(session: Session, outlet: m.Outlet | str, day: date, *,
             params: SolveParams | None = None, created_by: str = "system",
             now: datetime | None = None, travel: TravelProvider | None = None) -> m.Plan:
    """Solve the outlet-day and store the result as a new draft plan (flushed, not committed)."""
    outlet = m.find_outlet(session, outlet)
    params = params or SolveParams()
    planning = build_problem(session, outlet, day, now=now, travel=travel)
    result = solve_input(planning, params)
    return store_plan(session, planning, result, params, created_by=created_by,
                      input_digest=planning.digest())


def store_plan(session: Session, planning: PlanningInput, result: Result,
               params: SolveParams, *, created_by: str, input_digest: str) -> m.Plan:
    """Store a solve of ``planning`` as the outlet-day's next draft plan (flushed)."""
    plan = m.Plan(
        outlet_id=planning.outlet_id, day=planning.day,
        number=_next_number(session, planning.outlet_id, planning.day),
        status=m.PlanStatus.DRAFT, created_by=created_by,
        kpis=_kpis(planning, result), objective={k: int(v) for k, v in result.objective.items()},
        solver_stats={**json_ready(result.stats), "params": asdict(params)},
        input_digest=input_digest,
    )
    plan.stops = _stops(planning, result)
    plan.unassigned = _unassigned(planning, result)
    session.add(plan)
    db.flush(session)
    return plan


def fit_locked_work(problem: Problem) -> Problem:
    """Work already under way cannot be refused by an overtime cap: a technician whose locked
    visits cannot be finished, and the trip home made, by the hard end of their day gets that
    end moved just as far as the work needs."""
    technicians = list(problem.technicians)
    for k, tech in enumerate(technicians):
        locked = sorted((v for v in problem.visits
                         if v.locked and v.pinned_technician == tech.id),
                        key=lambda v: v.pinned_start.start if v.pinned_start else 0)
        if not locked:
            continue
        timed = schedule_route(problem, tech, locked, Relax(latest_end=True))
        if timed.feasible and timed.end_time > tech.latest_end:
            technicians[k] = replace(tech, max_overtime=timed.end_time - tech.shift_end)
    if technicians == list(problem.technicians):
        return problem
    return replace(problem, technicians=tuple(technicians))


def solve_input(planning: PlanningInput, params: SolveParams) -> Result:
    """Solve the planning input, warm-started from its initial routes."""
    # Imported here: the solver stack (OR-Tools, PyVRP) is heavy and only needed to plan.
    from solver.solve import assemble, solve

    if not planning.problem.technicians:
        # OR-Tools refuses a model without vehicles; nothing can be planned anyway.
        from solver.engine import EngineOutcome
        empty = EngineOutcome(routes=(), unassigned=(), status="no_technicians",
                              warm_start_used=False, objective={"total": 0})
        return assemble(planning.problem, empty, {"status": "no_technicians"})
    return solve(planning.problem, params, planning.initial_routes)


def _next_number(session: Session, outlet_id: int, day: date) -> int:
    latest = session.scalar(select(func.max(m.Plan.number))
                            .where(m.Plan.outlet_id == outlet_id, m.Plan.day == day))
    return (latest or 0) + 1


def _stops(planning: PlanningInput, result: Result) -> list[m.PlanStop]:
    """Each route's visits and breaks in time order, as plan stops with UTC times."""
    epoch = planning.epoch
    stops = []
    for route in result.routes:
        tech_id = planning.technician_ids[route.technician]
        items: list[tuple[int, int, m.PlanStop]] = []
        for position, stop in enumerate(route.stops):
            items.append((position, 1, m.PlanStop(
                technician_id=tech_id, kind=m.StopKind.VISIT,
                visit_id=planning.visit_ids[stop.visit],
                arrival_at=from_seconds(stop.arrival, epoch),
                start_at=from_seconds(stop.start, epoch), end_at=from_seconds(stop.end, epoch),
                waiting_seconds=stop.waiting, travel_seconds=stop.travel_time,
                travel_meters=stop.travel_distance,
                late_seconds=_sla_late_seconds(planning, stop.visit, stop.start))))
        for brk in route.breaks:
            start = from_seconds(brk.start, epoch)
            items.append((brk.after_stop, 0, m.PlanStop(
                technician_id=tech_id, kind=m.StopKind.BREAK, visit_id=None, arrival_at=start,
                start_at=start, end_at=from_seconds(brk.start + brk.duration, epoch))))
        # A break "after k visits" comes before visit number k (0-based).
        for sequence, (_, _, row) in enumerate(sorted(items, key=lambda i: (i[0], i[1]))):
            row.sequence = sequence
            stops.append(row)
    return stops


def _sla_late_seconds(planning: PlanningInput, code: str, start: int) -> int:
    """Seconds a planned start is past the ticket's SLA deadline (what the board flags as late;
    the solver's own lateness also counts a promise's margin)."""
    deadline = planning.sla_deadlines.get(code)
    if deadline is None:
        return 0
    return max(0, start - max(0, to_seconds(deadline, planning.epoch)))


def _unassigned(planning: PlanningInput, result: Result) -> list[m.UnassignedVisit]:
    rows = [m.UnassignedVisit(visit_id=planning.visit_ids[u.visit], reason_code=u.code,
                              reason_params=json_ready(u.params), reason_zh=u.message_zh,
                              reason_en=u.message_en)
            for u in result.unassigned]
    rows += [m.UnassignedVisit(visit_id=e.visit_id, reason_code=e.reason_code,
                               reason_params=json_ready(e.params), reason_zh=e.message_zh,
                               reason_en=e.message_en)
             for e in planning.excluded]
    return rows


def _kpis(planning: PlanningInput, result: Result) -> dict[str, Any]:
    """The solver's KPIs, counting excluded visits as unassigned, plus SLA risk."""
    kpis: dict[str, Any] = asdict(result.kpis)
    kpis["visits_unassigned"] += len(planning.excluded)
    kpis["sla_at_risk"] = len(sla_at_risk(planning, result))
    return kpis


def sla_at_risk(planning: PlanningInput, result: Result) -> list[str]:
    """Codes of the visits planned to start after their ticket's SLA deadline."""
    late = []
    for route in result.routes:
        for stop in route.stops:
            deadline = planning.sla_deadlines.get(stop.visit)
            if deadline is not None and from_seconds(stop.start, planning.epoch) > deadline:
                late.append(stop.visit)
    return sorted(late)



def publish_plan(session: Session, plan: m.Plan, expected_version: int, *,
                 actor: str = "system", now: datetime | None = None) -> m.Plan:
    """Make ``plan`` the outlet-day's published plan; the previous one becomes superseded.

    Raises ``ConflictError`` when the plan's version is not ``expected_version`` (someone
    changed it meanwhile). Records an audit event.
    """
    if plan.version != expected_version:
        raise ConflictError(detail=f"plan {plan.id} is at version {plan.version}, "
                                   f"not {expected_version}")
    if plan.status == m.PlanStatus.SUPERSEDED:
        raise ValidationError(
            f"plan {plan.number} has been superseded; plan the day again",
            f"方案 {plan.number} 已被取代，请重新规划", field="status", row=plan.number)
    before = {"status": str(plan.status), "version": plan.version}
    superseded = []
    for other in session.scalars(select(m.Plan).where(
            m.Plan.outlet_id == plan.outlet_id, m.Plan.day == plan.day, m.Plan.id != plan.id,
            m.Plan.status == m.PlanStatus.PUBLISHED.value)):
        other.status = m.PlanStatus.SUPERSEDED
        superseded.append(other.number)
    plan.status = m.PlanStatus.PUBLISHED
    plan.published_at = now or m.utcnow()
    _commit_technicians(plan)
    db.flush(session)
    session.add(m.AuditEvent(
        actor=actor, action="plan.publish", entity_type="plan", entity_id=str(plan.id),
        before=before,
        after={"status": str(plan.status), "version": plan.version, "number": plan.number,
               "superseded": sorted(superseded)}))
    db.flush(session)
    return plan


def _commit_technicians(plan: m.Plan) -> None:
    """A confirmed visit's technician becomes part of the promise once a plan is published.
    (An agreed handover keeps the old commitment on record: the tasks derived from the plan
    tell the customer who comes instead.)"""
    for stop in plan.stops:
        visit = stop.visit
        if visit is not None and is_agreed(visit) and visit.committed_technician_id is None:
            visit.committed_technician = stop.technician


def plan_summary(plan: m.Plan) -> dict[str, Any]:
    """The plan's headline figures, for command-line output."""
    kpis = plan.kpis or {}
    return {
        "outlet": plan.outlet.code,
        "day": plan.day.isoformat(),
        "number": plan.number,
        "status": str(plan.status),
        "version": plan.version,
        "visits_planned": kpis.get("visits_planned", 0),
        "visits_unassigned": kpis.get("visits_unassigned", 0),
        "technicians_used": kpis.get("technicians_used", 0),
        "travel_minutes": round(kpis.get("travel_time", 0) / 60),
        "distance_km": round(kpis.get("distance", 0) / 1000, 1),
        "overtime_minutes": round(kpis.get("overtime", 0) / 60),
        "sla_at_risk": kpis.get("sla_at_risk", 0),
        "unassigned_reasons": dict(Counter(u.reason_code for u in plan.unassigned)),
    }

