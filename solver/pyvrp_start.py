"""PyVRP on the part of a problem it can express; its routes become OR-Tools' warm start.

What PyVRP sees: each visit's windows (several windows become a mutually exclusive client group,
one client per window), each technician's start and end place, shift, overtime and fixed cost
(technicians alike in all of these share a vehicle type), skills and pins (one routing profile per
distinct set of doable visits: arcs into any other visit cost a prohibitive amount), optional
visits with their penalty as prize, capacities and the maximum number of visits (a second load
dimension where each visit weighs 1). Approximated: breaks (the shift is shortened by their
length) and the duration factor (exact: the extra service time is added to the arcs leaving the
visit). Not seen: soft due times and the exact head-of-route order of locked visits; OR-Tools
restores both when it completes the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyvrp
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, StoppingCriterion

from solver.engine import allowed_technicians, feasible_windows, visit_penalty
from solver.model import Problem, Technician

#: Cost of driving into a visit the technician may not do: never worth it.
FORBIDDEN_ARC = 10**10
#: Beyond this many matrix entries over all profiles, PyVRP is not worth the memory.
MAX_MATRIX_ENTRIES = 60_000_000


@dataclass(frozen=True)
class _Client:
    visit: int  # index into problem.visits
    window: tuple[int, int]


@dataclass
class _Layout:
    """How the problem maps onto PyVRP: clients, depots, vehicle types, profiles."""

    clients: list[_Client]
    depot_places: list[int]  # problem location per PyVRP depot
    type_techs: list[list[int]]  # technician indices per vehicle type
    tech_profile: list[int]
    profile_keys: list[tuple[frozenset[int], float]]


def can_express(problem: Problem) -> bool:
    """Whether PyVRP gets something to do and fits in memory for this problem."""
    layout = _layout(problem)
    size = len(layout.clients) + len(layout.depot_places)
    return bool(layout.clients) and len(layout.profile_keys) * size * size <= MAX_MATRIX_ENTRIES


def is_exact(problem: Problem) -> bool:
    """Whether PyVRP sees the whole problem (no breaks, due times, locks, waiting or balance
    weights), so that OR-Tools only has to confirm its plan."""
    w = problem.weights
    return (not w.waiting and not w.balance
            and not any(t.breaks for t in problem.technicians)
            and not any(v.due is not None or v.locked for v in problem.visits))


class _Interruptible:
    """A PyVRP stopping criterion that also stops when ``interrupt(iteration)`` says so."""

    def __init__(self, inner: StoppingCriterion, interrupt: Callable[[int], bool]) -> None:
        self.inner = inner
        self.interrupt = interrupt
        self.iteration = 0

    def __call__(self, best_cost: float) -> bool:
        self.iteration += 1
        # Both are asked each time: the inner criterion may count iterations.
        done = self.inner(best_cost)
        return self.interrupt(self.iteration) or done


def pyvrp_routes(problem: Problem, seed: int, time_limit: float | None,
                 iterations: int | None,
                 interrupt: Callable[[int], bool] | None = None) -> dict[str, list[str]] | None:
    """PyVRP's best routes (technician id -> visit ids), or None when it has nothing to do.

    Stops after ``iterations`` when given (deterministic for a seed), else after ``time_limit``
    seconds, or as soon as ``interrupt`` (called with the iteration number) returns true.
    """
    if not can_express(problem):
        return None
    layout = _layout(problem)
    data = _problem_data(problem, layout)
    stop: StoppingCriterion
    if iterations is not None and time_limit is not None:
        stop = MultipleCriteria([MaxIterations(iterations), MaxRuntime(time_limit)])
    elif iterations is not None:
        stop = MaxIterations(iterations)
    else:
        stop = MaxRuntime(max(0.01, time_limit or 0.01))
    if interrupt is not None:
        stop = _Interruptible(stop, interrupt)
    result = pyvrp.solve(data, stop, seed=seed, collect_stats=False, display=False)
    return _routes_of(problem, layout, result.best)


def _layout(problem: Problem) -> _Layout:
    cached = problem.__dict__.get("_pyvrp_layout")
    if cached is not None:
        return cached
    allowed = [set(allowed_technicians(problem, v)) for v in problem.visits]
    clients = [
        _Client(i, (w.start, w.end))
        for i, v in enumerate(problem.visits) if allowed[i]
        for w in feasible_windows(problem, v)
    ]
    depot_places = sorted({t.start_location for t in problem.technicians}
                          | {t.end_location for t in problem.technicians})
    profile_keys: list[tuple[frozenset[int], float]] = []
    tech_profile = []
    for k, tech in enumerate(problem.technicians):
        key = (frozenset(i for i in range(len(problem.visits)) if k in allowed[i]),
               tech.duration_factor)
        if key not in profile_keys:
            profile_keys.append(key)
        tech_profile.append(profile_keys.index(key))
    types: dict[tuple, list[int]] = {}
    for k, tech in enumerate(problem.technicians):
        types.setdefault(_type_key(tech, tech_profile[k]), []).append(k)
    layout = _Layout(clients, depot_places, list(types.values()), tech_profile, profile_keys)
    object.__setattr__(problem, "_pyvrp_layout", layout)
    return layout


def _type_key(tech: Technician, profile: int) -> tuple:
    return (tech.start_location, tech.end_location, tech.shift_start, tech.shift_end,
            tech.max_overtime, tech.overtime_cost, sum(b.duration for b in tech.breaks),
            tech.max_visits, tech.fixed_cost, tech.capacity, profile)


def _base_service(problem: Problem, visit_index: int) -> int:
    visit = problem.visits[visit_index]
    return min(t.service_time(visit) for t in problem.technicians)


def _problem_data(problem: Problem, layout: _Layout) -> pyvrp.ProblemData:
    places = np.array(layout.depot_places + [problem.visits[c.visit].location
                                             for c in layout.clients], dtype=np.int64)
    uses_load = any(v.load for v in problem.visits)
    uses_count = any(t.max_visits is not None for t in problem.technicians)
    depots = [pyvrp.Depot(location=d) for d in range(len(layout.depot_places))]
    locations = [pyvrp.Location(0.0, 0.0) for _ in places]
    groups, clients = _clients(problem, layout, uses_load, uses_count)
    vehicle_types = [
        _vehicle_type(problem, layout, techs, uses_load, uses_count)
        for techs in layout.type_techs
    ]
    distances, durations = _profile_matrices(problem, layout, places)
    return pyvrp.ProblemData(locations, clients, depots, vehicle_types, distances, durations,
                             groups)


def _clients(problem: Problem, layout: _Layout, uses_load: bool,
             uses_count: bool) -> tuple[list[pyvrp.ClientGroup], list[pyvrp.Client]]:
    per_visit: dict[int, list[int]] = {}
    for c, client in enumerate(layout.clients):
        per_visit.setdefault(client.visit, []).append(c)
    group_of: dict[int, int] = {}
    groups = []
    for i, members in per_visit.items():
        if len(members) > 1:
            visit = problem.visits[i]
            group_of[i] = len(groups)
            groups.append(pyvrp.ClientGroup(members, required=visit.required or visit.locked))
    clients = []
    first = len(layout.depot_places)
    for c, client in enumerate(layout.clients):
        visit = problem.visits[client.visit]
        demand = ([visit.load] if uses_load else []) + ([1] if uses_count else [])
        grouped = client.visit in group_of
        clients.append(pyvrp.Client(
            location=first + c,
            delivery=demand,
            service_duration=_base_service(problem, client.visit),
            tw_early=client.window[0],
            tw_late=client.window[1],
            prize=visit_penalty(problem, visit),
            required=(visit.required or visit.locked) and not grouped,
            group=group_of.get(client.visit),
            name=visit.id,
        ))
    return groups, clients


def _vehicle_type(problem: Problem, layout: _Layout, techs: Sequence[int], uses_load: bool,
                  uses_count: bool) -> pyvrp.VehicleType:
    tech = problem.technicians[techs[0]]
    pause = sum(b.duration for b in tech.breaks)
    capacity = []
    if uses_load:
        capacity.append(tech.capacity if tech.capacity is not None
                        else sum(v.load for v in problem.visits))
    if uses_count:
        capacity.append(tech.max_visits if tech.max_visits is not None else len(problem.visits))
    return pyvrp.VehicleType(
        num_available=len(techs),
        capacity=capacity,
        start_depot=layout.depot_places.index(tech.start_location),
        end_depot=layout.depot_places.index(tech.end_location),
        fixed_cost=tech.fixed_cost,
        tw_early=tech.shift_start,
        tw_late=max(tech.shift_start, tech.latest_end - pause),
        shift_duration=max(0, tech.shift_end - tech.shift_start - pause),
        max_overtime=tech.max_overtime,
        unit_overtime_cost=tech.overtime_cost,
        unit_distance_cost=1,
        unit_duration_cost=0,
        profile=layout.tech_profile[techs[0]],
        name=tech.id,
    )


def _profile_matrices(problem: Problem, layout: _Layout,
                      places: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per profile: arc costs (our objective's travel terms) and travel times."""
    w = problem.weights
    sub = np.ix_(places, places)
    cost = w.travel_time * problem.durations[sub] + w.distance * problem.distances[sub]
    travel = problem.durations[sub]
    first = len(layout.depot_places)
    client_visits = np.array([c.visit for c in layout.clients], dtype=np.int64)
    base = np.array([_base_service(problem, c.visit) for c in layout.clients], dtype=np.int64)
    distances, durations = [], []
    for doable, factor in layout.profile_keys:
        tech = next(t for k, t in enumerate(problem.technicians)
                    if layout.profile_keys[layout.tech_profile[k]] == (doable, factor))
        dist = cost.copy()
        forbidden = np.array([i not in doable for i in client_visits], dtype=bool)
        dist[:, first:][:, forbidden] = FORBIDDEN_ARC
        np.fill_diagonal(dist, 0)
        dur = travel.copy()
        extra = np.array([tech.service_time(problem.visits[i]) for i in client_visits],
                         dtype=np.int64) - base
        dur[first:, :] += extra[:, None]  # the slower technician's extra service time
        np.fill_diagonal(dur, 0)
        distances.append(np.ascontiguousarray(dist, dtype=np.int64))
        durations.append(np.ascontiguousarray(dur, dtype=np.int64))
    return distances, durations


def _routes_of(problem: Problem, layout: _Layout,
               solution: pyvrp.Solution) -> dict[str, list[str]]:
    free = [list(techs) for techs in layout.type_techs]
    routes: dict[str, list[str]] = {}
    for route in solution.routes():
        techs = free[route.vehicle_type()]
        if not techs:
            continue
        tech = problem.technicians[techs.pop(0)]
        routes[tech.id] = [problem.visits[layout.clients[a.idx].visit].id
                           for a in route if a.is_client()]
    return routes
