"""Learning-rate schedules as pure functions of the step, so resuming needs only the step count.

- `onecycle`: linear warm-up to the peak, then cosine decay to peak/1e4 (Smith & Topin, 2018);
  fast, forgiving training for RNNs from scratch.
- `cosine`: a short warm-up, then cosine decay to zero (Loshchilov & Hutter, 2017).
- `constant`: the peak throughout.
"""

from __future__ import annotations

import math

from rnnkit.errors import ConfigError

SCHEDULES = ("onecycle", "cosine", "constant")


def lr_factor(schedule: str, step: int, total_steps: int, warmup_fraction: float) -> float:
    """The multiplier on the peak learning rate at `step` (0-based) of `total_steps`."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if schedule == "constant" or total_steps <= 1:
        return 1.0
    warmup = max(1, int(total_steps * warmup_fraction)) if warmup_fraction > 0 else 0
    if step < warmup:
        start = 0.04 if schedule == "onecycle" else 0.0  # onecycle starts at peak/25
        return start + (1.0 - start) * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    floor = 1e-4 if schedule == "onecycle" else 0.0
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
