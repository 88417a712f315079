"""One error body for every 4xx/5xx: ``{"error": {"code", "message", "details"}}``.

CareCircle errors map to status codes here, so routers raise domain errors
(:class:`NotFound`, :class:`PermissionDenied`, :class:`Conflict`, …) and never build
responses themselves.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from carecircle.common.errors import (
    CareCircleError,
    Conflict,
    ContractError,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
)
from carecircle.platform.alerts.config import RuleInvalid

log = logging.getLogger(__name__)


class InvalidInput(CareCircleError):
    """The request is well-formed but asks for something impossible (bad cursor, range)."""


class Unauthenticated(CareCircleError):
    """No valid credentials were presented."""


class RateLimited(CareCircleError):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


_STATUS: list[tuple[type[CareCircleError], int, str]] = [
    (Unauthenticated, 401, "unauthenticated"),
    (PermissionDenied, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (RuleInvalid, 422, "rule_invalid"),  # a refused alert rule, with the reason
    (InvalidInput, 400, "invalid_input"),
    (ContractError, 400, "invalid_input"),
    (RateLimited, 429, "rate_limited"),
    (StoreUnavailable, 503, "unavailable"),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}

#: Error responses every API route may give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": code}
    for status, code in [
        (400, "invalid input"),
        (401, "not signed in"),
        (403, "not allowed"),
        (404, "not found (or not yours)"),
        (409, "conflicting state"),
        (422, "validation error"),
    ]
}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def status_of(err: CareCircleError) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(err, cls):
            return status, code
    return 500, "internal"


def install(app: FastAPI) -> None:
    @app.exception_handler(CareCircleError)
    async def _domain(request: Request, err: CareCircleError) -> JSONResponse:
        status, code = status_of(err)
        headers: dict[str, str] = {}
        if isinstance(err, Unauthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(err, RateLimited):
            headers["Retry-After"] = str(max(1, round(err.retry_after_s)))
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, err)
        return error_response(status, code, str(err), headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in err.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"])
        return error_response(
            422,
            "validation_error",
            f"{where}: {first['msg']}" if where else str(first["msg"]),
            details,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(
            err.status_code, "error" if err.status_code >= 500 else "bad_request"
        )
        return error_response(
            err.status_code, code, str(err.detail), headers=dict(err.headers or {}) or None
        )

    @app.exception_handler(psycopg.DataError)
    async def _data(request: Request, err: psycopg.DataError) -> JSONResponse:
        # A value PostgreSQL cannot hold (NUL bytes, out-of-range numbers or times):
        # the request is at fault, and nothing was written.
        return error_response(400, "invalid_input", "a value in the request cannot be stored")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=err)
        return error_response(500, "internal", "internal error; see the server log")
