"""solve()'s hooks for the dispatcher's board (stop, progress) and its guard against a day
without technicians."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from solver.check import check_result
from solver.engine import RoutingEngine
from solver.model import Problem
from solver.params import SolveParams
from solver.result import Result
from solver.solve import recipes_for, solve
from tests.solver.helpers import line_problem, synthetic_day, visit

PARAMS = SolveParams(time_limit=None, solution_limit=10, seed=3)


@pytest.fixture(scope="module")
def day() -> Problem:
    """A seeded 4-technician, 30-visit day with lunches, skills and 2-hour windows."""
    return synthetic_day(seed=11, technicians=4, visits=30)[0]


def checked(problem: Problem, result: Result) -> Result:
    """The result, after the independent checker found nothing wrong with it."""
    assert check_result(problem, result) == []
    return result


def stop_at_first_report(event: threading.Event, seen: list[float]
                         ) -> Callable[[float, int | None], None]:
    """A progress hook that records fractions and asks to stop at its first call."""
    def progress(fraction: float, objective: int | None) -> None:
        seen.append(fraction)
        event.set()
    return progress


def test_stop_already_set_returns_the_first_plan(day: Problem) -> None:
    """With the stop already set, solve returns the quick first plan, valid, without
    searching."""
    stop = threading.Event()
    stop.set()
    result = checked(day, solve(day, PARAMS, stop=stop))
    first = RoutingEngine(day).constructed_outcome()
    assert first is not None
    assert result.stats["winner"] == "constructed" and result.stats["stopped"] is True
    assert result.as_routes() == {r.technician: list(r.visit_ids) for r in first.routes}


def test_stop_during_the_search_ends_it_with_a_valid_plan(day: Problem) -> None:
    """A stop raised at the first progress report ends the search with a valid plan no worse
    than the first plan."""
    stop, seen = threading.Event(), []
    result = checked(day, solve(day, PARAMS, stop=stop,
                                progress=stop_at_first_report(stop, seen)))
    first = RoutingEngine(day).constructed_outcome()
    assert first is not None
    assert result.stats["stopped"] is True
    assert result.objective["total"] <= first.objective["total"]
    assert seen[-1] == 1.0


def test_stop_reaches_worker_processes(day: Problem) -> None:
    """With two worker processes and a generous solution limit, a stop raised at the first
    report still ends the solve with a valid plan."""
    stop, seen = threading.Event(), []
    params = replace(PARAMS, solution_limit=100_000, workers=2)
    result = checked(day, solve(day, params, stop=stop, progress=stop_at_first_report(stop, seen)))
    assert result.stats["stopped"] is True and result.stats["workers"] == 2


def test_progress_fractions_rise_and_end_at_one(day: Problem) -> None:
    """Progress is reported with strictly rising fractions, ending with 1.0 and the returned
    plan's objective."""
    calls: list[tuple[float, int | None]] = []
    result = checked(day, solve(day, PARAMS, progress=lambda f, o: calls.append((f, o))))
    fractions = [f for f, _ in calls]
    assert len(calls) >= 2
    assert all(a < b for a, b in zip(fractions, fractions[1:]))
    assert fractions[-1] == 1.0 and all(0.0 < f < 1.0 for f in fractions[:-1])
    assert calls[-1][1] == result.objective["total"]
    assert calls[0][1] is not None  # a first plan is known from the first report on


def test_progress_in_the_pool_is_reported_by_the_caller(day: Problem) -> None:
    """With two worker processes, progress still arrives in the calling thread, rising, and
    ends with 1.0."""
    calls: list[tuple[float, int]] = []
    caller = threading.get_ident()
    result = solve(day, replace(PARAMS, workers=2),
                   progress=lambda f, o: calls.append((f, threading.get_ident())))
    assert {who for _, who in calls} == {caller}
    fractions = [f for f, _ in calls]
    assert all(a < b for a, b in zip(fractions, fractions[1:])) and fractions[-1] == 1.0
    assert result.stats["workers"] == 2


def test_day_without_technicians_leaves_required_visits_out_too() -> None:
    """With nobody working, every visit, required ones included, is unassigned with the
    no_technician reason (the plan is marked infeasible), and progress ends at 1.0."""
    problem = line_problem([], [visit("a", 1), visit("b", 2, required=True)])
    calls: list[float] = []
    result = solve(problem, PARAMS, progress=lambda f, o: calls.append(f))
    assert check_result(problem, result) == ["Visit 'b' is required but left unassigned."]
    assert result.stats["status"] == "infeasible"
    assert [u.visit for u in result.unassigned] == ["a", "b"]
    assert {u.code for u in result.unassigned} == {"no_technician"}
    assert all(u.message_en and u.message_zh for u in result.unassigned)
    assert result.routes == () and calls == [1.0]


def test_vroom_starts_first_when_pyvrp_cannot_see_breaks(day: Problem) -> None:
    """On a day with lunch breaks (which PyVRP only approximates) the first worker starts from
    VROOM's routes and the second from PyVRP's; without breaks, two PyVRP seeds; with neither
    start allowed, OR-Tools alone."""
    two = replace(PARAMS, workers=2)
    assert [r.name for r in recipes_for(day, two)] == ["vroom+ortools", "pyvrp+ortools"]
    assert [r.name for r in recipes_for(day, replace(two, use_vroom=False))] == [
        "pyvrp+ortools", "ortools:path_cheapest_arc"]
    assert [r.name for r in recipes_for(day, replace(two, use_vroom=False, use_pyvrp=False))] \
        == ["ortools:path_cheapest_arc", "ortools:local_cheapest_insertion"]
    no_breaks = Problem(day.durations, day.distances,
                        tuple(replace(t, breaks=()) for t in day.technicians), day.visits)
    assert [r.name for r in recipes_for(no_breaks, two)] == ["pyvrp+ortools",
                                                             "pyvrp+ortools:seed2"]
