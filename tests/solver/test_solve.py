"""solve(): warm starts, determinism, the portfolio, reasons and the PyVRP start."""

from __future__ import annotations

from dataclasses import replace

import pytest

from solver import pyvrp_start, vroom_start
from solver.check import check_result
from solver.model import Problem, TimeWindow, Weights
from solver.params import SolveParams
from solver.result import Result
from solver.solve import recipes_for, solve
from tests.solver.helpers import line_problem, synthetic_day, tech, visit

PARAMS = SolveParams(time_limit=None, solution_limit=10, seed=3)


@pytest.fixture(scope="module")
def small_day() -> tuple[Problem, dict[str, list[str]]]:
    """A seeded 3-technician, 20-visit day with lunches, skills and 2-hour windows."""
    return synthetic_day(seed=7, technicians=3, visits=20)


def checked(problem: Problem, result: Result) -> Result:
    """The result, after the independent checker found nothing wrong with it."""
    assert check_result(problem, result) == []
    return result


def test_warm_start_returns_the_given_optimal_plan() -> None:
    """Given the optimal plan, solve returns exactly that plan."""
    problem = line_problem([tech()], [visit("a", 1), visit("b", 2), visit("c", 3)])
    given = {"T1": ["a", "b", "c"]}
    result = checked(problem, solve(problem, PARAMS, initial_routes=given))
    assert result.as_routes() == given


def test_warm_start_is_improved_when_it_can_be() -> None:
    """A zig-zag starting plan is replaced by the better out-and-back one."""
    problem = line_problem([tech()], [visit("a", 1), visit("b", 2), visit("c", 3)])
    result = checked(problem, solve(problem, PARAMS, initial_routes={"T1": ["c", "a", "b"]}))
    assert result.kpis.travel_time == 6 * 600


def test_invalid_warm_start_degrades_gracefully() -> None:
    """Unknown visits, visits given twice and a visit on a technician without the skill are
    dropped from the warm start; the plan still covers every doable visit."""
    techs = [tech("A", skills={"gas": 1}), tech("B")]
    visits = [visit("a", 1), visit("g", 2, skills={"gas": 1}), visit("c", 3)]
    problem = line_problem(techs, visits)
    given = {"B": ["g", "a", "zzz", "a"], "A": ["c"]}
    result = checked(problem, solve(problem, PARAMS, initial_routes=given))
    assert result.kpis.visits_unassigned == 0
    assert "g" in result.as_routes()["A"]


def test_same_seed_gives_the_same_plan(small_day: tuple[Problem, dict[str, list[str]]]) -> None:
    """Two deterministic solves with one seed return identical routes and objective."""
    problem, _ = small_day
    first, second = solve(problem, PARAMS), solve(problem, PARAMS)
    assert first.as_routes() == second.as_routes()
    assert first.objective == second.objective


def test_day_plan_is_valid_and_no_worse_than_the_greedy_plan(
        small_day: tuple[Problem, dict[str, list[str]]]) -> None:
    """On a realistic small day the plan passes the checker and beats a greedy plan's
    objective when warm-started from it."""
    problem, greedy = small_day
    from_greedy = checked(problem, solve(problem, PARAMS, initial_routes=greedy))
    cold = checked(problem, solve(problem, PARAMS))
    baseline = solve(problem, replace(PARAMS, solution_limit=1, use_pyvrp=False),
                     initial_routes=greedy)
    assert from_greedy.objective["total"] <= baseline.objective["total"]
    assert cold.kpis.visits_planned >= baseline.kpis.visits_planned - 1


def test_portfolio_of_two_workers_keeps_the_best(
        small_day: tuple[Problem, dict[str, list[str]]]) -> None:
    """With two workers both searches run and the winner has the lowest objective."""
    problem, _ = small_day
    result = checked(problem, solve(problem, replace(PARAMS, workers=2)))
    objectives = result.stats["objectives"]
    assert len(set(objectives) - {"constructed"}) == 2  # type: ignore[arg-type]
    assert result.objective["total"] == min(objectives.values())  # type: ignore[union-attr]


def test_tiny_problems_skip_the_pool() -> None:
    """A problem of three visits runs one search even when more workers are allowed."""
    problem = line_problem([tech()], [visit("a", 1), visit("b", 2), visit("c", 3)])
    assert len(recipes_for(problem, replace(PARAMS, workers=2))) == 1


def test_unassigned_visits_get_reasons() -> None:
    """A visit nobody is skilled for is unassigned with a reason in both languages."""
    problem = line_problem([tech()], [visit("a", 1), visit("x", 2, skills={"gas": 1})])
    result = checked(problem, solve(problem, PARAMS))
    (reason,) = result.unassigned
    assert reason.visit == "x" and reason.code and reason.message_en and reason.message_zh


def test_pyvrp_start_respects_skills_and_several_windows() -> None:
    """PyVRP's starting routes never give a visit to a technician without its skill and do
    each multi-window visit once."""
    techs = [tech("A", skills={"gas": 1}), tech("B", start_location=9, end_location=9)]
    multi = replace(visit("m", 5), windows=synthetic_windows())
    problem = line_problem(techs, [visit("g", 8, skills={"gas": 1}), multi, visit("b", 9)])
    routes = pyvrp_start.pyvrp_routes(problem, seed=0, time_limit=None, iterations=200)
    assert routes is not None
    assert "g" in routes.get("A", [])
    assert sum(r.count("m") for r in routes.values()) == 1


def test_vroom_start_respects_skills_pins_windows_and_breaks(
        small_day: tuple[Problem, dict[str, list[str]]]) -> None:
    """VROOM's starting routes serve at least as many visits as a greedy plan, each by a
    technician allowed to do it and at most once, and OR-Tools keeps them all when it times
    them with the lunch breaks."""
    problem, greedy = small_day
    first = problem.visits[0]
    holder = [t for t in problem.technicians if t.can_do(first)][-1]
    pinned = replace(first, pinned_technician=holder.id)
    problem = Problem(problem.durations, problem.distances, problem.technicians,
                      (pinned,) + problem.visits[1:])
    routes = vroom_start.vroom_routes(problem, time_limit=None)
    assert routes is not None
    served = [v for ids in routes.values() for v in ids]
    assert len(served) == len(set(served))
    assert len(served) >= sum(len(ids) for ids in greedy.values())
    assert all(pinned.id not in ids for t, ids in routes.items() if t != holder.id)
    by_id = {t.id: t for t in problem.technicians}
    for tech_id, ids in routes.items():
        assert all(by_id[tech_id].can_do(problem.visits[problem.visit_index(v)]) for v in ids)
    plan = solve(problem, replace(PARAMS, use_pyvrp=False, solution_limit=1),
                 initial_routes=routes)
    checked(problem, plan)
    assert plan.kpis.visits_planned >= len(served)


def test_vroom_start_keeps_multi_window_visits_once() -> None:
    """A visit with a morning and an afternoon window is served once, inside one of them."""
    multi = replace(visit("m", 5), windows=synthetic_windows())
    problem = line_problem([tech("A"), tech("B")], [multi, visit("b", 9)])
    routes = vroom_start.vroom_routes(problem, time_limit=None)
    assert routes is not None
    assert sum(r.count("m") for r in routes.values()) == 1


def synthetic_windows() -> tuple[TimeWindow, ...]:
    """Two windows: morning and afternoon."""
    return (TimeWindow(9 * 3600, 10 * 3600), TimeWindow(14 * 3600, 15 * 3600))


def test_required_visit_is_planned_even_when_costly() -> None:
    """A required visit far away is planned although its penalty alone would not pay for it."""
    far = visit("far", 9, required=True)
    problem = line_problem([tech()], [far], places=10, seconds_per_step=1200)
    problem = Problem(problem.durations, problem.distances, problem.technicians, problem.visits,
                      Weights(travel_time=100))
    assert 100 * 2 * 9 * 1200 > far.unassigned_penalty
    result = checked(problem, solve(problem, PARAMS))
    assert result.kpis.visits_unassigned == 0


def test_day_without_technicians_leaves_every_visit_out() -> None:
    """With nobody working, every visit is unassigned, each with a reason."""
    problem = line_problem([], [visit("a", 1), visit("b", 2)])
    result = checked(problem, solve(problem, PARAMS))
    assert [u.visit for u in result.unassigned] == ["a", "b"]
    assert result.routes == ()


def test_day_without_visits_is_an_empty_plan() -> None:
    """With nothing to do, the plan is empty and costs nothing."""
    problem = line_problem([tech()], [])
    result = checked(problem, solve(problem, PARAMS))
    assert result.routes == () and result.objective["total"] == 0


def test_pyvrp_gets_more_time_when_it_sees_the_whole_problem() -> None:
    """PyVRP's budget: its share normally, nearly everything when OR-Tools only confirms."""
    from solver.solve import pyvrp_seconds

    assert pyvrp_seconds(10.0, 0.6) == pytest.approx(6.0)
    assert pyvrp_seconds(10.0, 0.9) == pytest.approx(9.0)
    assert pyvrp_seconds(10.0, 0.6, exact=True) == pytest.approx(9.5)
    assert pyvrp_seconds(2.0, 0.9) == pytest.approx(1.0)
    assert pyvrp_seconds(None, 0.9) is None


def test_warm_start_in_an_impossible_order_is_repaired() -> None:
    """A warm start that visits the afternoon customer before the morning one is repaired (the
    morning visit re-inserted in front), not thrown away."""
    from solver.engine import RoutingEngine

    morning = visit("early", 2, window=(8 * 3600, 9 * 3600))
    afternoon = visit("late", 3, window=(15 * 3600, 16 * 3600))
    problem = line_problem([tech()], [morning, afternoon])
    engine = RoutingEngine(problem)
    assert engine.warm_assignment({"T1": ["late", "early"]}) is not None
    assert engine.warm_routes == [[0, 1]]


def test_vroom_tries_only_the_encodings_that_differ(
        small_day: tuple[Problem, dict[str, list[str]]]) -> None:
    """Without SLA due times the urgency variants are the same input, and without overtime the
    overtime variants are: VROOM is not asked the same question twice."""
    problem, _ = small_day
    assert len(vroom_start.distinct_encodings(problem)) == 2  # overtime allowed, no due times
    plain = Problem(problem.durations, problem.distances,
                    tuple(replace(t, max_overtime=0) for t in problem.technicians),
                    problem.visits)
    assert vroom_start.distinct_encodings(plain) == [vroom_start.Encoding()]
