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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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


#: The encodings ``best_vroom_routes`` tries, in order. Which one gives the best start varies
#: from day to day (measured on the qingdao outlet-days), and each takes VROOM about a second.
ENCODINGS = (Encoding(), Encoding(overtime=True), Encoding(urgency=False),
             Encoding(overtime=True, urgency=False))


def best_vroom_routes(problem: Problem, time_limit: float | None) -> dict[str, list[str]] | None:
    """VROOM's routes under each encoding in turn while ``time_limit`` lasts (all of them
    without a limit); the ones with the lowest objective once completed and timed under the
    full model."""
    began = time.perf_counter()
    engine = RoutingEngine(problem)
    best, best_objective = None, None
    for encoding in distinct_encodings(problem):
        left = None if time_limit is None else time_limit - (time.perf_counter() - began)
        if left is not None and left <= 0:
            break
        routes = vroom_routes(problem, left, encoding=encoding)
        outcome = engine.constructed_outcome(routes) if routes is not None else None
        if outcome is not None and (best_objective is None
                                    or outcome.objective["total"] < best_objective):
            best, best_objective = routes, outcome.objective["total"]
    return best


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
    visits: the top)."""
    if visit.required or visit.locked:
        return TOP_PRIORITY
    return max(1, min(TOP_PRIORITY, round(_penalty(problem, visit, encoding) / unit)))


def _routes_of(problem: Problem, table: object) -> dict[str, list[str]]:
    jobs = table[table["type"] == "job"]  # type: ignore[index]
    routes: dict[str, list[str]] = {}
    for vehicle, group in jobs.groupby("vehicle_id", sort=True):
        tech = problem.technicians[int(vehicle)]
        routes[tech.id] = [problem.visits[int(j)].id for j in group["id"]]
    return routes
