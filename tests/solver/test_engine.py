"""The OR-Tools model: each constraint binding and not binding, on small line-shaped days.

Places stand on a line, 10 minutes apart; technicians are based at place 0 and work 08:00-17:00
unless a test says otherwise. Every plan is also checked by the independent plan checker.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from solver.check import check_result
from solver.model import Problem, TimeWindow, Weights
from solver.params import SolveParams
from solver.result import Result
from solver.solve import solve
from tests.solver.helpers import DAY_START, HOUR, MINUTE, line_problem, lunch, tech, visit

PARAMS = SolveParams(time_limit=None, solution_limit=50, seed=1)


def planned(problem: Problem, params: SolveParams = PARAMS, **kwargs: object) -> Result:
    """Solve and insist that the plan passes the independent checker."""
    result = solve(problem, params, **kwargs)  # type: ignore[arg-type]
    assert check_result(problem, result) == []
    return result


def ortools_only(params: SolveParams = PARAMS) -> SolveParams:
    """The same parameters without the PyVRP and VROOM starts."""
    return replace(params, use_pyvrp=False, use_vroom=False)


def test_three_visits_on_a_line_cost_one_trip_out_and_back() -> None:
    """The known optimum: driving no more than out to the farthest place and back (60 min)."""
    problem = line_problem([tech()], [visit("a", 3), visit("b", 1), visit("c", 2)])
    result = planned(problem)
    route = result.route_of("T1")
    assert route is not None and sorted(route.visit_ids) == ["a", "b", "c"]
    assert result.kpis.travel_time == 6 * 600
    assert result.objective["total"] == 6 * 600


def test_pure_ortools_search_finds_the_same_optimum() -> None:
    """Without PyVRP, OR-Tools alone still finds the out-and-back optimum."""
    problem = line_problem([tech()], [visit("a", 3), visit("b", 1), visit("c", 2)])
    assert planned(problem, ortools_only()).kpis.travel_time == 6 * 600


def test_skill_mismatch_sends_the_visit_to_the_skilled_technician() -> None:
    """Binding: only the far-based technician holds the skill, so they take the visit."""
    near = tech("near", skills={"tv": 1})
    far = tech("far", start_location=9, end_location=9, skills={"aircon": 2})
    problem = line_problem([near, far], [visit("v", 1, skills={"aircon": 2})])
    assert planned(problem).route_of("far") is not None


def test_skill_level_too_low_leaves_the_visit_out_with_a_reason() -> None:
    """A visit asking for a higher level than anyone holds is unassigned, reason no_skill."""
    problem = line_problem([tech(skills={"aircon": 1})], [visit("v", 1, skills={"aircon": 2})])
    result = planned(problem)
    assert [u.visit for u in result.unassigned] == ["v"]
    assert result.unassigned[0].code == "no_skill"


def test_skills_not_binding_lets_the_nearest_technician_go() -> None:
    """Not binding: both hold the skill, so the technician next door takes the visit."""
    near = tech("near", skills={"aircon": 2})
    far = tech("far", start_location=9, end_location=9, skills={"aircon": 2})
    problem = line_problem([near, far], [visit("v", 1, skills={"aircon": 1})])
    assert planned(problem).route_of("near") is not None


def test_window_forces_the_far_visit_first() -> None:
    """Binding: the far visit must start by 09:00, so the route goes out first, then back."""
    visits = [visit("far", 5, window=(DAY_START, 9 * HOUR)), visit("near", 1)]
    route = planned(line_problem([tech()], visits)).route_of("T1")
    assert route is not None and route.visit_ids == ("far", "near")


def test_wide_window_does_not_bind() -> None:
    """Not binding: with an all-day window, the plan drives no more than out and back."""
    visits = [visit("far", 5, window=(DAY_START, 16 * HOUR)), visit("near", 1)]
    assert planned(line_problem([tech()], visits)).kpis.travel_time == 10 * 600


def test_service_starts_inside_the_second_of_two_windows() -> None:
    """A visit with two windows, the first unreachable, starts inside the second one."""
    wins = (TimeWindow(0, DAY_START), TimeWindow(14 * HOUR, 15 * HOUR))
    problem = line_problem([tech()], [replace(visit("v", 2), windows=wins)])
    stop = planned(problem).route_of("T1").stops[0]  # type: ignore[union-attr]
    assert 14 * HOUR <= stop.start <= 15 * HOUR
    assert stop.waiting == stop.start - stop.arrival


def test_gap_between_windows_is_never_used() -> None:
    """Service never starts between two windows, even when that is when the technician comes."""
    wins = (TimeWindow(DAY_START, DAY_START + 5 * MINUTE), TimeWindow(10 * HOUR, 11 * HOUR))
    problem = line_problem([tech()], [replace(visit("v", 2), windows=wins)])
    stop = planned(problem).route_of("T1").stops[0]  # type: ignore[union-attr]
    assert 10 * HOUR <= stop.start <= 11 * HOUR


def test_lunch_break_is_placed_in_its_start_range() -> None:
    """Binding: a full day gets its 45-minute lunch starting between 11:30 and 12:45."""
    visits = [visit(f"v{i}", 1 + i % 3, duration=HOUR) for i in range(6)]
    route = planned(line_problem([tech(breaks=(lunch(),))], visits)).route_of("T1")
    assert route is not None and len(route.breaks) == 1
    brk = route.breaks[0]
    assert 11 * HOUR + 30 * MINUTE <= brk.start <= 12 * HOUR + 45 * MINUTE
    assert brk.duration == 45 * MINUTE


def test_lunch_break_pushes_the_afternoon_visit_later() -> None:
    """Binding: a visit that would start at 12:00 is delayed by the lunch in front of it."""
    at_once = DAY_START + 10 * MINUTE
    morning = visit("m", 1, duration=3 * HOUR + 30 * MINUTE, window=(at_once, at_once))
    noon = visit("n", 1, duration=HOUR)
    lunch_now = lunch(11 * HOUR + 40 * MINUTE, 11 * HOUR + 40 * MINUTE, HOUR)
    route = planned(line_problem([tech(breaks=(lunch_now,))], [morning, noon])).route_of("T1")
    assert route is not None and route.visit_ids == ("m", "n")
    assert route.stops[1].start >= 12 * HOUR + 40 * MINUTE


def test_pin_sends_the_visit_to_the_far_technician() -> None:
    """Binding: a visit pinned to the far-based technician goes to them."""
    problem = line_problem([tech("near"), tech("far", start_location=9, end_location=9)],
                           [visit("v", 1, pinned_technician="far")])
    assert planned(problem).route_of("far") is not None


def test_pinned_start_narrows_the_start_of_service() -> None:
    """Binding: a pinned start range at 15:00-15:10 is kept."""
    pin = TimeWindow(15 * HOUR, 15 * HOUR + 10 * MINUTE)
    problem = line_problem([tech()], [visit("v", 2, pinned_start=pin)])
    stop = planned(problem).route_of("T1").stops[0]  # type: ignore[union-attr]
    assert pin.contains(stop.start)


def test_locked_visit_stays_at_the_head_of_the_route() -> None:
    """Binding: a locked visit stays first on its technician's route although a nearer visit
    would otherwise come first."""
    locked = visit("locked", 5, pinned_technician="T1", locked=True,
                   pinned_start=TimeWindow(9 * HOUR, 9 * HOUR))
    problem = line_problem([tech()], [visit("near", 1), locked])
    route = planned(problem).route_of("T1")
    assert route is not None and route.visit_ids[0] == "locked"
    assert route.stops[0].start == 9 * HOUR


def test_locked_visits_keep_their_pinned_order() -> None:
    """Two locked visits come first in the order of their pinned starts."""
    a = visit("a", 4, pinned_technician="T1", locked=True,
              pinned_start=TimeWindow(10 * HOUR, 10 * HOUR))
    b = visit("b", 2, pinned_technician="T1", locked=True,
              pinned_start=TimeWindow(9 * HOUR, 9 * HOUR))
    problem = line_problem([tech()], [a, b, visit("c", 1)])
    route = planned(problem).route_of("T1")
    assert route is not None and route.visit_ids[:2] == ("b", "a")


def test_overtime_not_allowed_leaves_the_visit_out() -> None:
    """Binding: a visit that would end the day after 17:00 is left out without overtime."""
    long_visit = visit("v", 5, duration=8 * HOUR)
    result = planned(line_problem([tech()], [long_visit]))
    assert [u.visit for u in result.unassigned] == ["v"]


def test_overtime_allowed_takes_the_visit_and_costs_it() -> None:
    """With an hour of overtime allowed, the visit is done and the overtime is costed."""
    long_visit = visit("v", 5, duration=8 * HOUR)
    result = planned(line_problem([tech(max_overtime=HOUR)], [long_visit]))
    route = result.route_of("T1")
    assert route is not None and route.overtime == 40 * MINUTE
    assert result.objective["overtime"] == 40 * MINUTE * 2


def test_capacity_splits_the_loads_over_two_technicians() -> None:
    """Binding: two loads of 3 do not fit one van of capacity 4."""
    techs = [tech("a", capacity=4), tech("b", capacity=4)]
    problem = line_problem(techs, [visit("x", 1, load=3), visit("y", 2, load=3)])
    assert planned(problem).kpis.technicians_used == 2


def test_capacity_not_binding_keeps_one_technician() -> None:
    """Not binding: with room for both loads one technician does both visits."""
    techs = [tech("a", capacity=10), tech("b", capacity=10)]
    problem = line_problem(techs, [visit("x", 1, load=3), visit("y", 2, load=3)])
    assert planned(problem).kpis.technicians_used == 1


def test_max_visits_caps_the_route() -> None:
    """Binding: at most two visits per technician spreads three visits over two routes."""
    techs = [tech("a", max_visits=2), tech("b", max_visits=2)]
    problem = line_problem(techs, [visit(f"v{i}", 1) for i in range(3)])
    result = planned(problem)
    assert max(len(r.stops) for r in result.routes) == 2


def test_slower_technician_needs_longer_service() -> None:
    """The duration factor scales the service time on the route."""
    problem = line_problem([tech(duration_factor=1.5)], [visit("v", 1, duration=HOUR)])
    stop = planned(problem).route_of("T1").stops[0]  # type: ignore[union-attr]
    assert stop.end - stop.start == 90 * MINUTE


def test_soft_due_time_is_costed_not_enforced() -> None:
    """A due time that cannot be met is missed and its lateness costed per second."""
    late = visit("v", 5, due=DAY_START + 10 * MINUTE, lateness_cost=3)
    result = planned(line_problem([tech()], [late]))
    stop = result.route_of("T1").stops[0]  # type: ignore[union-attr]
    assert stop.lateness == 40 * MINUTE
    assert result.objective["lateness"] == 40 * MINUTE * 3


def test_required_visit_nobody_can_do_is_an_error() -> None:
    """A required visit that no technician can do is reported, naming the visit."""
    problem = line_problem([tech()], [visit("v", 1, required=True, skills={"gas": 1})])
    with pytest.raises(ValueError, match="'v'"):
        solve(problem, PARAMS)


def test_fixed_cost_and_weights_enter_the_objective() -> None:
    """The objective's terms follow the weights: distance per metre and the fixed cost."""
    problem = line_problem([tech(fixed_cost=1000)], [visit("v", 2)])
    problem = Problem(problem.durations, problem.distances, problem.technicians, problem.visits,
                      Weights(travel_time=0, distance=1))
    result = planned(problem)
    assert result.objective["distance"] == 2 * 2 * 5000
    assert result.objective["fixed"] == 1000
    assert result.objective["total"] == 21_000


def test_solver_plan_shows_the_lunch_taken_at_the_door_after_the_drive() -> None:
    """The same day solved by the engine: the technician's list shows B reached at 11:30 (the
    drive done before lunch), with the lunch between arrival and start, not counted as waiting."""
    t = tech(breaks=(lunch(11 * HOUR + 30 * MINUTE, 11 * HOUR + 30 * MINUTE),))
    a = visit("A", 1, duration=3 * HOUR, window=(8 * HOUR + 10 * MINUTE, 8 * HOUR + 10 * MINUTE))
    b = visit("B", 3, window=(12 * HOUR + 15 * MINUTE, 12 * HOUR + 15 * MINUTE))
    result = planned(line_problem([t], [a, b]), ortools_only())
    (route,) = result.routes
    stop = route.stops[1]
    assert (stop.visit, stop.arrival, stop.start) == ("B", 11 * HOUR + 30 * MINUTE,
                                                      12 * HOUR + 15 * MINUTE)
    assert stop.waiting == 0
