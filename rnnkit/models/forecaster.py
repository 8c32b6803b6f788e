"""A recurrent forecaster: encoder over the input window, a direct multi-step head.

::

    x (B, T, F) ──► RecurrentEncoder ──► h_t (B, T, Hd) ─┐
    future (B, [T,] H, Ff) ──── flatten ─────────────────┴► MLP ──► (B, [T,] H, K, P) + base

The head reads the encoder output at a step together with the known-future features of the
horizon after it (calendar, future covariates) and emits all H steps at once (a direct
multi-step forecast: no feeding predictions back, so errors do not compound). P is 1 for a point
forecast, 2 for a Gaussian (mean, scale) and Q for quantiles. The model predicts a residual over
a baseline (`base`, e.g. the seasonal-naive forecast), so an untrained head already forecasts
as well as that baseline and training only has to learn the correction.

State in, state out: `forward(..., state)` returns the encoder's final state, so a streaming
predictor can carry it between calls and advance one step at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import ConfigError
from rnnkit.models.encoder import (
    MAX_LAYERS,
    MAX_WIDTH,
    EncoderConfig,
    RecurrentEncoder,
    State,
    check_parameters,
    check_size,
    get_cell,
)

#: steps forecast at once: the head's output is horizon x targets x quantiles wide; a year of
#: hourly steps (8,760) fits.
MAX_HORIZON = 10_000
#: features, known-future features or targets per step: columns of a table, not rows (and the
#: features are the recurrent layer's input, bounded like its width).
MAX_COLUMNS = MAX_WIDTH

Likelihood = Literal["none", "gaussian", "quantile"]

#: the quantile levels a model may learn: a level q needs ~1/q observations below it to be
#: estimated at all, more than any series here has beyond 1/1000. It also keeps a level edited
#: into config.json after training (1e-300 for 0.1) from loading as another valid model.
QUANTILE_RANGE = (0.001, 0.999)
#: z-score of the 10% / 90% quantiles of a normal: a Gaussian's 80% interval is mean +- 1.2816 sd.
Z80 = 1.2815515655446004


@dataclass(frozen=True)
class ForecasterConfig:
    """Shape of a forecaster.

    Attributes:
        cell: "lstm", "gru" or "rnn"; LSTM runs oneDNN's fused kernel on CPU, which trains
            faster than GRU's per-step code at the same accuracy.
        hidden_size: 64 fits seasonal series of hundreds to tens of thousands of steps on CPU.
        num_layers: one layer; a second rarely helps windows of a few seasons.
        dropout: between stacked layers and before the head; small data overfits without it.
        head_size: hidden units of the head's MLP.
        num_features: F, features per input step (set from the data).
        num_future: Ff, known-future features per horizon step (set from the data).
        num_targets: K, target columns (set from the data).
        horizon: H, steps predicted at once.
        likelihood: "quantile" (intervals from pinball loss, no distribution assumed),
            "gaussian" (mean and scale by negative log-likelihood) or "none" (point, L1 loss).
        quantiles: the quantile levels; 0.1/0.5/0.9 give an 80% interval and the median.
        norm: "none", "layer" or "batch" on each layer's output (`EncoderConfig.norm`); none by
            default: inputs are already scaled per series, and one layer needs no more.
        norm_groups: 1; a merged ensemble of k members has k (each member's layer norm over
            its own block of the hidden features; see `rnnkit.tasks.forecasting.ensemble`).
    """

    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.1
    head_size: int = 128
    num_features: int = 1
    num_future: int = 0
    num_targets: int = 1
    horizon: int = 1
    likelihood: Likelihood = "quantile"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    norm: str = "none"
    norm_groups: int = 1

    def __post_init__(self) -> None:
        if self.likelihood not in ("none", "gaussian", "quantile"):
            raise ConfigError(
                f"unknown likelihood {self.likelihood!r}; choose none, gaussian or quantile"
            )
        if self.likelihood == "quantile":
            low, high = QUANTILE_RANGE
            if not self.quantiles or any(not low <= q <= high for q in self.quantiles):
                raise ConfigError(
                    f"quantiles must lie in [{low}, {high}], got {list(self.quantiles)}"
                )
            if list(self.quantiles) != sorted(set(self.quantiles)):
                raise ConfigError(f"quantiles must be increasing, got {list(self.quantiles)}")
        for name in ("horizon", "num_targets", "num_features"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        get_cell(self.cell)
        check_size("num_layers", self.num_layers, 1, MAX_LAYERS, "deeper stacks do not train")
        for name in ("hidden_size", "head_size"):
            check_size(name, getattr(self, name), 1, MAX_WIDTH, "wider is not a small RNN")
        check_size("horizon", self.horizon, 1, MAX_HORIZON, "a year of hourly steps fits")
        for name in ("num_features", "num_future", "num_targets"):
            low = 0 if name == "num_future" else 1
            check_size(name, getattr(self, name), low, MAX_COLUMNS, "columns of a table")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if len(self.quantiles) > 99:
            raise ConfigError(f"at most 99 quantiles, got {len(self.quantiles)}")
        encoder = self.encoder_config()  # validates norm and norm_groups too
        out = self.horizon * self.num_targets * self.num_params
        head_in = self.hidden_size + self.horizon * self.num_future
        check_parameters(encoder.num_parameters + (head_in + 1 + out) * self.head_size + out)

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(
            cell=self.cell,
            input_size=self.num_features,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            dropout=self.dropout,
            norm=self.norm,
            norm_groups=self.norm_groups,
        )

    @property
    def num_params(self) -> int:
        """P: outputs per horizon step and target."""
        return {"none": 1, "gaussian": 2, "quantile": len(self.quantiles)}[self.likelihood]


@dataclass
class Forecast:
    """A forecast in the units it was computed in (scaled inside training, raw for users).

    Attributes:
        point: (..., H, K) point forecast (median for quantiles, mean for Gaussian).
        lower: (..., H, K) lower end of the 80% interval, or None without intervals.
        upper: (..., H, K) upper end, or None.
        quantiles: (..., H, K, Q) all quantiles (quantile likelihood only).
    """

    point: Tensor
    lower: Tensor | None = None
    upper: Tensor | None = None
    quantiles: Tensor | None = field(default=None)


class Forecaster(nn.Module):
    """Recurrent encoder + direct multi-step head predicting a residual over a baseline."""

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = RecurrentEncoder(config.encoder_config())
        c = config
        out = c.horizon * c.num_targets * c.num_params
        self.head = nn.Sequential(
            nn.Dropout(c.dropout),
            nn.Linear(c.hidden_size + c.horizon * c.num_future, c.head_size),
            nn.GELU(),
            nn.Linear(c.head_size, out),
        )
        # Start at the baseline: a zero last layer makes the first forecast the baseline itself.
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        # (K,) widening of the interval around the point forecast, set by `calibrate` on
        # validation windows after training; saved with the weights.
        self.register_buffer("interval_scale", torch.ones(c.num_targets))
        if c.likelihood == "quantile":
            # Spread quantiles a little from the start so their order is not learnt from a tie.
            offsets = torch.tensor(c.quantiles) - 0.5
            with torch.no_grad():
                self.head[-1].bias.view(c.horizon, c.num_targets, -1).add_(offsets)

    def forward(
        self,
        x: Tensor,
        future: Tensor,
        base: Tensor,
        state: State | None = None,
        *,
        all_steps: bool = False,
    ) -> tuple[Tensor, State]:
        """Raw distribution parameters for the horizon after the last step (or after every step).

        Args:
            x: (B, T, F) input features.
            future: (B, H, Ff) known-future features of the horizon, or (B, T, H, Ff) with
                `all_steps`.
            base: (B, H, K) baseline in scaled units, or (B, T, H, K) with `all_steps`.
            state: the encoder state to start from (None: zeros).
            all_steps: apply the head after every input step (streaming parity, stateful
                training) instead of only the last.

        Returns:
            params: (B, H, K, P) or (B, T, H, K, P): location(s) already include `base`; the
                Gaussian scale is positive.
            state: the encoder's final state.
        """
        outputs, state = self.encoder(x, state=state)  # (B, T, Hd)
        hidden = outputs if all_steps else outputs[:, -1]  # (B, [T,] Hd)
        lead = hidden.shape[:-1]
        features = torch.cat([hidden, future.reshape(*lead, -1)], dim=-1)
        c = self.config
        raw = self.head(features).view(*lead, c.horizon, c.num_targets, c.num_params)
        if c.likelihood == "gaussian":
            mean = raw[..., 0] + base
            scale = F.softplus(raw[..., 1]) + 1e-3
            params = torch.stack([mean, scale], dim=-1)
        else:
            params = raw + base.unsqueeze(-1)
        return params, state  # type: ignore[return-value]

    def loss(self, params: Tensor, target: Tensor) -> Tensor:
        """Mean loss of `params` (..., H, K, P) against `target` (..., H, K).

        Pinball loss for quantiles (Koenker & Bassett, 1978), Gaussian negative log-likelihood,
        or L1 for point forecasts (its minimiser, the median, is what MAE and MASE reward).
        """
        c = self.config
        if c.likelihood == "quantile":
            return pinball(params, target, params.new_tensor(c.quantiles))
        if c.likelihood == "gaussian":
            mean, scale = params[..., 0], params[..., 1]
            return F.gaussian_nll_loss(mean, target, scale.square(), full=False)
        return (params[..., 0] - target).abs().mean()

    def forecast(self, params: Tensor, calibrated: bool = True) -> Forecast:
        """Point forecast and 80% interval from `params` (..., H, K, P), in the same units.

        With `calibrated`, the interval's distance from the point is multiplied by
        `interval_scale` (see `calibrate`).
        """
        c = self.config
        if c.likelihood == "quantile":
            q = params.sort(dim=-1).values  # crossing quantiles are swapped back into order
            levels = list(c.quantiles)
            point = _interp_quantile(q, levels, 0.5)
            lower = _interp_quantile(q, levels, 0.1) if levels[0] <= 0.1 else None
            upper = _interp_quantile(q, levels, 0.9) if levels[-1] >= 0.9 else None
            fc = Forecast(point, lower, upper, q)
        elif c.likelihood == "gaussian":
            mean, scale = params[..., 0], params[..., 1]
            fc = Forecast(mean, mean - Z80 * scale, mean + Z80 * scale)
        else:
            return Forecast(params[..., 0])
        if calibrated and fc.lower is not None and fc.upper is not None:
            s = self.interval_scale.to(fc.point.dtype)
            fc.lower = fc.point - (fc.point - fc.lower) * s
            fc.upper = fc.point + (fc.upper - fc.point) * s
        return fc

    @torch.no_grad()
    def calibrate(self, point: Tensor, lower: Tensor, upper: Tensor, target: Tensor) -> Tensor:
        """Set `interval_scale` so the 80% interval covers 80% of held-out `target`.

        A split-conformal step (Romano et al., 2019, in spirit): models fitted on the training
        windows are overconfident on new data, so the smallest widening that covers each
        held-out value is taken at its 80th percentile, per target. Arguments are uncalibrated
        forecasts (N, H, K) and the actual values (N, H, K), in the same units.

        The interval is only ever widened (a scale of at least 1). The head's own 0.1/0.9
        quantiles are fitted by pinball loss, so they start calibrated on the training windows;
        a validation span that needs less is an easy stretch of a few seasons, not a sign the
        model is too unsure. Narrowing on it failed out of sample: airline's 14 validation
        origins set a scale of 0.51 and its test coverage fell from 0.82 to 0.41.
        """
        below = (point - target) / (point - lower).clamp(min=1e-6)
        above = (target - point) / (upper - point).clamp(min=1e-6)
        needed = torch.maximum(below, above).clamp(min=0).flatten(0, 1)  # (N * H, K)
        self.interval_scale.copy_(torch.quantile(needed, 0.8, dim=0).clamp(min=1.0))
        return self.interval_scale


def pinball(pred: Tensor, target: Tensor, levels: Tensor) -> Tensor:
    """Mean pinball (quantile) loss of `pred` (..., Q) at `levels` (Q,) for `target` (...)."""
    diff = target.unsqueeze(-1) - pred
    return torch.maximum(levels * diff, (levels - 1) * diff).mean()


def _interp_quantile(q: Tensor, levels: list[float], level: float) -> Tensor:
    """The `level` quantile from sorted quantiles `q` (..., Q), linear between given levels."""
    if level in levels:
        return q[..., levels.index(level)]
    upper = next((i for i, v in enumerate(levels) if v > level), len(levels) - 1)
    lower = max(upper - 1, 0)
    if upper == lower:
        return q[..., upper]
    w = (level - levels[lower]) / (levels[upper] - levels[lower])
    return q[..., lower] * (1 - w) + q[..., upper] * w
