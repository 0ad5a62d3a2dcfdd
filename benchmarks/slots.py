"""Slot recommendation while a customer is on the phone: how fast, on the qingdao day.

    python -m benchmarks.slots [--dataset qingdao] [--requests 30] [--plan-seconds 5]

For every outlet-day, the day is planned first (a short solve), then ``--requests`` new visits
(a second appliance at an address of the day, with the skills of a visit there) each ask for the
outlet's six standard 2-hour slots. ``solver.slots.recommend_slots`` answers; as a baseline in
the same process, a brute force re-schedules every route with the new visit at every position
for every window (what a naive implementation does). Reports the median, 90th percentile and
maximum time per request and the speed-up ratio. The target is a median under 300 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

import fixtures
from benchmarks.days import outlet_days
from solver import Problem, SolveParams, TimeWindow, Visit, solve
from solver.schedule import schedule_route
from solver.slots import recommend_slots

HOUR = 3600
SLOTS = tuple(TimeWindow(h * HOUR, (h + 2) * HOUR) for h in range(8, 20, 2))


def new_requests(problem: Problem, count: int, seed: int) -> list[Visit]:
    """New visits at addresses of the day, asking for the skills of a visit there."""
    rng = random.Random(seed)
    picks = rng.sample(problem.visits, min(count, len(problem.visits)))
    return [Visit(f"NEW-{k}", v.location, rng.choice((30, 45, 60, 90)) * 60, skills=v.skills)
            for k, v in enumerate(picks)]


def brute_force(problem: Problem, routes: dict[str, list[str]], visit: Visit) -> int:
    """How many feasible insertions exist, found by re-scheduling every possibility."""
    by_id = {v.id: v for v in problem.visits}
    feasible = 0
    for window in SLOTS:
        candidate = replace(visit, windows=(window,))
        for tech in problem.technicians:
            if not tech.can_do(candidate):
                continue
            route = [by_id[v] for v in routes.get(tech.id, [])]
            for position in range(len(route) + 1):
                trial = route[:position] + [candidate] + route[position:]
                feasible += schedule_route(problem, tech, trial).feasible
    return feasible


def timed(fn, *args) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Milliseconds a call takes, and its result."""
    start = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - start) * 1000, result


def measure(dataset_name: str, requests: int, plan_seconds: float) -> list[str]:
    """Plan each outlet-day, time the requests, and return the report's lines."""
    dataset = fixtures.generate(dataset_name, date(2026, 11, 24), 0)
    fast, slow, answered = [], [], 0
    for day in outlet_days(dataset):
        plan = solve(day.problem, SolveParams(time_limit=plan_seconds, workers=1))
        routes = plan.as_routes()
        problem = day.problem
        for visit in new_requests(day.problem, requests, seed=len(fast)):
            ms, options = timed(recommend_slots, problem_with(problem, visit), routes, visit,
                                SLOTS)
            fast.append(ms)
            answered += bool(options)
            slow.append(timed(brute_force, problem_with(problem, visit), routes, visit)[0])
    return report(dataset_name, fast, slow, answered)


def problem_with(problem: Problem, visit: Visit) -> Problem:
    """The day's problem with the new visit added (its place is already in the matrix)."""
    return Problem(problem.durations, problem.distances, problem.technicians,
                   (*problem.visits, visit), problem.weights)


def report(dataset_name: str, fast: Sequence[float], slow: Sequence[float],
           answered: int) -> list[str]:
    """Markdown lines with the percentiles and the ratio to the brute force."""
    def line(name: str, values: Sequence[float]) -> str:
        ordered = sorted(values)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        return (f"| {name} | {len(values)} | {statistics.median(values):.1f} | {p90:.1f} | "
                f"{max(values):.1f} |")

    ratio = statistics.median(slow) / statistics.median(fast)
    return [
        f"# Slot recommendation on {dataset_name} ({len(fast)} requests, 6 two-hour slots each)",
        "",
        "| method | requests | median ms | p90 ms | max ms |",
        "|---|---|---|---|---|",
        line("recommend_slots", fast),
        line("brute force (re-schedule every position)", slow),
        "",
        f"Median speed-up over the brute force: {ratio:.1f}x. Requests with at least one "
        f"feasible slot: {answered} of {len(fast)}. Target: median under 300 ms.",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurement, print the report and write it under benchmarks/results/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="qingdao")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--plan-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    lines = measure(args.dataset, args.requests, args.plan_seconds)
    out = Path(__file__).parent / "results" / f"slots-{args.dataset}.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
