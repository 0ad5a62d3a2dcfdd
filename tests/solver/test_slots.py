"""Slot recommendations: ranking, confirmed windows kept, infeasible windows left out."""

from __future__ import annotations

from solver.model import TimeWindow
from solver.slots import recommend_slots
from tests.solver.helpers import HOUR, MINUTE, line_problem, synthetic_day, tech, visit

W_LATE = TimeWindow(15 * HOUR, 16 * HOUR)  # after T1's long visit: T1, 20 min more driving
W_MORNING = TimeWindow(9 * HOUR, 10 * HOUR)  # T1 is busy: only T2, 100 min more driving
W_TOO_EARLY = TimeWindow(8 * HOUR, 8 * HOUR + 5 * MINUTE)  # nobody can be there
W_WOULD_MOVE_A = TimeWindow(8 * HOUR, 8 * HOUR + 45 * MINUTE)  # only by pushing A out of its window


def _day():
    """T1 (home 0) has confirmed visit A at place 3, 08:30-14:30; T2 lives at place 9."""
    a = visit("A", 3, duration=6 * HOUR, window=(8 * HOUR, 9 * HOUR))
    t1, t2 = tech("T1"), tech("T2", start_location=9, end_location=9)
    problem = line_problem([t1, t2], [a])
    return problem, {"T1": ["A"], "T2": []}, visit("N", 4)


def test_windows_rank_by_added_travel() -> None:
    """The window costing 20 minutes of extra driving comes before the one costing 100."""
    problem, plan, new = _day()
    options = recommend_slots(problem, plan, new, [W_MORNING, W_LATE])
    assert [(o.window, o.technician) for o in options] == [(W_LATE, "T1"), (W_MORNING, "T2")]
    assert [o.added_travel for o in options] == [20 * MINUTE, 100 * MINUTE]


def test_best_slot_on_a_hand_checked_case() -> None:
    """After A: arrive 14:40, start at 15:00, latest start 15:50 (home by 17:00)."""
    problem, plan, new = _day()
    (best,) = recommend_slots(problem, plan, new, [W_LATE])
    assert (best.technician, best.position, best.start) == ("T1", 1, 15 * HOUR)
    assert best.slack == 50 * MINUTE and best.feasible


def test_confirmed_visit_never_leaves_its_window() -> None:
    """Inserting before A would push A past 09:00, so that window is not offered."""
    problem, plan, new = _day()
    assert recommend_slots(problem, plan, new, [W_WOULD_MOVE_A]) == []


def test_infeasible_windows_are_excluded_or_flagged() -> None:
    """An unreachable window is left out, or listed as infeasible when asked."""
    problem, plan, new = _day()
    assert recommend_slots(problem, plan, new, [W_TOO_EARLY]) == []
    (flagged,) = recommend_slots(problem, plan, new, [W_TOO_EARLY], include_infeasible=True)
    assert not flagged.feasible and flagged.window == W_TOO_EARLY


def test_per_technician_lists_each_capable_technician() -> None:
    """Asked per technician, a window yields one option for each technician who can take it."""
    problem, plan, new = _day()
    options = recommend_slots(problem, plan, new, [W_LATE], per_technician=True)
    assert sorted(o.technician for o in options) == ["T1", "T2"]


def test_skills_limit_the_candidates() -> None:
    """Only technicians with the skill are offered."""
    problem, plan, _ = _day()
    problem = line_problem([tech("T1"), tech("T2", start_location=9, end_location=9,
                                             skills={"tv": 1})], problem.visits)
    options = recommend_slots(problem, plan, visit("N", 4, skills={"tv": 1}), [W_LATE])
    assert [o.technician for o in options] == ["T2"]


def test_synthetic_day_options_keep_every_route_feasible() -> None:
    """On the seeded 30 x 250 day every offered slot is confirmed by a full reschedule."""
    problem, plan = synthetic_day(seed=1)
    new = visit("NEW", 40, duration=HOUR, skills={"aircon": 1})
    wins = [TimeWindow(8 * HOUR + 2 * HOUR * i, 10 * HOUR + 2 * HOUR * i) for i in range(5)]
    options = recommend_slots(problem, plan, new, wins)
    assert options and all(o.feasible and o.window.contains(o.start) for o in options)
    assert [o.added_travel for o in options] == sorted(o.added_travel for o in options)
