"""Solomon benchmark runner: every chosen solver on every chosen instance, scored by one evaluator.

    python -m benchmarks.solomon [--instances C101,R101|subset|all] [--time-limit 10]
        [--rounds single,all] [--solvers ours,ortools_doc,pyvrp,vroom] [--jobs J] [--seed 0]
        [--out benchmarks/results/solomon-YYYYmmdd.md]

Round ``single`` gives every solver one thread (ours with one worker); up to ``--jobs`` solves
run side by side in separate processes. Round ``all`` gives every solver all cores and runs one
solve at a time. Writes a markdown report (and the raw runs as JSON next to it) and prints it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

from benchmarks.evaluate import evaluate, gap
from benchmarks.instances import (
    FAMILIES,
    SUBSET,
    all_instance_names,
    family_of,
    instance_path,
    read_best_known,
)
from benchmarks.peers import PEERS
from solver.solomon import read_solomon

ROUNDS = ("single", "all")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Run:
    """One solver on one instance in one round, as scored by the evaluator."""

    instance: str
    solver: str
    round: str
    threads: int
    wall_seconds: float
    cpu_seconds: float
    distance: float | None = None
    vehicles: int | None = None
    feasible: bool = False
    gap: float | None = None
    error: str | None = None
    violations: list[str] = field(default_factory=list)
    routes: list[list[int]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """No answer, or an answer the evaluator rejects."""
        return self.error is not None or not self.feasible


def run_one(
    instance_name: str,
    solver: str,
    round_name: str,
    threads: int,
    time_limit: float,
    seed: int,
    best_known: float,
) -> Run:
    """Solve one instance with one solver and score the answer (runs in a worker process)."""
    instance = read_solomon(instance_path(instance_name))
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        routes = PEERS[solver](instance, time_limit, seed, threads)
    except Exception as exc:  # noqa: BLE001 - a peer failing is a result, not a crash of the run
        return Run(
            instance_name,
            solver,
            round_name,
            threads,
            time.perf_counter() - wall,
            time.process_time() - cpu,
            error=f"{type(exc).__name__}: {exc}".splitlines()[0][:200],
            violations=traceback.format_exc().splitlines()[-3:],
        )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    score = evaluate(instance, routes)
    return Run(
        instance_name,
        solver,
        round_name,
        threads,
        wall,
        cpu,
        distance=score.distance,
        vehicles=score.vehicles,
        feasible=score.feasible,
        gap=gap(score.distance, best_known),
        violations=list(score.violations[:5]),
        routes=routes,
    )


def run_round(
    round_name: str,
    names: Sequence[str],
    solvers: Sequence[str],
    time_limit: float,
    seed: int,
    jobs: int,
) -> list[Run]:
    """Every solver on every instance in one round; each solve in a fresh process."""
    cores = os.cpu_count() or 1
    threads = 1 if round_name == "single" else cores
    parallel = jobs if round_name == "single" else 1
    best = read_best_known()
    tasks = [
        (n, s, round_name, threads, time_limit, seed, best[n].exact_distance)
        for n in names
        for s in solvers
    ]
    context = multiprocessing.get_context("spawn")
    runs: list[Run] = []
    with ProcessPoolExecutor(
        max_workers=parallel, mp_context=context, max_tasks_per_child=1
    ) as pool:
        futures = [pool.submit(run_one, *task) for task in tasks]
        for future in futures:
            run = future.result()
            runs.append(run)
            _progress(run)
    return runs


def _progress(run: Run) -> None:
    outcome = f"gap {run.gap * 100:6.2f}%" if not run.failed and run.gap is not None else "FAILED"
    print(
        f"[{run.round}] {run.instance:6s} {run.solver:12s} {outcome}  "
        f"{run.wall_seconds:5.1f}s {run.error or ''}",
        file=sys.stderr,
        flush=True,
    )


# --- report ---------------------------------------------------------------------------------


def render_report(
    runs: Sequence[Run],
    names: Sequence[str],
    solvers: Sequence[str],
    rounds: Sequence[str],
    time_limit: float,
    jobs: int,
    loads: Sequence[tuple[tuple[float, ...], tuple[float, ...]]],
) -> str:
    """The markdown report: set-up, one table per round and family, per-instance gaps.
    ``loads`` holds the load averages (before, after) of each invocation the runs come from."""
    lines = _header(names, time_limit, jobs, rounds, loads)
    for round_name in rounds:
        round_runs = [r for r in runs if r.round == round_name]
        lines += [f"## Round `{round_name}` ({_round_words(round_name, jobs)})", ""]
        lines += _family_table(round_runs, names, solvers)
        lines += ["", "Per instance (gap %, vehicles; `FAIL` = no plan or rejected plan):", ""]
        lines += _instance_table(round_runs, names, solvers)
        lines += _failure_notes(round_runs)
        lines.append("")
    return "\n".join(lines) + "\n"


def _header(
    names: Sequence[str],
    time_limit: float,
    jobs: int,
    rounds: Sequence[str],
    loads: Sequence[tuple[tuple[float, ...], tuple[float, ...]]],
) -> list[str]:
    load_text = "; ".join(f"before {_load_text(b)}, after {_load_text(a)}" for b, a in loads)
    return [
        f"# Solomon VRPTW benchmark, {datetime.now():%Y-%m-%d %H:%M}",
        "",
        (
            f"- Instances: {len(names)} ({', '.join(names) if len(names) <= 20 else 'all'}); "
            f"time limit {time_limit:g} s wall clock per solve; rounds: {', '.join(rounds)}."
        ),
        (
            f"- Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
            f"Python {platform.python_version()}; load average (1/5/15 min) "
            f"{load_text}."
        ),
        f"- Versions: {_versions()}.",
        (
            "- Scoring: one evaluator (benchmarks/evaluate.py) re-scores every answer with exact "
            "Euclidean distances and checks windows, depot return, capacity, each customer once and "
            "the fleet size; gap = (distance - best known) / best known, best known from bks.csv "
            "(`exact_distance`). Mean gaps are over the instances the solver solved."
        ),
        f"- Single-thread round: {jobs} solve(s) ran side by side in separate processes"
        + (
            " (each solver still had one thread; a busy machine searches less per second)."
            if jobs > 1
            else "."
        ),
        "",
    ]


def _round_words(round_name: str, jobs: int) -> str:
    if round_name == "single":
        return f"one thread per solver, ours with --workers 1, {jobs} solve(s) at a time"
    return f"all {os.cpu_count()} cores per solver, one solve at a time"


def _family_table(runs: Sequence[Run], names: Sequence[str], solvers: Sequence[str]) -> list[str]:
    families = [f for f in FAMILIES if any(family_of(n) == f for n in names)]
    rows = [
        "| family | solver | instances | mean gap % | mean vehicles (best known) | failures |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for fam in [*families, "all"]:
        members = [n for n in names if fam == "all" or family_of(n) == fam]
        for solver in solvers:
            mine = [r for r in runs if r.solver == solver and r.instance in members]
            rows.append(_family_row(fam, solver, mine))
    return rows


def _family_row(fam: str, solver: str, runs: Sequence[Run]) -> str:
    """Means over the solved instances; the best-known vehicle count is over the same ones."""
    solved = [r for r in runs if not r.failed]
    label = f"**{fam}**" if fam == "all" else fam
    if not solved:
        return f"| {label} | {solver} | {len(runs)} | - | - | {len(runs)} |"
    best = read_best_known()
    mean_gap = sum(r.gap or 0.0 for r in solved) / len(solved) * 100
    mean_vehicles = sum(r.vehicles or 0 for r in solved) / len(solved)
    bks_vehicles = sum(best[r.instance].routes for r in solved) / len(solved)
    return (
        f"| {label} | {solver} | {len(runs)} | {_percent(mean_gap)} | "
        f"{mean_vehicles:.1f} ({bks_vehicles:.1f}) | {len(runs) - len(solved)} |"
    )


def _percent(value: float) -> str:
    # Round-off can leave a best-known match at -0.000001 %; show it as 0.00, not -0.00.
    return f"{0.0 if abs(value) < 0.005 else value:.2f}"


def _instance_table(runs: Sequence[Run], names: Sequence[str], solvers: Sequence[str]) -> list[str]:
    rows = ["| instance | " + " | ".join(solvers) + " |", "|---|" + "---:|" * len(solvers)]
    for name in names:
        cells = []
        for solver in solvers:
            run = next((r for r in runs if r.instance == name and r.solver == solver), None)
            if run is None or run.failed or run.gap is None:
                cells.append("FAIL")
            else:
                cells.append(f"{_percent(run.gap * 100)} ({run.vehicles})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def _failure_notes(runs: Sequence[Run]) -> list[str]:
    failed = [r for r in runs if r.failed]
    if not failed:
        return []
    notes = ["", "Failures:", ""]
    for r in failed:
        why = r.error or "; ".join(r.violations[:2])
        notes.append(f"- {r.instance} {r.solver}: {why}")
    return notes


def _versions() -> str:
    parts = []
    for package in ("ortools", "pyvrp", "pyvroom"):
        try:
            parts.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{package} not installed")
    return ", ".join(parts)


def _load_text(load: tuple[float, ...]) -> str:
    return "/".join(f"{x:.2f}" for x in load)


# --- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The runner's options, validated."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.solomon",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--instances",
        default="all",
        help="comma-separated names, 'subset' (the 12) or 'all' (the 56)",
    )
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per solve")
    parser.add_argument("--rounds", default="single,all", help="single, all, or both")
    parser.add_argument("--solvers", default=",".join(PEERS), help=", ".join(PEERS))
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="parallel solves in the single-thread round (at most the cores)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="markdown report path")
    parser.add_argument(
        "--merge",
        default="",
        help="comma-separated .json files of earlier runs: report them together, solve nothing",
    )
    args = parser.parse_args(argv)
    args.instances = _instance_names(args.instances, parser)
    args.merge = [Path(p.strip()) for p in args.merge.split(",") if p.strip()]
    args.rounds = _choices(args.rounds, ROUNDS, "--rounds", parser)
    args.solvers = _choices(args.solvers, tuple(PEERS), "--solvers", parser)
    cores = os.cpu_count() or 1
    if not 1 <= args.jobs <= cores:
        parser.error(f"--jobs must be between 1 and the number of cores ({cores}).")
    if args.time_limit <= 0:
        parser.error("--time-limit must be positive.")
    if args.out is None:
        args.out = RESULTS_DIR / f"solomon-{datetime.now():%Y%m%d}.md"
    return args


def _instance_names(text: str, parser: argparse.ArgumentParser) -> list[str]:
    available = all_instance_names()
    if text == "all":
        return available
    if text == "subset":
        return list(SUBSET)
    names = [n.strip().upper() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(f"--instances: unknown instance(s) {', '.join(unknown)}.")
    return names


def _choices(
    text: str, allowed: tuple[str, ...], option: str, parser: argparse.ArgumentParser
) -> list[str]:
    chosen = [c.strip() for c in text.split(",") if c.strip()]
    wrong = [c for c in chosen if c not in allowed]
    if wrong or not chosen:
        parser.error(f"{option}: choose from {', '.join(allowed)} (got {text!r}).")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or merge saved runs), write the markdown and JSON, print the markdown."""
    args = parse_args(argv)
    if args.merge:
        saved = [read_saved(path) for path in args.merge]
        runs = [run for one in saved for run in one.runs]
        names = [n for n in args.instances if any(r.instance == n for r in runs)]
        solvers = list(dict.fromkeys(r.solver for r in runs))
        rounds = [r for r in ROUNDS if any(run.round == r for run in runs)]
        jobs = max(one.jobs for one in saved)
        time_limit = saved[0].time_limit
        loads = [(one.load_before, one.load_after) for one in saved]
    else:
        names, solvers, rounds, jobs = args.instances, args.solvers, args.rounds, args.jobs
        time_limit, before = args.time_limit, os.getloadavg()
        runs = []
        for round_name in rounds:
            runs += run_round(round_name, names, solvers, time_limit, args.seed, jobs)
        loads = [(before, os.getloadavg())]
    report = render_report(runs, names, solvers, rounds, time_limit, jobs, loads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    saved_run = SavedRuns(time_limit, jobs, loads[0][0], loads[-1][1], runs)
    args.out.with_suffix(".json").write_text(json.dumps(asdict(saved_run), indent=1), "utf-8")
    print(report)
    return 0


@dataclass
class SavedRuns:
    """What the runner stores next to its report, and what ``--merge`` reads back."""

    time_limit: float
    jobs: int
    load_before: tuple[float, ...]
    load_after: tuple[float, ...]
    runs: list[Run]


def read_saved(path: Path) -> SavedRuns:
    """Read runs stored by an earlier invocation."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        runs = [Run(**run) for run in data["runs"]]
        return SavedRuns(
            float(data["time_limit"]),
            int(data["jobs"]),
            tuple(data["load_before"]),
            tuple(data["load_after"]),
            runs,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"{path}: not a saved benchmark run ({exc}).") from exc


if __name__ == "__main__":
    sys.exit(main())
