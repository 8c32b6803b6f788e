"""TorchScript export: the graph traced once, loadable with `torch.jit.load` and no rnnkit.

Tracing (not scripting): the task graphs (`ExportHooks.graph`, see `rnnkit.export.graphs`) have
no data-dependent Python branches, so a trace records them whole, and sizes read from tensors
(`x.size(1)` in `reverse_within_length`, masks) stay symbolic, so batch and sequence length are
free. The parity report checks that at batch 1, 7 and 64 and lengths 1 to beyond training.

A TorchScript file is a zip archive that `torch.jit.load` reads with TorchScript's own restricted
loader (no arbitrary unpickling); it is the format PyTorch deployments expect. The run folder
itself stays safetensors + JSON.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from rnnkit.errors import DataError
from rnnkit.export.bundle import ExportResult, check_out_dir, default_out, finish, prepare
from rnnkit.export.hooks import Runner
from rnnkit.export.task_graph import example_inputs
from rnnkit.io import atomic_write_bytes

FORMAT = "torchscript"
MODEL_FILE = "model.pt"


def export_torchscript(run_dir: str | Path, out_dir: str | Path | None = None) -> ExportResult:
    """Export a run to TorchScript, with sidecars, `export.json` and a parity report.

    Args:
        run_dir: a run folder of a task with export hooks (`TaskSpec.export`).
        out_dir: where to write; None means `RUN/export/torchscript/`.

    Returns:
        The `ExportResult`.

    Raises:
        ParityError: the traced module's outputs differ from eager beyond
            `TOLERANCES["torchscript"]`.
    """
    prep = prepare(run_dir)
    out = Path(out_dir) if out_dir is not None else default_out(run_dir, FORMAT)
    check_out_dir(out, prep.run_dir)
    spec = prep.spec
    example = example_inputs(prep.predictor, batch_size=3, seq_len=6, seed=0)
    args = tuple(torch.from_numpy(example[name]) for name in spec.input_names)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit's deprecation notice
        # nn.RNNBase checks feature sizes with Python comparisons; those sizes are fixed by the
        # weights, so freezing them in the trace is right (batch and length stay free).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(prep.graph, args, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    model_file = out / MODEL_FILE
    atomic_write_bytes(model_file, buffer.getvalue())
    runner = torchscript_runner(model_file, spec.input_names, spec.output_names)
    return finish(prep, out, FORMAT, model_file, runner, exporter="torch.jit.trace")


def torchscript_runner(
    path: str | Path,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
) -> Runner:
    """A TorchScript file as a parity runner: {input: array} -> {output: array}.

    The module takes its inputs positionally; their order and the output names come from
    `export.json` beside the file unless given.
    """
    path = Path(path)
    if input_names is None or output_names is None:
        manifest = path.parent / "export.json"
        try:
            record = json.loads(manifest.read_text(encoding="utf-8"))
            input_names = [t["name"] for t in record["inputs"]]
            output_names = [t["name"] for t in record["outputs"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"cannot read the input/output names: {exc}", path=manifest) from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit's deprecation notice
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError subclasses for damaged archives
        raise DataError(f"not a loadable TorchScript file: {exc}", path=path) from exc
    module.eval()
    in_names, names = list(input_names), list(output_names)

    @torch.no_grad()
    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in in_names]
        out = module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {n: t.numpy() for n, t in zip(names, out, strict=True)}

    return run
