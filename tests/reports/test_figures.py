"""Plots are real, non-blank PNGs, drawn without pyplot and from several threads."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from rnnkit.reports.figures import plot_confusion, plot_loss

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

RECORDS = [
    {"epoch": 1, "train_loss": 0.6931, "val_loss": 0.6512, "val_accuracy": 0.61, "lr": 0.001},
    {"epoch": 2, "train_loss": 0.5123, "val_loss": 0.5377, "val_accuracy": 0.72, "lr": 0.001},
    {"epoch": 3, "train_loss": 0.4011, "val_loss": 0.5521, "val_accuracy": 0.74, "lr": 0.0005},
]


def assert_png(path: Path) -> np.ndarray:
    """The file is a PNG with visible content; returns its pixels (H, W, C) in [0, 1]."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels[..., :3].var() > 1e-3, "image is blank"
    # Atomic writes leave no temporary siblings behind.
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    return pixels


def test_plot_loss_writes_png(tmp_path: Path) -> None:
    out = plot_loss(RECORDS, tmp_path / "loss.png")
    assert out == tmp_path / "loss.png"
    assert_png(out)


def test_plot_loss_single_epoch(tmp_path: Path) -> None:
    assert_png(plot_loss(RECORDS[:1], tmp_path / "one.png"))


def test_plot_loss_missing_validation_values(tmp_path: Path) -> None:
    records = [
        {"epoch": 1, "train_loss": 0.7, "val_loss": None, "val_accuracy": None},
        {"epoch": 2, "train_loss": 0.6, "val_loss": 0.65, "val_accuracy": 0.6},
        {"epoch": 3, "train_loss": 0.5, "val_loss": float("nan")},
        {"epoch": 4, "train_loss": 0.4},
    ]
    assert_png(plot_loss(records, tmp_path / "gaps.png"))
    # No validation at all, and validation only.
    assert_png(plot_loss([{"epoch": 1, "train_loss": 1.0}], tmp_path / "train_only.png"))
    assert_png(plot_loss([{"val_loss": 1.0}, {"val_loss": 0.9}], tmp_path / "val_only.png"))


def test_plot_loss_many_epochs_and_wide_range(tmp_path: Path) -> None:
    records = [{"epoch": e, "train_loss": 50.0 / e, "val_mase": 1 / e} for e in range(1, 501)]
    assert_png(plot_loss(records, tmp_path / "many.png"))


def test_plot_loss_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="records is empty"):
        plot_loss([], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"no 'train_loss' or 'val_loss'.*\['epoch', 'lr'\]"):
        plot_loss([{"epoch": 1, "lr": 0.1}], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"epoch 1: 'train_loss' must be a number, got 'high'"):
        plot_loss([{"epoch": 1, "train_loss": "high"}], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"metric 'val_bleu' is in no record"):
        plot_loss(RECORDS, tmp_path / "x.png", metric="val_bleu")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion_writes_png(tmp_path: Path, normalize: bool) -> None:
    path = tmp_path / "cm.png"
    plot_confusion([[50, 3], [7, 40]], ["negative", "positive"], path, normalize=normalize)
    assert_png(path)


def test_plot_confusion_ten_classes_and_empty_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 30, size=(10, 10)) + np.diag(rng.integers(50, 100, size=10))
    cm[3] = 0  # a class with no test samples: percentages shown as a dash, not NaN
    names = [f"class with a long name {i}" for i in range(10)]
    assert_png(plot_confusion(cm.tolist(), names, tmp_path / "cm10.png"))


def test_plot_confusion_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"confusion is 2x2 but there are 3 classes"):
        plot_confusion([[1, 0], [0, 1]], ["a", "b", "c"], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"square"):
        plot_confusion([[1, 0, 2], [0, 1, 1]], ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"negative count"):
        plot_confusion([[1, -1], [0, 1]], ["a", "b"], tmp_path / "x.png")


def test_plots_render_from_several_threads(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            plot_loss(RECORDS, tmp_path / f"loss{i}.png")
            plot_confusion([[5, 1], [2, 9]], ["a", "b"], tmp_path / f"cm{i}.png")
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(2):
        assert_png(tmp_path / f"loss{i}.png")
        assert_png(tmp_path / f"cm{i}.png")


def test_report_module_does_not_use_pyplot(tmp_path: Path) -> None:
    # pyplot means global figure state and a display backend; the report must not pull it in.
    code = (
        "import sys; from rnnkit.reports.figures import plot_loss;"
        f"plot_loss([{{'train_loss': 1.0}}], {str(tmp_path / 'p.png')!r});"
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
