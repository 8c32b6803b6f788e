"""`ExportHooks`: what a task tells `rnnkit.export` and `rnnkit bench` about its trained model.

Each task builds one in `rnnkit/tasks/<task>/export.py` and puts it in its spec
(`TaskSpec.export`); `rnnkit.export` looks it up by the run's task and never names a task itself.
A task with `export=None` has no exportable graph: export, quantization and bench say so, listing
the tasks that have one.

This module (like `rnnkit.export.graphs`) imports no task and not `rnnkit.tasks`, so that the
task folders can import it: the import graph stays a DAG (`tests/test_imports.py`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnkit.io import atomic_open
from rnnkit.run_folder import Files

if TYPE_CHECKING:
    from torch import Tensor, nn

    from rnnkit.export.graphs import GraphSpec

#: A backend under test: {input name: array} -> {output name: array}, with the graph's names.
Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class MetricLimit:
    """The largest accepted change of a task's deciding metric.

    Attributes:
        metric: the metric compared.
        higher_is_better: whether a rise is an improvement.
        limit: the largest accepted worsening.
        relative: `limit` is a fraction of the fp32 value rather than an absolute amount.
        why: one line for the docs and the report.
    """

    metric: str
    higher_is_better: bool
    limit: float
    relative: bool
    why: str

    def worsening(self, fp32: float, quantized: float) -> float:
        """How much worse the quantized value is (negative: better), in the limit's units."""
        change = (fp32 - quantized) if self.higher_is_better else (quantized - fp32)
        return change / abs(fp32) if self.relative and fp32 else change


@dataclass(frozen=True)
class ExportHooks:
    """One task's export: its graph, the files beside it, its parity reference and its metric.

    `model` below is the predictor's module (`rnnkit.load(run).model`), `config` the run's
    `config.json` as a dict, `spec` the graph's `GraphSpec`.

    Attributes:
        graph: `(model) -> (graph, spec)`: the model re-wired with tensors in and out, holding
            the *same* submodules (no copied weights) with every branch fixed by the model's
            configuration, never by the data, so that tracing and ONNX export record it whole;
            `spec` names its inputs and outputs in order (`GraphSpec`, with the task's name).
        eager_outputs: `(model, {input name: Tensor}) -> [Tensor, ...]`: the model's own
            `forward` (not the graph) on the graph's inputs, in the order of `spec.outputs`.
            The parity check holds the graph to it.
        example_inputs: `(model, spec, batch_size, seq_len, rng) -> {input name: array}`:
            random inputs valid for the model (token ids within the vocabulary, never padding
            inside a row), usually `rnnkit.export.graphs.random_inputs` with the task's ranges.
        trained_length: `(config) -> int`: the longest sequence the run trained on (BPTT window,
            input window, `max_length`); parity checks a length beyond it.
        sidecars: `(run_dir, config, out_dir) -> [Path, ...]`: the files a consumer needs
            besides the graph (tokenizer, scaler), written into `out_dir`.
        manifest: `(config, predictor) -> {key: value}`: the task's fields of `export.json`
            (classes, pad and unk ids, the sidecar's file name), after the common ones.
        metric_limit: what decides whether a quantized model is still good enough.
        evaluate_exported: `(run_dir, config, held_out, runner) -> (data, fp32, quantized)`: the
            task's metrics on `held_out` (the `HeldOut` of `TaskSpec.held_out`, reopened by the
            caller through `rnnkit.run.Run.held_out`) from the eager fp32 model and
            through `runner`, by the task's own evaluation code; `data` describes what was
            evaluated; both dicts hold `metric_limit.metric`.
        real_inputs: `(run_dir, config, predictor, spec, batch, length) -> [inputs, ...]`: a few
            rows of the run's own data as graph inputs, when they load cheaply; None: parity on
            random inputs only. `rnnkit.export` skips them (with a log line) on `RnnkitError` or
            `OSError` (moved file, empty cache).
        typical_length: `(run_dir, config, predictor) -> int`: the sequence length the run sees
            in use, for `rnnkit bench`; None means `trained_length`. `RnnkitError`/`OSError`
            fall back to `trained_length` with a log line.
    """

    graph: Callable[[nn.Module], tuple[nn.Module, GraphSpec]]
    eager_outputs: Callable[[nn.Module, dict[str, Tensor]], list[Tensor]]
    example_inputs: Callable[
        [nn.Module, GraphSpec, int, int, np.random.Generator], dict[str, np.ndarray]
    ]
    trained_length: Callable[[dict[str, Any]], int]
    sidecars: Callable[[Path, dict[str, Any], Path], list[Path]]
    manifest: Callable[[dict[str, Any], Any], dict[str, Any]]
    metric_limit: MetricLimit
    evaluate_exported: Callable[
        [Path, dict[str, Any], Any, Runner], tuple[str, dict[str, float], dict[str, float]]
    ]
    real_inputs: (
        Callable[[Path, dict[str, Any], Any, GraphSpec, int, int], list[dict[str, np.ndarray]]]
        | None
    ) = None
    typical_length: Callable[[Path, dict[str, Any], Any], int] | None = None


def copy_tokenizer(run_dir: Path, config: dict[str, Any], out_dir: Path) -> list[Path]:
    """The run's `tokenizer.json` copied beside the graph: the sidecar of a text task."""
    del config  # the file says everything
    target = out_dir / Files.TOKENIZER
    with (run_dir / Files.TOKENIZER).open("rb") as src, atomic_open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return [target]
