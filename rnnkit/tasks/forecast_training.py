"""The forecaster's training task: windows from a zero state, or streams with the state carried.

`ForecastingTask` is what `fit` calls. A `WindowBatch` (`rnnkit.data.windows`) is scored at its
last step from a zero state; a `StreamBatch` (`rnnkit.data.streams`) after every step, starting
from the state the previous window of the same streams ended in, detached so gradients stop at
the window boundary (truncated BPTT, as the language model trains).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

import torch
from torch import Tensor

from rnnkit.data.streams import StreamBatch
from rnnkit.models.encoder import State
from rnnkit.models.forecaster import Forecaster
from rnnkit.training import EvalContext
from rnnkit.training.precision import eval_mode


def detach_state(state: State | None) -> State | None:
    """`state` cut from the graph of the window that made it."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(t.detach() for t in state)  # type: ignore[return-value]
    return state.detach()


def forward_batch(model: Forecaster, batch: Any, state: State | None = None):
    """(params (N, H, K, P), target (N, H, K), final state) of the batch's scored origins."""
    if isinstance(batch, StreamBatch):
        params, state = model(
            batch.x, batch.future, batch.base, None if batch.first else state, all_steps=True
        )
        return params[batch.valid], batch.target[batch.valid], state
    params, state = model(batch.x, batch.future, batch.base)
    return params, batch.target, state


class ForecastingTask:
    """The model's own loss (pinball / Gaussian NLL / L1); validation loss monitored.

    Holds the running state between `compute_loss` calls for stream batches.
    """

    monitor = "loss"
    monitor_mode: Literal["max", "min"] = "min"

    def __init__(self) -> None:
        self.state: State | None = None

    def compute_loss(self, model: torch.nn.Module, batch: Any) -> Tensor:
        params, target, state = forward_batch(model, batch, self.state)  # type: ignore[arg-type]
        self.state = detach_state(state)
        if target.numel() == 0:  # a window of ragged stream ends only: nothing to score
            return params.sum() * 0.0
        return model.loss(params.float(), target)

    def evaluate(self, model: torch.nn.Module, loader: Any, ctx: EvalContext) -> dict[str, float]:
        total, mae, count = 0.0, 0.0, 0
        with eval_mode(model):
            for params, target in predictions(model, loader, ctx.device, ctx.precision):  # type: ignore[arg-type]
                n = len(target)
                if n == 0:
                    continue
                total += float(model.loss(params, target)) * n
                mae += float((model.forecast(params).point - target).abs().mean()) * n
                count += n
        return {"loss": total / max(count, 1), "mae_scaled": mae / max(count, 1)}


@torch.no_grad()
def predictions(
    model: Forecaster, loader: Iterable[Any], device: torch.device, precision: Any = None
) -> Iterator[tuple[Tensor, Tensor]]:
    """(params, target) of every scored origin of `loader`, batch by batch, state carried."""
    state = None
    for batch in loader:
        batch = batch.to(device)
        if precision is None:
            params, target, state = forward_batch(model, batch, state)
        else:
            with precision.autocast():
                params, target, state = forward_batch(model, batch, state)
        yield params.float(), target


@torch.no_grad()
def calibrate_intervals(model: Forecaster, loader: Iterable[Any]) -> list[float] | None:
    """Fit the model's interval widening on the validation origins (None: no intervals)."""
    if model.config.likelihood == "none":
        return None
    device = next(model.parameters()).device
    parts: dict[str, list[Tensor]] = {"point": [], "lower": [], "upper": [], "target": []}
    with eval_mode(model):
        for params, target in predictions(model, loader, device):
            fc = model.forecast(params, calibrated=False)
            for key, value in (("point", fc.point), ("lower", fc.lower), ("upper", fc.upper)):
                parts[key].append(value)
            parts["target"].append(target)
    joined = {k: torch.cat(v) for k, v in parts.items()}
    scale = model.calibrate(joined["point"], joined["lower"], joined["upper"], joined["target"])
    return [round(float(v), 3) for v in scale]
