"""Parity of an exported model with the eager fp32 model it came from.

`check_parity(predictor, runner, ...)` feeds the same inputs to the eager model and to `runner`
(any backend: ONNX Runtime, TorchScript, a quantized model) and records the largest absolute
difference of every output:

- random inputs at batch sizes 1, 7 and 64 and sequence lengths 1, 8 and one longer than the
  model saw in training (ids within the vocabulary, ragged lengths, mid-stream states);
- real inputs when the caller has them (e.g. a few rows of the run's own data);
- the streaming path for stateful graphs: the sequence fed in chunks with the state carried
  through the backend, against one eager pass over the whole sequence.

The report is written as `parity.json` beside the export; `raise_if_failed` turns a difference
beyond the format's tolerance into a `ParityError` naming the worst case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.errors import RnnkitError
from rnnkit.export.graphs import GraphSpec
from rnnkit.export.hooks import Runner
from rnnkit.export.task_graph import build_graph, example_inputs, export_hooks
from rnnkit.io import atomic_write_json

#: Largest output difference accepted against the eager fp32 model, per format. The difference is
#: absolute for outputs within [-1, 1] (probabilities, hidden states) and relative to the output's
#: largest magnitude beyond that: an LSTM's cell state and a model's logits grow with sequence
#: length (the trained Shakespeare LM's `c_out` reaches ~15 at length 257, where fp32 summation
#: order alone moves it by 2e-4). fp32 backends differ from eager only in summation order and fused
#: kernels (~1e-7 on tiny models), so 1e-4 still catches any wrong weight or wiring. Quantized
#: formats are judged by their metric change instead.
TOLERANCES: dict[str, float] = {"onnx": 1e-4, "torchscript": 1e-4}

#: Batch sizes and short sequence lengths every parity report covers.
BATCH_SIZES = (1, 7, 64)
SHORT_LENGTHS = (1, 8)


class ParityError(RnnkitError):
    """An exported model's outputs differ from the eager model's beyond the tolerance."""


@dataclass(frozen=True)
class ParityCase:
    """One comparison.

    Attributes:
        kind: "random", "real" or "stream" (chunks with the state carried vs one pass).
        batch_size: B.
        seq_len: T (the whole sequence for "stream").
        max_abs_diff: the largest difference over all outputs (see `compare`).
        worst_output: the output where it occurred.
        diffs: max difference per output (absolute within [-1, 1], relative beyond; see `compare`).
    """

    kind: str
    batch_size: int
    seq_len: int
    max_abs_diff: float
    worst_output: str
    diffs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ParityReport:
    """Every comparison of one export against eager fp32.

    Attributes:
        format: the export format ("onnx", "torchscript", ...).
        tolerance: the largest accepted difference (see `TOLERANCES`).
        cases: the comparisons made.
    """

    format: str
    tolerance: float
    cases: tuple[ParityCase, ...]

    @property
    def worst(self) -> ParityCase:
        return max(self.cases, key=lambda c: c.max_abs_diff)

    @property
    def max_abs_diff(self) -> float:
        return self.worst.max_abs_diff

    @property
    def passed(self) -> bool:
        return all(np.isfinite(c.max_abs_diff) for c in self.cases) and (
            self.max_abs_diff <= self.tolerance
        )

    def describe(self, case: ParityCase) -> str:
        return (
            f"{case.kind} inputs, batch {case.batch_size}, length {case.seq_len}, "
            f"output {case.worst_output!r}: max diff {case.max_abs_diff:.3g}"
        )

    def raise_if_failed(self, where: str | Path = "") -> None:
        """Raise `ParityError` naming the worst case when the tolerance is exceeded."""
        if self.passed:
            return
        prefix = f"{where}: " if where else ""
        raise ParityError(
            f"{prefix}{self.format} export does not match the eager model: "
            f"{self.describe(self.worst)} > tolerance {self.tolerance:g}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "max_abs_diff": self.max_abs_diff,
            "worst": asdict(self.worst),
            "cases": [asdict(c) for c in self.cases],
        }

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    def table(self) -> str:
        """The cases as a fixed-width text table."""
        lines = [f"{'inputs':<8} {'batch':>5} {'length':>6}  {'max diff':>12}  output"]
        for c in self.cases:
            lines.append(
                f"{c.kind:<8} {c.batch_size:>5} {c.seq_len:>6}  {c.max_abs_diff:>12.3g}  "
                f"{c.worst_output}"
            )
        verdict = "ok" if self.passed else "FAILED"
        lines.append(
            f"{self.format}: worst {self.max_abs_diff:.3g}, tolerance {self.tolerance:g}"
            f" -> {verdict}"
        )
        return "\n".join(lines)


# --- the eager reference -------------------------------------------------------------------------


@torch.no_grad()
def eager_outputs(
    predictor: Any, spec: GraphSpec, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The eager model's outputs for graph inputs, named as the graph's outputs.

    Runs the model's own `forward` (not the export wrapper; the task's
    `ExportHooks.eager_outputs`), so the parity check holds the wrapper to the model.
    """
    model = predictor.model.eval()
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}
    values = export_hooks(spec.task).eager_outputs(model, t)
    return {name: v.float().numpy() for name, v in zip(spec.output_names, values, strict=True)}


# --- the check -----------------------------------------------------------------------------------


def compare(
    reference: dict[str, np.ndarray], got: dict[str, np.ndarray], names: Iterable[str]
) -> dict[str, float]:
    """Max difference per output, scaled as `TOLERANCES` says: |a - b| / max(1, max |a|).

    A shape mismatch or NaN counts as infinite.
    """
    diffs = {}
    for name in names:
        a, b = reference[name].astype(np.float64), np.asarray(got[name])
        if a.shape != b.shape:
            diffs[name] = float("inf")
            continue
        scale = max(1.0, float(np.max(np.abs(a)))) if a.size else 1.0
        diff = float(np.max(np.abs(a - b))) / scale if a.size else 0.0
        diffs[name] = diff if np.isfinite(diff) else float("inf")
    return diffs


def _case(kind: str, batch: int, seq: int, diffs: dict[str, float]) -> ParityCase:
    worst = max(diffs, key=diffs.__getitem__)
    return ParityCase(kind, batch, seq, diffs[worst], worst, diffs)


def check_parity(
    predictor: Any,
    runner: Runner,
    *,
    format: str,
    long_length: int,
    tolerance: float | None = None,
    real_inputs: Iterable[dict[str, np.ndarray]] = (),
    seed: int = 0,
) -> ParityReport:
    """Compare `runner` with the eager model over random, real and streamed inputs.

    Args:
        predictor: the loaded run (`rnnkit.load`), the eager fp32 reference.
        runner: {input name: array} -> {output name: array}, the backend under test.
        format: names the tolerance in `TOLERANCES` and the report.
        long_length: a sequence length longer than the model saw in training.
        tolerance: overrides `TOLERANCES[format]`.
        real_inputs: extra input dicts built from real data.
        seed: seeds the random inputs.

    Returns:
        The report; call `raise_if_failed` to enforce it.
    """
    _, spec = build_graph(predictor)
    names = spec.output_names
    cases = []
    for batch in BATCH_SIZES:
        for seq in (*SHORT_LENGTHS, long_length):
            inputs = example_inputs(predictor, batch, seq, seed + batch * 1000 + seq)
            diffs = compare(eager_outputs(predictor, spec, inputs), runner(inputs), names)
            cases.append(_case("random", batch, seq, diffs))
    for inputs in real_inputs:
        first = next(iter(inputs.values()))
        seq = first.shape[1] if first.ndim > 1 else 1
        diffs = compare(eager_outputs(predictor, spec, inputs), runner(inputs), names)
        cases.append(_case("real", first.shape[0], seq, diffs))
    if spec.state:
        cases.append(_stream_case(predictor, spec, runner, long_length, seed))
    tol = TOLERANCES[format] if tolerance is None else tolerance
    return ParityReport(format, tol, tuple(cases))


def _stream_case(
    predictor: Any, spec: GraphSpec, runner: Runner, length: int, seed: int, batch: int = 7
) -> ParityCase:
    """Feed chunks of 1, 3 and the rest through `runner`, carrying the state; one eager pass.

    The inputs with a "seq" axis are cut into the chunks; the outputs with one are joined, the
    others (one value per row, such as a forecast from the last step) are the last chunk's.
    """
    inputs = example_inputs(predictor, batch, length, seed + 99)
    reference = eager_outputs(predictor, spec, inputs)
    cut = [t.name for t in spec.inputs if t.has_seq]
    joined = [t.name for t in spec.outputs if t.has_seq]
    bounds = [0, 1, min(4, length), length]
    state = {name: inputs[name] for name in spec.state}
    pieces: dict[str, list[np.ndarray]] = {name: [] for name in joined}
    got: dict[str, np.ndarray] = {}
    for a, b in pairwise(bounds):
        if a == b:
            continue
        chunk = dict(inputs)
        for name in cut:
            chunk[name] = np.ascontiguousarray(inputs[name][:, a:b])
        chunk.update(state)
        got = dict(runner(chunk))
        state = {i: got[o] for i, o in spec.state.items()}
        for name in joined:
            pieces[name].append(got[name])
    for name in joined:
        got[name] = np.concatenate(pieces[name], axis=1)
    return _case("stream", batch, length, compare(reference, got, spec.output_names))
