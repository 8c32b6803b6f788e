"""The classifier's report pieces: labelled metrics, per-class and confusion sections."""

from __future__ import annotations

from rnnkit.reports.report import Table
from rnnkit.tasks.classification.metrics import classification_metrics
from rnnkit.tasks.classification.report import build_report, metric_sections, metrics_table


def test_metrics_are_labelled_headline_first_and_tables_become_sections() -> None:
    metrics = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0], ["neg", "pos"])
    table = metrics_table({"data": "test", **metrics})
    assert list(table)[:3] == ["accuracy", "macro-F1", "test samples"]
    assert "data" in table and not {"per_class", "confusion", "classes"} & set(table)
    per_class, confusion = metric_sections(metrics)
    assert per_class.heading == "Per class" and confusion.heading.startswith("Confusion")
    (matrix,) = confusion.blocks
    assert isinstance(matrix, Table) and matrix.row_headers
    assert [list(row) for row in matrix.rows] == [["neg", 2, 0], ["pos", 1, 1]]


def test_a_run_without_test_metrics_has_no_metric_sections() -> None:
    report = build_report("t", {}, None, [], {})
    assert report.metrics is None and not report.sections
