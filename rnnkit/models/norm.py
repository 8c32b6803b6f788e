"""Normalisation of a recurrent layer's outputs over padded (B, T, F) sequences.

`RecurrentEncoder` applies one of these to each layer's output (`EncoderConfig.norm`), between
the fused recurrent kernels rather than inside the cell, so oneDNN's fused LSTM/GRU/RNN calls
stay in use; the recurrent state itself is never normalised.

- `GroupedLayerNorm`: layer normalisation (Ba et al., 2016) of every step on its own; padding
  cannot enter statistics taken over one step's features.
- `MaskedBatchNorm`: batch normalisation (Ioffe & Szegedy, 2015) whose statistics are taken over
  the real steps only.

Both also take (B, F), a single step (the language model's one-token path, the forecaster's
streaming step), and run in eval mode with no data-dependent Python branches, so export traces
them as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import ConfigError


def step_mask(lengths: Tensor, steps: int, device: torch.device) -> Tensor:
    """(B,) lengths -> (B, T, 1) bool, True at real steps (t < lengths[b])."""
    t = torch.arange(steps, device=device).unsqueeze(0)  # (1, T)
    return (t < lengths.to(device).unsqueeze(1)).unsqueeze(-1)


class GroupedLayerNorm(nn.Module):
    """Layer norm of each step's features, in `groups` contiguous blocks normalised apart.

    One group is `nn.LayerNorm(size)`. More serve a merged seed ensemble
    (`rnnkit.tasks.forecasting.ensemble`): its k members' features sit side by side, and each
    member's block must be normalised over its own features only to give the member's output.

    Args:
        size: F, features per step.
        groups: blocks; must divide `size`.
        eps: added to the variance, as in `nn.LayerNorm`.
    """

    def __init__(self, size: int, groups: int = 1, eps: float = 1e-5) -> None:
        super().__init__()
        if groups < 1 or size % groups:
            raise ConfigError(f"norm_groups must divide {size} features, got {groups}")
        self.size, self.groups, self.eps = size, groups, eps
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """(B, T, F) or (B, F) -> the same shape; `lengths` is not needed (stats are per step)."""
        del lengths
        if self.groups == 1:
            return F.layer_norm(x, (self.size,), self.weight, self.bias, self.eps)
        block = self.size // self.groups
        y = F.layer_norm(x.unflatten(-1, (self.groups, block)), (block,), eps=self.eps)
        return y.flatten(-2) * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"{self.size}, groups={self.groups}, eps={self.eps}"


class MaskedBatchNorm(nn.Module):
    """Batch norm per feature over the real steps of a padded batch; padding never enters.

    Written by hand because `nn.BatchNorm1d` takes its statistics over every position it is
    given, padding included, and has no mask: with length-bucketed padded batches its mean and
    variance would depend on how much padding a batch happened to carry (and on the unspecified
    values the encoder leaves at padded steps).

    Training: mean and (biased) variance per feature over the steps t < lengths[b] of every
    row normalise the batch; the running estimates move towards them by `momentum`, with the
    unbiased variance, as `nn.BatchNorm1d` does. Eval: the running estimates, as one per-feature
    scale and shift (no branch on the data, so it traces and exports). The output at padded steps
    is unspecified, like the encoder's.

    Args:
        size: F, features per step.
        momentum: weight of the batch in the running estimates; 0.1 as in `nn.BatchNorm1d`.
        eps: added to the variance.
    """

    def __init__(self, size: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.size, self.momentum, self.eps = size, momentum, eps
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))
        self.register_buffer("running_mean", torch.zeros(size))
        self.register_buffer("running_var", torch.ones(size))

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Normalise `x`.

        Args:
            x: (B, T, F) padded batch-first outputs, or (B, F) one step.
            lengths: (B,) true lengths in [1, T]; None means every step is real.

        Returns:
            The same shape as `x`.
        """
        if not self.training:
            scale = self.weight * torch.rsqrt(self.running_var + self.eps)  # (F,)
            shift = self.bias - self.running_mean * scale
            return x * scale.to(x.dtype) + shift.to(x.dtype)
        mean, var, count = self.batch_stats(x, lengths)
        with torch.no_grad():
            unbiased = var * count / (count - 1).clamp(min=1)
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(unbiased.detach(), self.momentum)
        scale = self.weight * torch.rsqrt(var + self.eps)
        return (x.float() * scale + (self.bias - mean * scale)).to(x.dtype)

    @staticmethod
    def batch_stats(x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Per-feature mean and biased variance over the real steps, in float32.

        Args:
            x: (B, T, F) or (B, F).
            lengths: (B,) true lengths, or None (all steps real).

        Returns:
            mean (F,), variance (F,) and the number of real steps they were taken over (a
            0-dim float tensor, so no device sync).
        """
        x = x.float()
        if x.dim() == 2:
            x = x.unsqueeze(1)  # (B, 1, F)
        flat = x.reshape(-1, x.size(-1))  # (B * T, F)
        if lengths is None:
            mean = flat.mean(0)
            return mean, (flat - mean).square().mean(0), flat.new_tensor(float(flat.size(0)))
        real = step_mask(lengths, x.size(1), x.device).reshape(-1, 1)  # (B * T, 1)
        count = real.sum().to(flat.dtype)
        # `where`, not a product: a padded step holding inf or NaN must not enter either.
        mean = torch.where(real, flat, 0.0).sum(0) / count
        var = torch.where(real, (flat - mean).square(), 0.0).sum(0) / count
        return mean, var, count

    def extra_repr(self) -> str:
        return f"{self.size}, momentum={self.momentum}, eps={self.eps}"


#: Output normalisations by name; `RecurrentEncoder` builds one per layer (None: no module).
NORMS: dict[str, type[nn.Module] | None] = {
    "none": None,
    "layer": GroupedLayerNorm,
    "batch": MaskedBatchNorm,
}


def get_norm(name: str) -> type[nn.Module] | None:
    """The module class for norm `name` (None for "none"); unknown names list the valid ones."""
    try:
        return NORMS[name]
    except KeyError:
        raise ConfigError(f"unknown norm {name!r}; choose one of: {', '.join(NORMS)}") from None


def build_norm(name: str, size: int, groups: int = 1) -> nn.Module | None:
    """The norm `name` over `size` features (`groups` blocks for layer norm), or None."""
    cls = get_norm(name)
    if cls is None:
        return None
    if cls is GroupedLayerNorm:
        return GroupedLayerNorm(size, groups)
    return cls(size)
