"""The exception tree speaks both languages and locates bad input."""

from __future__ import annotations

import pytest

from dispatch.errors import (
    ConflictError,
    DatabaseUnavailable,
    DeliveryError,
    DispatchError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)


@pytest.mark.parametrize(
    "error",
    [
        ValidationError("bad", "错误", field="lat"),
        NotFoundError("technician", "T9", "技师"),
        ConflictError(),
        PermissionDeniedError(),
        DatabaseUnavailable("postgresql://h/db", "refused"),
        DeliveryError("smtp down", "邮件服务器不可用"),
    ],
)
def test_every_error_is_a_dispatch_error_in_both_languages(error: DispatchError) -> None:
    """Each error subclasses DispatchError and renders Chinese and English."""
    assert isinstance(error, DispatchError)
    assert error.message("zh") != error.message("en")
    assert str(error) == f"{error.message_zh} / {error.message_en}"


def test_validation_error_names_file_row_and_field() -> None:
    """A validation message says where the bad value is, in both languages."""
    error = ValidationError("out of range", "超出范围", field="lat", row=7, file="customers.csv")
    assert error.message("en") == "file customers.csv, row 7, field lat: out of range"
    assert error.message("zh") == "文件 customers.csv，第 7 行，字段 lat：超出范围"
    assert error.location() == {"field": "lat", "row": 7, "file": "customers.csv"}
