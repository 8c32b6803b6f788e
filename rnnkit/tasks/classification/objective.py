"""The classifier's objective for `fit`: cross-entropy (mixed with a teacher's soft class
probabilities when distilling), and the metrics per epoch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.tasks.classification.metrics import classification_metrics
from rnnkit.training import Callback, EvalContext, TrainState
from rnnkit.training.distill import Teacher, soft_cross_entropy
from rnnkit.training.precision import eval_mode

logger = logging.getLogger(__name__)


class ClassificationObjective:
    """Cross-entropy loss; accuracy, macro-F1 and loss on evaluation.

    Args:
        classes: the label names, in id order.
        monitor: the validation metric that picks the best epoch.
        teacher: when distilling, the teacher whose temperature-softened class probabilities
            are mixed into the loss (`rnnkit.training.distill`).
    """

    def __init__(
        self, classes: Sequence[str], monitor: str = "accuracy", teacher: Teacher | None = None
    ) -> None:
        self.classes = list(classes)
        self.teacher = teacher
        self.monitor = monitor
        self.monitor_mode: Literal["max", "min"] = "min" if monitor == "loss" else "max"

    def compute_loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        logits = model(batch.ids, batch.lengths).float()  # (B, C)
        loss = F.cross_entropy(logits, batch.labels)
        teacher = self.teacher
        if teacher is None:
            return loss
        return teacher.mix(
            loss,
            lambda: soft_cross_entropy(
                logits, teacher(model, batch.ids, batch.lengths), teacher.temperature
            ),
        )

    def predict(
        self, model: torch.nn.Module, loader: Any, ctx: EvalContext
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (N, C) and true label ids (N,), in the loader's order."""
        probs, labels = [], []
        with eval_mode(model):
            for batch in loader:
                batch = batch.to(ctx.device)
                with ctx.precision.autocast():
                    logits = model(batch.ids, batch.lengths)
                probs.append(torch.softmax(logits.float(), dim=-1).cpu())
                labels.append(batch.labels.cpu())
        return torch.cat(probs).numpy(), torch.cat(labels).numpy()

    def evaluate(self, model: torch.nn.Module, loader: Any, ctx: EvalContext) -> dict[str, float]:
        probs, labels = self.predict(model, loader, ctx)
        picked = probs[np.arange(len(labels)), labels]
        metrics = classification_metrics(labels, probs.argmax(1), self.classes)
        return {
            "loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
        }


class UnfreezeEmbeddings(Callback):
    """Start fine-tuning frozen pretrained embeddings once `after` epochs are done."""

    def __init__(self, weight: torch.nn.Parameter, after: int) -> None:
        self.weight, self.after = weight, after

    def on_epoch_begin(self, state: TrainState) -> None:
        if state.epoch > self.after and not self.weight.requires_grad:
            logger.info("epoch %d: unfreezing the embeddings", state.epoch)
            self.weight.requires_grad_(True)
