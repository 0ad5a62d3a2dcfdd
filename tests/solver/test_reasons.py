"""Reasons for unassigned visits: one case per reason code, plus the sentence's contents."""

from __future__ import annotations

from solver.reasons import clock, explain_unassigned
from tests.solver.helpers import HOUR, MINUTE, line_problem, tech, visit


def _reason(technicians, visits, plan=None, target="X"):
    problem = line_problem(technicians, visits)
    (found,) = explain_unassigned(problem, plan or {}, [target])
    return found


def test_no_skill_names_the_skill() -> None:
    """Nobody holds gas at level 2: no_skill, naming the skill in both languages."""
    r = _reason([tech(skills={"gas": 1})], [visit("X", 1, skills={"gas": 2})])
    assert r.code == "no_skill" and r.params["skills"] == ["gas"]
    assert "gas" in r.message_en and "gas" in r.message_zh


def test_pinned_technician_without_the_skill() -> None:
    """Pinned to T2 who lacks the skill while T1 has it: pinned_unavailable."""
    ts = [tech("T1", skills={"ac": 1}), tech("T2")]
    r = _reason(ts, [visit("X", 1, skills={"ac": 1}, pinned_technician="T2")])
    assert r.code == "pinned_unavailable" and r.params["technician"] == "T2"


def test_no_shift_overlaps_the_window() -> None:
    """An evening window after every shift: no_shift."""
    r = _reason([tech()], [visit("X", 1, window=(18 * HOUR, 19 * HOUR))])
    assert r.code == "no_shift" and "18:00-19:00" in r.message_en


def test_capacity_too_small_for_the_load() -> None:
    """A load of 5 for a vehicle of 3: capacity."""
    r = _reason([tech(capacity=3)], [visit("X", 1, load=5)])
    assert r.code == "capacity"


def test_max_visits_reached() -> None:
    """The only technician already has their maximum of one visit: max_visits."""
    vs = [visit("A", 1), visit("X", 2)]
    r = _reason([tech(max_visits=1)], vs, {"T1": ["A"]})
    assert r.code == "max_visits" and r.params["technicians"] == ["T1"]


def test_needs_overtime_gives_the_minutes() -> None:
    """A 2-hour visit at 16:00, 50 minutes from home, needs 110 minutes past 17:00."""
    r = _reason([tech()], [visit("X", 5, duration=2 * HOUR, window=(16 * HOUR, 16 * HOUR + 30
                                                                     * MINUTE))])
    assert r.code == "needs_overtime"
    assert r.params == {**r.params, "technician": "T1", "overtime": 110 * MINUTE}
    assert "110 minutes" in r.message_en and "110 分钟" in r.message_zh


def test_needs_wider_window_gives_clock_times() -> None:
    """An 08:00-08:05 window 20 minutes away fits if widened to 08:00-08:20."""
    r = _reason([tech()], [visit("X", 2, window=(8 * HOUR, 8 * HOUR + 5 * MINUTE))])
    assert r.code == "needs_wider_window"
    assert (r.params["window_start"], r.params["window_end"]) == (8 * HOUR, 8 * HOUR + 20 * MINUTE)
    assert "08:00-08:20" in r.message_en and "08:00-08:20" in r.message_zh


def test_unreachable_even_on_an_empty_day() -> None:
    """Too far for its early window and too long for the day: unreachable."""
    r = _reason([tech()], [visit("X", 5, duration=8 * HOUR, window=(8 * HOUR, 8 * HOUR + 5
                                                                     * MINUTE))])
    assert r.code == "unreachable"


def test_too_costly_when_it_fits_the_plan_as_is() -> None:
    """It fits into an empty plan: the solver judged it not worth the driving."""
    r = _reason([tech()], [visit("X", 3)])
    assert r.code == "too_costly" and r.params["added_travel"] == 60 * MINUTE


def test_crowded_out_names_technician_and_displaced_visit() -> None:
    """A long morning visit fills the day; the new one would replace it."""
    long_one = visit("A", 1, duration=7 * HOUR + 30 * MINUTE, window=(9 * HOUR, 9 * HOUR + 30
                                                                       * MINUTE))
    new = visit("X", 1, duration=HOUR, window=(9 * HOUR, 9 * HOUR + 30 * MINUTE))
    r = _reason([tech()], [long_one, new], {"T1": ["A"]})
    assert r.code == "crowded_out"
    assert r.params["technician"] == "T1" and r.params["displaces"] == "A"


def test_every_reason_has_both_languages_and_a_fix() -> None:
    """Messages are non-empty in English and Chinese, with the fix in params."""
    r = _reason([tech()], [visit("X", 1, window=(18 * HOUR, 19 * HOUR))])
    assert r.message_en and r.message_zh and r.params["fix_en"] and r.params["fix_zh"]


def test_clock_renders_the_plans_day() -> None:
    """Seconds from the epoch become HH:MM, later days marked."""
    assert clock(8 * HOUR + 5 * MINUTE) == "08:05"
    assert clock(24 * HOUR + 60) == "00:01 (+1d)"
