"""The VROOM start: insisting on the visits VROOM's first answers left out."""

from __future__ import annotations

import pytest

from solver import vroom_start
from solver.model import Problem
from solver.vroom_start import Encoding
from tests.solver.helpers import HOUR, line_problem, tech, visit


@pytest.fixture()
def one_slot() -> Problem:
    """One technician and two visits at the same place that must both start at 09:00: only
    one can be served. Leaving out "a" (priority 2) costs more than leaving out "b"."""
    nine = (9 * HOUR, 9 * HOUR)
    return line_problem([tech()], [visit("a", 1, window=nine, priority=2),
                                   visit("b", 1, window=nine, priority=1)])


def test_insisting_puts_the_visit_first(one_slot: Problem) -> None:
    """VROOM serves the dearer visit, and the cheaper one when the encoding insists on it."""
    assert vroom_start.vroom_routes(one_slot, None) == {"T1": ["a"]}
    insisting = Encoding(insist=frozenset({"b"}))
    assert vroom_start.vroom_routes(one_slot, None, encoding=insisting) == {"T1": ["b"]}


def test_insisting_never_makes_the_start_worse(one_slot: Problem) -> None:
    """The answer that insists on the left-out visit is worse under the full model here, so
    the first answer stays the start."""
    assert vroom_start.best_vroom_routes(one_slot, None) == {"T1": ["a"]}


def test_insisting_answer_wins_when_it_is_better(one_slot: Problem,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """When VROOM's first answer leaves out the dearer visit, it is asked again insisting on
    that visit, and the better answer becomes the start."""
    asked: list[Encoding] = []

    def wrong_first(problem: Problem, time_limit: float | None, threads: int = 1,
                    encoding: Encoding = Encoding()) -> dict[str, list[str]]:
        asked.append(encoding)
        return {"T1": ["a"] if "a" in encoding.insist else ["b"]}

    monkeypatch.setattr(vroom_start, "vroom_routes", wrong_first)
    assert vroom_start.best_vroom_routes(one_slot, None) == {"T1": ["a"]}
    assert asked == [Encoding(), Encoding(insist=frozenset({"a"}))]
