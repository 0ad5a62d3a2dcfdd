"""The routing problem: frozen, validated data that the engine solves.

Everything is in integer seconds from the plan's epoch and integer metres; places are indices into
the caller's travel matrices. A problem is assembled with :class:`ProblemBuilder` (or constructed
directly) and validated once, when it is frozen; invalid input raises ``ValueError`` with a
sentence naming the technician or visit and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: Cost of leaving a visit unassigned at priority 1; higher priorities multiply it.
BASE_UNASSIGNED_PENALTY = 200_000


@dataclass(frozen=True)
class TimeWindow:
    """A closed interval ``[start, end]`` of seconds; for a visit, its start of service."""

    start: int
    end: int

    def contains(self, t: int) -> bool:
        """Whether ``t`` lies inside the window."""
        return self.start <= t <= self.end


@dataclass(frozen=True)
class Break:
    """A break of ``duration`` seconds that must *start* within ``[earliest, latest]``."""

    earliest: int
    latest: int
    duration: int


@dataclass(frozen=True)
class Technician:
    """A technician's working day, as the solver sees it.

    ``shift_end`` is the normal end of the day; working past it is overtime, costed per second
    and capped by ``max_overtime``. ``skills`` maps a skill code to the technician's level.
    ``duration_factor`` scales every visit's duration (1.2 = 20% slower).
    """

    id: str
    start_location: int
    end_location: int
    shift_start: int
    shift_end: int
    skills: Mapping[str, int] = field(default_factory=dict)
    max_overtime: int = 0
    overtime_cost: int = 2  # per second worked past shift_end
    breaks: tuple[Break, ...] = ()
    max_visits: int | None = None
    duration_factor: float = 1.0
    fixed_cost: int = 0
    capacity: int | None = None

    def can_do(self, visit: Visit) -> bool:
        """Whether the technician holds every skill the visit asks for, at its level."""
        return all(self.skills.get(code, 0) >= level for code, level in visit.skills.items())

    def service_time(self, visit: Visit) -> int:
        """How long this technician needs for the visit, in seconds."""
        return int(round(visit.duration * self.duration_factor))

    @property
    def latest_end(self) -> int:
        """The hard end of the day: the shift end plus the maximum overtime."""
        return self.shift_end + self.max_overtime


@dataclass(frozen=True)
class Visit:
    """A visit to plan.

    ``windows`` are the acceptable start-of-service windows (empty: any time in a shift).
    ``due`` is a soft deadline for the start (an SLA): each second later costs
    ``lateness_cost``. ``pinned_technician`` restricts the visit to one technician and
    ``pinned_start`` narrows its start. A ``locked`` visit (in progress or done) must stay with
    its pinned technician at its pinned start, ahead of any unlocked visit on the route.
    """

    id: str
    location: int
    duration: int
    windows: tuple[TimeWindow, ...] = ()
    skills: Mapping[str, int] = field(default_factory=dict)
    priority: int = 1
    due: int | None = None
    lateness_cost: int = 1
    pinned_technician: str | None = None
    pinned_start: TimeWindow | None = None
    locked: bool = False
    required: bool = False
    load: int = 0

    @property
    def unassigned_penalty(self) -> int:
        """What leaving this visit out costs; grows steeply with priority."""
        return BASE_UNASSIGNED_PENALTY * (4 ** (self.priority - 1))

    def start_windows(self) -> tuple[TimeWindow, ...]:
        """The windows in which service may start, narrowed by any pinned start."""
        windows = self.windows or (TimeWindow(0, 10**9),)
        if self.pinned_start is None:
            return windows
        narrowed = []
        for w in windows:
            lo, hi = max(w.start, self.pinned_start.start), min(w.end, self.pinned_start.end)
            if lo <= hi:
                narrowed.append(TimeWindow(lo, hi))
        return tuple(narrowed)


@dataclass(frozen=True)
class Weights:
    """How the objective weighs its terms (per second or per metre)."""

    travel_time: int = 1
    distance: int = 0
    waiting: int = 0
    balance: int = 0  # per second of the longest route (spreads the work)


@dataclass(frozen=True, eq=False)
class Problem:
    """A frozen, validated routing problem. Construct it directly or via ProblemBuilder."""

    durations: np.ndarray
    distances: np.ndarray
    technicians: tuple[Technician, ...]
    visits: tuple[Visit, ...]
    weights: Weights = Weights()

    def __post_init__(self) -> None:
        durations = _frozen_matrix(self.durations, "durations")
        distances = _frozen_matrix(self.distances, "distances")
        if durations.shape != distances.shape:
            raise ValueError(
                f"The distance matrix is {distances.shape} but the travel-time matrix is "
                f"{durations.shape}; they must have the same shape."
            )
        object.__setattr__(self, "durations", durations)
        object.__setattr__(self, "distances", distances)
        object.__setattr__(self, "technicians", tuple(self.technicians))
        object.__setattr__(self, "visits", tuple(self.visits))
        _validate(self)

    @property
    def num_locations(self) -> int:
        """How many places the matrices cover."""
        return int(self.durations.shape[0])

    def technician_index(self, technician_id: str) -> int:
        """Position of a technician by id; ``KeyError`` when unknown."""
        return self._index()[0][technician_id]

    def visit_index(self, visit_id: str) -> int:
        """Position of a visit by id; ``KeyError`` when unknown."""
        return self._index()[1][visit_id]

    def capable_technicians(self, visit: Visit) -> list[int]:
        """Indices of the technicians allowed to do the visit (skills and pin)."""
        return [
            k
            for k, tech in enumerate(self.technicians)
            if tech.can_do(visit)
            and (visit.pinned_technician is None or visit.pinned_technician == tech.id)
        ]

    def _index(self) -> tuple[dict[str, int], dict[str, int]]:
        cached = self.__dict__.get("_ids")
        if cached is None:
            cached = (
                {t.id: k for k, t in enumerate(self.technicians)},
                {v.id: k for k, v in enumerate(self.visits)},
            )
            object.__setattr__(self, "_ids", cached)
        return cached


class ProblemBuilder:
    """Collects technicians, visits and matrices, then freezes them into a :class:`Problem`."""

    def __init__(self) -> None:
        self._technicians: list[Technician] = []
        self._visits: list[Visit] = []
        self._durations: np.ndarray | None = None
        self._distances: np.ndarray | None = None
        self._weights = Weights()

    def set_matrices(self, durations: object, distances: object | None = None) -> ProblemBuilder:
        """Set the travel-time (seconds) and distance (metres) matrices; distance defaults to
        the travel time when not given."""
        self._durations = np.asarray(durations)
        self._distances = np.asarray(distances if distances is not None else durations)
        return self

    def set_weights(self, weights: Weights) -> ProblemBuilder:
        """Set the objective's weights."""
        self._weights = weights
        return self

    def add_technician(self, technician: Technician) -> ProblemBuilder:
        """Add a technician."""
        self._technicians.append(technician)
        return self

    def add_visit(self, visit: Visit) -> ProblemBuilder:
        """Add a visit."""
        self._visits.append(visit)
        return self

    def build(self) -> Problem:
        """Validate and freeze."""
        if self._durations is None or self._distances is None:
            raise ValueError("The problem has no travel matrices; call set_matrices first.")
        return Problem(
            durations=self._durations,
            distances=self._distances,
            technicians=tuple(self._technicians),
            visits=tuple(self._visits),
            weights=self._weights,
        )


def windows(pairs: Iterable[Sequence[int]]) -> tuple[TimeWindow, ...]:
    """Make a tuple of windows from ``(start, end)`` pairs."""
    return tuple(TimeWindow(int(a), int(b)) for a, b in pairs)


def _frozen_matrix(matrix: object, name: str) -> np.ndarray:
    array = np.array(matrix, dtype=np.int64, copy=True)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"The {name} matrix must be square; it is {array.shape}.")
    if array.shape[0] == 0:
        raise ValueError(f"The {name} matrix is empty.")
    if (array < 0).any():
        i, j = map(int, np.argwhere(array < 0)[0])
        raise ValueError(f"The {name} matrix has a negative entry at row {i}, column {j}.")
    array.setflags(write=False)
    return array


def _validate(problem: Problem) -> None:
    n = problem.num_locations
    tech_ids: set[str] = set()
    for tech in problem.technicians:
        _validate_technician(tech, n)
        if tech.id in tech_ids:
            raise ValueError(f"Technician {tech.id!r} appears twice (field 'id').")
        tech_ids.add(tech.id)
    visit_ids: set[str] = set()
    for visit in problem.visits:
        _validate_visit(visit, n, tech_ids)
        if visit.id in visit_ids:
            raise ValueError(f"Visit {visit.id!r} appears twice (field 'id').")
        visit_ids.add(visit.id)
    for name in ("travel_time", "distance", "waiting", "balance"):
        if getattr(problem.weights, name) < 0:
            raise ValueError(f"The objective weight {name!r} must not be negative.")


def _check(condition: bool, who: str, field_name: str, problem: str) -> None:
    if not condition:
        raise ValueError(f"{who}: field '{field_name}' {problem}.")


def _validate_technician(tech: Technician, n: int) -> None:
    who = f"Technician {tech.id!r}"
    _check(bool(tech.id), "A technician", "id", "must not be empty")
    for name in ("start_location", "end_location"):
        loc = getattr(tech, name)
        _check(0 <= loc < n, who, name, f"is {loc}, outside the matrix (0..{n - 1})")
    _check(tech.shift_start >= 0, who, "shift_start", "must not be negative")
    _check(tech.shift_end >= tech.shift_start, who, "shift_end", "is before shift_start")
    _check(tech.max_overtime >= 0, who, "max_overtime", "must not be negative")
    _check(tech.overtime_cost >= 0, who, "overtime_cost", "must not be negative")
    _check(tech.duration_factor > 0, who, "duration_factor", "must be positive")
    _check(tech.fixed_cost >= 0, who, "fixed_cost", "must not be negative")
    _check(tech.max_visits is None or tech.max_visits >= 0, who, "max_visits", "is negative")
    _check(tech.capacity is None or tech.capacity >= 0, who, "capacity", "is negative")
    for code, level in tech.skills.items():
        _check(isinstance(level, int) and level >= 1, who, "skills", f"gives {code!r} level {level}")
    for brk in tech.breaks:
        _check(brk.duration > 0, who, "breaks", "has a break of no length")
        _check(brk.latest >= brk.earliest, who, "breaks", "has a break whose latest start is "
               "before its earliest start")
        _check(brk.earliest >= tech.shift_start and brk.latest + brk.duration <= tech.latest_end,
               who, "breaks", "has a break outside the shift")


def _validate_visit(visit: Visit, n: int, tech_ids: set[str]) -> None:
    who = f"Visit {visit.id!r}"
    _check(bool(visit.id), "A visit", "id", "must not be empty")
    _check(0 <= visit.location < n, who, "location",
           f"is {visit.location}, outside the matrix (0..{n - 1})")
    _check(visit.duration >= 0, who, "duration", "must not be negative")
    _check(visit.priority >= 1, who, "priority", "must be 1 or more")
    _check(visit.lateness_cost >= 0, who, "lateness_cost", "must not be negative")
    _check(visit.load >= 0, who, "load", "must not be negative")
    for w in visit.windows:
        _check(w.end >= w.start, who, "windows", f"has a window ending ({w.end}) before it "
               f"starts ({w.start})")
        _check(w.start >= 0, who, "windows", "has a window starting before the plan's epoch")
    ordered = sorted(visit.windows, key=lambda w: w.start)
    for a, b in zip(ordered, ordered[1:]):
        _check(b.start > a.end, who, "windows", "has overlapping windows; merge them")
    for code, level in visit.skills.items():
        _check(isinstance(level, int) and level >= 1, who, "skills",
               f"asks for {code!r} at level {level}")
    if visit.pinned_start is not None:
        _check(visit.pinned_start.end >= visit.pinned_start.start, who, "pinned_start",
               "ends before it starts")
    if visit.pinned_technician is not None:
        _check(visit.pinned_technician in tech_ids, who, "pinned_technician",
               f"names {visit.pinned_technician!r}, who is not in the problem")
    if visit.locked:
        _check(visit.pinned_technician is not None, who, "pinned_technician",
               "must be set for a locked visit")
        _check(visit.pinned_start is not None, who, "pinned_start",
               "must be set for a locked visit")
