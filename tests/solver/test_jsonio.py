"""The JSON problem and result format: round trips and validation errors naming the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from solver.jsonio import (
    SCHEMA_DIR,
    JsonFormatError,
    params_with,
    problem_from_json,
    problem_to_json,
    result_to_json,
)
from solver.model import Break, TimeWindow
from solver.params import SolveParams
from solver.solve import solve
from tests.solver.helpers import HOUR, line_problem, lunch, tech, visit


def sample_json() -> dict[str, Any]:
    """A small problem using every field of the format."""
    technicians = [tech("T1", skills={"aircon": 2}, breaks=(lunch(),), max_overtime=HOUR,
                        max_visits=5, duration_factor=1.2, fixed_cost=10, capacity=9),
                   tech("T2", start_location=3, end_location=4)]
    visits = [visit("a", 1, window=(9 * HOUR, 11 * HOUR), skills={"aircon": 1}, priority=2,
                    due=10 * HOUR, lateness_cost=2, load=1),
              visit("b", 2, pinned_technician="T2", pinned_start=TimeWindow(13 * HOUR, 14 * HOUR),
                    required=True)]
    return problem_to_json(line_problem(technicians, visits, places=6), {"T1": ["a"]})


def test_problem_round_trips_through_json() -> None:
    """Writing a problem to JSON and reading it back gives the same technicians and visits."""
    data = sample_json()
    problem, routes, overrides = problem_from_json(json.loads(json.dumps(data)))
    again = problem_to_json(problem, routes)
    assert again == data
    assert routes == {"T1": ["a"]} and overrides is None
    assert problem.technicians[0].breaks == (Break(lunch().earliest, lunch().latest,
                                                   lunch().duration),)


def test_distances_default_to_durations() -> None:
    """Without a distance matrix the travel times serve as distances."""
    data = sample_json()
    del data["distances"]
    problem, _, _ = problem_from_json(data)
    assert (problem.distances == problem.durations).all()


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["visits"][1]["windows"].append({"start": 50, "end": 10}),
         "visits[1].windows[0].end"),
        (lambda d: d["technicians"][0].update(start_location=99), "technicians[0].start_location"),
        (lambda d: d["visits"][0].update(colour="red"), "visits[0].colour"),
        (lambda d: d["visits"][0].update(duration="long"), "visits[0].duration"),
        (lambda d: d["visits"][1].update(pinned_technician="T9"), "visits[1].pinned_technician"),
        (lambda d: d["visits"][1].update(id="a"), "visits[1].id"),
        (lambda d: d["durations"][2].pop(), "durations[2]"),
        (lambda d: d.update(initial_routes={"T1": ["zz"]}), "initial_routes.T1[0]"),
        (lambda d: d["technicians"][0].pop("shift_end"), "technicians[0].shift_end"),
        (lambda d: d.update(params={"speed": 3}), "params.speed"),
    ],
)
def test_validation_errors_name_the_field(change: Any, path: str) -> None:
    """Each kind of bad input raises an error whose path names the offending field."""
    data = copy.deepcopy(sample_json())
    change(data)
    with pytest.raises(JsonFormatError) as info:
        problem_from_json(data)
    assert info.value.path == path
    assert path in str(info.value)


def test_model_rule_breaches_are_reported_too() -> None:
    """A rule only the model checks (shift end before start) still comes back as a format
    error naming the technician and field."""
    data = sample_json()
    data["technicians"][1]["shift_end"] = 0
    with pytest.raises(JsonFormatError, match="'T2'.*shift_end"):
        problem_from_json(data)


def test_params_overrides_are_applied_and_validated() -> None:
    """Parameter overrides from the file replace the defaults; a bad value names 'params'."""
    data = sample_json()
    data["params"] = {"time_limit": None, "solution_limit": 5, "seed": 9}
    _, _, overrides = problem_from_json(data)
    params = params_with(SolveParams(), overrides)
    assert (params.solution_limit, params.seed) == (5, 9)
    with pytest.raises(JsonFormatError, match="^params"):
        params_with(SolveParams(), {"workers": 0})


def test_result_json_has_every_documented_field() -> None:
    """The result JSON is serialisable and carries each field the schema requires."""
    problem, routes, _ = problem_from_json(sample_json())
    result = solve(problem, SolveParams(time_limit=None, solution_limit=5), routes)
    data = json.loads(json.dumps(result_to_json(result)))
    schema = json.loads((SCHEMA_DIR / "result.schema.json").read_text(encoding="utf-8"))
    assert set(schema["required"]) <= set(data)
    route_schema = schema["properties"]["routes"]["items"]
    stop_schema = route_schema["properties"]["stops"]["items"]
    for route in data["routes"]:
        assert set(route_schema["required"]) <= set(route)
        for stop in route["stops"]:
            assert set(stop_schema["required"]) <= set(stop)
    assert data["objective"]["total"] == sum(v for k, v in data["objective"].items()
                                             if k != "total")


def test_problem_schema_documents_every_field_the_reader_accepts() -> None:
    """The problem schema lists exactly the technician and visit fields the reader knows."""
    schema = json.loads((Path(SCHEMA_DIR) / "problem.schema.json").read_text(encoding="utf-8"))
    props = schema["properties"]
    data = sample_json()
    assert set(props["technicians"]["items"]["properties"]) == set(data["technicians"][0])
    assert set(props["visits"]["items"]["properties"]) == set(data["visits"][0])
