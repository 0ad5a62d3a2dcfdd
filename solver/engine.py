"""The OR-Tools routing model: the one module of the project that imports OR-Tools.

A :class:`~solver.model.Problem` becomes one ``RoutingModel``. Nodes are the visits (node ``i`` is
visit ``i``), then one start node per technician, then one end node per technician. Every
constraint of the problem lives here, so every plan (cold, warm-started or polished after PyVRP)
is checked by the same model. The objective is the same one :func:`objective_terms` recomputes
from finished routes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from solver.model import Problem, Technician, TimeWindow, Visit
from solver.result import BreakPlacement, Kpis, Route, Stop
from solver.schedule import schedule_route

#: OR-Tools names of the first-solution strategies that SolveParams accepts.
_FIRST_SOLUTIONS = {
    "auto": routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC,
    "path_cheapest_arc": routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC,
    "local_cheapest_insertion": routing_enums_pb2.FirstSolutionStrategy.LOCAL_CHEAPEST_INSERTION,
    "parallel_cheapest_insertion":
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION,
    "savings": routing_enums_pb2.FirstSolutionStrategy.SAVINGS,
    "christofides": routing_enums_pb2.FirstSolutionStrategy.CHRISTOFIDES,
}
_METAHEURISTICS = {
    "guided_local_search": routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH,
    "tabu_search": routing_enums_pb2.LocalSearchMetaheuristic.TABU_SEARCH,
    "simulated_annealing": routing_enums_pb2.LocalSearchMetaheuristic.SIMULATED_ANNEALING,
    "greedy_descent": routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT,
}
_STATUS_NAMES = {
    0: "not_solved", 1: "success", 2: "partial_success_local_optimum_not_reached", 3: "fail",
    4: "fail_timeout", 5: "invalid", 6: "infeasible", 7: "optimal",
}
#: An SLA due inside the day makes leaving the visit out this much dearer (urgency).
URGENCY_FACTOR = 2
TIME = "time"
#: Deterministic searches (solution limit, no time limit) also stop after this many failed moves
#: per allowed solution: guided local search on a tiny problem may never find that many solutions.
FAILURES_PER_SOLUTION = 1000
#: However late it is, a search gets this long: a plan a little late beats no plan.
MIN_SEARCH_SECONDS = 0.2
#: How many of the cheapest positions the insertion tries for a missing visit. Windows rule
#: out many cheap positions: on the qingdao day 12 left 57 of 250 visits out of the quick first
#: plan, 40 or more 28 (at 0.1-0.15 s per outlet-day either way; a failing position fails fast).
INSERTION_CANDIDATES = 200
#: Reading a warm start (OR-Tools' restore: it completes the routes' times, breaks and costs by a
#: small tree search) normally fails ~100 times; a route with a break and two visits already
#: past their SLA sent it into an endless enumeration (issue: warm start hangs). Past this many
#: failures, or this share of the time limit, the warm start counts as unreadable.
WARM_READ_FAILURES = 20_000
WARM_READ_SHARE = 0.3


@dataclass(frozen=True)
class SearchConfig:
    """One OR-Tools search: how to start, how to improve, when to stop."""

    first_solution: str = "auto"
    metaheuristic: str = "guided_local_search"
    gls_lambda: float = 1.0
    time_limit: float | None = 10.0
    solution_limit: int | None = None
    log_search: bool = False


@dataclass(frozen=True)
class SearchHooks:
    """What a running search consults: ``should_stop`` (when it turns true, the search ends
    soon with the best plan so far) and ``on_solution`` (told the objective of each plan the
    search accepts)."""

    should_stop: Callable[[], bool] | None = None
    on_solution: Callable[[int], None] | None = None


@dataclass(frozen=True)
class EngineOutcome:
    """What one OR-Tools search produced: finished routes and the visits it left out."""

    routes: tuple[Route, ...]
    unassigned: tuple[str, ...]
    status: str
    warm_start_used: bool
    objective: Mapping[str, int] = field(default_factory=dict)
    #: OR-Tools could not read the warm start within its budget (see WARM_READ_FAILURES).
    warm_start_timed_out: bool = False


class ReadGuard:
    """A search limit for OR-Tools' reading of a warm start: while armed, it ends any search
    after a number of failures or at a wall-clock moment, and remembers that it did."""

    def __init__(self, solver: pywrapcp.Solver) -> None:
        self.solver = solver
        self.max_failures: int | None = None
        self.until: float | None = None
        self.fired = False

    def arm(self, max_failures: int, seconds: float | None) -> None:
        """Limit what follows to ``max_failures`` more failures and ``seconds`` of wall time."""
        self.max_failures = self.solver.Failures() + max_failures
        self.until = None if seconds is None else time.perf_counter() + seconds
        self.fired = False

    def disarm(self) -> None:
        """Stop limiting (the search's own limits apply again)."""
        self.max_failures = self.until = None

    def __call__(self) -> bool:
        if self.max_failures is None:
            return False
        if (self.solver.Failures() > self.max_failures
                or (self.until is not None and time.perf_counter() > self.until)):
            self.fired = True
        return self.fired


def day_end(problem: Problem) -> int:
    """The last second any technician may work: the horizon of the time dimension."""
    return max((t.latest_end for t in problem.technicians), default=0)


def visit_penalty(problem: Problem, visit: Visit) -> int:
    """What leaving the visit out costs: its priority penalty, raised when its SLA falls due
    within the planned day."""
    penalty = visit.unassigned_penalty
    if visit.due is not None and visit.due <= day_end(problem):
        penalty *= URGENCY_FACTOR
    return penalty


def feasible_windows(problem: Problem, visit: Visit) -> tuple[TimeWindow, ...]:
    """The start windows the engine enforces: the visit's own, narrowed by its pinned start and
    clipped to the day. A locked visit keeps its pinned start even outside its windows (it is
    already happening)."""
    horizon = day_end(problem)
    candidates = visit.start_windows()
    if visit.locked and not candidates and visit.pinned_start is not None:
        candidates = (visit.pinned_start,)
    clipped = []
    for w in candidates:
        lo, hi = max(0, w.start), min(horizon, w.end)
        if lo <= hi:
            clipped.append(TimeWindow(lo, hi))
    return tuple(sorted(clipped, key=lambda w: w.start))


def allowed_technicians(problem: Problem, visit: Visit) -> list[int]:
    """Indices of the technicians the engine lets do the visit (skills, pin, windows exist)."""
    if not feasible_windows(problem, visit):
        return []
    if visit.locked:
        return [problem.technician_index(visit.pinned_technician)]  # type: ignore[arg-type]
    return problem.capable_technicians(visit)


class RoutingEngine:
    """Builds the OR-Tools model of a problem once and runs searches on it."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.n = len(problem.visits)
        self.m = len(problem.technicians)
        starts = [self.n + k for k in range(self.m)]
        ends = [self.n + self.m + k for k in range(self.m)]
        self.manager = pywrapcp.RoutingIndexManager(self.n + 2 * self.m, self.m, starts, ends)
        self.routing = pywrapcp.RoutingModel(self.manager)
        self.locations = np.array(
            [v.location for v in problem.visits]
            + [t.start_location for t in problem.technicians]
            + [t.end_location for t in problem.technicians],
            dtype=np.int64,
        )
        self.break_intervals: dict[int, list[pywrapcp.IntervalVar]] = {}
        #: The repaired warm start OR-Tools accepted (node numbers per technician), if any.
        self.warm_routes: list[list[int]] | None = None
        #: The repaired warm start OR-Tools could not read within its budget, if so.
        self.unreadable_routes: list[list[int]] | None = None
        self.read_seconds: float | None = None
        self._build()
        self.read_guard = ReadGuard(self.routing.solver())
        # Installed once, before the model closes: it limits nothing until armed.
        self.routing.AddSearchMonitor(self.routing.solver().CustomLimit(self.read_guard))

    # ----------------------------------------------------------------------- model building
    def _build(self) -> None:
        self._add_arc_costs()
        self.time = self._add_time_dimension()
        self._add_visit_constraints()
        self._add_shifts()
        self._add_breaks()
        self._add_capacity()
        self._add_max_visits()
        self._add_locks()

    def _sub_matrix(self, matrix: np.ndarray) -> np.ndarray:
        return matrix[np.ix_(self.locations, self.locations)]

    def _add_arc_costs(self) -> None:
        w = self.problem.weights
        cost = (w.travel_time * self._sub_matrix(self.problem.durations)
                + w.distance * self._sub_matrix(self.problem.distances))
        evaluator = self.routing.RegisterTransitMatrix(cost.tolist())
        self.routing.SetArcCostEvaluatorOfAllVehicles(evaluator)
        for k, tech in enumerate(self.problem.technicians):
            if tech.fixed_cost:
                self.routing.SetFixedCostOfVehicle(tech.fixed_cost, k)

    def service_vector(self, tech: Technician) -> list[int]:
        """Per node, the technician's service time there (0 at start and end nodes)."""
        return [tech.service_time(v) for v in self.problem.visits] + [0] * (2 * self.m)

    def _add_time_dimension(self) -> pywrapcp.RoutingDimension:
        travel = self._sub_matrix(self.problem.durations)
        evaluators: dict[float, int] = {}
        per_vehicle = []
        for tech in self.problem.technicians:
            if tech.duration_factor not in evaluators:
                service = np.array(self.service_vector(tech), dtype=np.int64)
                matrix = travel + service[:, None]
                evaluators[tech.duration_factor] = self.routing.RegisterTransitMatrix(
                    matrix.tolist())
            per_vehicle.append(evaluators[tech.duration_factor])
        horizon = day_end(self.problem)
        self.routing.AddDimensionWithVehicleTransits(per_vehicle, horizon, horizon, False, TIME)
        dim = self.routing.GetDimensionOrDie(TIME)
        w = self.problem.weights
        if w.balance:
            dim.SetGlobalSpanCostCoefficient(w.balance)
        if w.waiting:
            dim.SetSlackCostCoefficientForAllVehicles(w.waiting)
        return dim

    def _add_visit_constraints(self) -> None:
        routing = self.routing
        for i, visit in enumerate(self.problem.visits):
            index = self.manager.NodeToIndex(i)
            allowed = allowed_technicians(self.problem, visit)
            if not allowed:
                if visit.required:
                    raise ValueError(
                        f"Visit {visit.id!r}: field 'required' is set but no technician can "
                        "do it (skills, pin or windows).")
                routing.AddDisjunction([index], 0)
                routing.ActiveVar(index).SetValue(0)
                continue
            if len(allowed) < self.m:
                routing.VehicleVar(index).SetValues(([] if visit.required or visit.locked
                                                     else [-1]) + allowed)
            cumul = self.time.CumulVar(index)
            wins = feasible_windows(self.problem, visit)
            cumul.SetRange(wins[0].start, wins[-1].end)
            for a, b in zip(wins, wins[1:]):
                cumul.RemoveInterval(a.end + 1, b.start - 1)
            if visit.due is not None and visit.lateness_cost:
                self.time.SetCumulVarSoftUpperBound(index, visit.due, visit.lateness_cost)
            if not (visit.required or visit.locked):
                routing.AddDisjunction([index], visit_penalty(self.problem, visit))

    def _add_shifts(self) -> None:
        for k, tech in enumerate(self.problem.technicians):
            start = self.time.CumulVar(self.routing.Start(k))
            end = self.time.CumulVar(self.routing.End(k))
            start.SetRange(tech.shift_start, tech.latest_end)
            end.SetRange(tech.shift_start, tech.latest_end)
            if tech.max_overtime and tech.overtime_cost:
                self.time.SetCumulVarSoftUpperBound(self.routing.End(k), tech.shift_end,
                                                    tech.overtime_cost)
            # Both ends of the day are worth keeping tight: leave late, come back early.
            self.routing.AddVariableMaximizedByFinalizer(start)
            self.routing.AddVariableMinimizedByFinalizer(end)

    def _add_breaks(self) -> None:
        solver = self.routing.solver()
        for k, tech in enumerate(self.problem.technicians):
            if not tech.breaks:
                continue
            intervals = [
                solver.FixedDurationIntervalVar(b.earliest, b.latest, b.duration, False,
                                                f"break {k} {j}")
                for j, b in enumerate(tech.breaks)
            ]
            self.time.SetBreakIntervalsOfVehicle(intervals, k, self.service_vector(tech))
            self.break_intervals[k] = intervals

    def _add_capacity(self) -> None:
        loads = [v.load for v in self.problem.visits]
        if not any(loads):
            return
        vector = self.routing.RegisterUnaryTransitVector(loads + [0] * (2 * self.m))
        caps = [t.capacity if t.capacity is not None else sum(loads)
                for t in self.problem.technicians]
        self.routing.AddDimensionWithVehicleCapacity(vector, 0, caps, True, "load")

    def _add_max_visits(self) -> None:
        if all(t.max_visits is None for t in self.problem.technicians):
            return
        vector = self.routing.RegisterUnaryTransitVector([1] * self.n + [0] * (2 * self.m))
        caps = [t.max_visits if t.max_visits is not None else self.n
                for t in self.problem.technicians]
        self.routing.AddDimensionWithVehicleCapacity(vector, 0, caps, True, "count")

    def locked_heads(self) -> dict[int, list[int]]:
        """Per technician, the locked visits (node numbers) in pinned-start order."""
        heads: dict[int, list[int]] = {}
        for i, visit in enumerate(self.problem.visits):
            if visit.locked and allowed_technicians(self.problem, visit):
                k = self.problem.technician_index(visit.pinned_technician)  # type: ignore[arg-type]
                heads.setdefault(k, []).append(i)
        visits = self.problem.visits
        for nodes in heads.values():
            nodes.sort(key=lambda i: (_pinned_from(visits[i]), visits[i].id))
        return heads

    def _add_locks(self) -> None:
        for k, nodes in self.locked_heads().items():
            chain = [self.routing.Start(k)] + [self.manager.NodeToIndex(i) for i in nodes]
            for a, b in zip(chain, chain[1:]):
                self.routing.NextVar(a).SetValue(b)

    # ----------------------------------------------------------------------------- solving
    def search_parameters(self, config: SearchConfig) -> pywrapcp.DefaultRoutingSearchParameters:
        """OR-Tools search parameters for one configuration."""
        params = pywrapcp.DefaultRoutingSearchParameters()
        params.first_solution_strategy = _FIRST_SOLUTIONS[config.first_solution]
        params.local_search_metaheuristic = _METAHEURISTICS[config.metaheuristic]
        params.guided_local_search_lambda_coefficient = config.gls_lambda
        if config.time_limit is not None:
            params.time_limit.FromMilliseconds(max(1, int(config.time_limit * 1000)))
        if config.solution_limit is not None:
            params.solution_limit = config.solution_limit
        params.log_search = config.log_search
        return params

    def warm_assignment(self, routes: Mapping[str, Sequence[str]],
                        fill: bool = True) -> pywrapcp.Assignment | None:
        """The assignment of the given routes (technician id -> visit ids), repaired: unknown or
        forbidden visits dropped, locked visits put first, visits that make a route infeasible
        left out, and (``fill``) missing visits inserted where they fit; None when OR-Tools
        still rejects it, or cannot read it within its budget (``unreadable_routes`` then holds
        the repaired routes)."""
        node_routes = self.repaired_routes(routes, fill)
        assignment = self._read_routes(node_routes)
        if assignment is not None:
            self.warm_routes = node_routes
        elif self.unreadable_routes is None:
            assignment = self._accepted_routes_only(node_routes)
        return assignment

    def _read_routes(self, node_routes: list[list[int]]) -> pywrapcp.Assignment | None:
        """OR-Tools' reading of the routes, bounded by the read guard; None when rejected or
        out of budget (then ``unreadable_routes`` is set and nothing more is tried)."""
        if self.unreadable_routes is not None:
            return None
        self.read_guard.arm(WARM_READ_FAILURES, self.read_seconds)
        try:
            assignment = self.routing.ReadAssignmentFromRoutes(node_routes, True)
        finally:
            self.read_guard.disarm()
        if self.read_guard.fired:
            # A plan read past its budget may be a half-finished one: never trust it.
            self.unreadable_routes = node_routes
            return None
        return assignment

    def repaired_routes(self, routes: Mapping[str, Sequence[str]],
                        fill: bool = True) -> list[list[int]]:
        """The given routes as node lists, repaired by the forward scheduler: unknown or
        forbidden visits dropped, locked visits first, infeasible tails cut, and (``fill``)
        missing visits inserted where they fit."""
        node_routes = [self._feasible_part(k, nodes)
                       for k, nodes in enumerate(self._clean_routes(routes))]
        if fill:
            self._insert_missing(node_routes)
        return node_routes

    def constructed_outcome(self, routes: Mapping[str, Sequence[str]] | None = None
                            ) -> EngineOutcome | None:
        """A quick plan without any search: the given routes (or none) repaired and filled by
        cheapest feasible insertion, timed by the forward scheduler; None when it leaves out a
        required or locked visit or a route breaks a rule (only a search can help then)."""
        node_routes = self.repaired_routes(routes or {})
        return self.feasible_scheduled_outcome(node_routes, "constructed")

    def _feasible_part(self, k: int, nodes: list[int]) -> list[int]:
        """The route, or when the forward scheduler finds it infeasible, the longest part of it
        kept visit by visit in order (locked visits always kept)."""
        tech, visits = self.problem.technicians[k], self.problem.visits
        if not nodes or schedule_route(self.problem, tech, [visits[i] for i in nodes]).feasible:
            return nodes
        kept = [i for i in nodes if visits[i].locked]
        for i in nodes:
            if visits[i].locked:
                continue
            trial = kept + [i]
            if schedule_route(self.problem, tech, [visits[j] for j in trial]).feasible:
                kept = trial
        return kept

    def _insert_missing(self, node_routes: list[list[int]]) -> None:
        """Insert visits missing from the routes where they add the least travel and the
        forward scheduler finds the route still feasible (dearest penalties first)."""
        problem, visits = self.problem, self.problem.visits
        done = {i for nodes in node_routes for i in nodes}
        missing = [i for i, v in enumerate(visits) if i not in done and not v.locked]
        # Dearest first; among equals, the earliest window first, so routes grow in time order.
        missing.sort(key=lambda i: (-visit_penalty(problem, visits[i]),
                                    _first_start(problem, visits[i])))
        for i in missing:
            for k, pos in self._cheapest_positions(node_routes, i)[:INSERTION_CANDIDATES]:
                trial = node_routes[k][:pos] + [i] + node_routes[k][pos:]
                tech = problem.technicians[k]
                if schedule_route(problem, tech, [visits[j] for j in trial]).feasible:
                    node_routes[k] = trial
                    break

    def _cheapest_positions(self, node_routes: list[list[int]],
                            i: int) -> list[tuple[int, int]]:
        """(technician, position) pairs for visit ``i``, by the travel time they add."""
        problem, loc = self.problem, self.problem.visits[i].location
        dur = problem.durations
        options = []
        for k in allowed_technicians(problem, problem.visits[i]):
            tech = problem.technicians[k]
            places = ([tech.start_location]
                      + [problem.visits[j].location for j in node_routes[k]]
                      + [tech.end_location])
            heads = sum(1 for j in node_routes[k] if problem.visits[j].locked)
            for pos in range(heads, len(places) - 1):
                a, b = places[pos], places[pos + 1]
                options.append((int(dur[a, loc] + dur[loc, b] - dur[a, b]), k, pos))
        options.sort()
        return [(k, pos) for _, k, pos in options]

    def _accepted_routes_only(self, node_routes: list[list[int]]) -> pywrapcp.Assignment | None:
        """Keep only the routes OR-Tools accepts one by one (the scheduler and the model may
        disagree at the margins); the other routes keep just their locked visits."""
        heads = self.locked_heads()
        kept = [list(heads.get(k, [])) for k in range(self.m)]
        for k, nodes in enumerate(node_routes):
            alone = [list(heads.get(j, [])) for j in range(self.m)]
            alone[k] = nodes
            if self._read_routes(alone) is not None:
                kept[k] = nodes
        assignment = self._read_routes(kept)
        if assignment is not None:
            self.warm_routes = kept
        return assignment

    def _clean_routes(self, routes: Mapping[str, Sequence[str]]) -> list[list[int]]:
        problem, heads = self.problem, self.locked_heads()
        seen: set[int] = set()
        result: list[list[int]] = []
        for k, tech in enumerate(problem.technicians):
            nodes = list(heads.get(k, []))
            seen.update(nodes)
            for visit_id in routes.get(tech.id, ()):
                try:
                    i = problem.visit_index(visit_id)
                except KeyError:
                    continue
                if i in seen or k not in allowed_technicians(problem, problem.visits[i]):
                    continue
                seen.add(i)
                nodes.append(i)
            result.append(nodes)
        return result

    def solve(self, config: SearchConfig,
              initial_routes: Mapping[str, Sequence[str]] | None = None,
              hooks: SearchHooks = SearchHooks()) -> EngineOutcome | None:
        """Run one search, from the given routes when possible; None when nothing was found.

        The time limit covers the repair of the warm start too."""
        began = time.perf_counter()
        if config.time_limit is None and config.solution_limit is not None:
            self.routing.AddSearchMonitor(self.routing.solver().FailuresLimit(
                FAILURES_PER_SOLUTION * config.solution_limit + 10_000))
        if config.time_limit is not None:
            self.read_seconds = WARM_READ_SHARE * config.time_limit
        start = self.warm_assignment(initial_routes) if initial_routes is not None else None
        # After the warm read: with an at-solution callback installed, OR-Tools 9.15 ignored the
        # read guard's limit during the read (measured on the hanging re-optimization case).
        self._add_hooks(hooks)
        params = self.search_parameters(_less_time(config, time.perf_counter() - began))
        solution = None
        if start is not None:
            solution = self.routing.SolveFromAssignmentWithParameters(start, params)
        if solution is None and self.warm_routes is not None:
            # Out of time while completing the warm start: it is still a valid plan.
            return self.scheduled_outcome(self.warm_routes)
        warm = solution is not None
        if solution is None:
            params = self.search_parameters(_less_time(config, time.perf_counter() - began))
            solution = self.routing.SolveWithParameters(params)
        searched = None if solution is None else self.outcome(solution, warm)
        if self.unreadable_routes is None:
            return searched
        # OR-Tools could not read the warm start: its repaired routes, timed by the forward
        # scheduler, still make a valid plan; the searched plan replaces it only when better.
        fallback = self.feasible_scheduled_outcome(self.unreadable_routes,
                                                   "warm_start_unreadable")
        better = min((o for o in (searched, fallback) if o is not None),
                     key=lambda o: o.objective["total"], default=None)
        return None if better is None else replace(better, warm_start_timed_out=True)

    def _add_hooks(self, hooks: SearchHooks) -> None:
        if hooks.should_stop is not None:
            # OR-Tools holds the GIL while searching, so no other thread could cancel it: the
            # limit asks instead (thousands of times a second, cheap next to the search).
            self.routing.AddSearchMonitor(self.routing.solver().CustomLimit(hooks.should_stop))
        if hooks.on_solution is not None:
            tell, cost = hooks.on_solution, self.routing.CostVar()
            self.routing.AddAtSolutionCallback(lambda: tell(int(cost.Value())))

    def scheduled_outcome(self, node_routes: list[list[int]],
                          status: str = "warm_start_only") -> EngineOutcome:
        """Routes timed by the forward scheduler instead of OR-Tools (for a warm start that
        OR-Tools accepted but had no time to complete)."""
        routes = []
        visits = self.problem.visits
        for k, nodes in enumerate(node_routes):
            if nodes:
                tech = self.problem.technicians[k]
                routes.append(schedule_route(self.problem, tech,
                                             [visits[i] for i in nodes]).to_route())
        done = {i for nodes in node_routes for i in nodes}
        unassigned = tuple(v.id for i, v in enumerate(visits) if i not in done)
        return EngineOutcome(tuple(routes), unassigned, status, status != "constructed",
                             objective_terms(self.problem, routes, unassigned))

    def feasible_scheduled_outcome(self, node_routes: list[list[int]],
                                   status: str) -> EngineOutcome | None:
        """Routes timed by the forward scheduler, or None when one of them breaks a rule or a
        required or locked visit is missing."""
        problem, visits = self.problem, self.problem.visits
        placed = {i for nodes in node_routes for i in nodes}
        if any((v.required or v.locked) and i not in placed for i, v in enumerate(visits)):
            return None
        for k, nodes in enumerate(node_routes):
            if nodes and not schedule_route(problem, problem.technicians[k],
                                            [visits[i] for i in nodes]).feasible:
                return None
        return self.scheduled_outcome(node_routes, status)

    def evaluate(self, routes: Mapping[str, Sequence[str]]) -> EngineOutcome | None:
        """The given routes scheduled by the model without any search (None if infeasible)."""
        start = self.warm_assignment(routes, fill=False)
        if start is None:
            if self.unreadable_routes is None:
                return None
            outcome = self.feasible_scheduled_outcome(self.unreadable_routes,
                                                      "warm_start_unreadable")
            return None if outcome is None else replace(outcome, warm_start_timed_out=True)
        # One solution: the given routes themselves, scheduled, without any improvement.
        params = self.search_parameters(SearchConfig(time_limit=None, solution_limit=1))
        solution = self.routing.SolveFromAssignmentWithParameters(start, params)
        if solution is None and self.warm_routes is not None:
            return self.scheduled_outcome(self.warm_routes)
        return None if solution is None else self.outcome(solution, True)

    # --------------------------------------------------------------------------- extraction
    def outcome(self, solution: pywrapcp.Assignment, warm: bool) -> EngineOutcome:
        """Turn an OR-Tools solution into routes with timings."""
        routes = []
        visited: set[int] = set()
        breaks = self._break_starts(solution)
        for k in range(self.m):
            nodes = self._route_nodes(solution, k)
            visited.update(nodes)
            if nodes:
                routes.append(self._route(solution, k, nodes, breaks.get(k, [])))
        unassigned = tuple(v.id for i, v in enumerate(self.problem.visits) if i not in visited)
        status = _STATUS_NAMES.get(self.routing.status(), str(self.routing.status()))
        return EngineOutcome(tuple(routes), unassigned, status, warm,
                             objective_terms(self.problem, routes, unassigned))

    def _route_nodes(self, solution: pywrapcp.Assignment, k: int) -> list[int]:
        nodes = []
        index = solution.Value(self.routing.NextVar(self.routing.Start(k)))
        while not self.routing.IsEnd(index):
            nodes.append(self.manager.IndexToNode(index))
            index = solution.Value(self.routing.NextVar(index))
        return nodes

    def _break_starts(self, solution: pywrapcp.Assignment) -> dict[int, list[tuple[int, int]]]:
        found: dict[int, list[tuple[int, int]]] = {}
        container = solution.IntervalVarContainer()
        for j in range(container.Size()):
            element = container.Element(j)
            name = element.Var().Name()
            if not name.startswith("break ") or not element.PerformedValue():
                continue
            k = int(name.split()[1])
            found.setdefault(k, []).append((element.StartValue(), element.DurationValue()))
        for intervals in found.values():
            intervals.sort()
        return found

    def _route(self, solution: pywrapcp.Assignment, k: int, nodes: list[int],
               breaks: list[tuple[int, int]]) -> Route:
        starts = [solution.Min(self.time.CumulVar(self.manager.NodeToIndex(i))) for i in nodes]
        leave = solution.Min(self.time.CumulVar(self.routing.Start(k)))
        back = solution.Min(self.time.CumulVar(self.routing.End(k)))
        return build_route(self.problem, k, nodes, starts, leave, back, breaks)


def build_route(problem: Problem, k: int, nodes: Sequence[int], starts: Sequence[int],
                leave: int, back: int, breaks: Sequence[tuple[int, int]]) -> Route:
    """A route with per-stop timings from its visits' start times and the break starts."""
    tech = problem.technicians[k]
    if breaks:
        # OR-Tools may put a break before the departure or after the return; the technician's
        # day then spans it (a lunch before setting off still belongs to the working day).
        leave = min(leave, min(s for s, _ in breaks))
        back = max(back, max(s + d for s, d in breaks))
    stops, place, free_at = [], tech.start_location, leave
    placements = [BreakPlacement(s, d, _visits_before(s, starts)) for s, d in breaks]
    for i, start in zip(nodes, starts):
        visit = problem.visits[i]
        travel = int(problem.durations[place, visit.location])
        pause = _break_time_between(breaks, free_at, start)
        # A break that starts once the drive is over is taken at the customer's door.
        at_door = pause and all(s >= free_at + travel for s, d in breaks
                                if free_at <= s and s + d <= start)
        arrival = free_at + travel + (0 if at_door else pause)
        lateness = max(0, start - visit.due) if visit.due is not None else 0
        waiting = max(0, start - arrival - (pause if at_door else 0))
        stops.append(Stop(visit.id, arrival, start, start + tech.service_time(visit), waiting,
                          travel, int(problem.distances[place, visit.location]), lateness))
        place, free_at = visit.location, start + tech.service_time(visit)
    back_travel = int(problem.durations[place, tech.end_location])
    back_distance = int(problem.distances[place, tech.end_location])
    travel = sum(s.travel_time for s in stops) + back_travel
    distance = sum(s.travel_distance for s in stops) + back_distance
    return Route(tech.id, tuple(stops), leave, back, travel, distance,
                 max(0, back - tech.shift_end), tuple(placements), back_travel, back_distance)


def _visits_before(break_start: int, starts: Sequence[int]) -> int:
    return sum(1 for s in starts if s < break_start)


def _break_time_between(breaks: Sequence[tuple[int, int]], lo: int, hi: int) -> int:
    """Break time taken after ``lo`` and before ``hi`` (a break delays the departure)."""
    return sum(d for s, d in breaks if lo <= s and s + d <= hi)


def objective_terms(problem: Problem, routes: Sequence[Route],
                    unassigned: Sequence[str]) -> dict[str, int]:
    """The plan's objective, term by term, recomputed from its routes (plus ``total``)."""
    w = problem.weights
    by_id = {t.id: t for t in problem.technicians}
    waiting = sum(s.waiting for r in routes for s in r.stops)
    lateness = 0
    for r in routes:
        for s in r.stops:
            lateness += s.lateness * problem.visits[problem.visit_index(s.visit)].lateness_cost
    terms = {
        "travel": w.travel_time * sum(r.travel_time for r in routes),
        "distance": w.distance * sum(r.distance for r in routes),
        "unassigned_penalty": sum(visit_penalty(problem, problem.visits[problem.visit_index(v)])
                                  for v in unassigned),
        "overtime": sum(r.overtime * by_id[r.technician].overtime_cost for r in routes),
        "lateness": lateness,
        "fixed": sum(by_id[r.technician].fixed_cost for r in routes),
        "balance": w.balance * _overall_span(routes),
        "waiting": w.waiting * waiting,
    }
    terms["total"] = sum(terms.values())
    return terms


def _overall_span(routes: Sequence[Route]) -> int:
    """From the earliest departure to the latest return over all routes."""
    if not routes:
        return 0
    return max(r.end_time for r in routes) - min(r.start_time for r in routes)


def _first_start(problem: Problem, visit: Visit) -> int:
    """The earliest start the visit's windows allow (0 without any)."""
    windows = feasible_windows(problem, visit)
    return windows[0].start if windows else 0


def _pinned_from(visit: Visit) -> int:
    return visit.pinned_start.start if visit.pinned_start is not None else 0


def kpis_of(problem: Problem, routes: Sequence[Route], unassigned: Sequence[str]) -> Kpis:
    """The plan's key figures."""
    stops = [s for r in routes for s in r.stops]
    return Kpis(
        travel_time=sum(r.travel_time for r in routes),
        distance=sum(r.distance for r in routes),
        visits_planned=len(stops),
        visits_unassigned=len(unassigned),
        service_time=sum(s.end - s.start for s in stops),
        waiting=sum(s.waiting for s in stops),
        overtime=sum(r.overtime for r in routes),
        lateness=sum(s.lateness for s in stops),
        technicians_used=len(routes),
    )


def _less_time(config: SearchConfig, spent: float) -> SearchConfig:
    """The configuration with ``spent`` seconds taken off its time limit (never below a
    minimum that still lets a first solution be found)."""
    if config.time_limit is None:
        return config
    return replace(config, time_limit=max(MIN_SEARCH_SECONDS, config.time_limit - spent))


def run_search(problem: Problem, config: SearchConfig,
               initial_routes: Mapping[str, Sequence[str]] | None = None,
               hooks: SearchHooks = SearchHooks()) -> EngineOutcome | None:
    """Build the model and run one search on it; building counts against the time limit."""
    began = time.perf_counter()
    engine = RoutingEngine(problem)
    return engine.solve(_less_time(config, time.perf_counter() - began), initial_routes, hooks)
