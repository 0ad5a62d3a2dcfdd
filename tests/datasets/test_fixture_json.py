"""The JSON form of a dataset: exact round trip, ISO 8601 with offsets, clear errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fixtures import Dataset, FixtureFormatError, export_json, import_json
from tests.datasets.conftest import dataset


@pytest.mark.parametrize("name", ["tiny", "qingdao", "metro"])
def test_round_trip_is_exact(name: str) -> None:
    """Exporting, writing as JSON text, reading and importing gives an equal dataset, with
    timestamps back in the dataset's zone."""
    original = dataset(name)
    text = json.dumps(export_json(original), ensure_ascii=False)
    back = import_json(json.loads(text))
    assert back == original
    assert back.visits[0].windows[0][0].tzinfo == original.visits[0].windows[0][0].tzinfo
    assert export_json(back) == export_json(original)


def test_timestamps_are_iso_with_offset(tiny: Dataset) -> None:
    """Datetimes are written in ISO 8601 with their +08:00 offset; dates and times plainly."""
    data = export_json(tiny)
    start, _ = data["visits"][0]["windows"][0]
    assert start.startswith(tiny.day.isoformat() + "T") and start.endswith("+08:00")
    assert data["day"] == tiny.day.isoformat()
    assert data["outlets"][0]["business_open"] == "08:30:00"
    assert data["format"] == "dispatch-day" and data["version"] == 1


def exported() -> dict[str, Any]:
    """A fresh, mutable export of tiny."""
    return copy.deepcopy(export_json(dataset("tiny")))


def test_missing_field_names_the_record_and_field() -> None:
    """A visit without its duration is refused, naming the visit and the field."""
    data = exported()
    code = data["visits"][2]["code"]
    del data["visits"][2]["duration_minutes"]
    expected = rf"visits\[2\] \({code}\): field duration_minutes is missing"
    with pytest.raises(FixtureFormatError, match=expected):
        import_json(data)


def test_naive_datetime_is_refused() -> None:
    """A timestamp without a UTC offset is refused, naming the field."""
    data = exported()
    data["tickets"][0]["reported_at"] = "2025-03-09T10:00:00"
    with pytest.raises(FixtureFormatError, match="field reported_at: expected a datetime with"):
        import_json(data)


def test_malformed_date_is_refused() -> None:
    """A window that is not an ISO 8601 datetime names the window."""
    data = exported()
    data["visits"][0]["windows"][0][1] = "tomorrow"
    with pytest.raises(FixtureFormatError, match=r"field windows\[0\]\[1\]"):
        import_json(data)


def test_wrong_type_is_refused() -> None:
    """A latitude given as text is refused, naming the customer and the field."""
    data = exported()
    data["customers"][1]["lat"] = "36.1"
    with pytest.raises(FixtureFormatError, match=r"customers\[1\] \(TY-C00002\): field lat"):
        import_json(data)


def test_unknown_field_is_refused() -> None:
    """An unexpected field is refused rather than silently dropped."""
    data = exported()
    data["outlets"][0]["colour"] = "blue"
    with pytest.raises(FixtureFormatError, match="unknown field colour"):
        import_json(data)


def test_other_format_is_refused() -> None:
    """A JSON document that is not a dispatch day is refused."""
    data = exported()
    data["format"] = "something-else"
    with pytest.raises(FixtureFormatError, match="format"):
        import_json(data)


def test_unknown_time_zone_is_refused() -> None:
    """An unknown time zone name is refused, naming the field."""
    data = exported()
    data["timezone"] = "Mars/Olympus"
    with pytest.raises(FixtureFormatError, match="field timezone"):
        import_json(data)
