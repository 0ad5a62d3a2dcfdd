"""Field-service days (qingdao, metro): our solver against VROOM on the same outlet-days.

Each outlet-day of a generated dataset becomes a ``solver.Problem`` by the planning rules of
``dispatch.planning`` (a fresh day: nothing published, nothing under way), built here straight
from the dataset without a database. Both solvers get the same day and the same wall-clock budget;
every answer is re-timed by the forward scheduler and checked by ``solver.check.check_result``
(windows, skills, breaks, shifts, limits): any violation is a failure.

    python -m benchmarks.days [--dataset qingdao|metro] [--time-limit S] [--long S] [--out F.md]

VROOM (pyvroom) sees the day as ``solver.vroom_start`` hands it over (the same encoding our
solver uses for its VROOM start): each technician's own start and end, the shift as the
vehicle's window (no overtime: VROOM cannot cost it, so it gets none), skills, levels and pins
(one VROOM skill per set of technicians allowed to do a visit), every start window, the lunch
break (a VROOM break with its start window and length), priorities (each visit's unassigned
penalty, SLA urgency included, in units of the smallest), the maximum number of visits, service
times per technician speed and travel time as cost. Not expressible: soft SLA due times and
overtime.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

import fixtures
from dispatch.planning import MAX_OVERTIME_SECONDS, OVERTIME_COST_PER_SECOND
from dispatch.timeutil import plan_epoch, to_seconds
from dispatch.travel import GreatCircleProvider
from solver import Break, Problem, SolveParams, Technician, TimeWindow, Visit, solve, vroom_start
from solver.check import check_result
from solver.engine import kpis_of, objective_terms
from solver.result import Result, Unassigned
from solver.schedule import schedule_route

DAY = date(2026, 11, 24)
RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class OutletDay:
    """One outlet's day as a solver problem."""

    outlet: str
    problem: Problem


@dataclass
class Run:
    """One solve of one outlet-day, re-checked."""

    outlet: str
    solver: str
    threads: int
    budget: float
    visits: int
    planned: int
    unassigned: int
    travel_time: int
    distance: int
    lateness: int
    overtime: int
    objective: int
    violations: list[str]
    wall: float
    first_feasible: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


# ------------------------------------------------------------------------- problems from data
def outlet_days(dataset: fixtures.Dataset) -> list[OutletDay]:
    """Every outlet-day of the dataset as a problem, as ``dispatch.planning`` would build it."""
    return [OutletDay(o.code, outlet_problem(dataset, o)) for o in dataset.outlets]


def outlet_problem(dataset: fixtures.Dataset, outlet: fixtures.Outlet) -> Problem:
    """The outlet's fresh day: working technicians, every visit with its planning windows."""
    epoch = plan_epoch(dataset.day, outlet.timezone)
    places: dict[tuple[float, float], int] = {}

    def place(lat: float, lon: float) -> int:
        return places.setdefault((float(lat), float(lon)), len(places))

    base = place(outlet.lat, outlet.lon)
    techs = {t.code: t for t in dataset.technicians}
    technicians = []
    for shift in dataset.shifts:
        tech = techs[shift.technician_code]
        if tech.outlet_code != outlet.code or not tech.active or shift.absent:
            continue
        technicians.append(_technician(tech, shift, epoch, base, place))
    technicians.sort(key=lambda t: t.id)
    tickets = {t.code: t for t in dataset.tickets}
    customers = {c.code: c for c in dataset.customers}
    visits = []
    for row in dataset.visits:
        if row.outlet_code != outlet.code:
            continue
        ticket = tickets[row.ticket_code]
        customer = customers[ticket.customer_code]
        visits.append(_visit(row, ticket, epoch, place(customer.lat, customer.lon)))
    provider = GreatCircleProvider(speed_kmh=outlet.speed_kmh, detour_factor=outlet.detour_factor)
    durations, distances = provider.matrices(list(places))
    return Problem(durations, distances, tuple(technicians), tuple(visits))


def _technician(tech: fixtures.Technician, shift: fixtures.TechnicianShift, epoch: object,
                base: int, place: Callable[[float, float], int]) -> Technician:
    start, end = to_seconds(shift.starts_at, epoch), to_seconds(shift.ends_at, epoch)
    home = place(tech.home_lat, tech.home_lon)
    lunch = shift.lunch_minutes * 60
    brk = Break(to_seconds(shift.lunch_window_start, epoch),
                to_seconds(shift.lunch_window_end, epoch) - lunch, lunch)
    return Technician(
        id=tech.code,
        start_location=home if shift.start_place == "home" else base,
        end_location=home if shift.end_place == "home" else base,
        shift_start=start, shift_end=end, skills=dict(tech.skills),
        max_overtime=MAX_OVERTIME_SECONDS, overtime_cost=OVERTIME_COST_PER_SECOND,
        breaks=(brk,), max_visits=tech.max_visits, duration_factor=tech.duration_factor)


def _visit(row: fixtures.Visit, ticket: fixtures.ServiceTicket, epoch: object,
           location: int) -> Visit:
    agreed = row.confirmation_status in ("confirmed", "reconfirmed") and row.agreed_start
    pairs = [(row.agreed_start, row.agreed_end)] if agreed else list(row.windows)
    merged: list[list[int]] = []
    for a, b in sorted(pairs):
        start, end = to_seconds(a, epoch), to_seconds(b, epoch)
        if merged and start <= merged[-1][1]:  # touching windows merge, as in planning
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    windows = tuple(TimeWindow(a, b) for a, b in merged)
    pinned_start = None
    if row.pinned_start_from is not None:
        pinned_start = TimeWindow(to_seconds(row.pinned_start_from, epoch),
                                  to_seconds(row.pinned_start_to, epoch))
    due = None if ticket.sla_deadline is None else max(0, to_seconds(ticket.sla_deadline, epoch))
    return Visit(id=row.code, location=location, duration=row.duration_minutes * 60,
                 windows=windows, skills=dict(row.required_skills), priority=row.priority,
                 due=due, pinned_technician=row.pinned_technician_code,
                 pinned_start=pinned_start)


# -------------------------------------------------------------------------------- evaluation
def result_of_routes(problem: Problem, routes: dict[str, list[str]], name: str) -> Result:
    """A Result for another solver's routes, timed by our forward scheduler (earliest timing;
    a route it cannot time stays as given, so the checker reports it)."""
    by_id = {t.id: t for t in problem.technicians}
    built, violations = [], []
    for tech_id, ids in routes.items():
        visits = [problem.visits[problem.visit_index(v)] for v in ids]
        schedule = schedule_route(problem, by_id[tech_id], visits)
        if not schedule.feasible:
            violations.append(f"{tech_id}: {schedule.violation.describe()}")
            continue
        built.append(schedule.to_route())
    done = {v for ids in routes.values() for v in ids}
    unassigned = tuple(v.id for v in problem.visits if v.id not in done)
    result = Result(tuple(built), tuple(Unassigned(v, name, "", "") for v in unassigned),
                    kpis_of(problem, built, unassigned),
                    objective_terms(problem, built, unassigned), {"violations": violations})
    return result


def run_of(outlet: str, solver: str, threads: int, budget: float, problem: Problem,
           result: Result, wall: float, first: float | None = None,
           extra: dict[str, object] | None = None) -> Run:
    """Re-check a result and keep its figures."""
    violations = list(result.stats.get("violations", [])) + check_result(problem, result)  # type: ignore[arg-type]
    k = result.kpis
    return Run(outlet, solver, threads, budget, len(problem.visits), k.visits_planned,
               k.visits_unassigned, k.travel_time, k.distance, k.lateness, k.overtime,
               int(result.objective["total"]), violations, round(wall, 2),
               None if first is None else round(first, 2), extra or {})


# ----------------------------------------------------------------------------------- solvers
def solve_ours(outlet: str, problem: Problem, budget: float, threads: int) -> Run:
    """Our solver with ``threads`` worker processes; records when a first plan was known."""
    began = time.perf_counter()
    first: list[float] = []

    def progress(fraction: float, objective: int | None) -> None:
        if objective is not None and not first:
            first.append(time.perf_counter() - began)

    result = solve(problem, SolveParams(time_limit=budget, workers=threads), progress=progress)
    wall = time.perf_counter() - began
    return run_of(outlet, "ours", threads, budget, problem, result, wall,
                  first[0] if first else None,
                  {"winner": result.stats.get("winner"),
                   "first_plan_seconds": result.stats.get("first_plan_seconds")})


def vroom_model(problem: Problem) -> Problem:
    """The problem as VROOM sees it: no SLA due times and no overtime."""
    return Problem(problem.durations, problem.distances,
                    tuple(replace(t, max_overtime=0) for t in problem.technicians),
                    tuple(replace(v, due=None) for v in problem.visits), problem.weights)


def solve_ours_plain(outlet: str, problem: Problem, budget: float, threads: int) -> Run:
    """Our solver on VROOM's model of the day (no due times, no overtime), checked against the
    full day: the like-for-like travel comparison."""
    began = time.perf_counter()
    result = solve(vroom_model(problem), SolveParams(time_limit=budget, workers=threads))
    wall = time.perf_counter() - began
    return run_of(outlet, "ours (VROOM's model)", threads, budget, problem,
                  result_of_routes(problem, result.as_routes(), "ours"), wall)


def solve_ours_same_visits(outlet: str, problem: Problem, budget: float, threads: int) -> Run:
    """Our solver on VROOM's model restricted to the visits VROOM serves on this day and
    budget: the same work, so travel alone tells the plans apart."""
    served = {v for ids in (vroom_start.vroom_routes(problem, budget) or {}).values()
              for v in ids}
    plain = vroom_model(problem)
    same = Problem(plain.durations, plain.distances, plain.technicians,
                   tuple(v for v in plain.visits if v.id in served), plain.weights)
    began = time.perf_counter()
    result = solve(same, SolveParams(time_limit=budget, workers=threads))
    wall = time.perf_counter() - began
    return run_of(outlet, "ours (VROOM's visits)", threads, budget, same,
                  result_of_routes(same, result.as_routes(), "ours"), wall)


def solve_vroom(outlet: str, problem: Problem, budget: float, threads: int) -> Run:
    """VROOM on the same day and budget, re-timed and checked by our evaluator."""
    began = time.perf_counter()
    routes = vroom_start.vroom_routes(problem, budget, threads) or {}
    wall = time.perf_counter() - began
    return run_of(outlet, "vroom", threads, budget, problem,
                  result_of_routes(problem, routes, "vroom"), wall)


SOLVERS: dict[str, Callable[[str, Problem, float, int], Run]] = {
    "ours": solve_ours, "ours_plain": solve_ours_plain, "ours_same": solve_ours_same_visits,
    "vroom": solve_vroom}


# ------------------------------------------------------------------------------------ runner
def _job(args: tuple[str, str, Problem, float, int]) -> Run:
    solver, outlet, problem, budget, threads = args
    return SOLVERS[solver](outlet, problem, budget, threads)


def run_parallel(days: Sequence[OutletDay], solver: str, budget: float,
                 processes: int) -> tuple[list[Run], float, float]:
    """Solve every outlet-day with one thread each, ``processes`` at a time: the runs, the
    total wall time and the peak memory (MB) of any solving process."""
    began = time.perf_counter()
    jobs = [(solver, d.outlet, d.problem, budget, 1) for d in days]
    with ProcessPoolExecutor(max_workers=processes) as pool:
        runs = list(pool.map(_job, jobs))
    return runs, time.perf_counter() - began, peak_memory_mb()


def peak_memory_mb() -> float:
    """The largest resident set of this process or any finished child, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def compare(days: Sequence[OutletDay], budget: float, cores: int,
            solvers: Sequence[str] = tuple(SOLVERS)) -> list[Run]:
    """Ours and VROOM on each outlet-day, one thread and all cores each."""
    runs = []
    for day in days:
        for solver in solvers:
            for threads in sorted({1, cores}):
                run = _job((solver, day.outlet, day.problem, budget, threads))
                _log(f"{day.outlet} {run.solver} x{threads}: travel {run.travel_time} s, "
                     f"unassigned {run.unassigned}, violations {len(run.violations)}")
                runs.append(run)
    return runs


# ------------------------------------------------------------------------------------ report
def table(runs: Sequence[Run]) -> list[str]:
    """A markdown table of runs."""
    lines = ["| outlet | solver | threads | budget s | planned / visits | unassigned | travel min "
             "| distance km | lateness min | overtime min | first plan s | wall s | violations |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        first = "-" if r.first_feasible is None else f"{r.first_feasible:.2f}"
        lines.append(
            f"| {r.outlet} | {r.solver} | {r.threads} | {r.budget:g} | {r.planned} / {r.visits} "
            f"| {r.unassigned} | {r.travel_time / 60:.0f} | {r.distance / 1000:.1f} "
            f"| {r.lateness / 60:.0f} | {r.overtime / 60:.0f} | {first} | {r.wall:.1f} "
            f"| {len(r.violations)} |")
    return lines


def totals(runs: Sequence[Run]) -> list[str]:
    """Per solver and thread count: the sums over the outlet-days."""
    groups: dict[tuple[str, int, float], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.solver, r.threads, r.budget), []).append(r)
    lines = ["| solver | threads | budget s | planned | unassigned | travel min | lateness min "
             "| overtime min | violations |", "|---|---|---|---|---|---|---|---|---|"]
    for (solver, threads, budget), rs in groups.items():
        lines.append(
            f"| {solver} | {threads} | {budget:g} | {sum(r.planned for r in rs)} "
            f"| {sum(r.unassigned for r in rs)} | {sum(r.travel_time for r in rs) / 60:.0f} "
            f"| {sum(r.lateness for r in rs) / 60:.0f} | {sum(r.overtime for r in rs) / 60:.0f} "
            f"| {sum(len(r.violations) for r in rs)} |")
    return lines


def gaps(short: Sequence[Run], reference: Sequence[Run]) -> list[str]:
    """Per outlet-day: our objective with all cores at the short budget against the long
    reference run, and how far above it (%)."""
    lines = ["| outlet | budget s | objective | planned | reference s | reference objective "
             "| reference planned | above the reference |", "|---|---|---|---|---|---|---|---|"]
    for ref in reference:
        for r in short:
            if (r.outlet, r.solver, r.threads) == (ref.outlet, ref.solver, ref.threads) \
                    and r.budget != ref.budget:
                gap = 100.0 * (r.objective - ref.objective) / ref.objective
                lines.append(f"| {r.outlet} | {r.budget:g} | {r.objective} | {r.planned} "
                             f"| {ref.budget:g} | {ref.objective} | {ref.planned} "
                             f"| {gap:+.2f}% |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the day benchmark and write a markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=("qingdao", "metro"), default="qingdao")
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--long", type=float, default=0.0,
                        help="also solve each outlet-day once with this budget, all cores "
                             "(e.g. 300 for the 5-minute reference)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--solvers", default=",".join(SOLVERS),
                        help=f"qingdao: which of {', '.join(SOLVERS)} to run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    cores = SolveParams.all_cores()
    dataset = fixtures.generate(args.dataset, DAY, args.seed)
    days = outlet_days(dataset)
    out = args.out or RESULTS / f"days-{args.dataset}-{args.time_limit:g}s.md"
    lines = [f"# {args.dataset}: ours vs VROOM, {args.time_limit:g} s per outlet-day", "",
             f"Machine: {cores} cores, load average at start {os.getloadavg()[0]:.1f}. "
             f"Day {DAY}, seed {args.seed}. Travel by great circle x detour at the outlet's "
             "speed. Every answer re-timed by our scheduler and checked by "
             "solver.check.check_result.", ""]
    raw: list[Run] = []
    if args.dataset == "metro":
        for solver in ("ours", "vroom"):
            runs, wall, memory = run_parallel(days, solver, args.time_limit, cores)
            raw += runs
            lines += [f"## {solver}: every outlet-day in parallel over {cores} processes", "",
                      f"Complete plan in {wall:.1f} s; peak memory {memory} MB.", ""]
            lines += table(runs) + [""]
        lines += ["## Totals", ""] + totals(raw)
    else:
        raw = compare(days, args.time_limit, cores, args.solvers.split(","))
        lines += table(raw) + ["", "## Totals", ""] + totals(raw) + [""]
        if args.long:
            long_runs = []
            for day in days:
                run = solve_ours(day.outlet, day.problem, args.long, cores)
                _log(f"{day.outlet} ours {args.long:g} s: travel {run.travel_time} s, "
                     f"unassigned {run.unassigned}")
                long_runs.append(run)
            raw += long_runs
            lines += [f"## Ours with {args.long:g} s (all cores): the reference", ""]
            lines += table(long_runs) + [""]
            lines += ["Objective (the solver's total: travel, lateness, overtime, unassigned "
                      "penalties) against the reference:", ""]
            lines += gaps(raw, long_runs) + [""]
        lines += [f"Peak memory (largest process): {peak_memory_mb()} MB."]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps([asdict(r) for r in raw], indent=1),
                                        encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
