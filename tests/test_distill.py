"""`rnnkit distill`: a student of each task's tiny run, end to end through the CLI.

The student is an ordinary run folder (it loads, predicts and exports), reads text with its
teacher's tokenizer, keeps its teacher's data and split, and with `--alpha 0` is exactly the
same student trained without a teacher: the honest reference a distilled student must beat.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import rnnkit
from rnnkit.cli.commands import main
from rnnkit.run import Run

sys.path.insert(0, str(Path(__file__).parent))  # pytest runs with --import-mode=importlib
import tiny_runs


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("distill")


@pytest.fixture(scope="module")
def teachers(root: Path) -> dict[str, Path]:
    return {task: tiny_runs.train(task, root) for task in tiny_runs.TASKS}


@pytest.mark.parametrize("task", tiny_runs.TASKS)
def test_student_round_trip(task: str, teachers: dict[str, Path], root: Path, capsys) -> None:
    teacher = teachers[task]
    out = root / f"{task}-student"
    assert main(["distill", str(teacher), "--out", str(out), "--epochs", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"run folder: {out}" in printed and "teacher" in printed
    student, t = Run(out), Run(teacher)
    assert student.task.name == t.task.name == task
    c = student.config
    assert (c.model.cell, c.model.num_layers) == ("gru", 1)
    assert c.model.hidden_size == max(8, t.config.model.hidden_size // 2)
    assert c.distill.teacher == str(teacher)
    assert c.data == t.config.data  # the teacher's data and split
    if task != "forecasting":  # the teacher's tokenizer, byte for byte
        assert (out / "tokenizer.json").read_bytes() == (teacher / "tokenizer.json").read_bytes()
    predictor = rnnkit.load(out)
    values = tiny_runs.outputs(task, predictor, out)
    assert np.isfinite(values).all()


def test_student_exports(teachers: dict[str, Path], root: Path) -> None:
    out = root / "export-student"
    assert main(["distill", str(teachers["classification"]), "--out", str(out), "--quiet"]) == 0
    assert main(["export", str(out), "--out", str(out / "onnx")]) == 0
    assert (out / "onnx" / "model.onnx").is_file() and (out / "onnx" / "parity.json").is_file()


def test_alpha_zero_is_the_same_student_without_a_teacher(teachers: dict[str, Path], root: Path):
    teacher = teachers["classification"]
    rnnkit.distill(teacher, root / "alpha0", alpha=0.0, hidden_size=6, epochs=2)
    config = {"distill.teacher": "", "transfer.init_from": None}
    run = Run(teacher)
    options = {"model.cell": "gru", "model.hidden_size": 6, "model.num_layers": 1}
    from rnnkit.api import nest_flat
    from rnnkit.config import apply_overrides
    from rnnkit.runs import nest_overrides

    plain = apply_overrides(run.config, nest_overrides({**config, **options, "train.epochs": 2}))
    run.task.train(plain, root / "scratch")
    a = load_file(root / "alpha0" / "model.safetensors")
    b = load_file(root / "scratch" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert nest_flat({"a": {"b": 1}}) == {"a.b": 1}


def test_distilled_student_keeps_the_teachers_accuracy(root: Path) -> None:
    """On a task the teacher learns fully, the half-width student stays within 0.1 of it."""
    data = tiny_runs.reviews(root / "more-reviews.csv", n=240)
    teacher = tiny_runs.train(
        "classification", root / "accurate", data=data, **{"train.epochs": "8"}
    )
    t_acc = Run(teacher).test_metrics()["accuracy"]
    assert t_acc >= 0.9  # the teacher must have learnt the task for the comparison to mean much
    student = rnnkit.distill(teacher, root / "accurate-student", epochs=8)
    assert student.test_metrics()["accuracy"] >= t_acc - 0.1


def test_forecasting_teacher_with_another_horizon_is_refused(
    teachers: dict[str, Path], root: Path, capsys
) -> None:
    out = root / "bad-horizon"
    argv = ["distill", str(teachers["forecasting"]), "--out", str(out), "--quiet"]
    assert main([*argv, "--set", "window.horizon=3"]) == 2
    err = capsys.readouterr().err
    assert "horizon 6, the student 3" in err and "Traceback" not in err


def test_a_teacher_of_another_task_is_refused(teachers: dict[str, Path], root: Path, capsys):
    out = root / "wrong-task"
    data = root / "reviews.csv"
    argv = ["train", "classifier", "--data", str(data), "--out", str(out), "--quiet"]
    assert main([*argv, "--set", f"distill.teacher={teachers['language-model']}"]) == 2
    err = capsys.readouterr().err
    assert "distill needs a classification run" in err and "language-model" in err


def test_language_model_resume_carries_the_teachers_state_too() -> None:
    from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
    from rnnkit.tasks.language_model.batches import LMBatch
    from rnnkit.tasks.language_model.objective import LanguageModelObjective
    from rnnkit.training.distill import DistillConfig, Teacher

    def lm(hidden: int) -> LanguageModel:
        cfg = LanguageModelConfig(vocab_size=11, embedding_dim=4, hidden_size=hidden)
        return LanguageModel(cfg)

    torch.manual_seed(0)
    student, teacher = lm(6), lm(10)
    objective = LanguageModelObjective(teacher=Teacher(teacher, DistillConfig(teacher="t")))
    ids = torch.randint(0, 11, (2, 9))
    batch = LMBatch(ids[:, :-1], ids[:, 1:], first=True)
    objective.compute_loss(student, batch).backward()
    carried = objective.carried_state()
    assert {"h", "c", "teacher_h", "teacher_c"} <= carried.keys()
    assert carried["teacher_h"].shape[-1] == 10 and carried["h"].shape[-1] == 6
    again = LanguageModelObjective(teacher=Teacher(teacher, DistillConfig(teacher="t")))
    again.load_carried_state(carried)
    assert torch.equal(again.teacher_state[0], objective.teacher_state[0])
    assert torch.equal(again.state[1], objective.state[1])


def test_language_model_student_from_a_stored_teacher(
    teachers: dict[str, Path], root: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`--top-k`: the teacher reads the text once; no student step runs it again."""
    from rnnkit.models.language_model import LanguageModel

    calls: list[int] = []
    forward = LanguageModel.forward

    def counted(self: LanguageModel, *args, **kwargs):
        calls.append(self.config.hidden_size)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(LanguageModel, "forward", counted)
    teacher = teachers["language-model"]
    width = Run(teacher).config.model.hidden_size
    out = root / "stored-lm"
    argv = ["distill", str(teacher), "--out", str(out), "--top-k", "4", "--hidden-size", "6"]
    assert main([*argv, "--epochs", "1", "--quiet"]) == 0
    student = Run(out)
    assert student.config.distill.top_k == 4
    assert np.isfinite(student.test_metrics()["loss"])
    assert width != 6
    # the teacher's calls are its one pass over the text: a tiny corpus is one or two windows
    # of 256 steps per row; a live teacher would have been called once per student step too
    student_steps = calls.count(6)
    assert 1 <= calls.count(width) <= 2 < student_steps, calls


def test_stored_teacher_is_refused_for_a_classifier(teachers: dict[str, Path], root: Path, capsys):
    teacher = str(teachers["classification"])
    assert main(["distill", teacher, "--out", str(root / "no-top-k"), "--top-k", "4"]) == 2
    err = capsys.readouterr().err
    assert "distill.top_k" in err and "classifier" in err and "Traceback" not in err
