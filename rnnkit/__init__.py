"""rnnkit: recurrent networks (RNN, LSTM, GRU) in PyTorch, from raw data to a served model.

    import rnnkit
    run = rnnkit.train("classification", "rotten-tomatoes", hidden_size=64, epochs=2)
    run.predict(["what a film"])
    rnnkit.load("runs/rt").predict([...])

Everything is imported on first use, so `import rnnkit` stays light.
"""

from __future__ import annotations

from typing import Any

from rnnkit.version import __version__

__all__ = [
    "ClassificationRunConfig",
    "ForecastingRunConfig",
    "LanguageModelRunConfig",
    "Run",
    "__version__",
    "distill",
    "evaluate",
    "load",
    "open_run",
    "train",
]

# public name -> the module that defines it (imported on first access)
_LAZY = {
    "Run": "rnnkit.run",
    "open_run": "rnnkit.run",
    "load": "rnnkit.runs",
    "evaluate": "rnnkit.runs",
    "train": "rnnkit.api",
    "distill": "rnnkit.api",
    "ClassificationRunConfig": "rnnkit.tasks.classification.config",
    "ForecastingRunConfig": "rnnkit.tasks.forecasting.config",
    "LanguageModelRunConfig": "rnnkit.tasks.language_model.config",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
