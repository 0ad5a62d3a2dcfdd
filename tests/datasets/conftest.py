"""Generated datasets shared by the dataset tests (each made once per test session)."""

from __future__ import annotations

from datetime import date
from functools import cache

import pytest

from fixtures import Dataset, generate

DAY = date(2025, 3, 10)


@cache
def dataset(name: str, day: date = DAY, seed: int = 0) -> Dataset:
    """The named dataset for ``day`` and ``seed``, generated once."""
    return generate(name, day, seed)


@pytest.fixture(params=["tiny", "qingdao", "metro"])
def any_dataset(request: pytest.FixtureRequest) -> Dataset:
    """Each named dataset in turn."""
    return dataset(request.param)


@pytest.fixture
def qingdao() -> Dataset:
    """The demo city's day."""
    return dataset("qingdao")


@pytest.fixture
def tiny() -> Dataset:
    """The hand-checkable day."""
    return dataset("tiny")
