"""Room in a full day for a visit that outranks others (the job's warm start)."""

from __future__ import annotations

import numpy as np

from dispatch.bumping import make_room
from solver import Problem, Technician, TimeWindow, Visit

HOUR = 3600


def one_technician_day(*visits: Visit) -> Problem:
    """A technician working 8:00-10:00 at one place (no travel), with the given visits."""
    return Problem(durations=np.zeros((1, 1)), distances=np.zeros((1, 1)),
                   technicians=(Technician("T", 0, 0, 8 * HOUR, 10 * HOUR),), visits=visits)


def visit(code: str, priority: int) -> Visit:
    """An hour's visit at the only place, any time of the day."""
    return Visit(code, 0, HOUR, windows=(TimeWindow(8 * HOUR, 9 * HOUR),), priority=priority)


def test_an_emergency_bumps_the_cheapest_ordinary_visit_of_a_full_day() -> None:
    """Two hours of ordinary visits fill the day: the emergency takes the place of the
    lower-priority one."""
    problem = one_technician_day(visit("low", 1), visit("mid", 2), visit("urgent", 4))
    routes = make_room(problem, {"T": ("low", "mid")}, ["urgent"])
    assert set(routes["T"]) == {"mid", "urgent"}


def test_a_protected_visit_is_never_bumped() -> None:
    """A promise (protected) stays even when only bumping it would make room."""
    problem = one_technician_day(visit("promise", 1), visit("mid", 3), visit("urgent", 4))
    routes = make_room(problem, {"T": ("promise", "mid")}, ["urgent"], protected={"promise"})
    assert set(routes["T"]) == {"promise", "urgent"}


def test_a_visit_fitting_as_is_bumps_nothing() -> None:
    """With room left, the wanted visit is inserted and every planned visit stays."""
    problem = one_technician_day(visit("low", 1), visit("urgent", 4))
    routes = make_room(problem, {"T": ("low",)}, ["urgent"])
    assert set(routes["T"]) == {"low", "urgent"}


def test_a_visit_that_fits_nowhere_leaves_the_routes_alone() -> None:
    """Only visits of a higher penalty on the route: nothing is bumped, the visit stays out."""
    problem = one_technician_day(visit("a", 5), visit("b", 5), visit("urgent", 4))
    routes = make_room(problem, {"T": ("a", "b")}, ["urgent"])
    assert routes == {"T": ("a", "b")}
