"""The one exception tree of the application.

Every error a person may read carries its message in Simplified Chinese and in English.
``str(error)`` gives both as ``"中文 / English"`` so command-line output needs no language choice;
``error.message(lang)`` gives one language for pages and API responses.
"""

from __future__ import annotations

from typing import Any


class DispatchError(Exception):
    """Base of every error the application raises on purpose."""

    def __init__(self, message_en: str, message_zh: str | None = None) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_zh = message_zh if message_zh is not None else message_en

    def message(self, language: str = "zh") -> str:
        """Return the message in ``language`` ("zh" or "en"; anything else gives English)."""
        return self.message_zh if language == "zh" else self.message_en

    def bilingual(self) -> str:
        """Return both messages as one line, Chinese first."""
        if self.message_zh == self.message_en:
            return self.message_en
        return f"{self.message_zh} / {self.message_en}"

    def __str__(self) -> str:
        return self.bilingual()


class ValidationError(DispatchError):
    """Bad input; names the field and, when known, the row and the file it came from."""

    def __init__(
        self,
        message_en: str,
        message_zh: str | None = None,
        *,
        field: str | None = None,
        row: int | str | None = None,
        file: str | None = None,
    ) -> None:
        self.field = field
        self.row = row
        self.file = file
        super().__init__(
            _with_location_en(message_en, field, row, file),
            _with_location_zh(
                message_zh if message_zh is not None else message_en, field, row, file
            ),
        )
        # Keep the bare texts too: an importer may regroup several errors by row.
        self.reason_en = message_en
        self.reason_zh = message_zh if message_zh is not None else message_en

    def location(self) -> dict[str, Any]:
        """Return where the bad value was found, for JSON error bodies."""
        return {"field": self.field, "row": self.row, "file": self.file}


class NotFoundError(DispatchError):
    """A record that the request names does not exist."""

    def __init__(self, entity: str, key: object, entity_zh: str | None = None) -> None:
        self.entity = entity
        self.key = key
        super().__init__(
            f"{entity} {key!s} not found",
            f"未找到{entity_zh or entity} {key!s}",
        )


class ConflictError(DispatchError):
    """Someone else changed the record since it was read (a stale write)."""

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(
            "The record was changed by someone else meanwhile; reload it and try again",
            "该记录已被他人修改，请刷新后重试",
        )


class PermissionDeniedError(DispatchError):
    """The user may not perform the action."""

    def __init__(
        self,
        message_en: str = "You are not allowed to do this",
        message_zh: str | None = "您无权执行此操作",
    ) -> None:
        super().__init__(message_en, message_zh)


class DatabaseUnavailable(DispatchError):
    """The database does not answer (down, unreachable, or refusing the connection)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"Cannot reach the database at {url}: {reason}",
            f"无法连接数据库 {url}：{reason}",
        )


class DeliveryError(DispatchError):
    """A notification could not be delivered through its channel."""


def _with_location_en(text: str, field: str | None, row: int | str | None, file: str | None) -> str:
    parts = []
    if file is not None:
        parts.append(f"file {file}")
    if row is not None:
        parts.append(f"row {row}")
    if field is not None:
        parts.append(f"field {field}")
    return f"{', '.join(parts)}: {text}" if parts else text


def _with_location_zh(text: str, field: str | None, row: int | str | None, file: str | None) -> str:
    parts = []
    if file is not None:
        parts.append(f"文件 {file}")
    if row is not None:
        parts.append(f"第 {row} 行")
    if field is not None:
        parts.append(f"字段 {field}")
    return f"{'，'.join(parts)}：{text}" if parts else text
