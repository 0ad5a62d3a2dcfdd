"""Forward scheduling of one technician's ordered visits: the earliest feasible timing.

Given a technician and a sequence of visits, :func:`schedule_route` computes when the technician
leaves, arrives, waits, starts and ends each visit, where the breaks fall and when the day ends, or
the first constraint the sequence breaks. Earlier is never worse here (every rule is a release time
or a deadline), so for each number of breaks already taken only the earliest free moment matters;
that keeps the break placement exact at a cost linear in the route length.

:func:`route_slack` gives, per stop, the latest start that keeps the rest of the day feasible
(ignoring breaks, so it is an upper bound); with it, inserting a visit can be rejected in O(1)
before a full reschedule confirms it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solver.model import Break, Problem, Technician, TimeWindow, Visit
from solver.result import BreakPlacement, Route, Stop

#: Stands for "no limit" when a constraint is relaxed.
UNBOUNDED = 10**12


@dataclass(frozen=True)
class Violation:
    """The first rule a sequence breaks: which visit (None for the whole day), which field, and
    by how many seconds (or units, or visits)."""

    visit: str | None
    field: str
    amount: int

    def describe(self) -> str:
        """A short English sentence for logs and errors."""
        who = f"visit {self.visit!r}" if self.visit else "the day"
        return f"{who} breaks {self.field!r} by {self.amount}"


@dataclass(frozen=True)
class Schedule:
    """A technician's timed day, or the reason it cannot be done (``violation``)."""

    technician: str
    stops: tuple[Stop, ...]
    breaks: tuple[BreakPlacement, ...]
    start_time: int
    end_time: int
    overtime: int
    return_travel_time: int
    return_distance: int
    violation: Violation | None = None

    @property
    def feasible(self) -> bool:
        """Whether every rule holds."""
        return self.violation is None

    @property
    def travel_time(self) -> int:
        """Total driving time, home included."""
        return sum(s.travel_time for s in self.stops) + self.return_travel_time

    @property
    def distance(self) -> int:
        """Total distance, home included."""
        return sum(s.travel_distance for s in self.stops) + self.return_distance

    def to_route(self) -> Route:
        """The schedule as a result route."""
        return Route(
            technician=self.technician,
            stops=self.stops,
            start_time=self.start_time,
            end_time=self.end_time,
            travel_time=self.travel_time,
            distance=self.distance,
            overtime=self.overtime,
            breaks=self.breaks,
            return_travel_time=self.return_travel_time,
            return_distance=self.return_distance,
        )


@dataclass(frozen=True)
class Relax:
    """Rules to ignore when asking "what would it take?": the hard end of the day (so any
    overtime is allowed) and the windows of some visits (they may start late)."""

    latest_end: bool = False
    windows_of: frozenset[str] = frozenset()
    limits: bool = False  # capacity and maximum visits


NO_RELAX = Relax()


def earliest_start(windows: Sequence[TimeWindow], ready: int) -> int | None:
    """The earliest start at or after ``ready`` inside one of the windows (None if too late)."""
    for w in windows:
        if ready <= w.end:
            return max(ready, w.start)
    return None


@dataclass(frozen=True)
class _Gap:
    """One leg: leave a place free at ``free``, travel, take some breaks, be ready at ``ready``."""

    ready: int
    arrival: int
    breaks: tuple[BreakPlacement, ...]


def _gap(free: int, travel: int, todo: Sequence[Break], after_stop: int) -> _Gap | None:
    """Earliest moment the next service may begin after travelling and taking ``todo``.

    Travel may come before, between or after the breaks; the order giving the earliest readiness
    wins, travelling first on ties (the break then uses the wait at the customer's door).
    """
    best: _Gap | None = None
    for travel_at in range(len(todo) + 1):
        cur, arrival, placed = free, free + travel, []
        ok = True
        for k in range(len(todo) + 1):
            if k == travel_at:
                cur += travel
                arrival = cur
            if k == len(todo):
                break
            brk = todo[k]
            begin = max(cur, brk.earliest)
            if begin > brk.latest:
                ok = False
                break
            placed.append(BreakPlacement(begin, brk.duration, after_stop))
            cur = begin + brk.duration
        if ok and (best is None or cur < best.ready):
            best = _Gap(cur, arrival, tuple(placed))
    return best


@dataclass(frozen=True)
class _State:
    """The best partial day with a given number of breaks taken."""

    free: int
    stops: tuple[Stop, ...]
    breaks: tuple[BreakPlacement, ...]


def schedule_route(
    problem: Problem,
    technician: Technician,
    visits: Sequence[Visit],
    relax: Relax = NO_RELAX,
) -> Schedule:
    """The earliest feasible timing of ``visits`` in this order for ``technician``.

    The technician leaves at the shift start, or later so as not to wait at the first visit.
    Visits need not belong to ``problem``; only its matrices are used. When the order cannot be
    kept, the schedule carries the first violation found (its timings are then partial).
    """
    limit = _limits_violation(technician, visits, relax)
    if limit is not None:
        return _failed(technician, limit)
    if not visits:
        return Schedule(technician.id, (), (), technician.shift_start, technician.shift_start, 0,
                        0, 0)
    brks = tuple(sorted(technician.breaks, key=lambda b: b.earliest))
    latest_end = UNBOUNDED if relax.latest_end else technician.latest_end
    states: dict[int, _State] = {0: _State(technician.shift_start, (), ())}
    place = technician.start_location
    for index, visit in enumerate(visits):
        nxt, fail = _advance(problem, technician, brks, states, place, visit, index, relax,
                             latest_end)
        if not nxt:
            return _failed(technician, fail or Violation(visit.id, "windows", 0))
        states, place = nxt, visit.location
    return _finish(problem, technician, brks, states, place, latest_end)


def _advance(
    problem: Problem, tech: Technician, brks: tuple[Break, ...], states: dict[int, _State],
    place: int, visit: Visit, index: int, relax: Relax, latest_end: int,
) -> tuple[dict[int, _State], Violation | None]:
    """Extend every partial day by one visit, keeping the earliest per break count."""
    travel = int(problem.durations[place, visit.location])
    metres = int(problem.distances[place, visit.location])
    windows = visit.start_windows()
    service = tech.service_time(visit)
    nxt: dict[int, _State] = {}
    worst: Violation | None = None
    for taken, state in states.items():
        for upto in range(taken, len(brks) + 1):
            gap = _gap(state.free, travel, brks[taken:upto], index)
            if gap is None:
                worst = worst or Violation(visit.id, "breaks", 0)
                continue
            start = earliest_start(windows, gap.ready)
            if start is None and visit.id in relax.windows_of:
                start = gap.ready
            if start is None:
                late = gap.ready - (windows[-1].end if windows else 0)
                worst = _smaller(worst, Violation(visit.id, "windows", late))
                continue
            end = start + service
            if end > latest_end:
                worst = _smaller(worst, Violation(visit.id, "latest_end", end - latest_end))
                continue
            # a break still pending whose latest start passes during this visit is missed
            if upto < len(brks) and brks[upto].latest < end:
                worst = _smaller(worst, Violation(visit.id, "breaks", end - brks[upto].latest))
                continue
            lateness = max(0, start - visit.due) if visit.due is not None else 0
            stop = Stop(visit.id, gap.arrival, start, end, start - gap.arrival, travel, metres,
                        lateness)
            cand = _State(end, state.stops + (stop,), state.breaks + gap.breaks)
            if upto not in nxt or cand.free < nxt[upto].free:
                nxt[upto] = cand
    return nxt, worst


def _smaller(a: Violation | None, b: Violation) -> Violation:
    return b if a is None or b.amount < a.amount else a


def _finish(
    problem: Problem, tech: Technician, brks: tuple[Break, ...], states: dict[int, _State],
    place: int, latest_end: int,
) -> Schedule:
    """Travel home, take any break still due, and keep the earliest end."""
    travel = int(problem.durations[place, tech.end_location])
    metres = int(problem.distances[place, tech.end_location])
    best: tuple[int, _State, tuple[BreakPlacement, ...]] | None = None
    worst: Violation | None = None
    n = len(next(iter(states.values())).stops)
    for taken, state in states.items():
        for upto in range(taken, len(brks) + 1):
            gap = _gap(state.free, travel, brks[taken:upto], n)
            if gap is None:
                continue
            end = gap.ready
            # a break may be skipped only when the day is over before it could begin
            if upto < len(brks) and end > brks[upto].earliest:
                worst = _smaller(worst, Violation(None, "breaks", end - brks[upto].earliest))
                continue
            if end > latest_end:
                worst = _smaller(worst, Violation(None, "latest_end", end - latest_end))
                continue
            if best is None or end < best[0]:
                best = (end, state, gap.breaks)
    if best is None:
        return _failed(tech, worst or Violation(None, "breaks", 0))
    end, state, tail = best
    stops, breaks, start_time = _no_early_wait(state.stops, state.breaks + tail, tech.shift_start)
    return Schedule(tech.id, stops, breaks, start_time, end, max(0, end - tech.shift_end),
                    travel, metres)


def _no_early_wait(
    stops: tuple[Stop, ...], breaks: tuple[BreakPlacement, ...], shift_start: int
) -> tuple[tuple[Stop, ...], tuple[BreakPlacement, ...], int]:
    """Leave later rather than wait at the first visit (when no break comes before it)."""
    first = stops[0]
    if first.waiting == 0 or any(b.after_stop == 0 for b in breaks):
        return stops, breaks, shift_start
    moved = Stop(first.visit, first.start, first.start, first.end, 0, first.travel_time,
                 first.travel_distance, first.lateness)
    return (moved,) + stops[1:], breaks, first.start - first.travel_time


def _limits_violation(tech: Technician, visits: Sequence[Visit], relax: Relax) -> Violation | None:
    if relax.limits:
        return None
    if tech.max_visits is not None and len(visits) > tech.max_visits:
        return Violation(None, "max_visits", len(visits) - tech.max_visits)
    load = sum(v.load for v in visits)
    if tech.capacity is not None and load > tech.capacity:
        return Violation(None, "capacity", load - tech.capacity)
    return None


def _failed(tech: Technician, violation: Violation) -> Schedule:
    return Schedule(tech.id, (), (), tech.shift_start, tech.shift_start, 0, 0, 0, violation)


def route_slack(problem: Problem, technician: Technician, schedule: Schedule,
                visits: Sequence[Visit]) -> list[int]:
    """Per stop, the latest start of service that keeps every later stop inside its windows and
    the day inside the hard end, breaks ignored (so an upper bound: a start beyond it is surely
    infeasible). ``visits`` are the schedule's visits in order."""
    latest: list[int] = [0] * len(visits)
    if not visits:
        return latest
    home = int(problem.durations[visits[-1].location, technician.end_location])
    bound = technician.latest_end - home
    for k in range(len(visits) - 1, -1, -1):
        visit = visits[k]
        service = technician.service_time(visit)
        ceiling = bound - service
        fit = max((min(w.end, ceiling) for w in visit.start_windows() if w.start <= ceiling),
                  default=schedule.stops[k].start - 1)
        latest[k] = fit
        if k:
            bound = fit - int(problem.durations[visits[k - 1].location, visit.location])
    return latest
