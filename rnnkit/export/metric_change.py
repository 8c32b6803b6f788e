"""Judge a quantized model by its task's metric on the run's own held-out data.

`metric_change(run_dir, runner, method)` evaluates the run's eager fp32 model and the quantized
one (any backend as a runner: {input: array} -> {output: array}, with the export graph's names)
through the tasks' own evaluation code: the runner is wrapped as the module each predictor or
backtest calls. Classifier: test-split accuracy and macro-F1; forecaster: test-span backtest
MASE (and MAE, sMAPE); language model: validation loss (and perplexity, bits per character).
`METRIC_LIMITS` says how much worse is still acceptable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit import runs
from rnnkit.errors import ConfigError, RnnkitError
from rnnkit.export.parity import Runner


@dataclass(frozen=True)
class MetricLimit:
    """The largest accepted change of a task's deciding metric.

    Attributes:
        metric: the metric compared.
        higher_is_better: whether a rise is an improvement.
        limit: the largest accepted worsening.
        relative: `limit` is a fraction of the fp32 value rather than an absolute amount.
        why: one line for the docs and the report.
    """

    metric: str
    higher_is_better: bool
    limit: float
    relative: bool
    why: str

    def worsening(self, fp32: float, quantized: float) -> float:
        """How much worse the quantized value is (negative: better), in the limit's units."""
        change = (fp32 - quantized) if self.higher_is_better else (quantized - fp32)
        return change / abs(fp32) if self.relative and fp32 else change


#: Per task: what decides whether a quantized model is still good enough.
METRIC_LIMITS: dict[str, MetricLimit] = {
    "classification": MetricLimit(
        "accuracy", True, 0.01, False, "test accuracy may drop by at most 1 point"
    ),
    "forecasting": MetricLimit(
        "mase", False, 0.02, True, "test-span MASE may rise by at most 2% of its fp32 value"
    ),
    "language-model": MetricLimit(
        "loss", False, 0.02, False, "validation loss may rise by at most 0.02 nats/token"
    ),
}


class MetricChangeError(RnnkitError):
    """The quantized model's metric moved beyond `METRIC_LIMITS`."""


@dataclass(frozen=True)
class MetricChange:
    """fp32 vs quantized metrics on the run's held-out data.

    Attributes:
        task: the run's task.
        method: the quantization method.
        data: what was evaluated.
        metrics: name -> {"fp32", "quantized", "change"} (change = quantized - fp32).
        checked: the deciding metric (see `METRIC_LIMITS`).
        limit: its largest accepted worsening.
        relative: whether `limit` is relative to the fp32 value.
        worsening: the measured worsening in the limit's units (negative: it improved).
        passed: worsening <= limit.
        allowed: the caller accepted a larger change.
    """

    task: str
    method: str
    data: str
    metrics: dict[str, dict[str, float]]
    checked: str
    limit: float
    relative: bool
    worsening: float
    passed: bool
    allowed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The metrics as a small fixed-width text table."""
        lines = [f"{'metric':<14} {'fp32':>10} {self.method:>14} {'change':>10}"]
        for name, m in self.metrics.items():
            lines.append(
                f"{name:<14} {m['fp32']:>10.4f} {m['quantized']:>14.4f} {m['change']:>+10.4f}"
            )
        unit = "of fp32" if self.relative else "absolute"
        verdict = "ok" if self.passed else "EXCEEDED" + (" (allowed)" if self.allowed else "")
        lines.append(
            f"{self.checked} worsened by {self.worsening:+.4g} ({unit}); limit {self.limit:g}: "
            f"{verdict}"
        )
        return "\n".join(lines)


def metric_change(
    run_dir: str | Path, runner: Runner, method: str, allow: bool = False
) -> MetricChange:
    """fp32 (the run's eager model) vs `runner` on the run's held-out data.

    Args:
        run_dir: the run folder.
        runner: the quantized model as {input: array} -> {output: array}, with the export
            graph's names (see `rnnkit.export.graphs`).
        method: named in the report.
        allow: recorded in the report (`allowed`).
    """
    config = runs.read_config(run_dir)
    task = config["task"]
    evaluate = EVALUATORS.get(task)
    if evaluate is None:
        raise ConfigError(
            f"task {task!r} has no quantization check; known: {', '.join(EVALUATORS)}"
        )
    data, fp32, quantized = evaluate(Path(run_dir), config, runner)
    limit = METRIC_LIMITS[task]
    worsening = limit.worsening(fp32[limit.metric], quantized[limit.metric])
    metrics = {
        k: {"fp32": fp32[k], "quantized": quantized[k], "change": quantized[k] - fp32[k]}
        for k in fp32
    }
    passed = bool(worsening <= limit.limit)
    return MetricChange(
        task, method, data, metrics, limit.metric, limit.limit, limit.relative, worsening, passed,
        allow and not passed,
    )  # fmt: skip


Evaluator = Callable[[Path, dict[str, Any], Runner], tuple[str, dict[str, float], dict[str, float]]]


def _evaluate_classifier(run_dir: Path, config: dict[str, Any], runner: Runner):
    from rnnkit.config import from_dict
    from rnnkit.tasks.classification.metrics import classification_metrics
    from rnnkit.tasks.classification.pipeline import (
        ClassificationRunConfig,
        ClassifierPredictor,
        load_texts,
    )

    predictor = ClassifierPredictor.from_run(run_dir, config)
    cfg = from_dict(ClassificationRunConfig, config["config"]).data
    part = load_texts(cfg).split(seed=cfg.split_seed, validation=cfg.validation, test=cfg.test)
    texts, labels = part.test.texts, part.test.labels
    index = {c: i for i, c in enumerate(predictor.classes)}
    truth = np.array([index[label] for label in labels])

    def scores() -> dict[str, float]:
        pred = predictor.predict_proba(texts).argmax(1)
        m = classification_metrics(truth, pred, predictor.classes)
        return {"accuracy": float(m["accuracy"]), "macro_f1": float(m["macro_f1"])}

    fp32 = scores()
    predictor.model = _ClassifierAdapter(runner)
    data = f"{cfg.data} (test split, seed {cfg.split_seed}, {len(texts)} texts)"
    return data, fp32, scores()


def _evaluate_language_model(run_dir: Path, config: dict[str, Any], runner: Runner):
    from rnnkit.config import from_dict
    from rnnkit.tasks.language_model.pipeline import LanguageModelRunConfig, load_text
    from rnnkit.tasks.language_model.predictor import LanguageModelPredictor

    predictor = LanguageModelPredictor.from_run(run_dir, config)
    cfg = from_dict(LanguageModelRunConfig, config["config"]).data
    text = load_text(cfg)
    part = text.validation or text.test or text.train
    fp32 = predictor.evaluate_text(part, cfg.bptt, cfg.eval_batch_size)
    predictor.model = _LanguageModelAdapter(runner, predictor.model)
    quantized = predictor.evaluate_text(part, cfg.bptt, cfg.eval_batch_size)
    keys = ("loss", "perplexity", "bits_per_char")
    data = f"{cfg.data} (validation part, {len(part)} characters)"
    return data, {k: fp32[k] for k in keys}, {k: quantized[k] for k in keys}


def _evaluate_forecaster(run_dir: Path, config: dict[str, Any], runner: Runner):
    from rnnkit.config import from_dict
    from rnnkit.tasks.forecasting.pipeline import ForecastingRunConfig, prepare, run_backtest
    from rnnkit.tasks.forecasting.predictor import ForecastPredictor

    predictor = ForecastPredictor.from_run(run_dir, config)
    cfg = from_dict(ForecastingRunConfig, config["config"])
    prep = prepare(cfg, scaler=predictor.scaler)
    keys = ("mase", "mae", "smape")
    fp32, _ = run_backtest(predictor.model, prep, cfg)
    quantized, _ = run_backtest(_ForecasterAdapter(runner, predictor.model), prep, cfg)
    data = f"{cfg.data.data} (test-span backtest, {fp32['origins']} origins)"
    return data, {k: fp32["model"][k] for k in keys}, {k: quantized["model"][k] for k in keys}


#: task -> (run_dir, config, runner) -> (data described, fp32 metrics, quantized metrics).
EVALUATORS: dict[str, Evaluator] = {
    "classification": _evaluate_classifier,
    "language-model": _evaluate_language_model,
    "forecasting": _evaluate_forecaster,
}


# --- runners as the modules the tasks' own evaluation code calls ------------------------------


class _ClassifierAdapter(nn.Module):
    """(ids, lengths) -> logits through a runner, where `ClassifierPredictor` calls its model."""

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        out = self.runner({"ids": ids.cpu().numpy(), "lengths": lengths.cpu().numpy()})
        return torch.from_numpy(out["logits"])  # (B, C)


class _LanguageModelAdapter(nn.Module):
    """(ids, state) -> (logits, state) through a runner; zeros when the state is None."""

    def __init__(self, runner: Runner, model: nn.Module) -> None:
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


class _ForecasterAdapter(nn.Module):
    """`Forecaster.forward` through a runner of its last-step graph.

    `all_steps=True` (the backtest's streaming pass) steps the graph one input at a time with
    the state carried, which is what the eager model computes in one call.
    """

    def __init__(self, runner: Runner, model: nn.Module) -> None:
        super().__init__()
        self.runner = runner
        self.reference = model  # `.forecast` and `interval_scale`; its encoder is not used
        self.forecast = model.forecast

    def forward(
        self, x: Tensor, future: Tensor, base: Tensor, state: Any = None, *, all_steps: bool = False
    ) -> tuple[Tensor, Any]:
        if not all_steps:
            return self._window(x, future, base, state)
        params = []
        for t in range(x.size(1)):
            p, state = self._window(x[:, t : t + 1], future[:, t], base[:, t], state)
            params.append(p)
        return torch.stack(params, dim=1), state  # (B, T, H, K, P)

    def _window(self, x: Tensor, future: Tensor, base: Tensor, state: Any) -> tuple[Tensor, Any]:
        cfg = self.reference.config
        lstm = self.reference.encoder.is_lstm
        if state is None:
            zeros = torch.zeros(cfg.num_layers, x.size(0), cfg.hidden_size)
            state = (zeros, zeros) if lstm else zeros
        feed = {"x": x.float().numpy(), "base": base.float().numpy()}
        if cfg.num_future:
            feed["future"] = future.float().numpy()
        if lstm:
            feed["h"], feed["c"] = state[0].numpy(), state[1].numpy()
        else:
            feed["h"] = state.numpy()
        out = self.runner(feed)
        h = torch.from_numpy(out["h_out"])
        new_state = (h, torch.from_numpy(out["c_out"])) if lstm else h
        return torch.from_numpy(out["params"]), new_state
