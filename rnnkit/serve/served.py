"""`Served`: one model as `rnnkit serve` holds it: its run, task hooks, predictor, thread and
micro-batchers, and its entry in `GET /v1/models`.

Everything a model runs goes through its one thread (the predictors keep scratch buffers), in the
batches its two `MicroBatcher`s form: stateless requests, and stream steps keyed by stream id.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, create_model

from rnnkit.errors import ConfigError
from rnnkit.layout import Files
from rnnkit.model_file import read_header
from rnnkit.run import Run
from rnnkit.serve.batcher import MicroBatcher
from rnnkit.serve.hooks import ServingHooks
from rnnkit.serve.metrics import ServeMetrics
from rnnkit.serve.streams import StreamStore


@dataclass
class Batching:
    """How requests share model calls (`ServeSettings`' part of it)."""

    window_ms: float
    max_batch: int
    enabled: bool


@dataclass
class Served:
    """One served model.

    Attributes:
        name: its name in URLs (the run folder's name).
        run: the run folder's handle; `run.task` is the task's spec.
        hooks: the task's `ServingHooks`.
        predictor: what `rnnkit.load()` gives for the run.
        executor: the model's one thread.
        observe_model: the task's observation model with the server's `seq` added.
        stream_reason: why the model cannot carry a stream, or None when it can.
        info: its entry in `GET /v1/models`.
        requests: micro-batcher of stateless requests (`hooks.run_batch`).
        steps: micro-batcher of stream steps (`StreamStore.apply_steps` over `hooks.step_batch`).
    """

    name: str
    run: Run
    hooks: ServingHooks
    predictor: Any
    executor: ThreadPoolExecutor
    observe_model: type[BaseModel]
    stream_reason: str | None
    info: dict[str, Any] = field(default_factory=dict)
    requests: MicroBatcher = field(init=False)
    steps: MicroBatcher = field(init=False)

    async def aclose(self) -> None:
        """Finish what was submitted, then stop the thread."""
        await self.requests.aclose()
        await self.steps.aclose()
        self.executor.shutdown(wait=True)


def load_model(
    name: str, path: Path, batching: Batching, store: StreamStore, metrics: ServeMetrics
) -> Served:
    """The run in `path`, loaded and ready to serve under `name`.

    Raises:
        ConfigError: its task has no serving hooks.
        DataError: not a run folder, or a damaged one.
    """
    run = Run(path)
    if run.task.serving is None:
        raise ConfigError(f"{path}: a {run.task.name} run cannot be served (no serving hooks)")
    hooks: ServingHooks = run.task.serving()
    predictor = run.predictor()
    observe_model = create_model(
        f"{camel(hooks.endpoint)}{hooks.observe_model.__name__}",
        __base__=hooks.observe_model,
        seq=(int, Field(ge=0, description="this observation's number: last applied + 1")),
    )
    served = Served(
        name=name,
        run=run,
        hooks=hooks,
        predictor=predictor,
        executor=ThreadPoolExecutor(1, thread_name_prefix=f"rnnkit-{name}"),
        observe_model=observe_model,
        stream_reason=hooks.can_stream(predictor),
    )
    served.info = describe(served)
    options = {
        "window_ms": batching.window_ms,
        "max_batch": batching.max_batch,
        "executor": served.executor,
        "enabled": batching.enabled,
    }
    served.requests = MicroBatcher(_request_batch(served, metrics), **options)
    served.steps = MicroBatcher(_step_batch(served, store, metrics), **options)
    return served


def describe(served: Served) -> dict[str, Any]:
    """The model's entry in `GET /v1/models`."""
    run, spec = served.run, served.run.task
    tested = run.test_metrics() or {}
    data: Any = run.raw_config.get("config", {})
    for part in spec.options.get(spec.data_option, "data.data").split("."):
        data = data.get(part) if isinstance(data, dict) else None
    if isinstance(data, str) and ("/" in data or "\\" in data):
        data = Path(data).name  # a path on the server's disk: its name says enough
    weights = run.file(Files.WEIGHTS)
    parameters = 0
    for tensor in read_header(weights).tensors.values():  # each tensor once, tied ones too
        count = 1
        for n in tensor.shape:
            count *= n
        parameters += count
    return {
        "name": served.name,
        "task": spec.name,
        "data": data,
        "metrics": {m.name: m.value(tested) for m in spec.metrics},
        "parameters": parameters,
        "size_bytes": weights.stat().st_size,
        "endpoint": f"/v1/models/{served.name}/{served.hooks.endpoint}",
        "streams": served.stream_reason is None,
        "limits": dict(served.hooks.limits(served.predictor)),
    }


def camel(text: str) -> str:
    """`"my-run"` -> `"MyRun"`: names in the OpenAPI schema."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", text))


# --- the batch functions (they run in the model's thread) --------------------------------------


def _request_batch(served: Served, metrics: ServeMetrics) -> Callable[[list[Any]], list[Any]]:
    """Stateless requests -> their answers; a request that fails gets its exception alone."""

    def run(items: list[Any]) -> list[Any]:
        metrics.batch_size.labels(served.name, "request").observe(len(items))
        try:
            return list(served.hooks.run_batch(served.predictor, items))
        except Exception as exc:
            if len(items) == 1:
                return [exc]
        # One bad request must not fail the others: answer each alone.
        return [run_one(item) for item in items]

    def run_one(item: Any) -> Any:
        try:
            return served.hooks.run_batch(served.predictor, [item])[0]
        except Exception as exc:
            return exc

    return run


def _step_batch(
    served: Served, store: StreamStore, metrics: ServeMetrics
) -> Callable[[list[Any]], list[Any]]:
    """Observations `(stream, seq, request)` -> the streams' records after them.

    `StreamStore.apply_steps` reads each stream, checks its seq (a retry of the last one gets
    the stored answer, a gap its `SequenceGap`), steps the rest in one `hooks.step_batch` call
    and commits them in ONE transaction, all before any answer leaves.
    """
    stepped: list[float] = []  # when the step ended: the commit's timer starts there

    def step(states: list[Any], requests: list[Any]) -> list[Any]:
        out = served.hooks.step_batch(served.predictor, states, requests)
        stepped.append(time.perf_counter())
        return out

    def apply(items: list[Any]) -> list[Any]:
        stepped.clear()
        results = store.apply_steps(items, step)
        if stepped:
            metrics.commit_seconds.labels("step").observe(time.perf_counter() - stepped[0])
        return results

    def run(items: list[Any]) -> list[Any]:
        metrics.batch_size.labels(served.name, "step").observe(len(items))
        try:
            return apply(items)
        except Exception as exc:
            if len(items) == 1:
                return [exc]
        # The step raised before anything was committed: step each stream alone, so that one
        # bad observation fails alone.
        out: list[Any] = []
        for item in items:
            try:
                out.append(apply([item])[0])
            except Exception as exc:
                out.append(exc)
        return out

    return run
