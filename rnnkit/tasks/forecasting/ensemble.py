"""An ensemble of forecasters folded into one wider forecaster with the same interface.

k forecasters trained apart (different seeds) are merged into a single `Forecaster` whose
encoder and head are k times wider and block-diagonal, so its output is exactly the mean of the
members' raw outputs::

    member i:  x ─► RNN_i (Hd) ─► [h_i, future] ─► Linear ─► GELU ─► Linear ─► params_i
    merged:    x ─► RNN (k Hd: each gate's recurrent matrix block-diagonal)
                 ─► [h_1 .. h_k, future] ─► Linear (k Hh, block per member) ─► GELU
                 ─► Linear (the members' last layers side by side, / k) ─► mean_i params_i

Averaging seeds is the plainest cure for a small series' seed-to-seed spread (deep ensembles,
Lakshminarayanan et al., 2017); averaging quantiles level by level is Vincentization (Ratcliff,
1979), which keeps the ensemble's quantiles ordered when the members' are. A Gaussian head's
scale is averaged before its softplus. The merged model is a plain `Forecaster` (one
`model.safetensors`, the usual tensor names, only wider), so prediction, streaming, export and
validation need nothing new; the zero blocks cost compute (k times the member's recurrent
multiply-adds instead of 1 time), which is why ensembles are the default only for short series.

Output norms (`model.norm`) merge too: batch norm acts per feature, so the merged one holds the
members' weights and running statistics side by side; layer norm takes its statistics over a
member's features, so the merged model's (`norm_groups` k) normalises each member's block apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor

from rnnkit.errors import ConfigError
from rnnkit.models.forecaster import Forecaster, ForecasterConfig

#: rows per hidden unit in each cell's stacked gate matrices (PyTorch's layout)
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


@torch.no_grad()
def merge_forecasters(members: Sequence[Forecaster]) -> Forecaster:
    """One `Forecaster` whose raw output is the mean of the members' raw outputs.

    Args:
        members: forecasters of one configuration (cell, sizes, layout, likelihood).

    Returns:
        A forecaster with `hidden_size` and `head_size` k times the members', in eval mode.
        Its `interval_scale` is 1: calibrate the ensemble itself, not its members.
    """
    if not members:
        raise ValueError("merge_forecasters needs at least one member")
    c = members[0].config
    if any(m.config != c for m in members):
        raise ValueError("ensemble members must share one configuration")
    k, hd, hh = len(members), c.hidden_size, c.head_size
    merged = Forecaster(merged_config(c, k)).eval()
    gates = GATES[c.cell]
    for layer, directions in enumerate(merged.encoder.layers):
        target = directions[0]
        for name, _ in target.named_parameters():
            parts = [getattr(m.encoder.layers[layer][0], name) for m in members]
            block_input = name.startswith("weight_hh") or (name.startswith("weight_ih") and layer)
            getattr(target, name).copy_(_stack_gates(parts, gates, hd, block_input))
        if c.norm != "none":  # per-feature tensors (weight, bias, running statistics)
            own = [m.encoder.norms[layer].state_dict() for m in members]
            for name, tensor in merged.encoder.norms[layer].state_dict().items():
                tensor.copy_(torch.cat([member[name] for member in own]))
    first = [m.head[1] for m in members]
    w1 = merged.head[1].weight  # (k Hh, k Hd + H Ff)
    w1.zero_()
    for i, lin in enumerate(first):
        rows = slice(i * hh, (i + 1) * hh)
        w1[rows, i * hd : (i + 1) * hd] = lin.weight[:, :hd]
        w1[rows, k * hd :] = lin.weight[:, hd:]
    merged.head[1].bias.copy_(torch.cat([lin.bias for lin in first]))
    last = [m.head[3] for m in members]
    merged.head[3].weight.copy_(torch.cat([lin.weight for lin in last], dim=1) / k)
    merged.head[3].bias.copy_(torch.stack([lin.bias for lin in last]).mean(0))
    merged.interval_scale.fill_(1.0)
    return merged


def merged_config(config: ForecasterConfig, k: int) -> ForecasterConfig:
    """The configuration of k members of `config` merged: k times as wide, k norm groups."""
    groups = k * config.norm_groups if config.norm == "layer" else config.norm_groups
    return replace(
        config,
        hidden_size=k * config.hidden_size,
        head_size=k * config.head_size,
        norm_groups=groups,
    )


def _stack_gates(parts: list[Tensor], gates: int, hd: int, block_input: bool) -> Tensor:
    """Member tensors (gates * Hd[, In]) -> the merged (gates * k Hd[, k In or In]).

    Within each gate the members' rows follow one another; with `block_input` (recurrent
    matrices, and input matrices above the first layer) member i reads only its own columns.
    """
    k = len(parts)
    by_gate = [p.view(gates, hd, *p.shape[1:]) for p in parts]  # (gates, Hd[, In])
    if parts[0].dim() == 1:
        return torch.cat(by_gate, dim=1).reshape(-1)
    width = parts[0].size(1)
    cols = k * width if block_input else width
    out = parts[0].new_zeros(gates, k * hd, cols)
    for i, p in enumerate(by_gate):
        rows = slice(i * hd, (i + 1) * hd)
        columns = slice(i * width, (i + 1) * width) if block_input else slice(0, width)
        out[:, rows, columns] = p
    return out.view(gates * k * hd, cols)


def member_count(windows: int, min_epoch_windows: int, requested: int | None) -> int:
    """Members to train: `requested`, or by default 5 when a series is short, else 1.

    Short means the training part makes fewer windows than one epoch holds
    (`min_epoch_windows`): those windows are cycled to fill the epoch anyway, so the data cannot
    tell seeds apart and their spread is widest, while each member costs only what one model
    on a mid-sized series does. On a long series one model sees enough windows that extra
    members buy little for k times the training and inference time.
    """
    if requested is not None:
        if requested < 1:
            raise ConfigError(
                f"ensemble must be at least 1 (or none for the default), got {requested}"
            )
        return requested
    return 5 if windows < min_epoch_windows else 1


__all__ = ["member_count", "merge_forecasters", "merged_config"]
