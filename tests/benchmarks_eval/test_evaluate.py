"""benchmarks.evaluate: the one exact evaluator every benchmarked solver is scored by."""

from __future__ import annotations

import pytest

from benchmarks.evaluate import evaluate, gap
from benchmarks.instances import (
    all_instance_names,
    family_of,
    instance_path,
    read_best_known,
    read_solution,
    solomon_dir,
)
from solver.solomon import parse_solomon, read_solomon

needs_solomon = pytest.mark.skipif(
    not (solomon_dir() / "bks.csv").exists(), reason=f"Solomon files not in {solomon_dir()}"
)

TINY = """TINY
VEHICLE
NUMBER     CAPACITY
  2         15
CUSTOMER
CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME
    0      0         0          0          0       100          0
    1      3         4          4          0        50         10
    2      6         8          7         20        60          5
    3      0         5          3         30        40          0
"""


@pytest.fixture
def tiny():
    """A 3-customer instance with hand-checkable distances (3-4-5 triangles)."""
    return parse_solomon(TINY)


@needs_solomon
@pytest.mark.parametrize(
    "name", all_instance_names() if (solomon_dir() / "bks.csv").exists() else ["C101"]
)
def test_best_known_routes_reproduce_bks_distance(name):
    """Each best-known .sol scores the exact distance, route count and feasibility of bks.csv."""
    best = read_best_known()[name]
    routes = read_solution(solomon_dir() / f"{name}.sol")
    result = evaluate(read_solomon(instance_path(name)), routes)
    assert result.distance == pytest.approx(best.exact_distance, abs=1e-4)
    assert result.vehicles == best.routes
    assert result.feasible == best.feasible_exact


def test_feasible_routes_score_their_euclidean_length(tiny):
    """0-1-2-0 is 5 + 5 + 10 and 0-3-0 is 5 + 5: 30 in all, two vehicles, no violations."""
    result = evaluate(tiny, [[1, 2], [3]])
    assert result.violations == ()
    assert result.feasible
    assert (result.distance, result.vehicles) == (pytest.approx(30.0), 2)


def test_waiting_for_a_window_to_open_is_allowed(tiny):
    """Arriving at customer 3 at time 5 and waiting until 30 is feasible."""
    assert evaluate(tiny, [[3], [1, 2]]).feasible


def test_a_late_start_is_a_violation(tiny):
    """2, 1, then 3: 3 starts at 40 + sqrt(10) = 43.1623, after its due time 40."""
    result = evaluate(tiny, [[2, 1, 3]])
    assert result.violations == (
        "Route 1: customer 3 starts at 43.1623, after its due time 40 (late by 3.1623).",
    )


def test_a_start_inside_the_window_is_not_a_violation(tiny):
    """1, 2, then 3: 3 starts at 25 + sqrt(45) = 31.7, inside [30, 40]."""
    assert evaluate(tiny, [[1, 2, 3]]).feasible


def test_returning_after_the_depot_closes_is_a_violation():
    """With the depot closing at 34, a route back at 35 is reported."""
    text = TINY.replace("0          0       100", "0          0        34")
    result = evaluate(parse_solomon(text), [[1, 2, 3]])
    assert result.violations == ("Route 1 returns to the depot at 36.7082, after its due time 34.",)


def test_over_capacity_is_a_violation():
    """Loads 4 + 7 = 11 on one route exceed a capacity of 10."""
    text = TINY.replace("  2         15", "  2         10")
    result = evaluate(parse_solomon(text), [[1, 2], [3]])
    assert result.violations == ("Route 1 carries 11, over the capacity 10.",)


def test_missing_and_repeated_customers_are_violations(tiny):
    """Customer 3 missing and customer 1 twice are both reported."""
    result = evaluate(tiny, [[1, 2], [1]])
    assert "Customer 1 is visited 2 times." in result.violations
    assert "1 customers are not visited: 3." in result.violations


def test_unknown_customer_is_a_violation(tiny):
    """A customer number outside 1..n is reported, not crashed on."""
    result = evaluate(tiny, [[1, 2, 3], [9]])
    assert result.violations == ("Customer 9 is not a customer of TINY (1..3).",)


def test_more_routes_than_the_fleet_is_a_violation(tiny):
    """Three routes with a fleet of two is reported."""
    result = evaluate(tiny, [[1], [2], [3]])
    assert result.violations == ("3 routes used but the fleet has 2.",)


def test_empty_routes_are_not_counted(tiny):
    """Empty routes use no vehicle."""
    assert evaluate(tiny, [[1, 2], [], [3]]).vehicles == 2


def test_gap_is_relative_to_best_known():
    """110 against a best-known 100 is a 10% gap."""
    assert gap(110.0, 100.0) == pytest.approx(0.10)


def test_family_of_names():
    """Families: RC105 -> RC1, C201 -> C2, R112 -> R1; a foreign name is an error."""
    assert [family_of(n) for n in ("RC105", "C201", "R112")] == ["RC1", "C2", "R1"]
    with pytest.raises(ValueError, match="'X12' is not a Solomon name"):
        family_of("X12")
