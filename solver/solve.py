"""``solve``: a problem in, the best plan found within the budget out.

One worker: PyVRP builds starting routes (when it can express the problem), OR-Tools completes
and polishes them under the full model with guided local search. Several workers: the same
recipe with other seeds or other OR-Tools starts, each in its own process; the best objective
wins. Every plan comes out of the one OR-Tools model, so every constraint is enforced there.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from solver import engine, pyvrp_start
from solver.engine import EngineOutcome, RoutingEngine, SearchConfig
from solver.model import Problem
from solver.params import SolveParams
from solver.reasons import explain_unassigned
from solver.result import Result

#: Below this many visits, or this many seconds, a second process costs more than it brings.
POOL_MIN_VISITS = 12
POOL_MIN_SECONDS = 1.5
#: PyVRP iterations per unit of ``solution_limit`` in deterministic runs.
PYVRP_ITERATIONS_PER_SOLUTION = 10
#: OR-Tools needs about this long to complete a warm start on a 250-visit day with breaks.
ORTOOLS_MIN_SECONDS = 1.0
#: When PyVRP sees the whole problem (e.g. Solomon), OR-Tools' polishing found nothing to improve
#: in 4 s on 12 Solomon instances: PyVRP gets nearly all of the budget.
EXACT_PYVRP_SHARE = 0.95
ORTOOLS_CONFIRM_SECONDS = 0.4
#: Kept back from the time limit for explaining the unassigned visits and assembling the result.
FINISHING_SECONDS = 0.15


@dataclass(frozen=True)
class Recipe:
    """What one worker does: maybe PyVRP with a seed first, then one OR-Tools search."""

    name: str
    use_pyvrp: bool
    seed: int
    first_solution: str


def solve(problem: Problem, params: SolveParams = SolveParams(),
          initial_routes: Mapping[str, Sequence[str]] | None = None) -> Result:
    """Plan the problem: routes with timings, unassigned visits with reasons, KPIs, objective.

    ``initial_routes`` (technician id -> visit ids) warm-start the search; when nothing better is
    found they come back unchanged (scheduled). Deterministic when ``params.solution_limit`` is
    set and ``params.time_limit`` does not bind.
    """
    began = time.perf_counter()
    if not problem.visits or not problem.technicians:
        return _nobody_to_route(problem, began)
    deadline = None
    if params.time_limit is not None:
        deadline = time.time() + params.time_limit - FINISHING_SECONDS
    recipes = recipes_for(problem, params)
    if len(recipes) > 1:
        outcomes = _run_pool(problem, params, recipes, initial_routes, deadline)
    else:
        outcomes = [(recipes[0].name,
                     run_recipe(problem, params, recipes[0], initial_routes, deadline))]
    found = [(name, out) for name, out in outcomes if out is not None]
    if not found:
        raise RuntimeError("No plan could be found: a required visit cannot be served in any "
                           "technician's day.")
    winner, best = min(found, key=lambda item: item[1].objective["total"])
    if initial_routes is not None:
        given = RoutingEngine(problem).evaluate(initial_routes)
        if given is not None and given.objective["total"] <= best.objective["total"]:
            winner, best = "initial_routes", given
    return assemble(problem, best, {
        "status": best.status,
        "winner": winner,
        "workers": len(recipes),
        "warm_start": best.warm_start_used,
        "wall_time": round(time.perf_counter() - began, 3),
        "objectives": {name: out.objective["total"] for name, out in found},
    })


def _nobody_to_route(problem: Problem, began: float) -> Result:
    """The plan of a day without visits or without technicians: nothing is routed."""
    if any(v.required for v in problem.visits):
        raise ValueError("The problem has required visits but no technicians (field "
                         "'technicians').")
    ids = tuple(v.id for v in problem.visits)
    outcome = EngineOutcome((), ids, "success", False, engine.objective_terms(problem, (), ids))
    return assemble(problem, outcome, {"status": "success", "winner": "none", "workers": 0,
                                       "warm_start": False,
                                       "wall_time": round(time.perf_counter() - began, 3),
                                       "objectives": {}})


def assemble(problem: Problem, outcome: EngineOutcome, stats: Mapping[str, object]) -> Result:
    """The Result of an engine outcome: reasons for the unassigned visits, KPIs, objective."""
    return Result(
        routes=outcome.routes,
        unassigned=explain_unassigned(problem, outcome.routes, outcome.unassigned),
        kpis=engine.kpis_of(problem, outcome.routes, outcome.unassigned),
        objective=dict(outcome.objective),
        stats=dict(stats),
    )


def recipes_for(problem: Problem, params: SolveParams) -> list[Recipe]:
    """The workers' recipes: PyVRP-started searches with different seeds first, then pure
    OR-Tools searches with different first-solution strategies."""
    first = "path_cheapest_arc" if params.first_solution == "auto" else params.first_solution
    pyvrp_ok = params.use_pyvrp and pyvrp_start.can_express(problem)
    recipes: list[Recipe] = []
    if pyvrp_ok:
        # PyVRP is by far the stronger search (Solomon, 10 s: ~0.5% gap against ~2.5% for
        # OR-Tools alone), so the first workers differ only in its seed.
        recipes.append(Recipe("pyvrp+ortools", True, params.seed, first))
        recipes.append(Recipe("pyvrp+ortools:seed2", True, params.seed + 1, first))
    recipes.append(Recipe(f"ortools:{first}", False, params.seed, first))
    other = "local_cheapest_insertion" if first != "local_cheapest_insertion" else "savings"
    recipes.append(Recipe(f"ortools:{other}", False, params.seed, other))
    small = (len(problem.visits) < POOL_MIN_VISITS
             or (params.time_limit is not None and params.time_limit < POOL_MIN_SECONDS))
    count = 1 if small else params.workers
    return recipes[:count]


def run_recipe(problem: Problem, params: SolveParams, recipe: Recipe,
               initial_routes: Mapping[str, Sequence[str]] | None,
               deadline: float | None = None) -> EngineOutcome | None:
    """Run one worker's recipe by ``deadline`` (``time.time()`` seconds; by default the time
    limit of ``params`` from now)."""
    if deadline is None and params.time_limit is not None:
        deadline = time.time() + params.time_limit
    start = dict(initial_routes) if initial_routes is not None else None
    if recipe.use_pyvrp and start is None:
        start = pyvrp_start.pyvrp_routes(
            problem, recipe.seed,
            pyvrp_seconds(_left(deadline), params.pyvrp_share, pyvrp_start.is_exact(problem)),
            None if params.solution_limit is None
            else params.solution_limit * PYVRP_ITERATIONS_PER_SOLUTION)
    remaining = _left(deadline)
    config = SearchConfig(recipe.first_solution, params.metaheuristic, params.gls_lambda,
                          remaining, params.solution_limit, params.log_search)
    return engine.run_search(problem, config, start)


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.05, deadline - time.time())


def pyvrp_seconds(time_limit: float | None, share: float, exact: bool = False) -> float | None:
    """PyVRP's part of the budget: its share, leaving OR-Tools enough to complete the plan.
    When PyVRP sees the whole problem, OR-Tools only confirms the plan and needs less."""
    if time_limit is None:
        return None
    if exact:
        share = max(share, EXACT_PYVRP_SHARE)
    reserve = ORTOOLS_CONFIRM_SECONDS if exact else ORTOOLS_MIN_SECONDS
    return max(0.1 * time_limit, min(share * time_limit, time_limit - reserve))


def _run_pool(problem: Problem, params: SolveParams, recipes: Sequence[Recipe],
              initial_routes: Mapping[str, Sequence[str]] | None, deadline: float | None,
              ) -> list[tuple[str, EngineOutcome | None]]:
    # fork: the children inherit the imported solvers instead of importing them again.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=len(recipes), mp_context=context) as pool:
        futures = [
            # Only the first worker starts from the given plan; the others search afresh.
            (r.name, pool.submit(run_recipe, problem, params, r,
                                 None if initial_routes is None or n else dict(initial_routes),
                                 deadline))
            for n, r in enumerate(recipes)
        ]
        return [(name, future.result()) for name, future in futures]


