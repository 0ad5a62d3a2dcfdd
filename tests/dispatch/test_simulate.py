"""The day simulator on the tiny dataset: the invariants its report must show.

One simulation (08:00-15:00, the job every 15 minutes, short solves) is shared by the tests of
its report; each test checks one promise the simulated day must keep.
"""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch import models as m
from dispatch.cli import main
from dispatch.simulate import (
    SimulationReport,
    SimulationSettings,
    _first_told,
    _given_ahead,
    _told_by_text,
    simulate,
)
from solver import SolveParams
from tests.dispatch.builders import local

DAY = date(2026, 3, 10)


def tiny_settings(**changes: object) -> SimulationSettings:
    """A short, fast simulation of the tiny dataset."""
    values: dict[str, object] = {"dataset": "tiny", "day": DAY, "seed": 3, "every_minutes": 15,
                                 "end": time(15, 0), "plan_time_limit": 1.0,
                                 "params": SolveParams(time_limit=0.5)}
    values.update(changes)
    return SimulationSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> SimulationReport:
    """The simulated tiny day (on a SQLite file of its own)."""
    path = tmp_path_factory.mktemp("simulation") / "tiny.db"
    return simulate(tiny_settings(), f"sqlite:///{path}")


def test_no_call_is_made_outside_calling_hours(report: SimulationReport) -> None:
    """Every call the simulated day made fell inside the customer's calling hours."""
    assert report.calls_outside_hours == 0


def test_no_text_is_sent_outside_the_working_day(report: SimulationReport) -> None:
    """Texts outside calling hours are same-day delay notices in the working day: none at
    night, and they are not counted as calls."""
    assert report.texts_outside_working_day == 0
    assert report.texts_outside_calling_hours <= report.texts_sent


def test_a_delay_notice_counts_as_given_when_its_text_is_sent() -> None:
    """A notice for an 08:00-10:00 window texted at 09:20 was given 15 minutes ahead and is no
    call; the same notice called at 10:00 was not ahead."""
    window = {"window_start": local(8).isoformat(), "window_end": local(10).isoformat()}
    texted = m.Task(id=1, status=m.TaskStatus.DONE, completed_at=local(9, 20),
                    payload={**window, "told_by": "sms"})
    called = m.Task(id=2, status=m.TaskStatus.DONE, completed_at=local(10), payload=window)
    sent = {1: local(9, 20)}
    assert _given_ahead(texted, sent, "window_end") and _told_by_text(texted)
    assert not _given_ahead(called, sent, "window_end") and not _told_by_text(called)
    assert not _given_ahead(texted, {}, "window_end")  # never sent: never given


def test_a_customer_counts_as_told_in_time_by_their_first_notice() -> None:
    """A customer warned at 09:40 for a window ending at 10:00 was told in time, though a
    revised arrival followed at 09:55; a late start nobody was told of counts as never told."""
    window = {"window_start": local(8).isoformat(), "window_end": local(10).isoformat()}
    first = m.Task(id=1, visit_id=7, status=m.TaskStatus.DONE, completed_at=local(9, 40),
                   payload=window)
    revised = m.Task(id=2, visit_id=7, status=m.TaskStatus.DONE, completed_at=local(9, 55),
                     payload=window)
    end = int(local(10).timestamp())
    told = _first_told([revised, first], {}, [(7, end), (8, end)])
    assert told == {(7, end): local(9, 40), (8, end): None}


def test_a_call_to_rebook_a_visit_the_plan_left_out_tells_the_customer() -> None:
    """The plan left out a visit promised until 10:00 and the customer was called at 08:40 to
    agree a new time: when it started late after all, they had heard in time."""
    rebook = m.Task(id=3, visit_id=8, kind=m.TaskKind.CONFIRMATION_CALL,
                    status=m.TaskStatus.DONE, completed_at=local(8, 40),
                    payload={"reason": "unassigned"})
    end = int(local(10).timestamp())
    assert _first_told([], {}, [(8, end)], [rebook]) == {(8, end): local(8, 40)}


def test_every_confirmed_appointment_is_kept_or_consented(report: SimulationReport) -> None:
    """Each confirmed appointment started within its agreed window, or the customer was asked
    and agreed before it moved."""
    assert report.confirmed_appointments > 0
    assert report.confirmed_not_kept == ()
    assert report.confirmed_kept_pct == 100.0 and report.confirmed_agreed_pct == 100.0


def test_the_job_ran_on_schedule_for_the_whole_day(report: SimulationReport) -> None:
    """Every 15 minutes from 08:00 to 15:00 is 29 runs of the one outlet, each reporting."""
    assert report.runs == 29
    assert sum(report.runs_by_status.values()) == 29
    assert "conflict_skipped" not in report.runs_by_status


def test_the_day_had_its_disturbances(report: SimulationReport) -> None:
    """The tiny day got an emergency, a new booking and a technician going home sick."""
    assert report.emergencies == 1 and report.bookings == 1
    assert len(report.sick_technicians) == 1


def test_visits_are_served_and_accounted_for(report: SimulationReport) -> None:
    """Technicians followed the plan without a refused status report, visits were served, and
    every visit of the day is served, a no-show, under way when the simulation stops, or not
    started."""
    assert report.served > 0
    assert report.served + report.no_shows + report.in_progress + report.unassigned \
        == report.visits
    assert report.anomalies == ()


def test_the_report_prints_as_a_table_and_json(report: SimulationReport) -> None:
    """The table names each figure in both languages; the JSON round-trips."""
    table = report.table()
    assert "Confirmed appointments kept, or moved only with a consent task (%)" in table
    assert "Calls outside calling hours" in table
    assert "Texts sent outside calling hours" in table
    assert json.loads(json.dumps(report.as_dict()))["calls_outside_hours"] == 0


def test_bad_settings_name_the_field() -> None:
    """An unknown dataset or a zero interval is refused with the field named."""
    from dispatch.errors import ValidationError

    with pytest.raises(ValidationError) as unknown:
        tiny_settings(dataset="atlantis")
    assert unknown.value.field == "dataset"
    with pytest.raises(ValidationError) as interval:
        tiny_settings(every_minutes=0)
    assert interval.value.field == "every"


def test_simulate_command_writes_the_json_report(tmp_path: Path) -> None:
    """`dispatch simulate --json` prints the table and writes the report (a rejected date is a
    clear error first)."""
    runner = CliRunner()
    bad = runner.invoke(main, ["simulate", "--dataset", "tiny", "--date", "10/03/2026"])
    assert bad.exit_code != 0 and "--date" in bad.output
    out = tmp_path / "report.json"
    result = runner.invoke(main, [
        "--database-url", f"sqlite:///{tmp_path / 'cli.db'}", "simulate", "--dataset", "tiny",
        "--date", DAY.isoformat(), "--every", "240", "--time-limit", "0.3",
        "--plan-time-limit", "0.5", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "Confirmed appointments kept" in result.output
    assert json.loads(out.read_text(encoding="utf-8"))["dataset"] == "tiny"
