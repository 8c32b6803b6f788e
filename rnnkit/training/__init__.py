"""The task-agnostic training engine: loop, precision, schedules, checkpoints."""

from rnnkit.training.engine import (
    Callback,
    EvalContext,
    FitResult,
    Task,
    TrainConfig,
    TrainingError,
    TrainState,
    fit,
)

__all__ = [
    "Callback",
    "EvalContext",
    "FitResult",
    "Task",
    "TrainConfig",
    "TrainState",
    "TrainingError",
    "fit",
]
