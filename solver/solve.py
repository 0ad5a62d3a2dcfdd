"""``solve``: a problem in, the best plan found within the budget out.

First a quick plan: the given routes (or none) completed by cheapest feasible insertion, so a
valid plan exists within a second or two. Then one worker: a stronger search builds starting
routes and OR-Tools completes and polishes them under the full model with guided local search.
The starting routes come from PyVRP when it sees the whole problem (plain windows and
capacities, e.g. Solomon: it is by far the strongest there), else from VROOM, which places
lunch breaks exactly where PyVRP can only shorten the shift. Several workers: the other start,
other seeds or other OR-Tools starts, each in its own process; the best objective wins. Every
searched plan comes out of the one OR-Tools model, so every constraint is enforced there; the
quick plan is timed by the forward scheduler, which enforces the same rules.

Two optional hooks serve a dispatcher's board: ``stop`` (anything with ``is_set()``) ends the
search soon with the best plan so far, and ``progress(fraction, best_objective)`` is called from
the calling process now and then, with rising fractions, ending with 1.0.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from solver import engine, pyvrp_start, vroom_start
from solver.engine import EngineOutcome, RoutingEngine, SearchConfig, SearchHooks
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
#: Progress is reported at most this often (seconds), and below 1.0 until the plan is ready.
PROGRESS_INTERVAL = 0.1
LAST_PARTIAL_FRACTION = 0.99
#: Without a time limit, progress counts work: the quick plan, PyVRP's iterations, then
#: OR-Tools' solutions share the way to 1.0 like this (a VROOM start jumps to its end).
FIRST_PLAN_FRACTION = 0.05
START_DONE_FRACTION = 0.5
#: "No plan yet" in the objective shared between worker processes.
NO_OBJECTIVE = 2**62


class StopSignal(Protocol):
    """Anything that says whether to stop, e.g. ``threading.Event`` or
    ``multiprocessing.Event``."""

    def is_set(self) -> bool:
        """Whether the search should end now."""
        ...


ProgressCallback = Callable[[float, "int | None"], None]


@dataclass(frozen=True)
class Recipe:
    """What one worker does: maybe starting routes from PyVRP (with a seed) or VROOM first
    (``start``: "pyvrp", "vroom" or ""), then one OR-Tools search."""

    name: str
    start: str
    seed: int
    first_solution: str


@dataclass(frozen=True)
class Watch:
    """What a worker's search consults: whether to end now (``should_stop``), and where to
    report its progress (``report(fraction, objective)``: its own share of work done, and the
    objective of a plan it found, or None)."""

    should_stop: Callable[[], bool]
    report: Callable[[float, "int | None"], None]

    @staticmethod
    def idle() -> Watch:
        """A watch that never stops the search and hears nothing."""
        return Watch(lambda: False, lambda fraction, objective: None)


def solve(problem: Problem, params: SolveParams = SolveParams(),
          initial_routes: Mapping[str, Sequence[str]] | None = None, *,
          stop: StopSignal | None = None,
          progress: ProgressCallback | None = None) -> Result:
    """Plan the problem: routes with timings, unassigned visits with reasons, KPIs, objective.

    ``initial_routes`` (technician id -> visit ids) warm-start the search; when nothing better is
    found they come back unchanged (scheduled). Deterministic when ``params.solution_limit`` is
    set and ``params.time_limit`` does not bind. When ``stop.is_set()`` turns true the search
    ends soon with the best plan so far (already set: the quick first plan).
    ``progress(fraction, best_objective)`` is called from the calling process with rising
    fractions, last with 1.0 and the returned plan's objective.
    """
    began = time.perf_counter()
    if not problem.visits or not problem.technicians:
        result = _nobody_to_route(problem, began)
        if progress is not None:
            progress(1.0, result.objective["total"])
        return result
    deadline = None
    if params.time_limit is not None:
        deadline = time.time() + params.time_limit - FINISHING_SECONDS
    reporter = Reporter(progress, params.time_limit, began)
    outcomes: list[tuple[str, EngineOutcome | None]] = []
    first = RoutingEngine(problem).constructed_outcome(initial_routes)
    if first is not None:
        reporter.update(FIRST_PLAN_FRACTION, first.objective["total"])
    first_seconds = round(time.perf_counter() - began, 3)
    recipes = recipes_for(problem, params)
    if first is None or not _is_set(stop):
        if len(recipes) > 1:
            outcomes += _run_pool(problem, params, recipes, initial_routes, deadline, stop,
                                  reporter)
        else:
            watch = Watch(lambda: _is_set(stop) and reporter.best is not None, reporter.update)
            outcomes.append((recipes[0].name, run_recipe(problem, params, recipes[0],
                                                         initial_routes, deadline, watch)))
    # Last, so that a search that only matched the quick plan is named the winner.
    outcomes.append(("constructed", first))
    found = [(name, out) for name, out in outcomes if out is not None]
    if not found:
        raise RuntimeError("No plan could be found: a required visit cannot be served in any "
                           "technician's day.")
    winner, best = min(found, key=lambda item: item[1].objective["total"])
    timed_out = any(out.warm_start_timed_out for _, out in found)
    if initial_routes is not None:
        given = RoutingEngine(problem).evaluate(initial_routes)
        timed_out = timed_out or (given is not None and given.warm_start_timed_out)
        if given is not None and given.objective["total"] <= best.objective["total"]:
            winner, best = "initial_routes", given
    result = assemble(problem, best, {
        "status": best.status,
        "winner": winner,
        "workers": len(recipes),
        "warm_start": best.warm_start_used,
        # OR-Tools could not read the given routes in its budget (the forward-scheduled
        # repaired routes stood in for them).
        "warm_start_timeout": timed_out,
        "stopped": _is_set(stop),
        "first_plan_seconds": first_seconds,
        "wall_time": round(time.perf_counter() - began, 3),
        "objectives": {name: out.objective["total"] for name, out in found},
    })
    reporter.finish(result.objective["total"])
    return result


def _is_set(stop: StopSignal | None) -> bool:
    return stop is not None and stop.is_set()


class Reporter:
    """Calls the caller's progress hook from the calling process: rising fractions (by work
    done, or by time when there is a time limit), the best objective so far, not too often."""

    def __init__(self, progress: ProgressCallback | None, time_limit: float | None,
                 began: float) -> None:
        self.progress = progress
        self.time_limit = time_limit
        self.began = began
        self.fraction = 0.0
        self.best: int | None = None
        self.last_call: float | None = None

    def update(self, fraction: float, objective: int | None = None) -> None:
        """Note a worker's progress and a plan's objective; maybe tell the caller."""
        if objective is not None and (self.best is None or objective < self.best):
            self.best = objective
        if self.progress is None:
            return
        now = time.perf_counter()
        if self.time_limit is not None:
            fraction = max(fraction, (now - self.began) / self.time_limit)
        fraction = min(fraction, LAST_PARTIAL_FRACTION)
        if fraction <= self.fraction:
            return
        if self.last_call is not None and now - self.last_call < PROGRESS_INTERVAL:
            return
        self.fraction, self.last_call = fraction, now
        self.progress(fraction, self.best)

    def finish(self, objective: int) -> None:
        """The plan is ready: report 1.0 with its objective."""
        self.best = objective
        if self.progress is not None:
            self.progress(1.0, objective)


def _nobody_to_route(problem: Problem, began: float) -> Result:
    """The plan of a day without visits or without technicians: nothing is routed, and every
    visit (required or not) is unassigned with its reason."""
    ids = tuple(v.id for v in problem.visits)
    # Required visits cannot be kept without anybody to do them: the plan says so.
    status = "infeasible" if any(v.required or v.locked for v in problem.visits) else "success"
    outcome = EngineOutcome((), ids, status, False, engine.objective_terms(problem, (), ids))
    return assemble(problem, outcome, {"status": status, "winner": "none", "workers": 0,
                                       "warm_start": False, "warm_start_timeout": False,
                                       "stopped": False,
                                       "first_plan_seconds": 0.0,
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
    """The workers' recipes, strongest first: PyVRP-started searches when PyVRP sees the whole
    problem, else the VROOM-started one; then the other start and pure OR-Tools searches with
    different first-solution strategies."""
    first = "path_cheapest_arc" if params.first_solution == "auto" else params.first_solution
    other = "local_cheapest_insertion" if first != "local_cheapest_insertion" else "savings"
    pyvrp_ok = params.use_pyvrp and pyvrp_start.can_express(problem)
    pyvrp = [Recipe("pyvrp+ortools", "pyvrp", params.seed, first),
             Recipe("pyvrp+ortools:seed2", "pyvrp", params.seed + 1, first)] if pyvrp_ok else []
    vroom = [Recipe("vroom+ortools", "vroom", params.seed, first)] if params.use_vroom else []
    ortools = [Recipe(f"ortools:{first}", "", params.seed, first),
               Recipe(f"ortools:{other}", "", params.seed, other)]
    if pyvrp_ok and pyvrp_start.is_exact(problem):
        recipes = pyvrp + vroom + ortools
    else:
        recipes = vroom + pyvrp[:1] + ortools[:1] + pyvrp[1:] + ortools[1:]
    small = (len(problem.visits) < POOL_MIN_VISITS
             or (params.time_limit is not None and params.time_limit < POOL_MIN_SECONDS))
    count = 1 if small else params.workers
    return recipes[:count]


def run_recipe(problem: Problem, params: SolveParams, recipe: Recipe,
               initial_routes: Mapping[str, Sequence[str]] | None,
               deadline: float | None = None, watch: Watch | None = None) -> EngineOutcome | None:
    """Run one worker's recipe by ``deadline`` (``time.time()`` seconds; by default the time
    limit of ``params`` from now), consulting ``watch`` on the way."""
    watch = watch if watch is not None else Watch.idle()
    if deadline is None and params.time_limit is not None:
        deadline = time.time() + params.time_limit
    start = dict(initial_routes) if initial_routes is not None else None
    if start is None and recipe.start and not watch.should_stop():
        start = _starting_routes(problem, params, recipe, deadline, watch)
        if watch.should_stop():
            # Stopped while the start was built: it, completed by the scheduler, is the plan.
            return RoutingEngine(problem).constructed_outcome(start)
    remaining = _left(deadline)
    config = SearchConfig(recipe.first_solution, params.metaheuristic, params.gls_lambda,
                          remaining, params.solution_limit, params.log_search)
    return engine.run_search(problem, config, start, _ortools_hooks(watch, params))


def _starting_routes(problem: Problem, params: SolveParams, recipe: Recipe,
                     deadline: float | None, watch: Watch) -> dict[str, list[str]] | None:
    """The recipe's starting routes from PyVRP or VROOM, within their share of the time."""
    left = _left(deadline)
    if recipe.start == "vroom":
        routes = vroom_start.best_vroom_routes(problem, None if left is None
                                               else left * params.vroom_share)
        watch.report(START_DONE_FRACTION, None)
        return routes
    iterations = (None if params.solution_limit is None
                  else params.solution_limit * PYVRP_ITERATIONS_PER_SOLUTION)
    return pyvrp_start.pyvrp_routes(
        problem, recipe.seed,
        pyvrp_seconds(left, params.pyvrp_share, pyvrp_start.is_exact(problem)),
        iterations, _pyvrp_interrupt(watch, iterations))


def _pyvrp_interrupt(watch: Watch, iterations: int | None) -> Callable[[int], bool]:
    """PyVRP's extra stopping test: report the share of its iterations done, stop on demand."""
    span = START_DONE_FRACTION - FIRST_PLAN_FRACTION

    def interrupt(iteration: int) -> bool:
        done = min(1.0, iteration / iterations) if iterations else 0.0
        watch.report(FIRST_PLAN_FRACTION + span * done, None)
        return watch.should_stop()
    return interrupt


def _ortools_hooks(watch: Watch, params: SolveParams) -> SearchHooks:
    """OR-Tools' hooks: report each solution (as a share of the solution limit), stop on
    demand."""
    span = LAST_PARTIAL_FRACTION - START_DONE_FRACTION
    solutions = [0]

    def on_solution(objective: int) -> None:
        solutions[0] += 1
        done = solutions[0] / params.solution_limit if params.solution_limit else 0.0
        watch.report(START_DONE_FRACTION + span * min(1.0, done), objective)
    return SearchHooks(watch.should_stop, on_solution)


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


# --------------------------------------------------------------------- the worker processes
#: In a worker process: the stop flag, and per worker its share of work done and its best
#: objective. Plain shared memory without locks: each worker writes only its own slots, and a
#: lock held across a fork could hang the search.
_SHARED: dict[str, Any] = {}


def _share_with_workers(stop_flag: Any, fractions: Any, objectives: Any) -> None:
    """Pool initializer: keep the shared state the parent handed over at fork time."""
    _SHARED.update(stop=stop_flag, fractions=fractions, objectives=objectives)


def _worker_watch(slot: int, have_plan: bool) -> Watch:
    """A worker process's watch: the shared stop flag (it stops only once some plan exists:
    ``have_plan``, or one of its own) and its own progress slots."""
    stop_flag, fractions, objectives = _SHARED["stop"], _SHARED["fractions"], _SHARED["objectives"]

    def should_stop() -> bool:
        return bool(stop_flag.value) and (have_plan or objectives[slot] < NO_OBJECTIVE)

    def report(fraction: float, objective: int | None) -> None:
        fractions[slot] = max(fractions[slot], fraction)
        if objective is not None:
            objectives[slot] = min(objectives[slot], objective)
    return Watch(should_stop, report)


def _pool_task(problem: Problem, params: SolveParams, recipe: Recipe,
               initial_routes: Mapping[str, Sequence[str]] | None, deadline: float | None,
               slot: int, have_plan: bool) -> EngineOutcome | None:
    return run_recipe(problem, params, recipe, initial_routes, deadline,
                      _worker_watch(slot, have_plan))


def _run_pool(problem: Problem, params: SolveParams, recipes: Sequence[Recipe],
              initial_routes: Mapping[str, Sequence[str]] | None, deadline: float | None,
              stop: StopSignal | None, reporter: Reporter,
              ) -> list[tuple[str, EngineOutcome | None]]:
    # fork: the children inherit the imported solvers instead of importing them again, and the
    # shared memory (which may only be handed over at start).
    context = multiprocessing.get_context("fork")
    stop_flag = context.RawValue("b", 0)
    fractions = context.RawArray("d", len(recipes))
    objectives = context.RawArray("q", [NO_OBJECTIVE] * len(recipes))
    have_plan = reporter.best is not None
    with ProcessPoolExecutor(max_workers=len(recipes), mp_context=context,
                             initializer=_share_with_workers,
                             initargs=(stop_flag, fractions, objectives)) as pool:
        futures = [
            # Only the first worker starts from the given plan; the others search afresh.
            (r.name, pool.submit(_pool_task, problem, params, r,
                                 None if initial_routes is None or n else dict(initial_routes),
                                 deadline, n, have_plan))
            for n, r in enumerate(recipes)
        ]
        _watch_pool([f for _, f in futures], stop, stop_flag, fractions, objectives, reporter)
        return [(name, future.result()) for name, future in futures]


def _watch_pool(futures: Sequence[Future[EngineOutcome | None]], stop: StopSignal | None,
                stop_flag: Any, fractions: Any, objectives: Any, reporter: Reporter) -> None:
    """Until every worker is done: pass the caller's stop on, report the workers' progress."""
    pending = set(futures)
    while pending:
        _, pending = wait(pending, timeout=PROGRESS_INTERVAL, return_when=FIRST_COMPLETED)
        if _is_set(stop):
            stop_flag.value = 1
        best = min(objectives)
        reporter.update(min(fractions), None if best >= NO_OBJECTIVE else best)
