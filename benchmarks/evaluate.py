"""The one evaluator every solver in the benchmark is scored by.

It knows nothing of any solver: it takes an instance and routes of customer numbers, recomputes
the exact (unrounded Euclidean) distance, and checks every rule of the Solomon VRPTW: service
starts inside [ready, due] (arriving early means waiting), each route leaves the depot no earlier
than its ready time and is back by its due time, load within capacity, each customer exactly once,
no more routes than the fleet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from solver.solomon import SolomonInstance

#: Slack for floating-point sums of square roots; far below any real lateness.
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Evaluation:
    """The exact score of a set of routes and every rule they break (empty when feasible)."""

    distance: float
    vehicles: int
    violations: tuple[str, ...]

    @property
    def feasible(self) -> bool:
        """Whether no rule is broken."""
        return not self.violations


def evaluate(instance: SolomonInstance, routes: Sequence[Sequence[int]]) -> Evaluation:
    """Score ``routes`` (customer numbers, depot implied at both ends) on ``instance``."""
    used = [list(route) for route in routes if len(route) > 0]
    violations = _coverage_violations(instance, used)
    if len(used) > instance.vehicles:
        violations.append(f"{len(used)} routes used but the fleet has {instance.vehicles}.")
    distance = 0.0
    for k, route in enumerate(used, start=1):
        if any(not 1 <= c <= instance.num_customers for c in route):
            continue  # already reported; cannot be timed
        distance += _route_distance(instance, route)
        violations.extend(_route_violations(instance, k, route))
    return Evaluation(distance=distance, vehicles=len(used), violations=tuple(violations))


def _coverage_violations(instance: SolomonInstance, routes: list[list[int]]) -> list[str]:
    counts = Counter(c for route in routes for c in route)
    problems = [
        f"Customer {c} is not a customer of {instance.name} (1..{instance.num_customers})."
        for c in sorted(counts)
        if not 1 <= c <= instance.num_customers
    ]
    problems += [f"Customer {c} is visited {n} times." for c, n in sorted(counts.items()) if n > 1]
    missing = [c for c in range(1, instance.num_customers + 1) if c not in counts]
    if missing:
        problems.append(f"{len(missing)} customers are not visited: {_shorten(missing)}.")
    return problems


def _route_distance(instance: SolomonInstance, route: list[int]) -> float:
    stops = [0, *route, 0]
    return sum(instance.distance(a, b) for a, b in pairwise(stops))


def _route_violations(instance: SolomonInstance, k: int, route: list[int]) -> list[str]:
    problems: list[str] = []
    load = sum(instance.demand[c] for c in route)
    if load > instance.capacity:
        problems.append(f"Route {k} carries {load}, over the capacity {instance.capacity}.")
    time, here = instance.ready[0], 0
    for c in route:
        arrival = time + instance.distance(here, c)
        start = max(arrival, instance.ready[c])
        if start > instance.due[c] + TOLERANCE:
            problems.append(
                f"Route {k}: customer {c} starts at {start:.4f}, after its due time "
                f"{instance.due[c]:g} (late by {start - instance.due[c]:.4f})."
            )
        time, here = start + instance.service[c], c
    back = time + instance.distance(here, 0)
    if back > instance.due[0] + TOLERANCE:
        problems.append(
            f"Route {k} returns to the depot at {back:.4f}, after its due time {instance.due[0]:g}."
        )
    return problems


def _shorten(numbers: list[int], limit: int = 10) -> str:
    shown = ", ".join(map(str, numbers[:limit]))
    return shown + (", ..." if len(numbers) > limit else "")


def gap(distance: float, best_known: float) -> float:
    """Relative gap to the best-known distance, as a fraction (0.01 = 1%)."""
    return (distance - best_known) / best_known
