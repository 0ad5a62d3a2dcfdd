"""What a solve returns: routes with timings, unassigned visits with reasons, KPIs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stop:
    """One visit on a route. Times in seconds from the plan's epoch."""

    visit: str
    arrival: int
    start: int
    end: int
    waiting: int
    travel_time: int  # from the previous place
    travel_distance: int
    lateness: int = 0  # seconds past the visit's soft due time


@dataclass(frozen=True)
class BreakPlacement:
    """Where a technician's break falls."""

    start: int
    duration: int
    after_stop: int  # number of visits done before the break (0 = before the first)


@dataclass(frozen=True)
class Route:
    """A technician's day: leave ``start_time``, visit ``stops`` in order, back by ``end_time``."""

    technician: str
    stops: tuple[Stop, ...]
    start_time: int
    end_time: int
    travel_time: int
    distance: int
    overtime: int
    breaks: tuple[BreakPlacement, ...] = ()
    return_travel_time: int = 0
    return_distance: int = 0

    @property
    def visit_ids(self) -> tuple[str, ...]:
        """The visits in the order they are made."""
        return tuple(s.visit for s in self.stops)


@dataclass(frozen=True)
class Unassigned:
    """A visit the plan leaves out, with the reason in plain words."""

    visit: str
    code: str
    message_en: str
    message_zh: str
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Kpis:
    """The plan's key figures."""

    travel_time: int
    distance: int
    visits_planned: int
    visits_unassigned: int
    service_time: int
    waiting: int
    overtime: int
    lateness: int
    technicians_used: int


@dataclass(frozen=True)
class Result:
    """The outcome of a solve."""

    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...]
    kpis: Kpis
    objective: Mapping[str, int]  # the objective broken into its terms, plus "total"
    stats: Mapping[str, object]  # status, wall time, which search won, ...

    def route_of(self, technician_id: str) -> Route | None:
        """The route of a technician, or None when they are not in the result."""
        return next((r for r in self.routes if r.technician == technician_id), None)

    def as_routes(self) -> dict[str, list[str]]:
        """Technician id -> ordered visit ids (the shape a warm start takes)."""
        return {r.technician: list(r.visit_ids) for r in self.routes}
