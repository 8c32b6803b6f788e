"""The distillation building blocks: the soft loss, its mix with the hard loss, the teacher."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnkit.errors import ConfigError
from rnnkit.training.distill import DistillConfig, Teacher, soft_cross_entropy


def test_soft_cross_entropy_is_kl_at_temperature_times_t_squared() -> None:
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    t = 3.0
    p = torch.softmax(teacher / t, -1)
    kl = (p * (p.log() - torch.log_softmax(student / t, -1))).sum(-1).mean()
    assert soft_cross_entropy(student, teacher, t).item() == pytest.approx(kl.item() * 9, rel=1e-5)
    assert soft_cross_entropy(teacher, teacher, t).item() == pytest.approx(0.0, abs=1e-6)


def test_soft_cross_entropy_flattens_leading_axes() -> None:
    g = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    flat = soft_cross_entropy(student.reshape(6, 4), teacher.reshape(6, 4), 2.0)
    assert soft_cross_entropy(student, teacher, 2.0).item() == pytest.approx(flat.item())


def test_soft_loss_pulls_the_student_towards_the_teacher() -> None:
    student = torch.zeros(1, 3, requires_grad=True)
    teacher = torch.tensor([[4.0, 0.0, 0.0]])
    soft_cross_entropy(student, teacher, 2.0).backward()
    assert student.grad[0, 0] < 0 < student.grad[0, 1]  # descent raises the teacher's class


def test_mix_weighs_truth_and_teacher_and_skips_the_soft_loss_at_alpha_zero() -> None:
    model = nn.Linear(2, 2)
    hard = torch.tensor(2.0)
    half = Teacher(model, DistillConfig(teacher="t", alpha=0.25))
    assert half.mix(hard, lambda: torch.tensor(6.0)).item() == pytest.approx(0.75 * 2 + 0.25 * 6)

    def never() -> torch.Tensor:
        raise AssertionError("alpha 0 must not compute the soft loss")

    assert Teacher(model, DistillConfig(teacher="t", alpha=0.0)).mix(hard, never) is hard


def test_teacher_is_frozen_and_builds_no_graph() -> None:
    teacher_model, student = nn.Linear(3, 2), nn.Linear(3, 2)
    teacher = Teacher(teacher_model.train(), DistillConfig(teacher="t"))
    out = teacher(student, torch.ones(4, 3))
    assert not teacher_model.training and not out.requires_grad
    assert all(not p.requires_grad for p in teacher_model.parameters())


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [("temperature", 0.0, "distill.temperature"), ("alpha", 1.5, "distill.alpha")],
)
def test_config_bounds_name_the_key(key: str, value: float, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        DistillConfig(**{key: value})


def test_sparse_soft_cross_entropy_with_every_class_is_the_full_kl() -> None:
    from rnnkit.training.distill import sparse_soft_cross_entropy

    torch.manual_seed(0)
    student, teacher = torch.randn(3, 5, 7), torch.randn(3, 5, 7)
    t = 2.0
    log_probs, ids = torch.log_softmax(teacher / t, -1).topk(7, -1)
    sparse = sparse_soft_cross_entropy(student, log_probs.half(), ids, t)
    full = soft_cross_entropy(student.reshape(-1, 7), teacher.reshape(-1, 7), t)
    assert torch.allclose(sparse, full, atol=1e-3)


def test_sparse_soft_cross_entropy_renormalises_the_kept_classes() -> None:
    from rnnkit.training.distill import sparse_soft_cross_entropy

    # the student puts exactly the teacher's renormalised top-2 mass on those 2 classes
    teacher = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    log_probs, ids = teacher.topk(2, -1)
    student = torch.log(torch.tensor([[0.625, 0.375, 1e-30]]))
    assert float(sparse_soft_cross_entropy(student, log_probs, ids, 1.0)) < 1e-6
    other = torch.log(torch.tensor([[0.375, 0.625, 1e-30]]))
    assert float(sparse_soft_cross_entropy(other, log_probs, ids, 1.0)) > 0.05


def test_top_k_bounds_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"distill\.top_k"):
        DistillConfig(top_k=-1)
