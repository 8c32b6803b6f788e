"""Plots are real, non-blank PNGs; report.md holds the numbers it was given."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from rnnkit.report import plot_confusion, plot_loss, write_report
from rnnkit.tasks.classification.metrics import classification_metrics

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
        "import sys; from rnnkit.report import plot_loss;"
        f"plot_loss([{{'train_loss': 1.0}}], {str(tmp_path / 'p.png')!r});"
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_write_report_contains_the_numbers(tmp_path: Path) -> None:
    y_true = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 1, 1, 0, 0, 1]
    metrics = classification_metrics(y_true, y_pred, ["neg", "pos"])
    summary = {
        "task": "classifier",
        "data": "rotten-tomatoes",
        "model": {"cell": "lstm", "hidden_size": 128},
        "epochs": 3,
        "time": "1m 12s",
        "note": "a|b",
    }
    path = write_report(
        tmp_path,
        title="LSTM on rotten-tomatoes",
        summary=summary,
        metrics=metrics,
        records=RECORDS,
        images={"loss": "loss.png", "confusion": str(tmp_path / "confusion.png")},
    )
    assert path == tmp_path / "report.md"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# LSTM on rotten-tomatoes\n")
    for row in [
        "| task | classifier |",
        "| data | rotten-tomatoes |",
        "| model | cell=lstm, hidden_size=128 |",
        "| epochs | 3 |",
        "| note | a\\|b |",  # a pipe inside a cell is escaped
        "| accuracy | 0.7 |",
        "| macro-F1 | 0.697 |",  # 23/33
        "| test samples | 10 |",
        "| neg | 0.6 | 0.75 | 0.6667 | 4 |",
        "| pos | 0.8 | 0.6667 | 0.7273 | 6 |",
        "| true \\ predicted | neg | pos |",
        "| **neg** | 3 | 1 |",
        "| **pos** | 2 | 4 |",
        "| epoch | train_loss | val_loss | val_accuracy | lr |",
        "| 3 | 0.4011 | 0.5521 | 0.74 | 0.0005 |",
        "![loss](loss.png)",
        "![confusion](confusion.png)",  # an absolute path inside the run folder becomes relative
    ]:
        assert row in text, row
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_report_without_metrics_or_epochs(tmp_path: Path) -> None:
    text = write_report(
        tmp_path / "new_run",
        title="t",
        summary={"task": "lm"},
        metrics=None,
        records=[],
        images={},
    ).read_text(encoding="utf-8")
    assert "No test metrics." in text
    assert "No epochs recorded." in text
    assert "## Plots" not in text


def test_write_report_generic_metrics_and_ragged_records(tmp_path: Path) -> None:
    records = [
        {"epoch": 1, "train_loss": 0.9},
        {"epoch": 2, "train_loss": 0.8, "val_loss": 0.85, "val_mase": 0.91},
    ]
    text = write_report(
        tmp_path,
        title="forecaster",
        summary={},
        metrics={"mase": 0.8765, "smape": 12.5},
        records=records,
        images={"forecast": "forecast plot.png"},
    ).read_text(encoding="utf-8")
    assert "| mase | 0.8765 |" in text
    assert "| smape | 12.5 |" in text
    assert "| epoch | train_loss | val_loss | val_mase |" in text
    assert "| 1 | 0.9 | — | — |" in text  # missing values are a dash, not "None"
    assert "![forecast](<forecast plot.png>)" in text
