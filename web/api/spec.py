"""The API's OpenAPI 3.1 document and request validation (spectree + pydantic)."""

from __future__ import annotations

from typing import Any

from spectree import Response, SecurityScheme, SpecTree
from spectree.models import SecuritySchemeData

from web.api.errors import validation_hook
from web.api.schemas import ErrorBody

TITLE = "Dispatch API / 派工调度接口"
VERSION = "1.0.0"
DESCRIPTION = (
    "派工调度系统的 JSON 接口：工单、导入、方案求解与发布、时段推荐、技师状态、任务与通知。"
    "使用 Authorization: Bearer 令牌访问；错误以 JSON 返回（中文与英文）。\n\n"
    "The dispatch system's JSON API: visits, import, plan solves and publishing, slot "
    "recommendations, technician status, tasks and notifications. Send an "
    "`Authorization: Bearer` token; errors come back as JSON in Chinese and English."
)

#: Only views decorated by this instance are documented (mode "strict"); the document is served
#: by the API blueprint itself, so spectree's own routes and its CDN-hosted pages are not used.
spec = SpecTree(
    "flask",
    title=TITLE,
    version=VERSION,
    description=DESCRIPTION,
    path="_spectree",
    mode="strict",
    page_templates={},
    security_schemes=[SecurityScheme(
        name="bearer", data=SecuritySchemeData(type="http", scheme="bearer",
                                               description="API token / 访问令牌"))],
    security={"bearer": []},
    validation_error_status=422,
    validation_error_model=ErrorBody,
    before=validation_hook,
)


def responses(status: int, model: Any, *errors: int) -> Response:
    """The documented answers of an operation: ``status`` with ``model``, 401 and 403 always,
    plus the error statuses ``errors`` (all with ``ErrorBody``)."""
    codes = {f"HTTP_{status}": model}
    for code in (401, 403, *errors):
        codes[f"HTTP_{code}"] = ErrorBody
    return Response(**codes)
