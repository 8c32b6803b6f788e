"""ONNX export: dynamic batch and sequence length, real LSTM/GRU/RNN operators, state in and out.

Exporter choice (measured with torch 2.13, onnx 1.23, onnxruntime 1.32): the TorchScript-based
exporter (`torch.onnx.export(..., dynamo=False)`) at opset 17.

- It emits one ONNX `LSTM` / `GRU` / `RNN` operator per layer and direction, and the exported
  graphs give the eager outputs (within ~1e-7) at every batch size and sequence length tried,
  1 included.
- The default `dynamo=True` exporter also emits the recurrent operators, but for the
  classifier's backward direction (reverse within length, then the recurrent op) it bakes the
  example's sequence length into an internal shape: the file fails in ONNX Runtime for any other
  length ("Concat ... mismatched dimensions"), and it exports many times slower than the legacy
  one. Known upstream: pytorch/pytorch#191855 ("Dynamo export freezes dynamic time dimension
  in manual bidirectional LSTM/GRU pattern"; the same pattern works with dynamo=False).
- Opset 17 is the newest the TorchScript exporter handles without warnings for these graphs;
  the recurrent operators themselves date from opset 7 (`--opset` picks another).

The legacy exporter is deprecated upstream; when `dynamo=True` handles the pattern, switching
is one argument here, and the parity report would catch a regression.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.errors import ConfigError, DataError
from rnnkit.export.bundle import ExportResult, check_out_dir, default_out, finish, prepare
from rnnkit.export.parity import ParityReport, Runner, check_parity
from rnnkit.export.task_graph import example_inputs
from rnnkit.io import atomic_write_bytes

logger = logging.getLogger(__name__)

FORMAT = "onnx"
MODEL_FILE = "model.onnx"
#: See the module docstring.
DEFAULT_OPSET = 17
#: The ONNX operators a recurrent cell must export to (not an unrolled loop).
RECURRENT_OPS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def _require_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(
            f"ONNX export needs the onnx extra ({exc.name} is missing): pip install 'rnnkit[onnx]'"
        ) from None
    return onnx, onnxruntime


def export_onnx(
    run_dir: str | Path, out_dir: str | Path | None = None, *, opset: int | None = None
) -> ExportResult:
    """Export a run to ONNX, with sidecars, `export.json` and a parity report.

    Args:
        run_dir: a run folder of a task with export hooks (`TaskSpec.export`).
        out_dir: where to write; None means `RUN/export/onnx/`.
        opset: ONNX opset; None means `DEFAULT_OPSET`.

    Returns:
        The `ExportResult` (model path, every file written, the parity report).

    Raises:
        ConfigError: the onnx extra is missing, or a bad --out / --opset.
        ParityError: ONNX Runtime's outputs differ from eager beyond `TOLERANCES["onnx"]`.
    """
    onnx, _ = _require_onnx()
    prep = prepare(run_dir)
    out = Path(out_dir) if out_dir is not None else default_out(run_dir, FORMAT)
    check_out_dir(out, prep.run_dir)
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if not 7 <= opset <= 20:
        raise ConfigError(f"--opset {opset}: choose 7 to 20 (the exporter's range); default 17")
    spec = prep.spec
    example = example_inputs(prep.predictor, batch_size=3, seq_len=6, seed=0)
    args = tuple(torch.from_numpy(example[name]) for name in spec.input_names)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter's deprecation notice, and its LSTM batch-size caution (which does
        # not apply: the initial states are graph inputs or built from the input's batch size).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*")
        # nn.RNNBase checks input sizes with Python comparisons; the sizes it checks are fixed
        # by the weights, so freezing them in the trace is right.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            prep.graph,
            args,
            buffer,
            input_names=spec.input_names,
            output_names=spec.output_names,
            dynamic_axes=spec.dynamic_axes(),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    data = buffer.getvalue()
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    ops = Counter(node.op_type for node in proto.graph.node)
    cell = prep.predictor.model.config.cell
    if ops[RECURRENT_OPS[cell]] == 0:
        raise ConfigError(f"the exported graph has no ONNX {RECURRENT_OPS[cell]} operator")
    model_file = out / MODEL_FILE
    atomic_write_bytes(model_file, data)
    return finish(
        prep,
        out,
        FORMAT,
        model_file,
        onnx_runner(model_file),
        opset=opset,
        exporter="torch.onnx.export(dynamo=False)",
        recurrent_ops={RECURRENT_OPS[cell]: ops[RECURRENT_OPS[cell]]},
    )


def onnx_runner(path: str | Path, threads: int | None = None) -> Runner:
    """An ONNX Runtime session as a parity runner: {input: array} -> {output: array}.

    Args:
        path: the `.onnx` file.
        threads: intra-op threads; None lets ONNX Runtime decide.
    """
    _, ort = _require_onnx()
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for unreadable models
        raise DataError(f"ONNX Runtime cannot load the model: {exc}", path=path) from exc
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name for i in session.get_inputs()}

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {k: v for k, v in inputs.items() if k in wanted}
        return dict(zip(names, session.run(None, feed), strict=True))

    return run


def check_onnx(
    run_dir: str | Path, model_file: str | Path, tolerance: float | None = None
) -> ParityReport:
    """The parity report of an existing ONNX file against its run (random and streamed inputs).

    Raises:
        ParityError: beyond the tolerance.
    """
    from rnnkit.export.bundle import trained_length

    prep = prepare(run_dir)
    report = check_parity(
        prep.predictor,
        onnx_runner(model_file),
        format=FORMAT,
        long_length=2 * trained_length(prep.config) + 1,
        tolerance=tolerance,
    )
    report.raise_if_failed(model_file)
    return report
