"""The solvers the benchmark compares, each as ``(instance, time_limit, seed, threads) -> routes``.

Every peer gets the same integer data as ours (scale 1000: travel times rounded up, distances
rounded to nearest, see :mod:`solver.solomon`), so a plan feasible in its integers is feasible
exactly; the shared evaluator re-scores every answer anyway. A peer that finds no complete plan
raises :class:`PeerFailure`. The peer set-ups are written here against each package's public API.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

import numpy as np

from benchmarks.evaluate import evaluate
from solver.solomon import SCALE, SolomonInstance

Routes = list[list[int]]
Peer = Callable[[SolomonInstance, float, int, int], Routes]


class PeerFailure(RuntimeError):
    """A solver returned no complete plan (no solution, or customers left out)."""


def scaled_matrices(instance: SolomonInstance) -> tuple[np.ndarray, np.ndarray]:
    """Integer (travel time, distance) matrices: ceil and round of the exact distance x SCALE."""
    exact = instance.distance_matrix() * SCALE
    return np.ceil(exact).astype(np.int64), np.rint(exact).astype(np.int64)


def _scaled(value: float, up: bool = True) -> int:
    return math.ceil(value * SCALE) if up else math.floor(value * SCALE)


# --- ours ------------------------------------------------------------------------------------


def solve_ours(instance: SolomonInstance, time_limit: float, seed: int, threads: int) -> Routes:
    """Our solver: ``solver.solve`` on the instance's Problem with ``workers = threads``."""
    from solver import SolveParams  # solve itself is imported lazily: it lands separately
    from solver.solomon import solomon_problem, solomon_routes
    from solver.solve import solve

    params = SolveParams(time_limit=time_limit, workers=threads, seed=seed)
    result = solve(solomon_problem(instance), params)
    if result.unassigned:
        raise PeerFailure(f"{len(result.unassigned)} customers left unassigned.")
    return solomon_routes(result, instance)


# --- OR-Tools as its documentation's VRPTW example sets it up ---------------------------------


def solve_ortools_doc(
    instance: SolomonInstance, time_limit: float, seed: int, threads: int
) -> Routes:
    """OR-Tools the documented way: Python transit callbacks, a time dimension with windows,
    a capacity dimension, PATH_CHEAPEST_ARC then guided local search, no disjunctions.
    Routing search is single-threaded and has no seed, so ``seed`` and ``threads`` are unused."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    durations, distances = scaled_matrices(instance)
    time_matrix, distance_matrix = durations.tolist(), distances.tolist()
    service = [_scaled(s) for s in instance.service]
    demand = list(instance.demand)
    n = instance.num_customers + 1
    manager = pywrapcp.RoutingIndexManager(n, instance.vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)

    def distance_callback(from_index: int, to_index: int) -> int:
        return distance_matrix[manager.IndexToNode(from_index)][manager.IndexToNode(to_index)]

    def time_callback(from_index: int, to_index: int) -> int:
        i, j = manager.IndexToNode(from_index), manager.IndexToNode(to_index)
        return service[i] + time_matrix[i][j]

    def demand_callback(from_index: int) -> int:
        return demand[manager.IndexToNode(from_index)]

    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(distance_callback))
    horizon = _scaled(instance.due[0], up=False)
    time_index = routing.RegisterTransitCallback(time_callback)
    routing.AddDimension(time_index, horizon, horizon, False, "Time")
    time_dimension = routing.GetDimensionOrDie("Time")
    for node in range(1, n):
        time_dimension.CumulVar(manager.NodeToIndex(node)).SetRange(
            _scaled(instance.ready[node]), _scaled(instance.due[node], up=False)
        )
    depot_open = _scaled(instance.ready[0])
    for vehicle in range(instance.vehicles):
        for index in (routing.Start(vehicle), routing.End(vehicle)):
            time_dimension.CumulVar(index).SetRange(depot_open, horizon)
            routing.AddVariableMinimizedByFinalizer(time_dimension.CumulVar(index))
    routing.AddDimensionWithVehicleCapacity(
        routing.RegisterUnaryTransitCallback(demand_callback),
        0, [instance.capacity] * instance.vehicles, True, "Capacity",
    )  # fmt: skip

    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    search.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    search.time_limit.FromMilliseconds(int(time_limit * 1000))
    solution = routing.SolveWithParameters(search)
    if solution is None:
        raise PeerFailure("OR-Tools found no solution.")
    routes = []
    for vehicle in range(instance.vehicles):
        index, route = solution.Value(routing.NextVar(routing.Start(vehicle))), []
        while not routing.IsEnd(index):
            route.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        if route:
            routes.append(route)
    return routes


# --- PyVRP ----------------------------------------------------------------------------------


def solve_pyvrp(instance: SolomonInstance, time_limit: float, seed: int, threads: int) -> Routes:
    """PyVRP 0.14 (``pyvrp.Model``, ``MaxRuntime``); with several threads, the best of that many
    seeds run in parallel processes."""
    if threads <= 1:
        return _pyvrp_once(instance, time_limit, seed)
    with ProcessPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(_pyvrp_once, instance, time_limit, seed + k) for k in range(threads)]
        answers = []
        for future in futures:
            try:
                answers.append(future.result())
            except PeerFailure:
                continue
    if not answers:
        raise PeerFailure(f"PyVRP found no feasible solution with any of {threads} seeds.")
    return min(answers, key=lambda routes: evaluate(instance, routes).distance)


def _pyvrp_once(instance: SolomonInstance, time_limit: float, seed: int) -> Routes:
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    durations, distances = scaled_matrices(instance)
    model = Model()
    locations = [model.add_location(x, y) for x, y in instance.coordinates]
    depot = model.add_depot(
        locations[0],
        tw_early=_scaled(instance.ready[0]),
        tw_late=_scaled(instance.due[0], up=False),
    )
    model.add_vehicle_type(
        num_available=instance.vehicles,
        capacity=instance.capacity,
        start_depot=depot,
        end_depot=depot,
        tw_early=_scaled(instance.ready[0]),
        tw_late=_scaled(instance.due[0], up=False),
    )
    for c in range(1, instance.num_customers + 1):
        model.add_client(
            locations[c],
            delivery=instance.demand[c],
            service_duration=_scaled(instance.service[c]),
            tw_early=_scaled(instance.ready[c]),
            tw_late=_scaled(instance.due[c], up=False),
        )
    for i, frm in enumerate(locations):
        for j, to in enumerate(locations):
            model.add_edge(frm, to, distance=int(distances[i, j]), duration=int(durations[i, j]))
    result = model.solve(stop=MaxRuntime(time_limit), seed=seed, display=False)
    if not result.is_feasible():
        raise PeerFailure("PyVRP found no feasible solution.")
    # Clients were added in customer order, so client index k is customer k + 1.
    return [
        [activity.idx + 1 for activity in route if activity.is_client()]
        for route in result.best.routes()
    ]


# --- VROOM ----------------------------------------------------------------------------------


def solve_vroom(instance: SolomonInstance, time_limit: float, seed: int, threads: int) -> Routes:
    """VROOM through pyvroom: exploration level 5, ``threads`` threads, the time limit as its
    timeout, costs = the integer distance matrix. VROOM has no seed; ``seed`` is unused."""
    import vroom

    durations, distances = scaled_matrices(instance)
    problem = vroom.Input()
    problem.set_durations_matrix("car", durations)
    problem.set_costs_matrix("car", distances)
    window = vroom.TimeWindow(_scaled(instance.ready[0]), _scaled(instance.due[0], up=False))
    for k in range(instance.vehicles):
        problem.add_vehicle(
            vroom.Vehicle(k + 1, start=0, end=0, capacity=[instance.capacity], time_window=window)
        )
    for c in range(1, instance.num_customers + 1):
        problem.add_job(
            vroom.Job(
                c, location=c,
                default_service=_scaled(instance.service[c]),
                delivery=[instance.demand[c]],
                time_windows=[
                    vroom.TimeWindow(_scaled(instance.ready[c]), _scaled(instance.due[c], False))
                ],
            )
        )  # fmt: skip
    solution = problem.solve(
        exploration_level=5, nb_threads=threads, timeout=timedelta(seconds=time_limit)
    )
    table = solution.routes
    jobs = table[table["type"] == "job"]
    if len(jobs) < instance.num_customers:
        raise PeerFailure(f"VROOM left {instance.num_customers - len(jobs)} customers out.")
    return [
        [int(job_id) for job_id in group["id"]]
        for _, group in jobs.groupby("vehicle_id", sort=True)
    ]


#: The peers by the name the runner's ``--solvers`` option uses.
PEERS: dict[str, Peer] = {
    "ours": solve_ours,
    "ortools_doc": solve_ortools_doc,
    "pyvrp": solve_pyvrp,
    "vroom": solve_vroom,
}
