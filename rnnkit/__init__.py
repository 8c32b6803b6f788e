"""rnnkit: recurrent networks (RNN, LSTM, GRU) in PyTorch, from raw data to a served model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(path: str | Path, device: str = "cpu") -> Any:
    """Rebuild the predictor stored in a run folder; see `rnnkit.runs.load`."""
    from rnnkit.runs import load as _load

    return _load(path, device)
