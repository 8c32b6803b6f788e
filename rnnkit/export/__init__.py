"""Export trained runs for machines without rnnkit: ONNX and TorchScript, each with a parity report.

    from rnnkit.export import export_onnx, export_torchscript, example_inputs

    result = export_onnx("runs/clf")          # runs/clf/export/onnx/model.onnx + sidecars
    result.parity.max_abs_diff                # vs the eager fp32 model, enforced at 1e-4

Modules: `hooks` (`ExportHooks`, what each task supplies: its graph, sidecars, metric),
`graphs` (input/output specs and the pieces task graphs are built from), `task_graph` (a loaded
run's graph and example inputs, through its task's hooks), `onnx`, `torchscript`, `parity` (the
report and its tolerances), `bundle` (sidecar files, `export.json`), `quantize` and
`metric_change` (int8 judged on held-out data). ONNX needs the `onnx` extra, imported only when
used.

Names are imported on first use: the task folders import `rnnkit.export.hooks` and
`rnnkit.export.graphs` while `rnnkit.tasks` is being built, so this package must not import the
modules that look tasks up (`bundle`, `parity`, ...) when it is itself imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnkit.export.bundle import ExportResult
    from rnnkit.export.graphs import GraphSpec, TensorSpec
    from rnnkit.export.hooks import ExportHooks, MetricLimit
    from rnnkit.export.onnx import export_onnx
    from rnnkit.export.parity import TOLERANCES, ParityError, ParityReport, check_parity
    from rnnkit.export.task_graph import build_graph, example_inputs, export_hooks
    from rnnkit.export.torchscript import export_torchscript

__all__ = [
    "FORMATS",
    "TOLERANCES",
    "ExportHooks",
    "ExportResult",
    "GraphSpec",
    "MetricLimit",
    "ParityError",
    "ParityReport",
    "TensorSpec",
    "build_graph",
    "check_parity",
    "example_inputs",
    "export_hooks",
    "export_onnx",
    "export_torchscript",
]

# public name -> the module that defines it (imported on first access)
_LAZY = {
    "ExportResult": "rnnkit.export.bundle",
    "GraphSpec": "rnnkit.export.graphs",
    "TensorSpec": "rnnkit.export.graphs",
    "ExportHooks": "rnnkit.export.hooks",
    "MetricLimit": "rnnkit.export.hooks",
    "export_onnx": "rnnkit.export.onnx",
    "TOLERANCES": "rnnkit.export.parity",
    "ParityError": "rnnkit.export.parity",
    "ParityReport": "rnnkit.export.parity",
    "check_parity": "rnnkit.export.parity",
    "build_graph": "rnnkit.export.task_graph",
    "example_inputs": "rnnkit.export.task_graph",
    "export_hooks": "rnnkit.export.task_graph",
    "export_torchscript": "rnnkit.export.torchscript",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "FORMATS":
        #: format name -> export function, for the CLI and `rnnkit bench`.
        value: Any = {
            "onnx": __getattr__("export_onnx"),
            "torchscript": __getattr__("export_torchscript"),
        }
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'rnnkit.export' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
