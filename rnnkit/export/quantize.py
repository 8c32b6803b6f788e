"""Smaller, faster exports: int8 dynamic quantization (and bf16 weights), judged by the metric.

Paths, each selectable by name (`METHODS`):

- `ort-dynamic`: ONNX Runtime's `quantize_dynamic` on the exported ONNX file. Weights become
  int8 once, activations are quantized per call. It rewrites `LSTM` to the contrib
  `DynamicQuantizeLSTM`, `MatMul` to `MatMulInteger` and the embedding `Gather` to an int8 table
  (a quarter of the bytes). ORT has no int8 `GRU`/`RNN` kernel: for those cells only the
  embedding and the matrix products around the recurrence shrink. `Gemm` (a 2-D `nn.Linear`
  such as the classifier head) has no dynamic-int8 kernel either and stays fp32; it is tiny.
- `torch-dynamic`: `torch.ao.quantization.quantize_dynamic` on the export graph's `nn.LSTM`,
  `nn.GRU` and `nn.Linear` modules (each direction of `RecurrentEncoder` is its own `nn.LSTM`, so
  all of them are replaced), traced and saved as TorchScript (`model.int8.pt`). `nn.RNN` and
  `nn.Embedding` stay fp32: PyTorch has no dynamic-int8 version of either.
- `bf16`: the weights cast to bfloat16 (`model.bf16.safetensors`), run in eager PyTorch. Fast only
  on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX); see `bf16_support`.

`ort-dynamic` is the default of `--quantize int8`: it was the fastest path that kept the metric
on the CPUs we measured, and its file is the smallest (the embedding becomes int8 too). The
measurements (speed-ups against eager fp32 at batch 1 and 64, file sizes, metric changes) are
in docs/benchmarks.md, section "Deployment"; `benchmarks/bench_deploy.py` and `rnnkit bench RUN`
repeat them on the machine at hand. int8 gains least at large batches on AVX2 CPUs: there the
fp32 run is already compute-bound in oneDNN's fused LSTM, and AVX2 int8 products (u8 x s8
pairs, VPMADDUBSW) give at best about twice the fp32 multiply-adds per cycle.

Every quantization evaluates the fp32 and the quantized model on the run's own held-out data
with the task's metrics (`rnnkit.export.metric_change`, through the task's `ExportHooks`),
writes `quantization.json` beside the model and refuses (after writing the report) when the
deciding metric moves beyond the task's limit (`metric_limit(task)`), unless
`allow_metric_change=True`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.errors import ConfigError
from rnnkit.export import metric_change as judge
from rnnkit.export.bundle import MANIFEST_FILE, check_out_dir, prepare
from rnnkit.export.hooks import Runner
from rnnkit.export.metric_change import (
    MetricChange,
    MetricChangeError,
    MetricLimit,
    metric_limit,
)
from rnnkit.io import atomic_write_bytes, atomic_write_json
from rnnkit.model_file import split_aliases

__all__ = [
    "DEFAULT_INT8",
    "METHODS",
    "MetricChange",
    "MetricChangeError",
    "MetricLimit",
    "QuantizeResult",
    "bf16_support",
    "metric_limit",
    "quantize",
]

logger = logging.getLogger(__name__)

REPORT_FILE = "quantization.json"
#: The names `quantize(method=...)` and `--quantize-method` accept.
METHODS = ("ort-dynamic", "torch-dynamic", "bf16")
#: The fastest accurate int8 path on the machines we measured; see the module docstring.
DEFAULT_INT8 = "ort-dynamic"
#: The export format each method starts from or writes.
METHOD_FORMAT = {"ort-dynamic": "onnx", "torch-dynamic": "torchscript", "bf16": "torch"}
#: The ONNX operator types ORT's dynamic quantization rewrites (its IntegerOps registry also
#: lists Conv, Attention, Transpose and EmbedLayerNormalization, which these graphs do not have).
ORT_OP_TYPES = ["LSTM", "MatMul", "Gather"]


@dataclass(frozen=True)
class QuantizeResult:
    """One quantization.

    Attributes:
        method: "ort-dynamic", "torch-dynamic" or "bf16".
        path: the quantized model file.
        files: everything written (model, sidecars from the fp32 export, the report).
        report: the metric change.
    """

    method: str
    path: Path
    files: list[Path]
    report: MetricChange


# --- the methods ----------------------------------------------------------------------------


def bf16_support() -> tuple[bool, str]:
    """Whether this CPU does bf16 arithmetic natively, and why (one line).

    Without AVX512-BF16 or AMX, oneDNN and ATen convert bf16 to fp32 around every operation
    (and an LSTM has no bf16 primitive at all), so bf16 weights save memory but cost time.
    """
    flags: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    capability = torch.backends.cpu.get_cpu_capability()
    native = sorted(flags & {"avx512_bf16", "amx_bf16"})
    if native:
        return True, f"native bf16 ({', '.join(native)})"
    return False, (
        f"no native bf16 on this CPU ({capability}; needs AVX512-BF16 or AMX): bf16 is "
        "emulated through fp32, slower than fp32 (see docs/benchmarks.md, Deployment)"
    )


def quantize_onnx(src: str | Path, dst: str | Path) -> Path:
    """ONNX Runtime dynamic int8 quantization of an ONNX file (weights int8, activations u8).

    Args:
        src: the fp32 `.onnx` file.
        dst: where to write the int8 file (atomically).
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise ConfigError(
            f"int8 ONNX needs the onnx extra ({exc.name} is missing): pip install 'rnnkit[onnx]'"
        ) from None
    dst = Path(dst)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp, _quiet_root_logger():
        out, ready = Path(tmp) / dst.name, Path(tmp) / "preprocessed.onnx"
        # ORT's recommended pre-pass (ONNX shape inference, graph optimisation): it drops shape
        # arithmetic the exporter leaves around each recurrent op (31 -> 23 KB on a tiny
        # classifier) and gives identical outputs (measured). Its symbolic shape inference
        # asserts on the forecaster's graph (onnxruntime 1.32), so that step is skipped.
        quant_pre_process(str(src), str(ready), skip_symbolic_shape=True)
        quantize_dynamic(
            str(ready),
            str(out),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=ORT_OP_TYPES,
            # Only products with a constant (weight) operand; activation x activation products
            # would be quantized per call on both sides for little gain.
            extra_options={"MatMulConstBOnly": True},
        )
        atomic_write_bytes(dst, out.read_bytes())
    return dst


def quantize_module(module: nn.Module) -> nn.Module:
    """A copy of `module` with its LSTM/GRU/Linear layers dynamically quantized to int8.

    `torch.ao.quantization` warns that it is deprecated in favour of torchao and that its
    quantized tensor types will go (pytorch/pytorch#184982); another reason it is not the
    default path. The warnings are silenced here and the method kept selectable.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(module).eval(), {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8
        )


def torch_runner(
    module: nn.Module,
    input_names: list[str],
    output_names: list[str],
    dtype: torch.dtype | None = None,
) -> Runner:
    """A PyTorch module as a runner: {input: array} -> {output: array} (float32 out).

    Args:
        module: takes the inputs positionally, in `input_names` order.
        input_names: the graph's input names.
        output_names: names for the module's outputs, in order.
        dtype: cast floating inputs to this (e.g. bfloat16 for bf16 weights).
    """
    names_in, names_out = list(input_names), list(output_names)
    module.eval()

    @torch.inference_mode()
    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = []
        for name in names_in:
            t = torch.from_numpy(np.ascontiguousarray(inputs[name]))
            args.append(t.to(dtype) if dtype is not None and t.is_floating_point() else t)
        out = module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {n: t.float().numpy() for n, t in zip(names_out, out, strict=True)}

    return run


# --- quantize a run ---------------------------------------------------------------------------


def method_for(method: str | None = None, format: str | None = None) -> str:
    """Resolve a method name: explicit, else the one for an export format, else the default."""
    if method is None:
        method = {"onnx": "ort-dynamic", "torchscript": "torch-dynamic"}.get(
            format or "", DEFAULT_INT8
        )
    if method not in METHODS:
        raise ConfigError(f"unknown quantization method {method!r}; choose one of: "
                          f"{', '.join(METHODS)}")  # fmt: skip
    if format is not None and METHOD_FORMAT[method] != format:
        raise ConfigError(
            f"quantization method {method!r} writes {METHOD_FORMAT[method]}, not --format {format}"
        )
    return method


def quantize(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    method: str | None = None,
    format: str | None = None,
    allow_metric_change: bool = False,
) -> QuantizeResult:
    """Quantize a run and judge it on the run's held-out data.

    Args:
        run_dir: a run folder of a task with export hooks (`TaskSpec.export`).
        out_dir: where to write; None means `RUN/export/onnx/` (ort-dynamic),
            `RUN/export/torchscript/` (torch-dynamic) or `RUN/export/bf16/`. The fp32 export the
            method starts from (with tokenizer/scaler, `export.json`, `parity.json`) is written
            there too, beside the quantized file.
        method: one of `METHODS`; None picks the one for `format`, else `DEFAULT_INT8`.
        format: "onnx" or "torchscript" when called from `rnnkit export --format ...`.
        allow_metric_change: keep a model whose metric moved beyond the task's limit.

    Returns:
        The `QuantizeResult`; `quantization.json` holds its report.

    Raises:
        MetricChangeError: the metric moved beyond the limit (the report is written first).
    """
    method = method_for(method, format)
    run_dir = Path(run_dir)
    default = METHOD_FORMAT[method] if method != "bf16" else "bf16"
    out = Path(out_dir) if out_dir is not None else run_dir / "export" / default
    check_out_dir(out, run_dir)
    out.mkdir(parents=True, exist_ok=True)
    path, files, runner = build(run_dir, out, method)
    report = judge.metric_change(run_dir, runner, method, allow_metric_change)
    report_path = out / REPORT_FILE
    atomic_write_json(report_path, report.to_dict())
    files = [*files, report_path]
    if not report.passed and not allow_metric_change:
        limit = judge.metric_limit(report.task)
        raise MetricChangeError(
            f"{path}: {method} changes {report.checked} by {report.worsening:+.4g} "
            f"({'relative' if report.relative else 'absolute'}), beyond the limit "
            f"{report.limit:g} ({limit.why}); pass --allow-metric-change to keep it anyway"
        )
    if method != "bf16":  # export.json names the quantized file last: once it is judged
        _annotate_manifest(out, path, method)
    logger.info("%s model written to %s", method, path)
    return QuantizeResult(method, path, files, report)


def build(run_dir: Path, out: Path, method: str) -> tuple[Path, list[Path], Runner]:
    """Write the quantized model for `method` into `out`: (model file, files, runner)."""
    if method == "ort-dynamic":
        from rnnkit.export.onnx import export_onnx, onnx_runner

        exported = export_onnx(run_dir, out)
        path = quantize_onnx(exported.path, out / "model.int8.onnx")
        return path, [*exported.files, path], onnx_runner(path, threads=torch.get_num_threads())
    if method == "torch-dynamic":
        from rnnkit.export.torchscript import export_torchscript, torchscript_runner

        exported = export_torchscript(run_dir, out)
        prep = prepare(run_dir)
        path = out / "model.int8.pt"
        save_traced(quantize_module(prep.graph), prep, path)
        spec = exported.spec
        return (
            path,
            [*exported.files, path],
            torchscript_runner(path, spec.input_names, spec.output_names),
        )
    prep = prepare(run_dir)
    path = out / "model.bf16.safetensors"
    save_bf16(prep.graph, path)
    graph = copy.deepcopy(prep.graph).to(torch.bfloat16)
    return (
        path,
        [path],
        torch_runner(graph, prep.spec.input_names, prep.spec.output_names, torch.bfloat16),
    )


def save_traced(module: nn.Module, prep: Any, path: Path) -> Path:
    """Trace `module` on the run's example inputs and save it as TorchScript (atomically)."""
    from rnnkit.export.task_graph import example_inputs

    example = example_inputs(prep.predictor, batch_size=3, seq_len=6, seed=0)
    args = tuple(torch.from_numpy(example[n]) for n in prep.spec.input_names)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # jit deprecation and quantized-trace notices
        traced = torch.jit.trace(module, args, check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def save_bf16(module: nn.Module, path: Path) -> Path:
    """The module's floating weights as bfloat16 safetensors (shared weights saved once)."""
    from safetensors.torch import save

    unique, _ = split_aliases(module.state_dict())  # tied weights (LM decoder = embedding) once
    tensors = {
        k: (v.to(torch.bfloat16) if v.is_floating_point() else v).contiguous()
        for k, v in unique.items()
    }
    atomic_write_bytes(path, save(tensors))
    return path


def _annotate_manifest(out: Path, path: Path, method: str) -> None:
    """Record the quantized file in `export.json` beside it."""
    import json

    manifest_path = out / MANIFEST_FILE
    record = json.loads(manifest_path.read_text(encoding="utf-8"))
    record["quantized"] = {"method": method, "model_file": path.name, "report": REPORT_FILE}
    atomic_write_json(manifest_path, record)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    # onnxruntime.quantization logs its notices on the root logger (INFO/WARNING from a
    # library), which would print through the CLI's log handler; keep them out.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def file_size(path: str | Path) -> int:
    """Bytes on disk of a file (0 when missing)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
