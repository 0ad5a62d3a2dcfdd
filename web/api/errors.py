"""The one place where errors become JSON answers of the API.

``dispatch.errors`` and HTTP errors map to a status and an ``ErrorBody`` (code, message in the
reader's language, both messages, the field and row when known).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from dispatch.errors import (
    ConflictError,
    DatabaseUnavailable,
    DispatchError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from dispatch.importer import DataImportError, iter_errors

log = logging.getLogger(__name__)

#: dispatch's errors and their HTTP statuses (the most specific class first).
STATUS_OF: tuple[tuple[type[DispatchError], int, str], ...] = (
    (ValidationError, 422, "invalid"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (PermissionDeniedError, 403, "forbidden"),
    (DatabaseUnavailable, 503, "unavailable"),
)

#: Texts of the HTTP errors the API itself raises: status -> (code, Chinese, English).
HTTP_TEXTS: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "请求格式不正确", "The request is not well formed"),
    401: ("unauthorized", "需要有效的访问令牌（Authorization: Bearer …）",
          "A valid access token is needed (Authorization: Bearer …)"),
    403: ("forbidden", "您的角色无权执行此操作", "Your role is not allowed to do this"),
    404: ("not_found", "未找到该记录", "Not found"),
    405: ("method_not_allowed", "不支持该请求方法", "This method is not allowed here"),
    409: ("conflict", "该记录已被他人修改，请刷新后重试",
          "The record was changed by someone else meanwhile; reload it and try again"),
    413: ("too_large", "请求内容过大", "The request is too large"),
    415: ("unsupported_media_type", "请以 JSON 格式发送", "Send the body as JSON"),
    422: ("invalid", "输入有误", "The input is not valid"),
    500: ("server_error", "服务器内部错误", "Something went wrong on the server"),
}


class ApiError(Exception):
    """An HTTP error of the API with its own texts (e.g. 401 without a token)."""

    def __init__(self, status: int, message_en: str | None = None,
                 message_zh: str | None = None, field: str | None = None) -> None:
        code, zh, en = HTTP_TEXTS.get(status, HTTP_TEXTS[500])
        super().__init__(message_en or en)
        self.status = status
        self.code = code
        self.message_en = message_en or en
        self.message_zh = message_zh or zh
        self.field = field


def language() -> str:
    """The reader's language from Accept-Language: "zh" (default) or "en"."""
    return request.accept_languages.best_match(["zh", "en"], default="zh") or "zh"


def error_body(status: int, code: str, zh: str, en: str, *, field: str | None = None,
               row: str | int | None = None,
               details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON body of an error answer (the ``ErrorBody`` schema)."""
    return {"code": code, "status": status, "message": zh if language() == "zh" else en,
            "message_zh": zh, "message_en": en, "field": field, "row": row,
            "details": details or []}


def error_response(status: int, body: dict[str, Any]) -> Response:
    """A JSON error answer; 401 tells the client which scheme to use."""
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="dispatch"'
    return response


def dispatch_error_response(error: DispatchError) -> Response:
    """Map an application error to its status and body."""
    status, code = 400, "bad_request"
    for cls, mapped_status, mapped_code in STATUS_OF:
        if isinstance(error, cls):
            status, code = mapped_status, mapped_code
            break
    field = row = None
    details: list[dict[str, Any]] = []
    if isinstance(error, ValidationError):
        field, row = error.field, error.row
    if isinstance(error, DataImportError):
        details = list(iter_errors(error))
        if details:
            field, row = details[0]["field"], details[0]["row"]
    body = error_body(status, code, error.message("zh"), error.message("en"), field=field,
                      row=row, details=details)
    return error_response(status, body)


def validation_hook(_req: Any, resp: Any, error: Exception | None, _instance: Any,
                    _adapter: Any) -> None:
    """Rewrite spectree's request-validation answer (a list of pydantic errors) as an
    ``ErrorBody`` naming the first bad field."""
    if error is None or resp is None:
        return
    problems = json.loads(resp.get_data(as_text=True) or "[]")
    details = [_detail(p) for p in problems if isinstance(p, dict)]
    first = details[0] if details else {"field": None, "message_zh": "输入有误",
                                        "message_en": "The input is not valid"}
    body = error_body(422, "invalid", f"字段 {first['field']}：{first['message_zh']}",
                      f"field {first['field']}: {first['message_en']}",
                      field=first["field"], details=details)
    resp.set_data(json.dumps(body, ensure_ascii=False))
    resp.mimetype = "application/json"


def _detail(problem: dict[str, Any]) -> dict[str, Any]:
    location = [str(part) for part in problem.get("loc", ())]
    field = ".".join(location) or None
    message = str(problem.get("msg", "invalid value"))
    return {"field": field, "row": None, "file": None,
            "message_zh": f"取值无效（{message}）", "message_en": message}


def register(bp: Blueprint) -> None:
    """Answer every error raised by the API's views as JSON."""
    bp.register_error_handler(ApiError, _api_error)
    bp.register_error_handler(DispatchError, dispatch_error_response)
    bp.register_error_handler(StaleDataError, _stale)
    bp.register_error_handler(HTTPException, http_error)
    bp.register_error_handler(Exception, _unexpected)


def _api_error(error: ApiError) -> Response:
    return error_response(error.status, error_body(error.status, error.code, error.message_zh,
                                                   error.message_en, field=error.field))


def _stale(_error: StaleDataError) -> Response:
    return dispatch_error_response(ConflictError())


def http_error(error: HTTPException) -> Response:
    """An HTTP error as a JSON answer."""
    # spectree aborts with its own (already rewritten) validation answer: pass it through.
    if error.response is not None:
        return error.response
    status = error.code or 500
    code, zh, en = HTTP_TEXTS.get(status, (f"http_{status}", error.name, error.name))
    return error_response(status, error_body(status, code, zh, en))


def _unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):  # pragma: no cover - handled above
        return http_error(error)
    log.exception("unexpected error in %s %s", request.method, request.path)
    code, zh, en = HTTP_TEXTS[500]
    return error_response(500, error_body(500, code, zh, en))
