"""solver.solomon: reading Solomon files, the scaled Problem, and routes back from a Result."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from solver.model import Problem
from solver.result import Kpis, Result, Route, Stop
from solver.schedule import Violation, schedule_route
from solver.solomon import (
    SCALE,
    SolomonFormatError,
    parse_solomon,
    read_solomon,
    routes_as_visit_ids,
    solomon_problem,
    solomon_routes,
    technician_id,
)

SOLOMON_DIR = Path(
    os.environ.get("SOLOMON_DIR", Path(__file__).resolve().parents[3] / "shared/benchmarks/solomon")
)
needs_solomon = pytest.mark.skipif(
    not (SOLOMON_DIR / "C101.txt").exists(), reason=f"Solomon files not found in {SOLOMON_DIR}"
)

TINY = """TINY

VEHICLE
NUMBER     CAPACITY
  2         10

CUSTOMER
CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME

    0      0         0          0          0       100          0
    1      3         4          4          0        50         10
    2      6         8          7         20        60          5
"""


def _routes_of(*stops: list[str]) -> Result:
    """A minimal Result whose routes visit the given visit ids (timings are irrelevant here)."""
    routes = tuple(
        Route(
            technician=technician_id(k),
            stops=tuple(Stop(v, 0, 0, 0, 0, 0, 0) for v in ids),
            start_time=0,
            end_time=0,
            travel_time=0,
            distance=0,
            overtime=0,
        )
        for k, ids in enumerate(stops)
    )
    kpis = Kpis(0, 0, 0, 0, 0, 0, 0, 0, 0)
    return Result(routes=routes, unassigned=(), kpis=kpis, objective={"total": 0}, stats={})


def _violation(problem: Problem, route: list[int]) -> Violation | None:
    """The first rule the route (customer numbers) breaks in the solver's integers, if any."""
    visits = [problem.visits[problem.visit_index(str(c))] for c in route]
    return schedule_route(problem, problem.technicians[0], visits).violation


@needs_solomon
def test_reads_c101_header_and_table():
    """C101 has 100 customers, a fleet of 25 vehicles of capacity 200, and the depot first."""
    instance = read_solomon(SOLOMON_DIR / "C101.txt")
    assert (instance.name, instance.num_customers) == ("C101", 100)
    assert (instance.vehicles, instance.capacity) == (25, 200)
    assert instance.coordinates[0] == (40.0, 50.0)
    assert (instance.ready[0], instance.due[0], instance.service[0]) == (0, 1236, 0)
    assert (instance.demand[1], instance.ready[1], instance.due[1], instance.service[1]) == (
        10,
        912,
        967,
        90,
    )


def test_exact_distance_is_euclidean():
    """Distances are unrounded Euclidean: (0,0)-(3,4) is 5 and (3,4)-(6,8) is 5."""
    instance = parse_solomon(TINY)
    assert instance.distance(0, 1) == 5.0
    assert instance.distance_matrix()[0, 2] == pytest.approx(10.0)


def test_problem_has_one_capacitated_technician_per_vehicle_at_the_depot():
    """Each vehicle becomes a technician at the depot, within the depot's window, with capacity."""
    problem = solomon_problem(parse_solomon(TINY))
    assert len(problem.technicians) == 2
    for tech in problem.technicians:
        assert (tech.start_location, tech.end_location) == (0, 0)
        assert (tech.shift_start, tech.shift_end, tech.max_overtime) == (0, 100 * SCALE, 0)
        assert tech.capacity == 10


def test_visits_carry_scaled_window_service_and_demand():
    """Customer 2 becomes visit '2' at place 2, window [20000, 60000], 5000 s, load 7."""
    problem = solomon_problem(parse_solomon(TINY))
    visit = problem.visits[problem.visit_index("2")]
    assert visit.location == 2
    assert (visit.windows[0].start, visit.windows[0].end) == (20 * SCALE, 60 * SCALE)
    assert (visit.duration, visit.load) == (5 * SCALE, 7)


def test_objective_is_distance_only():
    """The objective weighs distance alone, as the Solomon benchmark scores it."""
    weights = solomon_problem(parse_solomon(TINY)).weights
    assert (weights.travel_time, weights.distance) == (0, 1)


def test_travel_times_round_up_and_distances_round_to_nearest():
    """sqrt(2) scales to 1415 in travel time (ceil) and 1414 in distance (round)."""
    text = TINY.replace("    1      3         4", "    1      1         1")
    problem = solomon_problem(parse_solomon(text))
    assert problem.durations[0, 1] == 1415
    assert problem.distances[0, 1] == 1414


@needs_solomon
def test_best_known_c101_routes_stay_feasible_in_solver_integers():
    """Scaling keeps C101's best-known routes feasible in the solver's own integer data."""
    problem = solomon_problem(read_solomon(SOLOMON_DIR / "C101.txt"))
    routes = _read_sol(SOLOMON_DIR / "C101.sol")
    assert sorted(c for r in routes for c in r) == list(range(1, 101))
    assert [_violation(problem, route) for route in routes] == [None] * len(routes)


@needs_solomon
def test_every_exactly_feasible_best_known_stays_feasible_in_solver_integers():
    """All best-known routes that bks.csv marks feasible exactly are feasible after scaling."""
    with (SOLOMON_DIR / "bks.csv").open(newline="") as handle:
        names = [
            row["instance"] for row in csv.DictReader(handle) if row["feasible_exact"] == "True"
        ]
    assert len(names) == 48
    broken = []
    for name in names:
        problem = solomon_problem(read_solomon(SOLOMON_DIR / f"{name}.txt"))
        for route in _read_sol(SOLOMON_DIR / f"{name}.sol"):
            if _violation(problem, route) is not None:
                broken.append((name, route[0]))
    assert broken == []


def test_a_route_too_late_in_exact_terms_is_late_in_integers_too():
    """Customer 1 due at 4.9 but 5 away: infeasible exactly, so infeasible in integers too."""
    text = TINY.replace("4          0        50", "4          0         4.9")
    problem = solomon_problem(parse_solomon(text))
    violation = _violation(problem, [1])
    assert violation is not None and violation.visit == "1"


def test_routes_come_back_as_customer_numbers_without_empty_routes():
    """A result's routes return as lists of customer numbers; unused vehicles are left out."""
    instance = parse_solomon(TINY)
    assert solomon_routes(_routes_of(["2", "1"], []), instance) == [[2, 1]]


def test_routes_reject_a_visit_that_is_not_a_customer():
    """A visit id outside 1..n is an error naming the visit and the instance."""
    with pytest.raises(ValueError, match="Visit '7' is not a customer of Solomon instance TINY"):
        solomon_routes(_routes_of(["7"]), parse_solomon(TINY))


def test_warm_start_routes_map_to_technician_ids():
    """Customer-number routes become technician id -> visit ids, vehicle by vehicle."""
    assert routes_as_visit_ids([[2, 1], [3]]) == {"vehicle-1": ["2", "1"], "vehicle-2": ["3"]}


def test_bad_number_names_the_file_line_and_field():
    """A non-numeric DUE DATE is reported with the source, its line number and the field."""
    text = TINY.replace("20        60", "20        soon")
    with pytest.raises(SolomonFormatError, match=r"x\.txt:12: field DUE DATE is 'soon'"):
        parse_solomon(text, source="x.txt")


def test_missing_column_names_the_line():
    """A customer row with six fields is reported with its line number."""
    text = TINY.replace(
        "    2      6         8          7         20        60          5",
        "    2      6         8          7         20        60",
    )
    with pytest.raises(SolomonFormatError, match=r"x\.txt:12: expected 7 fields"):
        parse_solomon(text, source="x.txt")


def test_customers_out_of_order_are_rejected():
    """Customer numbers must run 0, 1, 2, ... in the table."""
    text = TINY.replace("    2      6", "    5      6")
    with pytest.raises(SolomonFormatError, match="customer number 5 out of order; expected 2"):
        parse_solomon(text, source="x.txt")


def test_missing_vehicle_section_is_rejected():
    """A file with no VEHICLE section says so."""
    with pytest.raises(SolomonFormatError, match="x.txt: no VEHICLE section"):
        parse_solomon(TINY.replace("VEHICLE", "FLEET"), source="x.txt")


def test_due_before_ready_is_rejected():
    """A window that closes before it opens names the line and DUE DATE."""
    text = TINY.replace("20        60", "70        60")
    with pytest.raises(SolomonFormatError, match=r"x\.txt:12: field DUE DATE is before READY"):
        parse_solomon(text, source="x.txt")


def test_unreadable_file_names_the_path(tmp_path):
    """A missing file is reported with its path."""
    with pytest.raises(SolomonFormatError, match="nothing.txt: cannot read"):
        read_solomon(tmp_path / "nothing.txt")


def _read_sol(path: Path) -> list[list[int]]:
    """Routes of a .sol file; kept here so solver tests do not depend on benchmarks/."""
    return [
        [int(t) for t in line.split(":", 1)[1].split()]
        for line in path.read_text().splitlines()
        if line.startswith("Route")
    ]


def test_format_errors_also_read_in_chinese():
    """Every format error carries a Simplified Chinese sentence with the same file and line."""
    text = TINY.replace("20        60", "20        soon")
    with pytest.raises(SolomonFormatError) as caught:
        parse_solomon(text, source="x.txt")
    assert caught.value.message_zh == "x.txt 第 12 行：字段 DUE DATE 的值 'soon' 不是数字。"
    assert (caught.value.source, caught.value.line) == ("x.txt", 12)
