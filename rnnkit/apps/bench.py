"""Inference speed and size of one run on every deployment backend (`rnnkit bench RUN`).

Backends, in the order of the table (`BACKENDS`):

    eager fp32        the run's modules in PyTorch, through the export graph (same submodules)
    bf16              the same with bfloat16 weights, where the CPU does bf16 natively
    torchscript       `rnnkit.export.export_torchscript`'s file, `torch.jit.load`ed
    torch int8        `torch.ao` dynamic int8 (LSTM/GRU/Linear), traced
    onnxruntime fp32  `rnnkit.export.export_onnx`'s file
    onnxruntime int8  that file after ORT's `quantize_dynamic`

Every backend gets the same inputs (`rnnkit.export.example_inputs`, fixed seed, every row of
full length so tokens/s counts real tokens) and the same threads: ONNX Runtime's
`intra_op_num_threads` is set to `torch.get_num_threads()`. Each backend is warmed up, then timed
`repeats` times per batch size in a block of its own (as it would run alone in a process).
Sizes are the model files on disk; `eager fp32` is the run's `model.safetensors`.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit import runs
from rnnkit.errors import ConfigError, RnnkitError
from rnnkit.export.hooks import Runner

logger = logging.getLogger(__name__)

BACKENDS = (
    "eager fp32",
    "bf16",
    "torchscript",
    "torch int8",
    "onnxruntime fp32",
    "onnxruntime int8",
)


#: Each int8 backend's size is compared with the fp32 file of the same format: like for like
#: (the run's `model.safetensors` holds no graph, and runs written before tied tensors were
#: saved once hold a classifier's embedding twice).
SIZE_BASE = {
    "torch int8": "torchscript",
    "onnxruntime int8": "onnxruntime fp32",
}


@dataclass(frozen=True)
class BenchRow:
    """One backend at one batch size.

    Attributes:
        backend: one of `BACKENDS`.
        batch_size: B.
        seq_len: T, steps per row.
        p50_ms: median latency of one call, in milliseconds (None: not run).
        p99_ms: 99th-percentile latency.
        sequences_per_s: B / median latency.
        tokens_per_s: B * T / median latency.
        speedup: eager fp32's median latency / this backend's, at the same batch size.
        size_bytes: the model file on disk.
        max_abs_diff: largest output difference from eager fp32 on the timed inputs.
        note: why a row was not run, or a remark.
    """

    backend: str
    batch_size: int
    seq_len: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    sequences_per_s: float | None = None
    tokens_per_s: float | None = None
    speedup: float | None = None
    size_bytes: int | None = None
    max_abs_diff: float | None = None
    note: str = ""


@dataclass(frozen=True)
class BenchResult:
    """Every row of one `bench_run`, with what they were measured under."""

    run: str
    task: str
    seq_len: int
    threads: int
    repeats: int
    rows: list[BenchRow]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": [asdict(r) for r in self.rows]}

    def table(self) -> str:
        """A GitHub markdown table of the rows."""
        header = [
            "backend", "batch", "p50 ms", "p99 ms", "seq/s", "tokens/s", "vs eager",
            "size MB", "smaller than fp32", "max abs diff", "note",
        ]  # fmt: skip
        sizes = {r.backend: r.size_bytes for r in self.rows if r.size_bytes}
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in self.rows:
            size = "" if not r.size_bytes else f"{r.size_bytes / 1e6:.2f}"
            base = sizes.get(SIZE_BASE.get(r.backend, ""))
            ratio = "" if not (r.size_bytes and base) else f"{base / r.size_bytes:.2f}x"
            cells = [
                r.backend, r.batch_size, _num(r.p50_ms, ".2f"), _num(r.p99_ms, ".2f"),
                _num(r.sequences_per_s, ".1f"), _num(r.tokens_per_s, ",.0f"),
                _num(r.speedup, ".2f", "x"), size, ratio, _num(r.max_abs_diff, ".2g"), r.note,
            ]  # fmt: skip
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        return "\n".join(lines)


def _num(value: float | None, fmt: str, suffix: str = "") -> str:
    return "" if value is None else f"{value:{fmt}}{suffix}"


@dataclass
class _Backend:
    name: str
    runner: Runner | None
    size: int | None
    note: str = ""


def bench_run(
    run_dir: str | Path,
    *,
    batch_sizes: Sequence[int] = (1, 64),
    seq_len: int | None = None,
    repeats: int = 20,
    warmup: int = 3,
    seed: int = 0,
    backends: Sequence[str] = BACKENDS,
) -> BenchResult:
    """Time one run on every backend.

    Args:
        run_dir: a run folder of a task with export hooks (`TaskSpec.export`).
        batch_sizes: B values to time.
        seq_len: T; None means the run's typical length (`typical_length`).
        repeats: timed calls per backend and batch size (p99 needs ~100 to mean much).
        warmup: untimed calls first (allocations, oneDNN primitive caches, ORT arenas).
        seed: for the inputs.
        backends: a subset of `BACKENDS`, in any order (the table keeps `BACKENDS`' order).

    Returns:
        A `BenchResult` with one row per backend and batch size.
    """
    from rnnkit.export.bundle import prepare
    from rnnkit.export.task_graph import example_inputs

    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise ConfigError(f"unknown backends {unknown}; choose from: {', '.join(BACKENDS)}")
    if repeats < 1 or warmup < 0 or not batch_sizes or min(batch_sizes) < 1:
        raise ConfigError("repeats must be >= 1, warmup >= 0 and batch sizes >= 1")
    run_dir = Path(run_dir)
    prep = prepare(run_dir)
    seq_len = int(seq_len) if seq_len is not None else typical_length(prep)
    if seq_len < 1:
        raise ConfigError(f"--seq-len must be at least 1, got {seq_len}")
    threads = torch.get_num_threads()
    rows: list[BenchRow] = []
    with tempfile.TemporaryDirectory(prefix="rnnkit-bench-") as tmp:
        exports: dict[str, tuple[Path, str]] = {}  # ONNX file shared by the two ORT rows
        built = [
            _open(name, prep, Path(tmp), threads, exports) for name in BACKENDS if name in backends
        ]
        for batch in batch_sizes:
            inputs = example_inputs(prep.predictor, batch_size=batch, seq_len=seq_len, seed=seed)
            if "lengths" in inputs:  # every row full: tokens/s counts real tokens
                inputs["lengths"][:] = seq_len
            reference: dict[str, np.ndarray] | None = None
            eager_p50: float | None = None
            for backend in built:
                if backend.runner is None:
                    rows.append(BenchRow(backend.name, batch, seq_len, note=backend.note))
                    continue
                outputs, times = _time(backend.runner, inputs, repeats, warmup)
                if backend.name == "eager fp32":
                    reference, eager_p50 = outputs, float(np.median(times))
                p50 = float(np.median(times))
                rows.append(
                    BenchRow(
                        backend.name,
                        batch,
                        seq_len,
                        p50_ms=p50 * 1e3,
                        p99_ms=float(np.percentile(times, 99)) * 1e3,
                        sequences_per_s=batch / p50,
                        tokens_per_s=batch * seq_len / p50,
                        speedup=None if eager_p50 is None else eager_p50 / p50,
                        size_bytes=backend.size,
                        max_abs_diff=_max_diff(reference, outputs),
                        note=backend.note,
                    )
                )
    return BenchResult(str(run_dir), prep.spec.task, seq_len, threads, repeats, rows)


def typical_length(prep: Any) -> int:
    """The sequence length a run sees in use: its task's `ExportHooks.typical_length` (e.g. the
    median test text), else the length it trained on (BPTT window, input window).

    Data that cannot be read falls back to the trained length, with a log line.
    """
    hooks = prep.hooks
    if hooks.typical_length is None:
        return hooks.trained_length(prep.config)
    try:
        return hooks.typical_length(prep.run_dir, prep.config, prep.predictor)
    except (OSError, RnnkitError) as exc:
        logger.warning("typical length from the data failed (%s); using the trained length", exc)
        return hooks.trained_length(prep.config)


def _open(name: str, prep: Any, tmp: Path, threads: int, exports: dict) -> _Backend:
    """`_build`, or a row saying why the backend cannot run here (e.g. the onnx extra missing)."""
    try:
        return _build(name, prep, tmp, threads, exports)
    except ConfigError as exc:
        return _Backend(name, None, None, f"not run: {exc}")


def _build(name: str, prep: Any, tmp: Path, threads: int, exports: dict) -> _Backend:
    """Write the backend's model file into `tmp` and open it."""
    from rnnkit.export.quantize import (
        bf16_support,
        file_size,
        quantize_module,
        quantize_onnx,
        save_bf16,
        save_traced,
        torch_runner,
    )

    spec = prep.spec
    names = (spec.input_names, spec.output_names)
    if name == "eager fp32":
        size = file_size(prep.run_dir / runs.WEIGHTS_FILE)
        return _Backend(name, torch_runner(prep.graph, *names), size)
    if name == "bf16":
        ok, why = bf16_support()
        if not ok:
            return _Backend(name, None, None, f"not run: {why}")
        size = file_size(save_bf16(prep.graph, tmp / "model.bf16.safetensors"))
        graph = copy.deepcopy(prep.graph).to(torch.bfloat16)
        return _Backend(name, torch_runner(graph, *names, dtype=torch.bfloat16), size, why)
    if name == "torchscript":
        from rnnkit.export.torchscript import export_torchscript, torchscript_runner

        path, note = _export(export_torchscript, prep.run_dir, tmp / "torchscript", "model.pt")
        return _Backend(name, torchscript_runner(path, *names), file_size(path), note)
    if name == "torch int8":
        from rnnkit.export.torchscript import torchscript_runner

        path = save_traced(quantize_module(prep.graph), prep, tmp / "model.int8.pt")
        return _Backend(name, torchscript_runner(path, *names), file_size(path), "TorchScript")
    from rnnkit.export.onnx import export_onnx, onnx_runner

    if "onnx" not in exports:
        exports["onnx"] = _export(export_onnx, prep.run_dir, tmp / "onnx", "model.onnx")
    path, note = exports["onnx"]
    if name == "onnxruntime int8":
        path = quantize_onnx(path, path.parent / "model.int8.onnx")
    note = "; ".join(n for n in (f"intra_op_num_threads={threads}", note) if n)
    return _Backend(name, onnx_runner(path, threads=threads), file_size(path), note)


def _export(export: Callable[..., Any], run_dir: Path, out: Path, name: str) -> tuple[Path, str]:
    """Export, keeping a file whose parity check failed (timed, with the failure as its note)."""
    from rnnkit.export import ParityError

    try:
        return export(run_dir, out).path, ""
    except ParityError as exc:
        if not (out / name).is_file():
            raise
        worst = str(exc).split("does not match the eager model: ", 1)[-1]
        logger.warning("timing %s although its parity check failed: %s", out / name, worst)
        return out / name, f"export parity FAILED: {worst}"


def _time(
    runner: Runner, inputs: dict[str, np.ndarray], repeats: int, warmup: int
) -> tuple[dict[str, np.ndarray], list[float]]:
    outputs = runner(inputs)
    for _ in range(warmup):
        runner(inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(inputs)
        times.append(time.perf_counter() - start)
    return outputs, times


def _max_diff(
    reference: dict[str, np.ndarray] | None, outputs: dict[str, np.ndarray]
) -> float | None:
    if reference is None:
        return None
    return max(
        float(np.max(np.abs(outputs[k].astype(np.float64) - reference[k]), initial=0.0))
        for k in reference
    )
