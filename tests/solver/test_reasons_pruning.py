"""The quick position test in reasons.py only saves time: it never changes a reason."""

from __future__ import annotations

import pytest

from solver import reasons
from solver.engine import RoutingEngine
from tests.solver.helpers import synthetic_day


def test_pruned_reasons_equal_the_exhaustive_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a crowded seeded 12 x 100 day, the reasons with the quick test equal the reasons
    found by rescheduling every position."""
    problem, _ = synthetic_day(seed=2, technicians=12, visits=100)
    plan = RoutingEngine(problem).constructed_outcome()
    assert plan is not None and len(plan.unassigned) >= 10
    pruned = reasons.explain_unassigned(problem, plan.routes, plan.unassigned)
    monkeypatch.setattr(reasons, "_may_fit", lambda *args: True)
    exhaustive = reasons.explain_unassigned(problem, plan.routes, plan.unassigned)
    assert pruned == exhaustive
    assert len({r.code for r in pruned}) >= 2
