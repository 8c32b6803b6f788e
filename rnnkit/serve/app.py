"""`create_app(runs, settings)`: the FastAPI app behind `rnnkit serve` (the API is in
`rnnkit/serve/__init__.py`).

    request ─► RequestMetrics ─► BearerAuth ─► BodyLimit ─► route
      stateless: MicroBatcher ─► hooks.run_batch
      observe:   MicroBatcher (key = stream id) ─► store.apply_steps
                   (hooks.step_batch, then ONE commit for the batch) ─► answers, after the commit

The pieces: `served.py` (a model, its thread and batchers, its listing), `routes.py` (the
models' and the streams' routes), `error_handlers.py` (every error as `{"detail"}`),
`security.py` (token, body limit, the open-address check), `metrics.py` (Prometheus),
`streams.py` (what every stream store shares), `store.py` (stream state in a SQLite file, one
process), `redis_store.py` (stream state in Redis, shared by replicas; `--state redis://...`),
`batcher.py` (micro-batches).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from rnnkit.errors import ConfigError
from rnnkit.serve.error_handlers import add_error_handlers, error_responses
from rnnkit.serve.metrics import RequestMetrics, ServeMetrics
from rnnkit.serve.routes import (
    add_fallback_routes,
    add_model_routes,
    add_stream_routes,
    customize_openapi,
    find_model,
)
from rnnkit.serve.security import PROTECTED_PREFIXES, BearerAuth, BodyLimit, check_binding
from rnnkit.serve.served import Batching, Served, load_model
from rnnkit.serve.store import open_store
from rnnkit.serve.streams import StoreUnavailable, StreamStore
from rnnkit.version import __version__

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class ServeSettings:
    """How `rnnkit serve` runs (the CLI's flags).

    Attributes:
        host: the address to bind; loopback by default, since anything else needs a token.
        port: the TCP port (uvicorn's usual 8000).
        state: where stream state lives: an SQLite file (one server process; keep it across
            restarts to keep the streams), or `redis://HOST:PORT/DB` / `rediss://...`, one
            Redis database that several server processes share (replicas behind a load
            balancer).
        max_streams: most streams open at once over all models; each costs a row of a few KB.
        stream_ttl: seconds a stream may stay idle before it is dropped (an hour: a client that
            went away frees its slot without a DELETE).
        token: the bearer token clients must send on `/v1/*` and `/metrics`; None for none.
        insecure_no_auth: allow a non-loopback `host` without a token (behind a guarding proxy).
        batch_window_ms: how long a request may wait for others to share its model call; 2 ms
            is small beside a model call and lets concurrent clients share one.
        max_batch: most requests (or stream steps) in one model call.
        max_body_bytes: larger request bodies get a 413 unread (1 MiB holds long histories).
        batching: False answers each request with its own model call (for comparisons).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    state: str | Path = Path("rnnkit-streams.sqlite")
    max_streams: int = 10_000
    stream_ttl: float = 3600.0
    token: str | None = None
    insecure_no_auth: bool = False
    batch_window_ms: float = 2.0
    max_batch: int = 32
    max_body_bytes: int = 1 << 20
    batching: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("--port", self.port, 0 <= self.port <= 65535, "0-65535"),
            ("--max-streams", self.max_streams, self.max_streams >= 1, "at least 1"),
            ("--stream-ttl", self.stream_ttl, self.stream_ttl > 0, "a positive number of seconds"),
            ("--batch-window-ms", self.batch_window_ms, self.batch_window_ms >= 0, ">= 0"),
            ("--max-batch", self.max_batch, self.max_batch >= 1, "at least 1"),
            ("--max-body-bytes", self.max_body_bytes, self.max_body_bytes >= 1024, ">= 1024"),
        ]
        for flag, value, ok, accepted in checks:
            if not ok:
                raise ConfigError(f"{flag} {value}: must be {accepted}")


def model_names(paths: list[str | Path]) -> dict[str, Path]:
    """Each run folder under its folder's name, made URL-safe and unique (`rt`, `rt-2`)."""
    named: dict[str, Path] = {}
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).resolve().name).strip("-.") or "model"
        name = base
        for n in itertools.count(2):
            if name not in named:
                break
            name = f"{base}-{n}"
        named[name] = Path(path)
    return named


def create_app(runs: dict[str, str | Path], settings: ServeSettings | None = None) -> FastAPI:
    """The app serving `runs` (name -> run folder), each model loaded now.

    Raises:
        ConfigError: an open address without a token, no runs, a task that cannot be served,
            a bad `--state` URL.
        DataError: a run folder or the state file that cannot be read.
        StoreUnavailable: a Redis `--state` that does not answer.
    """
    settings = settings or ServeSettings()
    check_binding(settings.host, settings.token, settings.insecure_no_auth)
    if not runs:
        raise ConfigError("give at least one run folder to serve")
    store = open_store(
        settings.state, max_streams=settings.max_streams, ttl_seconds=settings.stream_ttl
    )
    metrics = ServeMetrics(active_streams=_or_nan(store.count))
    batching = Batching(settings.batch_window_ms, settings.max_batch, settings.batching)
    try:
        models = {
            name: load_model(name, Path(path), batching, store, metrics)
            for name, path in runs.items()
        }
    except BaseException:
        store.close()
        raise

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        expiry = asyncio.create_task(_expire_forever(store, settings.stream_ttl))
        try:
            yield
        finally:
            expiry.cancel()
            for served in models.values():
                await served.aclose()
            store.close()

    app = FastAPI(
        title="rnnkit serve",
        version=__version__,
        description="Trained rnnkit runs over HTTP: " + ", ".join(sorted(models)),
        lifespan=lifespan,
    )
    app.state.models = models
    app.state.store = store
    app.state.metrics = metrics
    app.state.settings = settings
    add_error_handlers(app)
    _add_common_routes(app, models, metrics, store)
    for served in models.values():
        add_model_routes(app, served, store, metrics)
    add_fallback_routes(app, models)  # after the models' own: it matches their paths too
    add_stream_routes(app, models, store, metrics)
    customize_openapi(app, models, PROTECTED_PREFIXES if settings.token else ())
    # Outermost last: metrics see every answer, 401s and 413s included.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.token:
        app.add_middleware(BearerAuth, token=settings.token)
    app.add_middleware(RequestMetrics, metrics=metrics, routes=app.router.routes)
    return app


# --- routes -----------------------------------------------------------------------------------


def _add_common_routes(
    app: FastAPI, models: dict[str, Served], metrics: ServeMetrics, store: StreamStore
) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> Response:
        index = STATIC / "index.html"
        if index.is_file():
            return HTMLResponse(index.read_text(encoding="utf-8"))
        names = "".join(f"<li><code>{name}</code></li>" for name in sorted(models))
        return HTMLResponse(
            f"<!doctype html><title>rnnkit serve</title><h1>rnnkit serve</h1><ul>{names}</ul>"
            '<p>The API: <a href="/docs">/docs</a>; models: <a href="/v1/models">/v1/models</a>'
        )

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", tags=["server"])
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["server"],
        responses={503: {"description": "not ready: the stream store (Redis) does not answer"}},
    )
    def readyz() -> Any:
        """Every model is loaded (they load before the server accepts connections) and the
        stream store answers; a 503 `{"ready": false, "detail"}` while it does not."""
        try:
            store.ping()
        except StoreUnavailable as exc:
            body = {"ready": False, "models": sorted(models), "detail": str(exc)}
            return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
        return {"ready": True, "models": sorted(models)}

    @app.get("/metrics", tags=["server"], response_class=Response)
    def prometheus() -> Response:
        """Prometheus text format."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/models", tags=["models"])
    def list_models() -> list[dict[str, Any]]:
        """The served models: task, data, headline metrics, size, endpoint, limits."""
        return [models[name].info for name in sorted(models)]

    @app.get(
        "/v1/models/{name}",
        tags=["models"],
        responses=error_responses(404, 422, notes={404: "no served model of that name"}),
    )
    def one_model(name: str) -> dict[str, Any]:
        """One served model's entry of `/v1/models`."""
        return find_model(models, name).info


def _or_nan(count: Callable[[], int]) -> Callable[[], float]:
    """`count`, or NaN while the store does not answer: a scrape of /metrics still succeeds."""

    def gauge() -> float:
        try:
            return float(count())
        except StoreUnavailable:
            return math.nan

    return gauge


async def _expire_forever(store: StreamStore, ttl: float) -> None:
    """Drop idle streams every so often (reads check the TTL too, so this only frees space)."""
    every = min(max(ttl / 4, 1.0), 60.0)
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(store.expire)
        except Exception:  # a busy or broken file, Redis away: say so, try again next time
            log.exception("expiring idle streams failed")
