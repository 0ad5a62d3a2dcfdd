"""The day benchmark's problems: each outlet-day of a dataset as the solver sees it, and the
shared evaluation of another solver's routes."""

from __future__ import annotations

from benchmarks.days import outlet_days, result_of_routes, run_of
from fixtures import Dataset
from solver.engine import RoutingEngine
from tests.datasets.conftest import dataset


def test_each_outlet_day_is_a_valid_problem(qingdao: Dataset) -> None:
    """qingdao gives one problem per outlet holding exactly that outlet's visits and its
    working technicians, each with a lunch break, every visit doable by someone."""
    days = outlet_days(qingdao)
    assert [d.outlet for d in days] == [o.code for o in qingdao.outlets]
    assert sum(len(d.problem.visits) for d in days) == len(qingdao.visits)
    for day in days:
        assert all(t.id.startswith(day.outlet) and len(t.breaks) == 1
                   for t in day.problem.technicians)
        assert all(day.problem.capable_technicians(v) for v in day.problem.visits)


def test_qingdao_quick_plan_serves_most_visits(qingdao: Dataset) -> None:
    """Even the quick insertion plan (no search) serves at least 80 % of qingdao's visits: the
    demand is one the outlets can mostly serve."""
    served = total = 0
    for day in outlet_days(qingdao):
        plan = RoutingEngine(day.problem).constructed_outcome()
        assert plan is not None
        served += sum(len(r.stops) for r in plan.routes)
        total += len(day.problem.visits)
    assert served >= 0.8 * total


def test_evaluation_flags_a_route_that_breaks_the_rules() -> None:
    """A route the scheduler cannot time (every tiny visit on one technician) is a violation;
    a valid quick plan has none."""
    (day,) = outlet_days(dataset("tiny"))
    problem = day.problem
    plan = RoutingEngine(problem).constructed_outcome()
    assert plan is not None
    good = result_of_routes(problem, {r.technician: list(r.visit_ids) for r in plan.routes}, "x")
    assert run_of(day.outlet, "x", 1, 1.0, problem, good, 0.0).violations == []
    crammed = {problem.technicians[0].id: [v.id for v in problem.visits]}
    bad = result_of_routes(problem, crammed, "x")
    assert run_of(day.outlet, "x", 1, 1.0, problem, bad, 0.0).violations != []
