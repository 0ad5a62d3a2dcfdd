"""Small problem factories shared by the solver tests, and a seeded synthetic 30 x 250 day.

Times are seconds from midnight of the plan's day; places are indices into the matrices.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np

from solver.model import Break, Problem, Technician, TimeWindow, Visit
from solver.result import Kpis, Result, Unassigned
from solver.schedule import schedule_route

HOUR = 3600
MINUTE = 60
DAY_START = 8 * HOUR
DAY_END = 17 * HOUR


def line_matrix(places: int, seconds_per_step: int = 600, metres_per_step: int = 5000
                ) -> tuple[np.ndarray, np.ndarray]:
    """Travel times and distances between places 0..places-1 standing on a straight line."""
    idx = np.arange(places)
    steps = np.abs(idx[:, None] - idx[None, :])
    return steps * seconds_per_step, steps * metres_per_step


def tech(tech_id: str = "T1", **fields: object) -> Technician:
    """A technician based at place 0, working 08:00-17:00, with any field overridden."""
    base: dict[str, object] = dict(id=tech_id, start_location=0, end_location=0,
                                   shift_start=DAY_START, shift_end=DAY_END)
    base.update(fields)
    return Technician(**base)  # type: ignore[arg-type]


def lunch(earliest: int = 11 * HOUR + 30 * MINUTE, latest: int = 12 * HOUR + 45 * MINUTE,
          duration: int = 45 * MINUTE) -> Break:
    """A lunch break starting between 11:30 and 12:45, 45 minutes by default."""
    return Break(earliest, latest, duration)


def visit(visit_id: str, location: int, duration: int = 30 * MINUTE,
          window: tuple[int, int] | None = None, **fields: object) -> Visit:
    """A visit at ``location`` of ``duration`` seconds, with one optional window."""
    windows = (TimeWindow(*window),) if window else ()
    return Visit(id=visit_id, location=location, duration=duration, windows=windows,
                 **fields)  # type: ignore[arg-type]


def line_problem(technicians: Sequence[Technician], visits: Sequence[Visit], places: int = 10,
                 seconds_per_step: int = 600) -> Problem:
    """A problem on a line of ``places`` places, 10 minutes and 5 km apart by default."""
    durations, distances = line_matrix(places, seconds_per_step)
    return Problem(durations, distances, tuple(technicians), tuple(visits))


SKILLS = ("aircon", "plumbing", "washer", "tv")


def synthetic_day(seed: int = 0, technicians: int = 30, visits: int = 250
                  ) -> tuple[Problem, dict[str, list[str]]]:
    """A random but seeded city day and a feasible plan for it (technician id -> visit ids).

    Technicians start from their homes, work 08:00-18:00 with a 45-minute lunch and hold two or
    three of four skills; visits have 2-hour windows and last 30-120 minutes. The plan is built by
    appending visits in window order to the technician adding the least travel; visits that fit
    nowhere stay out of the plan.
    """
    rng = random.Random(seed)
    points = [(rng.uniform(0, 20_000), rng.uniform(0, 20_000)) for _ in range(technicians + visits)]
    durations, distances = _euclid(points, speed=8.0)
    techs = [
        Technician(id=f"T{k:02d}", start_location=k, end_location=k, shift_start=DAY_START,
                   shift_end=18 * HOUR, max_overtime=HOUR,
                   skills={s: rng.choice((1, 2)) for s in rng.sample(SKILLS, rng.choice((2, 3)))},
                   breaks=(lunch(),))
        for k in range(technicians)
    ]
    slots = [(DAY_START + 2 * HOUR * i, DAY_START + 2 * HOUR * (i + 1)) for i in range(5)]
    vis = [
        Visit(id=f"V{k:03d}", location=technicians + k, duration=rng.choice((30, 45, 60, 90, 120))
              * MINUTE, windows=(TimeWindow(*rng.choice(slots)),),
              skills={rng.choice(SKILLS): 1}, priority=rng.choice((1, 1, 1, 2)))
        for k in range(visits)
    ]
    problem = Problem(durations, distances, tuple(techs), tuple(vis))
    return problem, _greedy_plan(problem)


def _euclid(points: Sequence[tuple[float, float]], speed: float) -> tuple[np.ndarray, np.ndarray]:
    xy = np.array(points)
    metres = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    return np.ceil(metres / speed).astype(np.int64), np.round(metres).astype(np.int64)


def _greedy_plan(problem: Problem) -> dict[str, list[str]]:
    plan: dict[str, list[Visit]] = {t.id: [] for t in problem.technicians}
    ordered = sorted(problem.visits, key=lambda v: (v.windows[0].start, v.id))
    for v in ordered:
        options = []
        for t in problem.technicians:
            if not t.can_do(v):
                continue
            last = plan[t.id][-1].location if plan[t.id] else t.start_location
            added = int(problem.durations[last, v.location] + problem.durations[v.location,
                        t.end_location] - problem.durations[last, t.end_location])
            options.append((added, t.id, t))
        for _, tid, t in sorted(options)[:5]:
            if schedule_route(problem, t, plan[tid] + [v]).feasible:
                plan[tid].append(v)
                break
    return {tid: [v.id for v in vs] for tid, vs in plan.items()}


def minutes(value: float) -> int:
    """Seconds in ``value`` minutes."""
    return int(math.floor(value * MINUTE))


def result_from_plan(problem: Problem, plan: dict[str, list[str]]) -> Result:
    """A result timed by the forward scheduler for ``plan``; visits not in it are unassigned."""
    routes = []
    for t in problem.technicians:
        seq = [problem.visits[problem.visit_index(v)] for v in plan.get(t.id, [])]
        schedule = schedule_route(problem, t, seq)
        assert schedule.feasible, schedule.violation
        routes.append(schedule.to_route())
    planned = {v for ids in plan.values() for v in ids}
    unassigned = tuple(Unassigned(v.id, "test", "", "") for v in problem.visits
                       if v.id not in planned)
    used = [r for r in routes if r.stops]
    stops = [s for r in used for s in r.stops]
    kpis = Kpis(
        travel_time=sum(r.travel_time for r in used), distance=sum(r.distance for r in used),
        visits_planned=len(stops), visits_unassigned=len(unassigned),
        service_time=sum(s.end - s.start for s in stops), waiting=sum(s.waiting for s in stops),
        overtime=sum(r.overtime for r in used), lateness=sum(s.lateness for s in stops),
        technicians_used=len(used))
    return Result(tuple(routes), unassigned, kpis, {"travel": kpis.travel_time,
                                                    "total": kpis.travel_time}, {})
