"""Slot recommendations: which candidate windows to offer a customer for a new visit.

Each candidate window is tried with every technician who may do the visit, at every position of
their current route. A quick necessary test (earliest times of the current plan forward, latest
starts backward) discards most positions; the survivors, cheapest first, are confirmed by a full
reschedule, so no existing visit ever leaves its own windows (a confirmed visit has its agreed
window as its only window) and breaks, shift and hard end hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from solver.model import Problem, Technician, TimeWindow, Visit
from solver.schedule import Schedule, route_slack, schedule_route


@dataclass(frozen=True)
class SlotOption:
    """One way to serve the new visit: in ``window``, by ``technician``, inserted at
    ``position`` (0 = first) of their route, starting at ``start``; ``added_travel`` seconds of
    extra driving; ``slack`` seconds the day could still slip from there on."""

    window: TimeWindow
    technician: str
    position: int
    start: int
    added_travel: int
    slack: int
    feasible: bool = True


@dataclass(frozen=True)
class _Day:
    """A technician's current day, prepared for insertion tests."""

    tech: Technician
    visits: tuple[Visit, ...]
    schedule: Schedule
    latest: tuple[int, ...]


def recommend_slots(
    problem: Problem,
    routes: Mapping[str, Sequence[str]],
    visit: Visit,
    candidate_windows: Iterable[TimeWindow],
    limit: int = 10,
    per_technician: bool = False,
    include_infeasible: bool = False,
) -> list[SlotOption]:
    """The best way to serve ``visit`` in each candidate window, best window first.

    ``routes`` maps technician id -> ordered visit ids of ``problem`` (the day's current plan);
    ``visit`` is the new visit (its own windows are ignored). Windows rank by added travel, then
    by slack left (more is better). One option per window, or per window and technician when
    ``per_technician``; windows nobody can take are left out unless ``include_infeasible``.
    """
    if limit < 1:
        raise ValueError("recommend_slots: field 'limit' must be at least 1.")
    days = [_prepare(problem, tech, routes.get(tech.id, ())) for tech in _capable(problem, visit)]
    options: list[SlotOption] = []
    for window in candidate_windows:
        trial = replace(visit, windows=(window,), pinned_start=None)
        found = [o for o in (_best_in_day(problem, day, trial, window) for day in days) if o]
        found.sort(key=_rank)
        if not found and include_infeasible:
            options.append(SlotOption(window, "", -1, -1, -1, -1, feasible=False))
        options.extend(found if per_technician else found[:1])
    options.sort(key=lambda o: (not o.feasible, _rank(o)))
    return options[:limit]


def _rank(option: SlotOption) -> tuple[int, int, int]:
    return option.added_travel, -option.slack, option.window.start


def _capable(problem: Problem, visit: Visit) -> list[Technician]:
    return [t for t in problem.technicians if t.can_do(visit)
            and (visit.pinned_technician is None or visit.pinned_technician == t.id)]


def _prepare(problem: Problem, tech: Technician, visit_ids: Sequence[str]) -> _Day:
    """Time the technician's current route and its latest starts."""
    visits = tuple(problem.visits[problem.visit_index(v)] for v in visit_ids)
    schedule = schedule_route(problem, tech, visits)
    if not schedule.feasible:
        raise ValueError(f"recommend_slots: the current route of technician {tech.id!r} is not "
                         f"feasible ({schedule.violation.describe()}).")
    latest = tuple(route_slack(problem, tech, schedule, visits))
    return _Day(tech, visits, schedule, latest)


def _best_in_day(problem: Problem, day: _Day, visit: Visit, window: TimeWindow
                 ) -> SlotOption | None:
    """The cheapest confirmed insertion of ``visit`` into one technician's day, or None."""
    candidates = sorted(_quick_positions(problem, day, visit, window))
    best: SlotOption | None = None
    for added, position in candidates:
        if best is not None and added > best.added_travel:
            break
        option = _confirm(problem, day, visit, window, position, added)
        if option is not None and (best is None or _rank(option) < _rank(best)):
            best = option
    return best


def _quick_positions(problem: Problem, day: _Day, visit: Visit, window: TimeWindow
                     ) -> Iterable[tuple[int, int]]:
    """(added travel, position) for each position that passes the necessary timing test."""
    tech, durations = day.tech, problem.durations
    if tech.max_visits is not None and len(day.visits) >= tech.max_visits:
        return
    if tech.capacity is not None and sum(v.load for v in day.visits) + visit.load > tech.capacity:
        return
    service = tech.service_time(visit)
    stops = day.schedule.stops
    for position in range(len(day.visits) + 1):
        prev = day.visits[position - 1].location if position else tech.start_location
        free = stops[position - 1].end if position else tech.shift_start
        start = max(free + int(durations[prev, visit.location]), window.start)
        if start > window.end:
            continue
        end = start + service
        if position < len(day.visits):
            nxt = day.visits[position]
            arrive = end + int(durations[visit.location, nxt.location])
            if arrive > day.latest[position]:
                continue
            nxt_place = nxt.location
        else:
            nxt_place = tech.end_location
            if end + int(durations[visit.location, nxt_place]) > tech.latest_end:
                continue
        added = (int(durations[prev, visit.location]) + int(durations[visit.location, nxt_place])
                 - int(durations[prev, nxt_place]))
        yield added, position


def _confirm(problem: Problem, day: _Day, visit: Visit, window: TimeWindow, position: int,
             added: int) -> SlotOption | None:
    """Reschedule with the visit inserted; an option when every rule still holds."""
    visits = day.visits[:position] + (visit,) + day.visits[position:]
    schedule = schedule_route(problem, day.tech, visits)
    if not schedule.feasible:
        return None
    latest = route_slack(problem, day.tech, schedule, visits)
    slack = min(latest[k] - schedule.stops[k].start for k in range(position, len(visits)))
    return SlotOption(window, day.tech.id, position, schedule.stops[position].start, added,
                      max(0, slack))
