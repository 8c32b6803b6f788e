"""The routes of each served model and of the streams, built from the task hooks at startup.

`/v1/models/{name}/{endpoint}` and `/v1/models/{name}/streams` are added per model, typed with
its task's request models, so `/docs` shows the real schemas and FastAPI's validation names a
field out of its limits. `/v1/streams/{stream}/...` is one route for all models: the stream's
model, read from the store, validates the observation.

    observe ─► store.model_of (which model) ─► validate ─► MicroBatcher (key = stream id)
            ─► store.apply_steps: seq check, hooks.step_batch, ONE commit ─► the answer

(`store`: a `StateStore` file, or a `RedisStore` that several server processes share; there each
step also holds its stream's lock, and a 503 says the stream is busy or Redis away.)
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Body, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from rnnkit.serve.error_handlers import ERRORS, NOT_JSON, error_responses, in_body, is_json
from rnnkit.serve.metrics import ServeMetrics
from rnnkit.serve.served import Served, camel
from rnnkit.serve.streams import StreamRecord, StreamStore

log = logging.getLogger(__name__)


def find_model(models: dict[str, Served], name: str) -> Served:
    """The served model `name`, or a 404 that lists the served ones."""
    if name not in models:
        raise HTTPException(404, f"unknown model {name!r}; serving: {', '.join(sorted(models))}")
    return models[name]


def add_model_routes(
    app: FastAPI, served: Served, store: StreamStore, metrics: ServeMetrics
) -> None:
    """`POST /v1/models/{name}/{endpoint}` and `POST /v1/models/{name}/streams`."""
    hooks, name = served.hooks, served.name
    keys = itertools.count()

    async def stateless(request: Request, body: Any) -> Any:
        if getattr(body, "stream", False) and hooks.stream_events is not None:
            return await _event_stream(served, request, body)
        return await served.requests.submit(("request", next(keys)), body)

    async def new_stream(body: Any) -> JSONResponse:
        if served.stream_reason is not None:
            raise HTTPException(
                400, f"model {name!r} cannot carry a stream: {served.stream_reason}"
            )
        loop = asyncio.get_running_loop()
        state, answer = await loop.run_in_executor(
            served.executor, hooks.new_stream, served.predictor, body
        )
        start = time.perf_counter()
        record = await run_in_threadpool(store.create, name, state, answer)
        metrics.commit_seconds.labels("create").observe(time.perf_counter() - start)
        payload = {"stream": record.id, "model": name, "seq": 0, "answer": answer}
        return JSONResponse(jsonable_encoder(payload), status_code=201)

    _typed(stateless, hooks.request_model)
    _typed(new_stream, hooks.create_model)
    app.add_api_route(
        f"/v1/models/{name}/{hooks.endpoint}",
        stateless,
        methods=["POST"],
        tags=[name],
        name=f"{name} {hooks.endpoint}",
        operation_id=f"{camel(name)}_{hooks.endpoint}",
        summary=f"{hooks.endpoint} with {name} ({served.run.task.name})",
        responses=error_responses(400, 413, 415, 422),
    )
    app.add_api_route(
        f"/v1/models/{name}/streams",
        new_stream,
        methods=["POST"],
        status_code=201,
        tags=[name],
        name=f"{name} streams",
        operation_id=f"{camel(name)}_new_stream",
        summary=f"open a stream on {name}",
        responses=error_responses(
            400,
            413,
            415,
            422,
            503,
            notes={400: f"model {name!r} cannot carry a stream, or the body is not UTF-8"},
        ),
    )


def _typed(endpoint: Callable[..., Any], body_type: type) -> None:
    """Give `endpoint`'s `body` parameter its model's class, so FastAPI validates and documents
    it (the class is only known at run time, one per task)."""
    signature = inspect.signature(endpoint)
    parameters = [
        p.replace(annotation=Request)
        if p.name == "request"
        else p.replace(annotation=body_type, default=Body(...))
        for p in signature.parameters.values()
    ]
    endpoint.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]


def add_stream_routes(
    app: FastAPI, models: dict[str, Served], store: StreamStore, metrics: ServeMetrics
) -> None:
    """`/v1/streams/{stream}/observe`, `GET` and `DELETE /v1/streams/{stream}`."""

    unknown = {404: "unknown stream: never created, deleted, or idle past the TTL"}

    @app.post(
        "/v1/streams/{stream}/observe",
        tags=["streams"],
        responses=error_responses(404, 409, 413, 415, 422, notes=unknown),
    )
    async def observe(stream: str, request: Request) -> dict[str, Any]:
        """One observation `{"seq": last + 1, ...}`; the body's other fields are those of the
        stream's model (one of the schemas below). A retry of the last seq gets its answer
        again; any other seq is a 409 naming the expected one."""
        if not is_json(request):
            raise HTTPException(415, NOT_JSON)
        raw = await request.body()
        try:
            data = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(422, f"body: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise HTTPException(422, "the body must be a JSON object with 'seq'")
        # only the model here: the micro-batch reads the stream's state once, with its seq check
        model = await run_in_threadpool(store.model_of, stream)
        if model not in models:
            raise HTTPException(
                404, f"stream {stream!r} belongs to model {model!r}, not served here"
            )
        served = models[model]
        try:
            observation = served.observe_model.model_validate(data)
        except ValidationError as exc:
            raise RequestValidationError(in_body(exc.errors()), body=data) from None
        after = await served.steps.submit(stream, (stream, observation.seq, observation))
        return {"stream": stream, "seq": after.seq, "answer": after.answer}

    @app.get(
        "/v1/streams/{stream}", tags=["streams"], responses=error_responses(404, 422, notes=unknown)
    )
    async def get_stream(stream: str) -> dict[str, Any]:
        """A stream as last committed."""
        record: StreamRecord = await run_in_threadpool(store.get, stream)
        return {
            "stream": record.id,
            "model": record.model,
            "seq": record.seq,
            "answer": record.answer,
            "created": record.created,
            "updated": record.updated,
        }

    @app.delete(
        "/v1/streams/{stream}",
        tags=["streams"],
        status_code=204,
        responses=error_responses(404, 422, notes=unknown),
    )
    async def delete_stream(stream: str) -> Response:
        """Forget a stream and free its slot."""
        start = time.perf_counter()
        await run_in_threadpool(store.delete, stream)
        metrics.commit_seconds.labels("delete").observe(time.perf_counter() - start)
        return Response(status_code=204)


async def _event_stream(served: Served, request: Request, body: Any) -> Response:
    """Server-sent events from `hooks.stream_events`, made in the model's thread a few at a time
    (between two pulls the model serves other requests) and stopped when the client leaves."""
    assert served.hooks.stream_events is not None
    loop = asyncio.get_running_loop()
    events = await loop.run_in_executor(
        served.executor, served.hooks.stream_events, served.predictor, body
    )
    events = iter(events)
    # The first pull before the 200: bad input is still a JSON error with its status.
    try:
        first = await loop.run_in_executor(served.executor, _pull, events)
    except BaseException:
        served.executor.submit(_close, events)
        raise

    async def produce() -> AsyncIterator[str]:
        pulled = first
        try:
            while True:
                items = [item for item in pulled if item is not _END]
                if items:
                    yield "".join(f"data: {json.dumps(i)}\n\n" for i in items)
                if len(items) < len(pulled):
                    break
                if await request.is_disconnected():
                    return
                pulled = await loop.run_in_executor(served.executor, _pull, events)
            yield "event: done\ndata: {}\n\n"
        except Exception as exc:  # the response has started: say it as an event
            log.exception("stream of %s failed", served.name)
            yield f"event: error\ndata: {json.dumps({'detail': str(exc)})}\n\n"
        finally:
            # Queued behind any pull still running in the model's thread, never beside it.
            served.executor.submit(_close, events)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(produce(), media_type="text/event-stream", headers=headers)


_END = object()
#: how long one pull of events may hold the model's thread: short beside a person reading, long
#: beside one token of a small model (one hop per token costs more than the token)
PULL_SECONDS = 0.02


def _pull(events: Any) -> list[Any]:
    """The events made in about `PULL_SECONDS` (at least one), `_END` last when they ran out."""
    out: list[Any] = []
    deadline = time.perf_counter() + PULL_SECONDS
    while True:
        item = next(events, _END)
        out.append(item)
        if item is _END or time.perf_counter() >= deadline:
            return out


def _close(events: Any) -> None:
    close = getattr(events, "close", None)
    if close is not None:
        close()


def add_fallback_routes(app: FastAPI, models: dict[str, Served]) -> None:
    """After the models' own routes: a useful 404 for a verb a model does not have."""

    @app.post("/v1/models/{name}/{verb}", include_in_schema=False)
    def unknown_verb(name: str, verb: str) -> None:
        served = find_model(models, name)
        raise HTTPException(
            404,
            f"model {name!r} has no {verb!r}; its endpoints are {served.info['endpoint']} "
            f"and /v1/models/{name}/streams",
        )


def customize_openapi(
    app: FastAPI, models: dict[str, Served], token_prefixes: tuple[str, ...] = ()
) -> None:
    """`/v1/streams/{stream}/observe` reads its body by the stream's model: document it as one
    of the served models' observation schemas. The paths under `token_prefixes` (those the
    server's token guards, if it has one) document the 401 of a missing token."""
    observe_models = {m.observe_model.__name__: m.observe_model for m in models.values()}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        refs = []
        for title, model in observe_models.items():
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(found.pop("$defs", {}))
            components[title] = found
            refs.append({"$ref": f"#/components/schemas/{title}"})
        operation = schema["paths"]["/v1/streams/{stream}/observe"]["post"]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": refs}}},
        }
        unauthorized = {
            **ERRORS[401],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        for path, operations in schema["paths"].items():
            if path.startswith(token_prefixes):  # () matches none
                for operation in operations.values():
                    operation.setdefault("responses", {})["401"] = unauthorized
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
