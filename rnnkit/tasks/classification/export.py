"""The classifier for `rnnkit export` and `rnnkit bench`: its graph, sidecar, manifest and metric.

Graph: ids (B, T) int64 right-padded with the pad id, lengths (B,) int64 -> logits (B, C). The
backward direction reads each sequence reversed within its length (`reverse_within_length`) and
pooling masks the padding, as in eager. Only the outputs are needed, so the LSTM ragged-tail
stepping (an exact final *cell* state for ragged batches) never enters the graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.config import from_dict
from rnnkit.export.graphs import GraphSpec, TensorSpec, random_inputs
from rnnkit.export.hooks import ExportHooks, MetricLimit, Runner, copy_tokenizer
from rnnkit.models.classifier import TextClassifier
from rnnkit.models.encoder import reverse_within_length
from rnnkit.run_folder import Files
from rnnkit.tasks.classification.config import TASK, ClassificationRunConfig
from rnnkit.tasks.classification.data import encode, held_out, load_texts
from rnnkit.tasks.classification.metrics import classification_metrics
from rnnkit.tasks.classification.predictor import ClassifierPredictor
from rnnkit.tasks.spec import HeldOut


class ClassifierGraph(nn.Module):
    """`TextClassifier` as a graph: ids (B, T) int64, lengths (B,) int64 -> logits (B, C)."""

    def __init__(self, model: TextClassifier) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        model = self.model
        out = model.embedding(ids)  # (B, T, E); dropout is off for inference
        for layer, directions in enumerate(model.encoder.layers):
            results = []
            for direction, module in enumerate(directions):
                inp = out if direction == 0 else reverse_within_length(out, lengths)
                y, _ = module(inp)  # (B, T, H); padding comes after each row's real steps
                results.append(y if direction == 0 else reverse_within_length(y, lengths))
            out = results[0] if len(results) == 1 else torch.cat(results, dim=-1)
            out = model.encoder.normalize(layer, out)  # eval: running statistics, no lengths
        return model.head(model.pool(out, lengths))  # (B, C)


def graph(model: TextClassifier) -> tuple[ClassifierGraph, GraphSpec]:
    c = model.config
    inputs = (
        TensorSpec("ids", "int64", ("batch", "seq"), "token ids, right-padded with pad_id"),
        TensorSpec("lengths", "int64", ("batch",), "true lengths, each in [1, seq]"),
    )
    outputs = (TensorSpec("logits", "float32", ("batch", c.num_classes), "class logits"),)
    return ClassifierGraph(model), GraphSpec(TASK, inputs, outputs, {})


def eager_outputs(model: TextClassifier, t: dict[str, Tensor]) -> list[Tensor]:
    return [model(t["ids"], t["lengths"])]


def example_inputs(
    model: TextClassifier, spec: GraphSpec, batch: int, seq: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Ids from 1 (the pad id 0 only after each row's length), ragged lengths."""
    vocab = int(model.embedding.num_embeddings)
    return random_inputs(spec, batch, seq, rng, ids=(1, vocab), pad_id=model.config.padding_idx)


def trained_length(config: dict[str, Any]) -> int:
    """`data.max_length`, or 128 when texts were not cut."""
    return int(config.get("config", {}).get("data", {}).get("max_length") or 128)


def manifest(config: dict[str, Any], predictor: ClassifierPredictor) -> dict[str, Any]:
    return {
        "classes": list(config["classes"]),
        "pad_id": int(config.get("model", {}).get("padding_idx", 0)),
        "unk_id": int(predictor.encoder.unk_id),
        "max_length": predictor.max_length,
        "tokenizer_file": Files.TOKENIZER,
    }


def real_inputs(
    run_dir: Path,
    config: dict[str, Any],
    predictor: ClassifierPredictor,
    spec: GraphSpec,
    batch: int,
    length: int,
) -> list[dict[str, np.ndarray]]:
    """The first `batch` texts of the run's data, ragged and padded as the predictor pads."""
    del run_dir, spec, length  # texts keep their own lengths
    encoder = predictor.encoder
    cfg = from_dict(ClassificationRunConfig, config["config"])
    texts = list(load_texts(cfg.data).data.texts[:batch])
    ids = encode(encoder, texts, predictor.max_length)
    lengths = np.array([len(r) for r in ids], dtype=np.int64)
    padded = np.full((len(ids), int(lengths.max())), encoder.pad_id, dtype=np.int64)
    for i, row in enumerate(ids):
        padded[i, : len(row)] = row
    return [{"ids": padded, "lengths": lengths}]


def typical_length(run_dir: Path, config: dict[str, Any], predictor: ClassifierPredictor) -> int:
    """The median token count of the run's test texts (cut at `max_length`)."""
    part = held_out(run_dir, config)
    cfg = from_dict(ClassificationRunConfig, config["config"]).data
    ids = encode(predictor.encoder, part.data.texts, cfg.max_length)
    return max(1, int(np.median([len(row) for row in ids])))


def evaluate_exported(
    run_dir: Path, config: dict[str, Any], part: HeldOut, runner: Runner
) -> tuple[str, dict[str, float], dict[str, float]]:
    """Test-split accuracy and macro-F1 of the eager model, then through `runner`."""
    predictor = ClassifierPredictor.from_run(run_dir, config)
    texts, labels = part.data.texts, part.data.labels
    index = {c: i for i, c in enumerate(predictor.classes)}
    truth = np.array([index[label] for label in labels])

    def scores() -> dict[str, float]:
        pred = predictor.predict_proba(texts).argmax(1)
        m = classification_metrics(truth, pred, predictor.classes)
        return {"accuracy": float(m["accuracy"]), "macro_f1": float(m["macro_f1"])}

    fp32 = scores()
    predictor.model = _RunnerModel(runner)
    cfg = from_dict(ClassificationRunConfig, config["config"]).data
    data = f"{cfg.data} (test split, seed {cfg.split_seed}, {len(texts)} texts)"
    return data, fp32, scores()


class _RunnerModel(nn.Module):
    """(ids, lengths) -> logits through a runner, where `ClassifierPredictor` calls its model."""

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        out = self.runner({"ids": ids.cpu().numpy(), "lengths": lengths.cpu().numpy()})
        return torch.from_numpy(out["logits"])  # (B, C)


EXPORT = ExportHooks(
    graph=graph,
    eager_outputs=eager_outputs,
    example_inputs=example_inputs,
    trained_length=trained_length,
    sidecars=copy_tokenizer,
    manifest=manifest,
    metric_limit=MetricLimit(
        "accuracy", True, 0.01, False, "test accuracy may drop by at most 1 point"
    ),
    evaluate_exported=evaluate_exported,
    real_inputs=real_inputs,
    typical_length=typical_length,
)
