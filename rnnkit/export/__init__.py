"""Export trained runs for machines without rnnkit: ONNX and TorchScript, each with a parity report.

    from rnnkit.export import export_onnx, export_torchscript, example_inputs

    result = export_onnx("runs/clf")          # runs/clf/export/onnx/model.onnx + sidecars
    result.parity.max_abs_diff                # vs the eager fp32 model, enforced at 1e-4

Modules: `graphs` (the exportable wrappers and their input/output specs), `onnx`, `torchscript`,
`parity` (the report and its tolerances), `bundle` (sidecar files, `export.json`).
ONNX needs the `onnx` extra, imported only when used.
"""

from __future__ import annotations

from rnnkit.export.bundle import ExportResult
from rnnkit.export.graphs import GraphSpec, TensorSpec, build_graph, example_inputs
from rnnkit.export.onnx import export_onnx
from rnnkit.export.parity import TOLERANCES, ParityError, ParityReport, check_parity
from rnnkit.export.torchscript import export_torchscript

#: format name -> export function, for the CLI and `rnnkit bench`.
FORMATS = {"onnx": export_onnx, "torchscript": export_torchscript}

__all__ = [
    "FORMATS",
    "TOLERANCES",
    "ExportResult",
    "GraphSpec",
    "ParityError",
    "ParityReport",
    "TensorSpec",
    "build_graph",
    "check_parity",
    "example_inputs",
    "export_onnx",
    "export_torchscript",
]
