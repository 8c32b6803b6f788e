"""What every export writes besides the model: the text/scaling sidecars, `export.json`, parity.

<out>/
    model.onnx | model.pt    the graph (see `rnnkit.export.graphs`)
    tokenizer.json           text runs: rnnkit's tokenizer + vocabulary (its `vocab.tokens`
                             list maps ids to tokens)
    scaler.json              forecasting runs: per-series (shift, scale), feature layout
    export.json              format, task, inputs/outputs (names, dtypes, shapes), state
                             pairs, classes / sizes, versions
    parity.json              the parity report against eager fp32
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit import runs
from rnnkit.errors import ConfigError, RnnkitError
from rnnkit.export.graphs import GraphSpec, build_graph
from rnnkit.export.parity import ParityReport, Runner, check_parity
from rnnkit.io import atomic_write_json

logger = logging.getLogger(__name__)

MANIFEST_FILE = "export.json"
PARITY_FILE = "parity.json"
SCALER_FILE = "scaler.json"
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
    """A run loaded for export."""

    run_dir: Path
    config: dict[str, Any]
    predictor: Any
    graph: Any
    spec: GraphSpec


def prepare(run_dir: str | Path) -> Prepared:
    """Load the run through `rnnkit.load` (weights checked) and build its graph."""
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    predictor = runs.load(run_dir)
    graph, spec = build_graph(predictor)
    return Prepared(run_dir, config, predictor, graph, spec)


def default_out(run_dir: str | Path, format: str) -> Path:
    """`RUN/export/<format>/`."""
    return Path(run_dir) / "export" / format


def trained_length(config: dict[str, Any]) -> int:
    """The longest sequence the run trained on, as far as its config says."""
    task = config["task"]
    cfg = config.get("config", {})
    if task == "language-model":
        return int(cfg.get("data", {}).get("bptt") or 128)
    if task == "forecasting":
        return int(config.get("input_length") or 64)
    return int(cfg.get("data", {}).get("max_length") or 128)


def write_sidecars(prep: Prepared, out_dir: Path) -> list[Path]:
    """Copy the tokenizer (text runs) or write the scaler (forecasting) beside the model."""
    written = []
    source = prep.run_dir / runs.TOKENIZER_FILE
    if prep.spec.task in ("classification", "language-model"):
        target = out_dir / runs.TOKENIZER_FILE
        with source.open("rb") as src, _atomic(target) as dst:
            shutil.copyfileobj(src, dst)
        written.append(target)
    if prep.spec.task == "forecasting":
        c = prep.config
        target = out_dir / SCALER_FILE
        atomic_write_json(
            target,
            {
                "scaler": c["scaler"],
                "layout": c["layout"],
                "input_length": c["input_length"],
                "baseline": c.get("config", {}).get("window", {}).get("baseline"),
                "series": c.get("series"),
            },
        )
        written.append(target)
    return written


def _atomic(path: Path) -> Any:
    from rnnkit.io import atomic_open

    return atomic_open(path, "wb")


def manifest(prep: Prepared, format: str, model_file: Path, **extra: Any) -> dict[str, Any]:
    """The `export.json` record: how to feed the model and read its outputs."""
    model_cfg = prep.config.get("model", {})
    record: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "format": format,
        "model_file": model_file.name,
        **prep.spec.to_dict(),
        "model": model_cfg,
        "versions": runs.versions(),
        **extra,
    }
    task = prep.spec.task
    if task == "classification":
        record["classes"] = list(prep.config["classes"])
        record["pad_id"] = int(model_cfg.get("padding_idx", 0))
        record["unk_id"] = int(prep.predictor.encoder.unk_id)
        record["max_length"] = prep.predictor.max_length
        record["tokenizer_file"] = runs.TOKENIZER_FILE
    elif task == "language-model":
        record["unk_id"] = int(prep.predictor.encoder.unk_id)
        record["tokenizer_file"] = runs.TOKENIZER_FILE
    else:
        record["scaler_file"] = SCALER_FILE
    return record


def real_inputs(prep: Prepared, batch: int = 7, length: int = 48) -> list[dict[str, np.ndarray]]:
    """A few rows of the run's own data as graph inputs, when they load from disk cheaply.

    Classification: the first `batch` texts (ragged, padded); language model: `batch` rows of
    `length` tokens of its text, from a zero state. Forecasting windows need the whole feature
    pipeline and are left to the random cases. Data that cannot be loaded (moved file, empty
    cache) is skipped with a log line: parity on random inputs still holds.
    """
    task = prep.spec.task
    if task == "forecasting":
        return []
    try:
        encoder = prep.predictor.encoder
        if task == "classification":
            from rnnkit.config import from_dict
            from rnnkit.tasks.classification.pipeline import (
                ClassificationRunConfig,
                encode,
                load_texts,
            )

            cfg = from_dict(ClassificationRunConfig, prep.config["config"])
            texts = list(load_texts(cfg.data).data.texts[:batch])
            ids = encode(encoder, texts, prep.predictor.max_length)
            lengths = np.array([len(r) for r in ids], dtype=np.int64)
            padded = np.full((len(ids), int(lengths.max())), encoder.pad_id, dtype=np.int64)
            for i, row in enumerate(ids):
                padded[i, : len(row)] = row
            return [{"ids": padded, "lengths": lengths}]
        from rnnkit.config import from_dict
        from rnnkit.tasks.language_model.pipeline import LanguageModelRunConfig, load_text

        cfg = from_dict(LanguageModelRunConfig, prep.config["config"])
        text = load_text(cfg.data)
        stream = np.array(encoder.encode((text.validation or text.train)[: 64 * batch * length]))
        rows = min(batch, len(stream) // length)
        if rows == 0:
            return []
        ids = stream[: rows * length].reshape(rows, length).astype(np.int64)
        state = {
            t.name: np.zeros([rows if d == "batch" else d for d in t.shape], dtype=np.float32)
            for t in prep.spec.inputs
            if t.name in prep.spec.state
        }
        return [{"ids": ids, **state}]
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
    """Write sidecars and `export.json`, run and save the parity report, enforce it.

    Raises:
        ParityError: the export differs from eager beyond the tolerance (`parity.json` is
            written first, so the report can be read).
    """
    files = [model_file, *write_sidecars(prep, out_dir)]
    record = manifest(prep, format, model_file, **extra)
    manifest_path = out_dir / MANIFEST_FILE
    atomic_write_json(manifest_path, record)
    files.append(manifest_path)
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
    """Refuse to write the export over the run folder itself."""
    if out_dir.resolve() == run_dir.resolve():
        raise ConfigError(
            f"--out {out_dir} is the run folder itself; choose another folder (default: "
            f"{default_out(run_dir, 'FORMAT')})"
        )
