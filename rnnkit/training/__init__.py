"""The task-agnostic training engine: loop, precision, schedules, checkpoints."""

from rnnkit.training.engine import (
    Callback,
    EvalContext,
    FitResult,
    Objective,
    TrainConfig,
    TrainingError,
    TrainState,
    fit,
)

__all__ = [
    "Callback",
    "EvalContext",
    "FitResult",
    "Objective",
    "TrainConfig",
    "TrainState",
    "TrainingError",
    "fit",
]
