"""Knowledge distillation: a frozen teacher's outputs as soft targets for a smaller student.

Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (2015): the student is
trained on a mix of the true targets and the teacher's temperature-softened outputs,

    loss = (1 - alpha) * loss(student, truth) + alpha * soft(student, teacher)

where, for distributions, `soft` is the KL divergence between the teacher's and the student's
softmax at temperature T, times T^2 so its gradients keep their scale as T changes. A task's
objective asks its `Teacher` for outputs on the same batch and mixes the two losses; which
outputs are soft targets (class probabilities, next-token distributions, forecast quantiles)
is the task's knowledge, in its own objective. This module knows no task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import ConfigError
from rnnkit.models.encoder import State, state_from_tensors, state_tensors

#: the most next-token candidates kept per position by a stored teacher (`DistillConfig.top_k`)
MAX_TOP_K = 4096


@dataclass(frozen=True)
class DistillConfig:
    """Where the soft targets come from, and how much they weigh.

    Attributes:
        teacher: the teacher's run folder; empty trains on the true targets only.
        temperature: softens the teacher's distributions so the student sees which wrong
            answers are nearly right; 2 is the usual middle ground (Hinton et al. use 1-20).
        alpha: the soft loss's share of the total; 0.5 keeps the truth and the teacher equal,
            0 is training from scratch (the reference a distilled student must beat).
        top_k: 0 runs the teacher beside the student at every step. k > 0 (language models
            only) runs it once over the training text before training and keeps each
            position's k most likely next tokens: a distilled step then costs about what a
            step from scratch costs, so under a time budget the student reads nearly as much
            text as without a teacher (the live teacher's forward costs more than a small
            student's step). The soft loss is then the KL from the teacher's distribution
            renormalised over its k tokens; k equal to the vocabulary is the full
            distribution.
    """

    teacher: str = ""
    temperature: float = 2.0
    alpha: float = 0.5
    top_k: int = 0

    def __post_init__(self) -> None:
        if not 0.05 <= self.temperature <= 100.0:
            raise ConfigError(f"distill.temperature must be in [0.05, 100], got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"distill.alpha must be in [0, 1], got {self.alpha}")
        if not 0 <= self.top_k <= MAX_TOP_K:
            raise ConfigError(
                f"distill.top_k must be in [0, {MAX_TOP_K}] (0 = the teacher at every step), "
                f"got {self.top_k}"
            )


class Teacher:
    """A frozen model called under `no_grad`, in eval mode, on the student's device.

    It is kept apart from the student (not a submodule), so the optimizer, the checkpoint and
    the saved weights never see it.

    Args:
        model: the trained teacher.
        config: temperature and weight of the soft loss.
    """

    def __init__(self, model: nn.Module, config: DistillConfig) -> None:
        self.model = model.eval().requires_grad_(False)
        self.temperature = config.temperature
        self.alpha = config.alpha

    def beside(self, student: nn.Module) -> nn.Module:
        """The teacher's module on the student's device (moved there on first use)."""
        device = next(student.parameters()).device
        if next(self.model.parameters()).device != device:
            self.model.to(device)
        return self.model

    def __call__(self, student: nn.Module, *args: Any, **kwargs: Any) -> Any:
        """The teacher's outputs on the student's inputs, without a graph."""
        with torch.no_grad():
            return self.beside(student)(*args, **kwargs)

    def mix(self, hard: Tensor, soft: Callable[[], Tensor]) -> Tensor:
        """`(1 - alpha) * hard + alpha * soft()`; `soft` is not computed when alpha is 0."""
        if self.alpha == 0.0:
            return hard
        return (1.0 - self.alpha) * hard + self.alpha * soft()


def require_live(config: DistillConfig, task: str) -> None:
    """Refuse `distill.top_k` for a task whose teacher can only run beside its student.

    Raises:
        ConfigError: `config.top_k` is set.
    """
    if config.top_k:
        raise ConfigError(
            f"distill.top_k stores a language model's next-token outputs; a {task} teacher "
            "runs beside each step: set distill.top_k=0"
        )


def soft_cross_entropy(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float
) -> Tensor:
    """KL(teacher || student) at `temperature`, times temperature^2, averaged over rows.

    Args:
        student_logits: (N, C) unnormalised scores (any leading shape, flattened to rows).
        teacher_logits: the teacher's, same shape.
        temperature: T; the softmax of logits / T is the distribution compared.

    Returns:
        A scalar; zero when the two distributions agree.
    """
    classes = student_logits.size(-1)
    s = F.log_softmax(student_logits.float().reshape(-1, classes) / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.float().reshape(-1, classes) / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature**2


def sparse_soft_cross_entropy(
    student_logits: Tensor, teacher_log_probs: Tensor, indices: Tensor, temperature: float
) -> Tensor:
    """KL(teacher || student) x temperature^2 from the teacher's k most likely classes only.

    The teacher's distribution at `temperature`, kept on its top k classes and renormalised
    there, against the student's full softmax at the same temperature; with k equal to the
    number of classes it is `soft_cross_entropy`.

    Args:
        student_logits: (..., C) unnormalised scores.
        teacher_log_probs: (..., k) the teacher's log-probabilities at `temperature` of the
            classes in `indices` (any float dtype; renormalised here).
        indices: (..., k) class ids.
        temperature: T, as the teacher's log-probabilities were computed with.

    Returns:
        A scalar averaged over rows; zero when the student's distribution is the teacher's
        renormalised one.
    """
    classes, k = student_logits.size(-1), indices.size(-1)
    s = F.log_softmax(student_logits.float().reshape(-1, classes) / temperature, dim=-1)
    s = s.gather(1, indices.reshape(-1, k).long())
    t = F.log_softmax(teacher_log_probs.float().reshape(-1, k), dim=-1)  # renormalised over k
    return (t.exp() * (t - s)).sum(-1).mean() * temperature**2


#: prefix of the teacher's carried state among a checkpoint's objective tensors
TEACHER_PREFIX = "teacher_"


def carried_tensors(state: State | None, teacher_state: State | None) -> dict[str, Tensor]:
    """The student's and the teacher's carried states as one dict, for a checkpoint."""
    teacher = {TEACHER_PREFIX + k: v for k, v in state_tensors(teacher_state).items()}
    return {**state_tensors(state), **teacher}


def split_carried(tensors: dict[str, Tensor]) -> tuple[State | None, State | None]:
    """The inverse of `carried_tensors`: (student's state, teacher's state)."""
    student = {k: v for k, v in tensors.items() if not k.startswith(TEACHER_PREFIX)}
    teacher = {
        k.removeprefix(TEACHER_PREFIX): v
        for k, v in tensors.items()
        if k.startswith(TEACHER_PREFIX)
    }
    return state_from_tensors(student), state_from_tensors(teacher)
