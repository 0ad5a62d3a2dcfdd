"""The ``dispatch solve`` command: JSON problems and Solomon instances from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dispatch.commands_solve import solve_command
from solver.jsonio import problem_to_json
from tests.solver.helpers import line_problem, tech, visit

SOLOMON = Path("/work/shared/benchmarks/solomon/C101.txt")


def write_problem(folder: Path, params: dict | None = None) -> Path:
    """A three-visit JSON problem (deterministic parameters) written to ``folder``."""
    data = problem_to_json(line_problem([tech()], [visit("a", 1), visit("b", 2), visit("c", 3)]))
    data["params"] = params or {"time_limit": None, "solution_limit": 5}
    path = folder / "problem.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_solves_a_json_problem_into_a_result_file(tmp_path: Path) -> None:
    """``dispatch solve PROBLEM.json --out RESULT.json`` writes the plan as result JSON."""
    out = tmp_path / "result.json"
    run = CliRunner().invoke(solve_command, [str(write_problem(tmp_path)), "--workers", "1",
                                             "--out", str(out)])
    assert run.exit_code == 0, run.output
    result = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(s["visit"] for s in result["routes"][0]["stops"]) == ["a", "b", "c"]
    assert result["kpis"]["travel_time"] == 6 * 600


def test_bad_json_field_is_reported_with_its_path(tmp_path: Path) -> None:
    """A bad field fails the command with a message naming the field's path."""
    path = write_problem(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["visits"][2]["location"] = 42
    path.write_text(json.dumps(data), encoding="utf-8")
    run = CliRunner().invoke(solve_command, [str(path)], standalone_mode=False)
    assert run.exception is not None
    assert "visits[2].location" in str(run.exception)


def test_needs_exactly_one_input(tmp_path: Path) -> None:
    """Giving neither a problem file nor --solomon is an error in both languages."""
    run = CliRunner().invoke(solve_command, [], standalone_mode=False)
    assert run.exception is not None and "--solomon" in str(run.exception)


def test_solomon_instance_prints_customer_routes() -> None:
    """``dispatch solve --solomon C101.txt`` prints routes of customer numbers covering all 100
    customers, with the distance and the number of vehicles."""
    run = CliRunner().invoke(solve_command, ["--solomon", str(SOLOMON), "--time-limit", "1",
                                             "--workers", "1"])
    assert run.exit_code == 0, run.output
    result = json.loads(run.output)
    customers = sorted(c for route in result["routes"] for c in route)
    assert customers == list(range(1, 101))
    assert result["vehicles"] == len(result["routes"]) and result["distance"] > 0
