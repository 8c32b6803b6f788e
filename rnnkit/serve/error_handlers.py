"""Every error of `rnnkit serve` as JSON `{"detail": ...}` with the status that fits, never a
500 for bad input.

    422  a field out of its limits or of the wrong type (`field` names it, `errors` lists all);
         a DataError (its column as `field`), a ConfigError or another ValueError from a model
    409  SequenceGap, with `expected`
    404  UnknownStream (never created, deleted, or idle past the TTL)
    503  StreamsFull, StreamBusy (a shared store: another server holds the stream) and
         StoreUnavailable (Redis does not answer), each with `Retry-After`
    415  a body not declared as JSON
    400  any other RnnkitError
    500  a bug: logged with its traceback, answered without it

and from the middleware (`security.py`): 413 for a body over the limit (with `limit`), 401
without the token (when the server has one). `ErrorBody` is that JSON; routes declare the
statuses they answer with `error_responses(...)`, so `/docs` shows them.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from rnnkit.errors import DataError, RnnkitError
from rnnkit.serve.streams import (
    SequenceGap,
    StoreUnavailable,
    StreamBusy,
    StreamsFull,
    UnknownStream,
)

log = logging.getLogger(__name__)

#: JSON bodies must say so: a browser on another site cannot send that without asking first
#: (CORS), which keeps a token-less server on localhost out of reach of other sites' pages.
NOT_JSON = "send the body as JSON, with the header 'Content-Type: application/json'"


class FieldError(BaseModel):
    """One field at fault in a 422."""

    field: str = Field(description="where, dotted: `texts.3`, `history.0.time`; `body`")
    message: str
    type: str | None = Field(None, description="pydantic's error type: `missing`, ...")


class ErrorBody(BaseModel):
    """Every error answer: `detail`, and the keys that fit its status (others are left out)."""

    detail: str = Field(description="what is wrong and what would be accepted")
    field: str | None = Field(None, description="422: the (first) field at fault")
    errors: list[FieldError] | None = Field(None, description="422: every field at fault")
    expected: int | None = Field(None, description="409: the seq the stream accepts next")
    limit: int | None = Field(None, description="413: the most bytes a body may have")


#: each error status: when it is answered, and its headers
ERRORS: dict[int, dict[str, Any]] = {
    400: {"description": "a body that is not UTF-8 text (FastAPI cannot parse it)"},
    401: {
        "description": "no or wrong bearer token (when the server has a token)",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}},
    },
    404: {"description": "not found"},
    409: {"description": "an observation's seq out of order; `expected` is the next one"},
    413: {"description": "the body is over the server's limit (`limit` bytes)"},
    415: {"description": "the body is not declared as JSON (`Content-Type: application/json`)"},
    422: {
        "description": "a field out of its limits or of the wrong type (`field`, `errors`), "
        "or a value the model cannot take"
    },
    503: {
        "description": "every stream slot is taken (or, with a shared store, the stream is busy "
        "or the store away); retry after `Retry-After` seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    },
}


def error_responses(
    *statuses: int, notes: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: each of `statuses` as an `ErrorBody`, described by `ERRORS`
    unless `notes` says better for this route."""
    notes = notes or {}
    return {
        status: {**ERRORS[status], "model": ErrorBody}
        | ({"description": notes[status]} if status in notes else {})
        for status in statuses
    }


def add_error_handlers(app: FastAPI) -> None:
    """Register the handlers in the module docstring's table."""

    def error(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any):
        body = {"detail": detail, **{k: v for k, v in extra.items() if v is not None}}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not is_json(request) and request.method == "POST":
            return error(415, NOT_JSON)  # FastAPI reads JSON only when it is declared so
        errors = [_error(e) for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        field_ = errors[0]["field"] if errors else None
        return error(422, detail, field=field_, errors=errors)

    @app.exception_handler(ValidationError)
    async def invalid_inside(request: Request, exc: ValidationError) -> JSONResponse:
        return await invalid(request, RequestValidationError(in_body(exc.errors())))

    @app.exception_handler(UnknownStream)
    async def unknown_stream(request: Request, exc: UnknownStream) -> JSONResponse:
        return error(404, str(exc))

    @app.exception_handler(StreamsFull)
    @app.exception_handler(StreamBusy)
    @app.exception_handler(StoreUnavailable)
    async def unavailable(
        request: Request, exc: StreamsFull | StreamBusy | StoreUnavailable
    ) -> JSONResponse:
        return error(503, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RnnkitError)
    async def rnnkit_error(request: Request, exc: RnnkitError) -> JSONResponse:
        # DataError names its column; other ValueErrors (ConfigError, a value out of range)
        # are bad input; the rest a request that cannot be done.
        if isinstance(exc, SequenceGap):
            return error(409, str(exc), expected=exc.expected)
        if isinstance(exc, DataError):
            return error(422, exc.reason, field=exc.column)
        return error(422 if isinstance(exc, ValueError) else 400, str(exc))

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError) -> JSONResponse:
        return error(422, str(exc))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); see the server log")


def _error(e: dict[str, Any]) -> dict[str, Any]:
    """One validation error as `{"field", "message", "type"}`."""
    if e.get("type") == "json_invalid":  # loc is (body, character offset)
        where = e.get("loc", ("body", "?"))[-1]
        reason = e.get("ctx", {}).get("error", "")
        return {"field": "body", "message": f"not JSON: {reason} at character {where}",
                "type": "json_invalid"}  # fmt: skip
    return {"field": _field(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}


def is_json(request: Request) -> bool:
    """Whether the request declares a JSON body (`application/json` or `application/*+json`)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def in_body(errors: list[Any]) -> list[Any]:
    """Pydantic errors of a body validated by hand, located as FastAPI locates them."""
    return [{**e, "loc": ("body", *e.get("loc", ()))} for e in errors]
