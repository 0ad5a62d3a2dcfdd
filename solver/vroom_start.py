"""VROOM on the part of a problem it can express; its routes become OR-Tools' warm start.

VROOM (through pyvroom) models a field-service day closely: each technician's start, end, shift
and lunch break (a break with a start window and a length, placed exactly), several start
windows per visit, skills and pins (one VROOM skill per distinct set of technicians allowed to
do a visit), the maximum number of visits, capacities, a fixed cost per technician used, and
service times per technician speed (one vehicle type per duration factor). It serves the visits
with the highest priority sum first, so each visit's priority is its unassigned penalty in units
of the smallest one, capped at VROOM's 100. Not seen: soft SLA due times, overtime, and the
exact head-of-route order of locked visits (a locked visit is pinned to its technician at its
pinned start); OR-Tools restores all three when it completes and polishes the plan.

VROOM builds a good plan of a 100-visit day with breaks in about a second, where PyVRP can only
approximate the breaks; on such days its plan is the stronger warm start.

VROOM's priorities steer its heuristics more than they bind them: on a crowded morning it may
leave out a cheap visit that a wholly different plan could fit. So VROOM is asked once more,
with every visit its first answers left out at the top priority (``Encoding.insist``); on the
qingdao day QD-LS that plan serves one visit more, which OR-Tools' local search, started from
the first answers, did not find in 30 s (and in 300 s only sometimes). Every answer is compared
completed and timed under the full model, so insisting never makes the start worse.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import vroom

from solver.engine import RoutingEngine, allowed_technicians, feasible_windows, visit_penalty
from solver.model import Problem, Visit

#: VROOM's priority scale.
TOP_PRIORITY = 100
#: VROOM's search depth: 5 is its most thorough (and its command-line default).
EXPLORATION_LEVEL = 5


@dataclass(frozen=True)
class Encoding:
    """How the day is put to VROOM: whether its technicians may work their overtime (VROOM
    cannot cost it, but serving one more visit is always worth more), and whether a visit's
    priority counts its SLA urgency."""

    overtime: bool = False
    urgency: bool = True
    #: Ids of visits given the top priority whatever their penalty.
    insist: frozenset[str] = frozenset()


#: The encodings ``best_vroom_routes`` tries, in order. Which one gives the best start varies
#: from day to day (measured on the qingdao outlet-days), and each takes VROOM about a second.
ENCODINGS = (Encoding(), Encoding(overtime=True), Encoding(urgency=False),
             Encoding(overtime=True, urgency=False))


def best_vroom_routes(problem: Problem, time_limit: float | None) -> dict[str, list[str]] | None:
    """VROOM's routes under each encoding in turn, then under each again (best answer first)
    insisting on the visits those answers left out, while ``time_limit`` lasts (all of them
    without a limit); the ones with the lowest objective once completed and timed under the
    full model."""
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    search = _EncodingSearch(RoutingEngine(problem))
    search.try_all(distinct_encodings(problem), deadline)
    if search.left_out:
        insist = frozenset(search.left_out)
        search.try_all([replace(e, insist=insist) for e in search.ranked()], deadline)
    return search.best


class _EncodingSearch:
    """VROOM's answers under several encodings of one day: each one's objective (completed and
    timed under the full model), the best answer so far and every visit some answer left
    out."""

    def __init__(self, engine: RoutingEngine) -> None:
        self.engine = engine
        self.objectives: dict[Encoding, int] = {}
        self.best: dict[str, list[str]] | None = None
        self.left_out: set[str] = set()

    def try_all(self, encodings: Sequence[Encoding], deadline: float | None) -> None:
        """Ask VROOM under each encoding in turn until ``deadline`` (``perf_counter``)."""
        for encoding in encodings:
            left = None if deadline is None else deadline - time.perf_counter()
            if left is not None and left <= 0:
                return
            self.consider(encoding, vroom_routes(self.engine.problem, left, encoding=encoding))

    def consider(self, encoding: Encoding, routes: dict[str, list[str]] | None) -> None:
        """Complete and time VROOM's routes; keep them when they are the best so far."""
        outcome = self.engine.constructed_outcome(routes) if routes is not None else None
        if outcome is None:
            return
        objective = outcome.objective["total"]
        if not self.objectives or objective < min(self.objectives.values()):
            self.best = routes
        self.objectives[encoding] = objective
        self.left_out.update(outcome.unassigned)

    def ranked(self) -> list[Encoding]:
        """The encodings that gave an answer, best answer first."""
        return sorted(self.objectives, key=lambda e: self.objectives[e])


def distinct_encodings(problem: Problem) -> list[Encoding]:
    """The encodings that put this day to VROOM differently: without overtime or without SLA
    urgency in the day, the variants that differ only there are the same input."""
    has_overtime = any(t.max_overtime for t in problem.technicians)
    has_urgency = any(visit_penalty(problem, v) != v.unassigned_penalty for v in problem.visits)
    return [e for e in ENCODINGS
            if (has_overtime or not e.overtime) and (has_urgency or e.urgency)]


def vroom_routes(problem: Problem, time_limit: float | None, threads: int = 1,
                 encoding: Encoding = Encoding()) -> dict[str, list[str]] | None:
    """VROOM's routes (technician id -> visit ids), or None when no visit can be routed.

    Without ``time_limit`` VROOM runs its full search (deterministic with one thread)."""
    allowed = [allowed_technicians(problem, v) for v in problem.visits]
    if not any(allowed):
        return None
    data = vroom.Input()
    cost = (problem.weights.travel_time * problem.durations
            + problem.weights.distance * problem.distances)
    data.set_durations_matrix("car", np.ascontiguousarray(problem.durations, dtype=np.uint32))
    data.set_costs_matrix("car", np.ascontiguousarray(cost, dtype=np.uint32))
    skill_of = _skills(allowed)
    factors = sorted({t.duration_factor for t in problem.technicians})
    uses_load = any(v.load for v in problem.visits)
    for k, tech in enumerate(problem.technicians):
        capacity = [tech.capacity if tech.capacity is not None
                    else sum(v.load for v in problem.visits)] if uses_load else []
        data.add_vehicle(vroom.Vehicle(
            k, start=int(tech.start_location), end=int(tech.end_location),
            capacity=capacity,
            skills={s for group, s in skill_of.items() if k in group},
            time_window=vroom.TimeWindow(tech.shift_start, tech.latest_end if encoding.overtime
                                         else tech.shift_end),
            breaks=[vroom.Break(b, time_windows=[vroom.TimeWindow(x.earliest, x.latest)],
                                service=x.duration) for b, x in enumerate(tech.breaks)],
            costs=vroom.VehicleCosts(fixed=tech.fixed_cost),
            max_tasks=tech.max_visits if tech.max_visits is not None else len(problem.visits),
            type=_type_name(factors.index(tech.duration_factor))))
    unit = min(_penalty(problem, v, encoding) for v in problem.visits)
    for i, visit in enumerate(problem.visits):
        if not allowed[i]:
            continue
        data.add_job(vroom.Job(
            i, location=int(visit.location), default_service=visit.duration,
            delivery=vroom.Amount([visit.load] if uses_load else []),
            skills={skill_of[frozenset(allowed[i])]},
            priority=_priority(problem, visit, unit, encoding),
            time_windows=[vroom.TimeWindow(w.start, w.end)
                          for w in feasible_windows(problem, visit)],
            service_per_type={_type_name(n): int(round(visit.duration * f))
                              for n, f in enumerate(factors)}))
    timeout = None if time_limit is None else timedelta(seconds=max(0.05, time_limit))
    solution = data.solve(exploration_level=EXPLORATION_LEVEL, nb_threads=threads,
                          timeout=timeout)
    return _routes_of(problem, solution.routes)


def _skills(allowed: list[list[int]]) -> dict[frozenset[int], int]:
    """One VROOM skill per distinct set of allowed technicians: a technician holds the skills
    of every set it belongs to, a visit needs its own set's skill."""
    skill_of: dict[frozenset[int], int] = {}
    for techs in allowed:
        if techs:
            skill_of.setdefault(frozenset(techs), len(skill_of))
    return skill_of


def _type_name(n: int) -> str:
    return f"speed{n}"


def _penalty(problem: Problem, visit: Visit, encoding: Encoding) -> int:
    return visit_penalty(problem, visit) if encoding.urgency else visit.unassigned_penalty


def _priority(problem: Problem, visit: Visit, unit: int, encoding: Encoding) -> int:
    """The visit's unassigned penalty in ``unit``s, on VROOM's scale (required and locked
    visits, and those the encoding insists on: the top)."""
    if visit.required or visit.locked or visit.id in encoding.insist:
        return TOP_PRIORITY
    return max(1, min(TOP_PRIORITY, round(_penalty(problem, visit, encoding) / unit)))


def _routes_of(problem: Problem, table: object) -> dict[str, list[str]]:
    jobs = table[table["type"] == "job"]  # type: ignore[index]
    routes: dict[str, list[str]] = {}
    for vehicle, group in jobs.groupby("vehicle_id", sort=True):
        tech = problem.technicians[int(vehicle)]
        routes[tech.id] = [problem.visits[int(j)].id for j in group["id"]]
    return routes
