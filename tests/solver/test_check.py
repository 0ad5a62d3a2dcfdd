"""The plan checker: a valid plan passes, and each kind of violation is detected."""

from __future__ import annotations

from dataclasses import replace

from solver.check import check_result
from solver.model import Problem
from solver.result import BreakPlacement, Result, Route
from tests.solver.helpers import HOUR, MINUTE, line_problem, lunch, result_from_plan, tech, visit


def _base() -> tuple[Problem, Result]:
    """Two technicians; T1 does A then B (lunch between), T2 does C; nothing unassigned."""
    ts = [tech("T1", breaks=(lunch(),), capacity=5, max_visits=3),
          tech("T2", start_location=9, end_location=9)]
    vs = [visit("A", 2, duration=3 * HOUR, window=(9 * HOUR, 10 * HOUR), load=2),
          visit("B", 3, duration=2 * HOUR, window=(13 * HOUR, 15 * HOUR), load=2),
          visit("C", 8, window=(9 * HOUR, 12 * HOUR), due=9 * HOUR)]
    problem = line_problem(ts, vs)
    return problem, result_from_plan(problem, {"T1": ["A", "B"], "T2": ["C"]})


def _route(result: Result, tech_id: str) -> Route:
    route = result.route_of(tech_id)
    assert route is not None
    return route


def _with_route(result: Result, route: Route) -> Result:
    return replace(result, routes=tuple(route if r.technician == route.technician else r
                                        for r in result.routes))


def _with_stop(result: Result, tech_id: str, index: int, **changes: int) -> Result:
    route = _route(result, tech_id)
    stops = list(route.stops)
    stops[index] = replace(stops[index], **changes)
    return _with_route(result, replace(route, stops=tuple(stops)))


def _errors_mention(errors: list[str], *words: str) -> bool:
    return any(all(w in e for w in words) for e in errors)


def test_valid_plan_passes() -> None:
    """The scheduler's plan breaks no rule."""
    problem, result = _base()
    assert check_result(problem, result) == []


def test_visit_twice() -> None:
    """A visit on two routes is reported."""
    problem, result = _base()
    t2 = _route(result, "T2")
    bad = _with_route(result, replace(t2, stops=t2.stops + (_route(result, "T1").stops[0],)))
    assert _errors_mention(check_result(problem, bad), "'A'", "twice")


def test_visit_missing() -> None:
    """A visit neither routed nor unassigned is reported."""
    problem, result = _base()
    problem = line_problem(problem.technicians, problem.visits + (visit("D", 1),))
    assert _errors_mention(check_result(problem, result), "'D'", "neither")


def test_skill_level() -> None:
    """A technician without the visit's skill level is reported, naming both."""
    problem, result = _base()
    vs = tuple(replace(v, skills={"ac": 2}) if v.id == "C" else v for v in problem.visits)
    problem = line_problem(problem.technicians, vs)
    assert _errors_mention(check_result(problem, result), "'T2'", "'C'", "skill")


def test_pin() -> None:
    """A visit pinned to T1 on T2's route is reported."""
    problem, result = _base()
    vs = tuple(replace(v, pinned_technician="T1") if v.id == "C" else v for v in problem.visits)
    problem = line_problem(problem.technicians, vs)
    assert _errors_mention(check_result(problem, result), "'C'", "pinned")


def test_lock_order() -> None:
    """A locked visit after an unlocked one is reported."""
    problem, result = _base()
    b_start = _route(result, "T1").stops[1].start
    vs = tuple(replace(v, locked=True, pinned_technician="T1",
                       windows=(), pinned_start=replace(v.windows[0], start=b_start, end=b_start))
               if v.id == "B" else v for v in problem.visits)
    problem = line_problem(problem.technicians, vs)
    assert _errors_mention(check_result(problem, result), "'B'", "locked")


def test_start_outside_window() -> None:
    """A start after the window closes is reported."""
    problem, result = _base()
    bad = _with_stop(result, "T2", 0, start=13 * HOUR, end=13 * HOUR + 30 * MINUTE,
                     lateness=4 * HOUR)
    assert _errors_mention(check_result(problem, bad), "'C'", "outside its windows")


def test_service_time() -> None:
    """A visit cut short is reported."""
    problem, result = _base()
    stop = _route(result, "T2").stops[0]
    bad = _with_stop(result, "T2", 0, end=stop.end - 60)
    assert _errors_mention(check_result(problem, bad), "'C'", "service lasts")


def test_travel_and_arrival() -> None:
    """A travel time off the matrix and an arrival too early are reported."""
    problem, result = _base()
    stop = _route(result, "T2").stops[0]
    bad = _with_stop(result, "T2", 0, travel_time=stop.travel_time + 1)
    assert _errors_mention(check_result(problem, bad), "'C'", "travel time")
    bad = _with_stop(result, "T2", 0, arrival=stop.arrival - 60, waiting=stop.waiting + 60)
    assert _errors_mention(check_result(problem, bad), "'C'", "arrives")


def test_lateness_against_due() -> None:
    """Lateness must match the due time."""
    problem, result = _base()
    bad = _with_stop(result, "T2", 0, lateness=5)
    assert _errors_mention(check_result(problem, bad), "'C'", "lateness")


def test_missing_break() -> None:
    """A full day without its lunch is reported."""
    problem, result = _base()
    bad = _with_route(result, replace(_route(result, "T1"), breaks=()))
    assert _errors_mention(check_result(problem, bad), "'T1'", "break", "missing")


def test_break_overlapping_service() -> None:
    """A break placed during a visit is reported."""
    problem, result = _base()
    t1 = _route(result, "T1")
    during = BreakPlacement(start=t1.stops[0].end - 10 * MINUTE, duration=45 * MINUTE,
                            after_stop=1)
    bad = _with_route(result, replace(t1, breaks=(during,)))
    assert _errors_mention(check_result(problem, bad), "'T1'", "break")


def test_latest_end_and_overtime() -> None:
    """Ending after shift end plus maximum overtime is reported, and overtime must match."""
    problem, result = _base()
    t2 = _route(result, "T2")
    bad = _with_route(result, replace(t2, end_time=18 * HOUR))
    errors = check_result(problem, bad)
    assert _errors_mention(errors, "'T2'", "latest end")
    assert _errors_mention(errors, "'T2'", "overtime")


def test_shift_start() -> None:
    """Leaving before the shift starts is reported."""
    problem, result = _base()
    bad = _with_route(result, replace(_route(result, "T2"), start_time=7 * HOUR))
    assert _errors_mention(check_result(problem, bad), "'T2'", "before the shift")


def test_capacity_and_max_visits() -> None:
    """Too much load and too many visits are reported."""
    problem, result = _base()
    ts = (replace(problem.technicians[0], capacity=3, max_visits=1), problem.technicians[1])
    errors = check_result(line_problem(ts, problem.visits), result)
    assert _errors_mention(errors, "'T1'", "capacity")
    assert _errors_mention(errors, "'T1'", "maximum")


def test_kpis_and_totals() -> None:
    """KPIs, route totals and the objective total must add up."""
    problem, result = _base()
    bad = replace(result, kpis=replace(result.kpis, travel_time=1))
    assert _errors_mention(check_result(problem, bad), "travel_time")
    bad = _with_route(result, replace(_route(result, "T1"), distance=1))
    assert _errors_mention(check_result(problem, bad), "'T1'", "route distance")
    bad = replace(result, objective={"travel": 5, "total": 6})
    assert _errors_mention(check_result(problem, bad), "objective")
