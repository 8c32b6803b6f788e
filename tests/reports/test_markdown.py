"""report.md holds the numbers it was given, escaped for Markdown tables."""

from __future__ import annotations

from pathlib import Path

from rnnkit.reports.markdown import render_markdown, write_markdown
from rnnkit.reports.report import Code, Report, Section, Table, Text
from rnnkit.tasks.classification.metrics import classification_metrics
from rnnkit.tasks.classification.report import build_report

RECORDS = [
    {"epoch": 1, "train_loss": 0.6931, "val_loss": 0.6512, "val_accuracy": 0.61, "lr": 0.001},
    {"epoch": 2, "train_loss": 0.5123, "val_loss": 0.5377, "val_accuracy": 0.72, "lr": 0.001},
    {"epoch": 3, "train_loss": 0.4011, "val_loss": 0.5521, "val_accuracy": 0.74, "lr": 0.0005},
]


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
    report = build_report(
        "LSTM on rotten-tomatoes",
        summary,
        metrics,
        RECORDS,
        {"loss": "loss.png", "confusion": str(tmp_path / "confusion.png")},
    )
    path = write_markdown(tmp_path, report)
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
    report = Report(title="t", summary={"task": "lm"}, metrics=None, records=[], images={})
    text = write_markdown(tmp_path / "new_run", report).read_text(encoding="utf-8")
    assert "No test metrics." in text
    assert "No epochs recorded." in text
    assert "## Plots" not in text


def test_write_report_generic_metrics_and_ragged_records(tmp_path: Path) -> None:
    records = [
        {"epoch": 1, "train_loss": 0.9},
        {"epoch": 2, "train_loss": 0.8, "val_loss": 0.85, "val_mase": 0.91},
    ]
    report = Report(
        title="forecaster",
        summary={},
        metrics={"mase": 0.8765, "smape": 12.5},
        records=records,
        images={"forecast": "forecast plot.png"},
    )
    text = write_markdown(tmp_path, report).read_text(encoding="utf-8")
    assert "| mase | 0.8765 |" in text
    assert "| smape | 12.5 |" in text
    assert "| epoch | train_loss | val_loss | val_mase |" in text
    assert "| 1 | 0.9 | — | — |" in text  # missing values are a dash, not "None"
    assert "![forecast](<forecast plot.png>)" in text


def test_sections_nest_and_code_keeps_its_backticks(tmp_path: Path) -> None:
    sample = "a ``` fence inside\nand a | pipe"
    report = Report(
        title="t",
        sections=[
            Section("Sample", [Code(sample), Section("Inner", [Text("words")])]),
            Section("Table", [Table(["a", "b"], [[1, None]])]),
        ],
    )
    text = render_markdown(report, tmp_path)
    assert "## Sample\n\n````\na ``` fence inside\nand a | pipe\n````\n" in text
    assert "### Inner\n\nwords\n" in text
    assert "| 1 | — |" in text
    # the task's sections come after the metrics and before the training table
    assert text.index("## Test metrics") < text.index("## Sample") < text.index("## Training")
