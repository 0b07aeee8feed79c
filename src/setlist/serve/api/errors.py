"""Exception handlers: every error leaves the service as ``{"error": {"code", "message", ...}}``.

- :class:`setlist.errors.SetlistError` -> the status from :func:`setlist.errors.http_status`
  (503 answers carry ``Retry-After``);
- FastAPI's request validation -> 422, naming the field and echoing (a bounded part of) the value;
- Starlette's HTTP errors (unknown path, wrong method) -> their status, same shape;
- anything else -> logged with its traceback, 500 without details (the last resort).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from setlist.errors import SetlistError, http_status
from setlist.serve.api.service import service_of

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
_MAX_ECHO = 100
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SetlistError, _setlist_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


def error_response(
    request: Request,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error shape; also counts the error by route and code."""
    code = str(body.get("code", "error"))
    service_of(request.app).metrics.error(request.scope, code)
    headers = dict(headers or {})
    if status == 503:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return JSONResponse({"error": _json_safe(body)}, status_code=status, headers=headers)


async def _setlist_error(request: Request, exc: SetlistError) -> JSONResponse:
    status = http_status(exc)
    if status >= 500:
        log.error("%s on %s %s: %s", exc.code, request.method, request.url.path, exc.message)
    return error_response(request, status, exc.to_dict())


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [_describe(err) for err in exc.errors()]
    first = problems[0] if problems else {"field": None, "message": "invalid request"}
    field = first["field"]
    body: dict[str, Any] = {
        "code": "validation",
        "message": f"{field}: {first['message']}" if field else first["message"],
        **{key: value for key, value in first.items() if key != "message"},
    }
    if len(problems) > 1:
        body["errors"] = problems
    return error_response(request, 422, body)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    body: dict[str, Any] = {"code": code, "message": str(exc.detail)}
    if exc.status_code in (400, 413):  # 400: a body that is not JSON; 413: one too large
        body["field"] = "body"
    return error_response(request, exc.status_code, body, dict(exc.headers or {}))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {"code": "internal", "message": "internal server error"}
    return error_response(request, 500, body)


def _describe(err: Any) -> dict[str, Any]:
    """One pydantic error as {field, message, value}, the value cut to a sane length."""
    loc = [str(part) for part in err.get("loc", ()) if part not in ("path", "query", "body")]
    out: dict[str, Any] = {
        "field": ".".join(loc) or None,
        "message": str(err.get("msg", "invalid value")),
    }
    if "input" in err:
        out["value"] = _echo(err["input"])
    return out


def _echo(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    text = value if isinstance(value, str) else repr(value)
    text = text if len(text) <= _MAX_ECHO else text[:_MAX_ECHO] + "..."
    # A lone surrogate (JSON allows "\ud800") cannot be written as UTF-8: echo it escaped.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _json_safe(body: dict[str, Any]) -> Any:
    try:
        return jsonable_encoder(body)
    except (TypeError, ValueError):
        return {key: _echo(value) for key, value in body.items()}
