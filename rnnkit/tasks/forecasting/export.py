"""The forecaster for `rnnkit export` and `rnnkit bench`: its graph, scaler sidecar and metric.

Graph: x (B, T, F)[, future (B, H, Ff)], base (B, H, K), h[, c] -> params (B, H, K, P),
point (B, H, K)[, lower, upper], h_out[, c_out]: the window as `ForecastPredictor` builds it,
and the forecast the predictor reads from the params (see `graph` for the tensors).
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
from rnnkit.export.hooks import ExportHooks, MetricLimit, Runner
from rnnkit.io import atomic_write_json
from rnnkit.models.forecaster import Forecaster
from rnnkit.tasks.forecasting.config import TASK, ForecastingRunConfig
from rnnkit.tasks.forecasting.data import prepare
from rnnkit.tasks.forecasting.pipeline import run_backtest
from rnnkit.tasks.forecasting.predictor import ForecastPredictor
from rnnkit.tasks.spec import HeldOut

#: The sidecar beside the graph: per-series scaling and the feature layout.
SCALER_FILE = "scaler.json"


class ForecasterGraph(nn.Module):
    """`Forecaster` as a graph over one window per row; see `graph` for the tensors."""

    def __init__(self, model: Forecaster) -> None:
        super().__init__()
        self.model = model.eval()
        self.has_future = model.config.num_future > 0
        self.is_lstm = model.encoder.is_lstm

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        model, cfg = self.model, self.model.config
        rest = list(inputs)
        x = rest.pop(0)  # (B, T, F)
        future = rest.pop(0) if self.has_future else None  # (B, H, Ff)
        base = rest.pop(0)  # (B, H, K)
        h = rest.pop(0)
        c = rest.pop(0) if self.is_lstm else None
        out, h, c = run_unidirectional(model.encoder, x, h, c)  # (B, T, Hd)
        hidden = out[:, -1]  # (B, Hd)
        if future is not None:
            hidden = torch.cat([hidden, future.flatten(1)], dim=-1)  # (B, Hd + H * Ff)
        raw = model.head(hidden).unflatten(-1, (cfg.horizon, cfg.num_targets, cfg.num_params))
        # The same parameterisation as `Forecaster.forward` (held to it by the parity check).
        if cfg.likelihood == "gaussian":
            mean = raw[..., 0] + base
            scale = torch.nn.functional.softplus(raw[..., 1]) + 1e-3
            params = torch.stack([mean, scale], dim=-1)  # (B, H, K, 2)
        else:
            params = raw + base.unsqueeze(-1)  # (B, H, K, P)
        fc = model.forecast(params)
        outputs = [params, fc.point]
        if fc.lower is not None and fc.upper is not None:
            outputs += [fc.lower, fc.upper]
        outputs.append(h)
        if c is not None:
            outputs.append(c)
        return tuple(outputs)


def graph(model: Forecaster) -> tuple[ForecasterGraph, GraphSpec]:
    """Inputs: x (B, T, F) scaled step features, future (B, H, Ff) known-future features (only
    when Ff > 0), base (B, H, K) the baseline in scaled units, h[, c]. Outputs: params
    (B, H, K, P) raw distribution parameters, point (B, H, K) and, with an 80% interval, lower
    and upper (B, H, K), all in scaled units and calibrated, then h_out[, c_out]."""
    c = model.config
    h, k = c.horizon, c.num_targets
    s_in, s_out = state_specs(c.cell, c.num_layers, c.hidden_size)
    inputs = [TensorSpec("x", "float32", ("batch", "seq", c.num_features), "scaled step features")]
    if c.num_future:
        inputs.append(
            TensorSpec("future", "float32", ("batch", h, c.num_future), "known-future features")
        )
    inputs.append(TensorSpec("base", "float32", ("batch", h, k), "baseline, scaled units"))
    outputs = [
        TensorSpec("params", "float32", ("batch", h, k, c.num_params), f"{c.likelihood} params"),
        TensorSpec("point", "float32", ("batch", h, k), "point forecast, scaled units"),
    ]
    has_interval = c.likelihood == "gaussian" or (
        c.likelihood == "quantile" and c.quantiles[0] <= 0.1 and c.quantiles[-1] >= 0.9
    )
    if has_interval:
        for end in ("lower", "upper"):
            outputs.append(
                TensorSpec(end, "float32", ("batch", h, k), f"80% interval {end} end, scaled")
            )
    state = {i.name: o.name for i, o in zip(s_in, s_out, strict=True)}
    spec = GraphSpec(TASK, (*inputs, *s_in), (*outputs, *s_out), state)
    return ForecasterGraph(model), spec


def eager_outputs(model: Forecaster, t: dict[str, Tensor]) -> list[Tensor]:
    state = (t["h"], t["c"]) if "c" in t else t["h"]
    x, base = t["x"], t["base"]
    future = t.get("future", x.new_zeros(x.size(0), model.config.horizon, 0))
    params, state = model(x, future, base, state)
    fc = model.forecast(params)
    values = [params, fc.point]
    if fc.lower is not None and fc.upper is not None:
        values += [fc.lower, fc.upper]
    return [*values, *state_list(state)]


def example_inputs(
    model: Forecaster, spec: GraphSpec, batch: int, seq: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Standard normal features and baseline, mid-stream states."""
    del model
    return random_inputs(spec, batch, seq, rng)


def trained_length(config: dict[str, Any]) -> int:
    """The input window (`input_length` of `config.json`)."""
    return int(config.get("input_length") or 64)


def sidecars(run_dir: Path, config: dict[str, Any], out_dir: Path) -> list[Path]:
    """`scaler.json`: per-series scaling, the feature layout, the window and the baseline."""
    del run_dir
    target = out_dir / SCALER_FILE
    atomic_write_json(
        target,
        {
            "scaler": config["scaler"],
            "layout": config["layout"],
            "input_length": config["input_length"],
            "baseline": config.get("config", {}).get("window", {}).get("baseline"),
            "series": config.get("series"),
        },
    )
    return [target]


def manifest(config: dict[str, Any], predictor: ForecastPredictor) -> dict[str, Any]:
    del config, predictor
    return {"scaler_file": SCALER_FILE}


def evaluate_exported(
    run_dir: Path, config: dict[str, Any], part: HeldOut, runner: Runner
) -> tuple[str, dict[str, float], dict[str, float]]:
    """Test-span backtest MASE, MAE and sMAPE of the eager model, then through `runner`."""
    predictor = ForecastPredictor.from_run(run_dir, config)
    cfg = from_dict(ForecastingRunConfig, config["config"])
    prep = prepare(cfg, dataset=part.data, scaler=predictor.scaler)
    keys = ("mase", "mae", "smape")
    fp32, _ = run_backtest(predictor.model, prep, cfg, ets=False)  # the model's rows only
    quantized, _ = run_backtest(_RunnerModel(runner, predictor.model), prep, cfg, ets=False)
    data = f"{cfg.data.data} (test-span backtest, {fp32['origins']} origins)"
    return data, {k: fp32["model"][k] for k in keys}, {k: quantized["model"][k] for k in keys}


class _RunnerModel(nn.Module):
    """`Forecaster.forward` through a runner of its last-step graph.

    `all_steps=True` (the backtest's streaming pass) steps the graph one input at a time with
    the state carried, which is what the eager model computes in one call.
    """

    def __init__(self, runner: Runner, model: Forecaster) -> None:
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


EXPORT = ExportHooks(
    graph=graph,
    eager_outputs=eager_outputs,
    example_inputs=example_inputs,
    trained_length=trained_length,
    sidecars=sidecars,
    manifest=manifest,
    metric_limit=MetricLimit(
        "mase", False, 0.02, True, "test-span MASE may rise by at most 2% of its fp32 value"
    ),
    evaluate_exported=evaluate_exported,
)
