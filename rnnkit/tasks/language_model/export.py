"""The language model for `rnnkit export` and `rnnkit bench`: its graph, sidecar and metric.

Graph: ids (B, T) int64, h[, c] (num_layers, B, hidden_size) -> logits (B, T, V), h_out[, c_out].
Its rows are never padded, so the final state is the recurrent module's own; a consumer streams
by feeding each chunk with the previous call's state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.config import from_dict
from rnnkit.export.graphs import (
    GraphSpec,
    TensorSpec,
    random_inputs,
    run_unidirectional,
    state_list,
    state_specs,
)
from rnnkit.export.hooks import ExportHooks, MetricLimit, Runner, copy_tokenizer
from rnnkit.models.language_model import LanguageModel
from rnnkit.run_folder import Files
from rnnkit.tasks.language_model.config import TASK, LanguageModelRunConfig
from rnnkit.tasks.language_model.data import load_text
from rnnkit.tasks.language_model.predictor import LanguageModelPredictor
from rnnkit.tasks.spec import HeldOut


class LanguageModelGraph(nn.Module):
    """`LanguageModel` as a graph: ids (B, T), h[, c] -> logits (B, T, V), h_out[, c_out]."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, ids: Tensor, h: Tensor, c: Tensor | None = None) -> tuple[Tensor, ...]:
        x = self.model.embedding(ids)  # (B, T, E)
        out, h, c = run_unidirectional(self.model.encoder, x, h, c)  # (B, T, H)
        logits = self.model.decoder(out)  # (B, T, V)
        return (logits, h) if c is None else (logits, h, c)


def graph(model: LanguageModel) -> tuple[LanguageModelGraph, GraphSpec]:
    c = model.config
    s_in, s_out = state_specs(c.cell, c.num_layers, c.hidden_size)
    inputs = (TensorSpec("ids", "int64", ("batch", "seq"), "token ids"), *s_in)
    logits = TensorSpec(
        "logits", "float32", ("batch", "seq", c.vocab_size), "next-token logits at every step"
    )
    state = {i.name: o.name for i, o in zip(s_in, s_out, strict=True)}
    return LanguageModelGraph(model), GraphSpec(TASK, inputs, (logits, *s_out), state)


def eager_outputs(model: LanguageModel, t: dict[str, Tensor]) -> list[Tensor]:
    state = (t["h"], t["c"]) if "c" in t else t["h"]
    logits, state = model(t["ids"], state)
    return [logits, *state_list(state)]


def example_inputs(
    model: LanguageModel, spec: GraphSpec, batch: int, seq: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Ids anywhere in the vocabulary (rows are never padded), mid-stream states."""
    return random_inputs(spec, batch, seq, rng, ids=(0, int(model.embedding.num_embeddings)))


def trained_length(config: dict[str, Any]) -> int:
    """The BPTT window (`data.bptt`)."""
    return int(config.get("config", {}).get("data", {}).get("bptt") or 128)


def manifest(config: dict[str, Any], predictor: LanguageModelPredictor) -> dict[str, Any]:
    del config
    return {"unk_id": int(predictor.encoder.unk_id), "tokenizer_file": Files.TOKENIZER}


def real_inputs(
    run_dir: Path,
    config: dict[str, Any],
    predictor: LanguageModelPredictor,
    spec: GraphSpec,
    batch: int,
    length: int,
) -> list[dict[str, np.ndarray]]:
    """`batch` rows of `length` tokens of the run's validation text, from a zero state."""
    del run_dir
    cfg = from_dict(LanguageModelRunConfig, config["config"])
    text = load_text(cfg.data)
    source = (text.validation or text.train)[: 64 * batch * length]
    stream = np.array(predictor.encoder.encode(source))
    rows = min(batch, len(stream) // length)
    if rows == 0:
        return []
    ids = stream[: rows * length].reshape(rows, length).astype(np.int64)
    state = {
        t.name: np.zeros([rows if d == "batch" else d for d in t.shape], dtype=np.float32)
        for t in spec.inputs
        if t.name in spec.state
    }
    return [{"ids": ids, **state}]


def evaluate_exported(
    run_dir: Path, config: dict[str, Any], part: HeldOut, runner: Runner
) -> tuple[str, dict[str, float], dict[str, float]]:
    """Held-out loss, perplexity and bits per character, eager and through `runner`."""
    predictor = LanguageModelPredictor.from_run(run_dir, config)
    cfg = from_dict(LanguageModelRunConfig, config["config"]).data
    text = part.data
    fp32 = predictor.evaluate_text(text, cfg.bptt, cfg.eval_batch_size)
    predictor.model = _RunnerModel(runner, predictor.model)
    quantized = predictor.evaluate_text(text, cfg.bptt, cfg.eval_batch_size)
    keys = ("loss", "perplexity", "bits_per_char")
    data = f"{part.description}, {len(text)} characters"
    return data, {k: fp32[k] for k in keys}, {k: quantized[k] for k in keys}


class _RunnerModel(nn.Module):
    """(ids, state) -> (logits, state) through a runner; zeros when the state is None."""

    def __init__(self, runner: Runner, model: LanguageModel) -> None:
        super().__init__()
        self.runner = runner
        self.reference = model  # for its sizes; its weights are not used
        self.is_lstm = model.encoder.is_lstm

    def forward(self, ids: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        cfg = self.reference.config
        if state is None:
            zeros = torch.zeros(cfg.num_layers, ids.size(0), cfg.hidden_size)
            state = (zeros, zeros) if self.is_lstm else zeros
        feed = {"ids": ids.cpu().numpy()}
        if self.is_lstm:
            feed["h"], feed["c"] = state[0].float().numpy(), state[1].float().numpy()
        else:
            feed["h"] = state.float().numpy()
        out = self.runner(feed)
        logits = torch.from_numpy(out["logits"])  # (B, T, V)
        h = torch.from_numpy(out["h_out"])
        return logits, ((h, torch.from_numpy(out["c_out"])) if self.is_lstm else h)


EXPORT = ExportHooks(
    graph=graph,
    eager_outputs=eager_outputs,
    example_inputs=example_inputs,
    trained_length=trained_length,
    sidecars=copy_tokenizer,
    manifest=manifest,
    metric_limit=MetricLimit(
        "loss",
        False,
        0.02,
        False,
        "held-out loss (the validation part unless data.test > 0) may rise by at most "
        "0.02 nats/token",
    ),
    evaluate_exported=evaluate_exported,
    real_inputs=real_inputs,
)
