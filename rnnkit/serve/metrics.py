"""Prometheus metrics of one `rnnkit serve` app, in its own registry (two apps in one process,
as in tests, do not collide).

    rnnkit_requests_total{endpoint, method, status}            requests answered
    rnnkit_request_seconds{endpoint, method, status}           latency, to the last byte
    rnnkit_batch_size{model, kind}                             items per micro-batch
    rnnkit_active_streams                                      streams not yet expired
    rnnkit_state_commit_seconds{op}                            state-store transactions

`endpoint` is the route's path template (`/v1/models/rt/classify`, `/v1/streams/{stream}`), so a
stream id never becomes a label value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.routing import Match

from rnnkit.serve.security import ASGIApp, Message, Receive, Scope, Send

# Latency buckets from a cached stream step (~1 ms) to a long generation (tens of seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class ServeMetrics:
    """The app's counters, histograms and gauge.

    Args:
        active_streams: returns the number of live streams; called at each scrape.
    """

    def __init__(self, active_streams: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("endpoint", "method", "status")
        self.requests = Counter(
            "rnnkit_requests", "HTTP requests answered", labels, registry=self.registry
        )
        self.latency = Histogram(
            "rnnkit_request_seconds",
            "HTTP request latency, until the last byte of the response",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "rnnkit_batch_size",
            "requests (kind=request) or stream steps (kind=step) per micro-batch",
            ("model", "kind"),
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.active_streams = Gauge(
            "rnnkit_active_streams", "streams not yet expired", registry=self.registry
        )
        if active_streams is not None:
            self.active_streams.set_function(active_streams)
        self.commit_seconds = Histogram(
            "rnnkit_state_commit_seconds",
            "state-store write transactions (op=step: one per micro-batch), fsync included",
            ("op",),
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestMetrics:
    """ASGI middleware counting every HTTP request by route template, method and status.

    Args:
        routes: the app's routes, to name the route of a request that a guard (401, 413)
            answered before the router saw it.
    """

    def __init__(self, app: ASGIApp, metrics: ServeMetrics, routes: Sequence[Any] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees if the app dies before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            labels = (self._endpoint(scope), scope.get("method", ""), str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)

    def _endpoint(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            matches = [(r, r.matches(scope)[0]) for r in self.routes]
            found = [r for r, m in matches if m is Match.FULL] or [
                r for r, m in matches if m is Match.PARTIAL
            ]
            route = found[0] if found else None
        # Unmatched paths share one label: a scanner cannot grow the label set.
        return getattr(route, "path", None) or "unmatched"
