"""What every export writes besides the model: the text/scaling sidecars, `export.json`, parity.

<out>/
    model.onnx | model.pt    the graph (see `rnnkit.export.graphs`)
    sidecars                 what the task's `ExportHooks.sidecars` writes: the tokenizer of a
                             text run (`tokenizer.json`), the scaler of a forecaster
                             (`scaler.json`)
    export.json              format, task, inputs/outputs (names, dtypes, shapes), state
                             pairs, versions, then the task's fields (`ExportHooks.manifest`:
                             classes, pad/unk ids, the sidecar's name)
    parity.json              the parity report against eager fp32
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit import runs
from rnnkit.errors import ConfigError, RnnkitError
from rnnkit.export.graphs import GraphSpec
from rnnkit.export.hooks import ExportHooks
from rnnkit.export.parity import ParityReport, Runner, check_parity
from rnnkit.export.task_graph import export_hooks
from rnnkit.io import atomic_write_json

logger = logging.getLogger(__name__)

MANIFEST_FILE = "export.json"
PARITY_FILE = "parity.json"
#: bumped when export.json changes incompatibly.
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ExportResult:
    """One export.

    Attributes:
        format: "onnx", "torchscript", ...
        path: the model file.
        files: everything written (model, sidecars, export.json, parity.json).
        parity: the parity report against the eager fp32 model (already enforced).
        spec: the graph's inputs and outputs.
    """

    format: str
    path: Path
    files: list[Path]
    parity: ParityReport
    spec: GraphSpec


@dataclass(frozen=True)
class Prepared:
    """A run loaded for export.

    Attributes:
        run_dir: the run folder.
        config: its `config.json`.
        predictor: what `rnnkit.load` returns (the eager fp32 reference).
        graph: the exportable module (`ExportHooks.graph`).
        spec: its inputs and outputs.
        hooks: the task's export hooks.
    """

    run_dir: Path
    config: dict[str, Any]
    predictor: Any
    graph: Any
    spec: GraphSpec
    hooks: ExportHooks


def prepare(run_dir: str | Path) -> Prepared:
    """Load the run through `rnnkit.load` (weights checked) and build its graph.

    Raises:
        ConfigError: the run's task has no exportable graph (the message lists those that do).
    """
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    hooks = export_hooks(config["task"])
    predictor = runs.load(run_dir)
    graph, spec = hooks.graph(predictor.model.eval())
    return Prepared(run_dir, config, predictor, graph, spec, hooks)


def default_out(run_dir: str | Path, format: str) -> Path:
    """`RUN/export/<format>/`."""
    return Path(run_dir) / "export" / format


def trained_length(config: dict[str, Any]) -> int:
    """The longest sequence the run trained on, as far as its config says."""
    return export_hooks(config["task"]).trained_length(config)


def write_sidecars(prep: Prepared, out_dir: Path) -> list[Path]:
    """The task's sidecar files beside the model (tokenizer, scaler)."""
    return prep.hooks.sidecars(prep.run_dir, prep.config, out_dir)


def manifest(prep: Prepared, format: str, model_file: Path, **extra: Any) -> dict[str, Any]:
    """The `export.json` record: how to feed the model and read its outputs."""
    record: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "format": format,
        "model_file": model_file.name,
        **prep.spec.to_dict(),
        "model": prep.config.get("model", {}),
        "versions": runs.versions(),
        **extra,
    }
    record.update(prep.hooks.manifest(prep.config, prep.predictor))
    return record


def real_inputs(prep: Prepared, batch: int = 7, length: int = 48) -> list[dict[str, np.ndarray]]:
    """A few rows of the run's own data as graph inputs, when they load from disk cheaply.

    `batch` rows, of `length` steps where the task cuts rows (`ExportHooks.real_inputs`); none
    for a task without the hook. Data that cannot be loaded (moved file, empty cache) is skipped
    with a log line: parity on random inputs still holds.
    """
    if prep.hooks.real_inputs is None:
        return []
    try:
        return prep.hooks.real_inputs(
            prep.run_dir, prep.config, prep.predictor, prep.spec, batch, length
        )
    except (RnnkitError, OSError) as exc:
        logger.warning("parity on real data skipped: %s", exc)
        return []


def finish(
    prep: Prepared,
    out_dir: Path,
    format: str,
    model_file: Path,
    runner: Runner,
    *,
    tolerance: float | None = None,
    **extra: Any,
) -> ExportResult:
    """Write sidecars, run and save the parity report, enforce it, then write `export.json`.

    The manifest is written last: a folder holding `export.json` is a complete, checked
    export, and an export killed (or failing parity) before the end leaves none (a stale
    one is removed by `check_out_dir` before anything is written).

    Raises:
        ParityError: the export differs from eager beyond the tolerance (`parity.json` is
            written first, so the report can be read; no `export.json` is written).
    """
    manifest_path = out_dir / MANIFEST_FILE
    manifest_path.unlink(missing_ok=True)
    files = [model_file, *write_sidecars(prep, out_dir)]
    record = manifest(prep, format, model_file, **extra)
    report = check_parity(
        prep.predictor,
        runner,
        format=format,
        long_length=2 * trained_length(prep.config) + 1,
        tolerance=tolerance,
        real_inputs=real_inputs(prep),
    )
    parity_path = out_dir / PARITY_FILE
    report.save(parity_path)
    files.append(parity_path)
    report.raise_if_failed(model_file)
    atomic_write_json(manifest_path, record)  # last: its presence means the export is whole
    files.append(manifest_path)
    logger.info(
        "%s export of %s: %s (parity %.2g <= %g)",
        format,
        prep.run_dir,
        model_file,
        report.max_abs_diff,
        report.tolerance,
    )
    return ExportResult(format, model_file, files, report, prep.spec)


def check_out_dir(out_dir: Path, run_dir: Path) -> None:
    """Refuse to write the export over the run folder itself; drop a previous `export.json`.

    Called before an export writes anything: the manifest of an earlier export in the same
    folder would otherwise make a new export, killed half-way, look complete.
    """
    if out_dir.resolve() == run_dir.resolve():
        raise ConfigError(
            f"--out {out_dir} is the run folder itself; choose another folder (default: "
            f"{default_out(run_dir, 'FORMAT')})"
        )
    stale = out_dir / MANIFEST_FILE
    if stale.is_file():  # False, not an error, when --out names a file (refused when written)
        stale.unlink()
