"""benchmarks.solomon: the runner's options and its markdown report (no solver is run here)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from benchmarks.instances import SUBSET, solomon_dir
from benchmarks.solomon import Run, SavedRuns, main, parse_args, read_saved, render_report

needs_solomon = pytest.mark.skipif(
    not (solomon_dir() / "bks.csv").exists(), reason=f"Solomon files not in {solomon_dir()}"
)


def _run(instance: str, solver: str, gap: float | None, vehicles: int = 10) -> Run:
    """A scored run; ``gap`` None means the solver failed."""
    if gap is None:
        return Run(instance, solver, "single", 1, 10.0, 10.0, error="PeerFailure: none")
    return Run(
        instance,
        solver,
        "single",
        1,
        10.0,
        10.0,
        distance=1.0,
        vehicles=vehicles,
        feasible=True,
        gap=gap,
    )


@needs_solomon
def test_subset_option_selects_the_twelve():
    """--instances subset picks the 12 instances of the playbook."""
    assert parse_args(["--instances", "subset"]).instances == list(SUBSET)


@needs_solomon
def test_unknown_instance_is_rejected(capsys):
    """An instance that has no file is an error naming it."""
    with pytest.raises(SystemExit):
        parse_args(["--instances", "C101,X999"])
    assert "unknown instance(s) X999" in capsys.readouterr().err


@needs_solomon
def test_unknown_solver_is_rejected(capsys):
    """A solver outside the peers is an error listing the choices."""
    with pytest.raises(SystemExit):
        parse_args(["--solvers", "ours,gurobi"])
    assert "--solvers: choose from ours, ortools_doc, pyvrp, vroom" in capsys.readouterr().err


@needs_solomon
def test_jobs_above_the_cores_are_rejected(capsys):
    """--jobs may not exceed the machine's cores."""
    with pytest.raises(SystemExit):
        parse_args(["--jobs", "100000"])
    assert "--jobs must be between 1 and the number of cores" in capsys.readouterr().err


@needs_solomon
def test_family_table_averages_solved_instances_and_counts_failures():
    """C1 mean gap is over solved runs only (1% and 3% -> 2.00), the failure is counted."""
    runs = [_run("C101", "pyvrp", 0.01), _run("C102", "pyvrp", 0.03), _run("C103", "pyvrp", None)]
    report = render_report(
        runs,
        ["C101", "C102", "C103"],
        ["pyvrp"],
        ["single"],
        10,
        1,
        [((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))],
    )
    assert "| C1 | pyvrp | 3 | 2.00 | 10.0 (10.0) | 1 |" in report
    assert "| C103 | FAIL |" in report
    assert "- C103 pyvrp: PeerFailure: none" in report


@needs_solomon
def test_report_says_when_solves_ran_side_by_side():
    """With --jobs 2 the report states that two solves ran at a time."""
    report = render_report(
        [_run("C101", "vroom", 0.0)],
        ["C101"],
        ["vroom"],
        ["single"],
        10,
        2,
        [((1.0, 1.0, 1.0), (1.0, 1.0, 1.0))],
    )
    assert "2 solve(s) ran side by side" in report
    assert "| C101 | 0.00 (10) |" in report


@needs_solomon
def test_merge_reports_saved_runs_together(tmp_path, capsys):
    """--merge renders runs saved by two invocations in one table, solving nothing."""
    for solver, gap in (("pyvrp", 0.01), ("ours", 0.02)):
        saved = SavedRuns(10.0, 1, (1.0,), (2.0,), [_run("C101", solver, gap)])
        (tmp_path / f"{solver}.json").write_text(json.dumps(asdict(saved)))
    out = tmp_path / "merged.md"
    files = f"{tmp_path / 'pyvrp.json'},{tmp_path / 'ours.json'}"
    assert main(["--instances", "C101", "--merge", files, "--out", str(out)]) == 0
    report = out.read_text()
    assert "| C101 | 1.00 (10) | 2.00 (10) |" in report
    assert "before 1.00, after 2.00; before 1.00, after 2.00" in report
    capsys.readouterr()


def test_unreadable_saved_run_names_the_file(tmp_path):
    """A --merge file that is not a saved run is an error naming it."""
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(SystemExit, match="bad.json: not a saved benchmark run"):
        read_saved(bad)


def test_day_gaps_compare_the_short_run_with_the_long_reference():
    """The 30 s run with all cores is set against the 300 s reference of the same outlet-day;
    the one-thread run and the reference itself are not."""
    from benchmarks.days import Run as DayRun
    from benchmarks.days import gaps

    def run(threads: int, budget: float, objective: int) -> DayRun:
        return DayRun("QD-LS", "ours", threads, budget, 85, 84, 1, 0, 0, 0, 0, objective, [],
                      budget)

    short = [run(1, 30, 1_050), run(2, 30, 1_010)]
    reference = [run(2, 300, 1_000)]
    rows = gaps(short + reference, reference)[2:]
    assert rows == ["| QD-LS | 30 | 1010 | 84 | 300 | 1000 | 84 | +1.00% |"]
