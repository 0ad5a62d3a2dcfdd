"""Forward scheduling: windows, breaks, duration factor, overtime and the first violation."""

from __future__ import annotations

from solver.model import TimeWindow
from solver.result import BreakPlacement
from solver.schedule import Relax, earliest_start, route_slack, schedule_route
from tests.solver.helpers import HOUR, MINUTE, line_problem, lunch, tech, visit


def test_leaves_late_instead_of_waiting_at_the_first_visit() -> None:
    """The technician leaves so as to arrive exactly at the first window's start."""
    t = tech()
    v = visit("A", 2, window=(10 * HOUR, 11 * HOUR))
    s = schedule_route(line_problem([t], [v]), t, [v])
    assert s.feasible
    assert s.stops[0].start == 10 * HOUR and s.stops[0].waiting == 0
    assert s.start_time == 10 * HOUR - 2 * 600


def test_chooses_the_earliest_window_that_fits() -> None:
    """With several windows, service starts in the first one still reachable."""
    t = tech()
    v = visit("A", 3, duration=HOUR)
    v = type(v)(**{**v.__dict__, "windows": (TimeWindow(8 * HOUR, 8 * HOUR + 10 * MINUTE),
                                              TimeWindow(14 * HOUR, 15 * HOUR))})
    s = schedule_route(line_problem([t], [v]), t, [v])
    assert s.stops[0].start == 14 * HOUR


def test_duration_factor_scales_service() -> None:
    """A slower technician (factor 1.5) spends 45 minutes on a 30-minute visit."""
    t = tech(duration_factor=1.5)
    v = visit("A", 1)
    s = schedule_route(line_problem([t], [v]), t, [v])
    assert s.stops[0].end - s.stops[0].start == 45 * MINUTE


def test_break_uses_idle_time_before_a_late_window() -> None:
    """Lunch is taken while waiting for a 13:00 window, so the visit is not delayed."""
    t = tech(breaks=(lunch(),))
    a = visit("A", 1, window=(11 * HOUR, 11 * HOUR + 30 * MINUTE))
    b = visit("B", 2, window=(13 * HOUR, 14 * HOUR))
    s = schedule_route(line_problem([t], [a, b]), t, [a, b])
    assert s.feasible
    assert s.stops[1].start == 13 * HOUR
    (brk,) = s.breaks
    assert brk.after_stop == 1 and 11 * HOUR + 30 * MINUTE <= brk.start <= 12 * HOUR + 15 * MINUTE


def test_break_at_the_next_door_when_only_that_keeps_the_visit_on_time() -> None:
    """Lunch must start at 11:30 and B at 12:15: the technician drives from A (done 11:10) to
    B first and takes lunch at B's door; lunch before the drive would make B 20 minutes late."""
    t = tech(breaks=(lunch(11 * HOUR + 30 * MINUTE, 11 * HOUR + 30 * MINUTE),))
    a = visit("A", 1, duration=3 * HOUR, window=(8 * HOUR + 10 * MINUTE, 8 * HOUR + 10 * MINUTE))
    b = visit("B", 3, window=(12 * HOUR + 15 * MINUTE, 12 * HOUR + 15 * MINUTE))
    s = schedule_route(line_problem([t], [a, b]), t, [a, b])
    assert s.feasible
    assert s.stops[1].arrival == 11 * HOUR + 30 * MINUTE
    assert s.stops[1].start == 12 * HOUR + 15 * MINUTE
    assert s.breaks == (BreakPlacement(11 * HOUR + 30 * MINUTE, 45 * MINUTE, 1),)


def test_break_pushes_a_visit_when_no_idle_time() -> None:
    """Back-to-back work around noon: the break delays the next visit by its length."""
    t = tech(breaks=(lunch(),))
    vs = [visit(f"V{k}", 1 + k % 2, duration=HOUR) for k in range(6)]
    s = schedule_route(line_problem([t], vs), t, vs)
    assert s.feasible
    (brk,) = s.breaks
    after = s.stops[brk.after_stop]
    assert after.start >= brk.start + brk.duration


def test_short_day_needs_no_break() -> None:
    """A morning that ends before lunch could start has no break."""
    t = tech(breaks=(lunch(),))
    v = visit("A", 1, window=(8 * HOUR, 9 * HOUR))
    s = schedule_route(line_problem([t], [v]), t, [v])
    assert s.feasible and s.breaks == ()


def test_overtime_is_counted_and_capped() -> None:
    """Past the shift end is overtime; past the maximum overtime is a latest_end violation."""
    v = visit("A", 3, duration=HOUR, window=(16 * HOUR, 16 * HOUR))
    ok = tech(max_overtime=HOUR)
    s = schedule_route(line_problem([ok], [v]), ok, [v])
    assert s.feasible and s.overtime == 30 * MINUTE
    strict = tech()
    bad = schedule_route(line_problem([strict], [v]), strict, [v])
    assert bad.violation is not None
    assert (bad.violation.visit, bad.violation.field) == (None, "latest_end")
    assert bad.violation.amount == 30 * MINUTE


def test_reports_the_visit_whose_window_is_missed() -> None:
    """The violation names the visit and how late it would be."""
    t = tech()
    a = visit("A", 1, duration=2 * HOUR, window=(8 * HOUR, 8 * HOUR + 30 * MINUTE))
    b = visit("B", 2, window=(9 * HOUR, 9 * HOUR + 30 * MINUTE))
    s = schedule_route(line_problem([t], [a, b]), t, [a, b])
    assert s.violation is not None
    assert (s.violation.visit, s.violation.field) == ("B", "windows")
    assert s.violation.amount == 30 * MINUTE + 10 * MINUTE + 10 * MINUTE


def test_relaxing_the_window_lets_it_start_late() -> None:
    """With the window relaxed, the visit starts as soon as the technician is ready."""
    t = tech()
    a = visit("A", 1, duration=2 * HOUR, window=(8 * HOUR, 8 * HOUR + 30 * MINUTE))
    b = visit("B", 2, window=(9 * HOUR, 9 * HOUR + 30 * MINUTE))
    s = schedule_route(line_problem([t], [a, b]), t, [a, b], Relax(windows_of=frozenset({"B"})))
    assert s.feasible and s.stops[1].start == 10 * HOUR + 20 * MINUTE


def test_capacity_and_max_visits_violations() -> None:
    """Too much load or too many visits is reported as such."""
    v1, v2 = visit("A", 1, load=2), visit("B", 2, load=2)
    t = tech(capacity=3)
    assert schedule_route(line_problem([t], [v1, v2]), t, [v1, v2]).violation.field == "capacity"
    t = tech(max_visits=1)
    assert schedule_route(line_problem([t], [v1, v2]), t, [v1, v2]).violation.field == "max_visits"


def test_route_slack_bounds_each_start() -> None:
    """The latest start of a stop leaves room for the following windows and the way home."""
    t = tech()
    a = visit("A", 1, window=(8 * HOUR, 12 * HOUR))
    b = visit("B", 2, window=(9 * HOUR, 10 * HOUR))
    p = line_problem([t], [a, b])
    s = schedule_route(p, t, [a, b])
    latest = route_slack(p, t, s, [a, b])
    assert latest[1] == 10 * HOUR
    assert latest[0] == 10 * HOUR - 10 * MINUTE - 30 * MINUTE


def test_earliest_start_helper() -> None:
    """Ready inside, before, or after every window."""
    ws = (TimeWindow(10, 20), TimeWindow(30, 40))
    assert earliest_start(ws, 5) == 10
    assert earliest_start(ws, 25) == 30
    assert earliest_start(ws, 41) is None

