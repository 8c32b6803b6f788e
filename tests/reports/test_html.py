"""report.html: self-contained (embedded images, no external URLs, no script), escaped."""

from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path

import pytest

from rnnkit import runs
from rnnkit.reports import Code, Report, Section, Text, write_report
from rnnkit.reports.figures import plot_loss
from rnnkit.reports.html import flatten, image, render_blocks, write_html
from rnnkit.tasks.classification.metrics import classification_metrics
from rnnkit.tasks.classification.report import build_report
from rnnkit.tasks.forecasting.report import backtest_table

RECORDS = [
    {"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "val_accuracy": 0.6},
    {"epoch": 2, "train_loss": 0.5, "val_loss": 0.55, "val_accuracy": 0.7},
]
EVIL = '<script>alert("x")</script>'


def embedded_images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def assert_self_contained(text: str) -> None:
    assert "<script" not in text.lower()
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched from elsewhere
    assert 'src="' not in text.replace('src="data:', "")  # every image is a data URI


def test_run_report_embeds_plots_and_escapes_data_and_config(tmp_path: Path) -> None:
    classes = [EVIL, "rotten & bad"]
    metrics = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0], classes)
    plot_loss(RECORDS, tmp_path / "loss.png")
    runs.write_config(tmp_path, "classification", {"config": {"data": {"data": EVIL}}})
    report = build_report(
        f"run {EVIL}", {"data": EVIL, "epochs": 2}, metrics, RECORDS, {"loss": "loss.png"}
    )
    extra = Section("Extra", [Text("trusted")])
    path = write_html(tmp_path, dataclasses.replace(report, sections=[*report.sections, extra]))
    text = path.read_text(encoding="utf-8")
    assert path == tmp_path / "report.html"
    assert_self_contained(text)
    assert EVIL not in text and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "rotten &amp; bad" in text
    assert embedded_images(text) == [(tmp_path / "loss.png").read_bytes()]
    # The sections a reader looks for: metrics, per class, confusion, epochs, the config keys.
    for heading in ("Test metrics", "Per class", "Confusion", "Training", "Config", "Extra"):
        assert heading in text
    assert "config.data.data" not in text and "data.data" in text  # dotted --set keys
    assert "<p>trusted</p>" in text


def test_missing_image_is_noted_not_fatal_and_unknown_types_refused(tmp_path: Path) -> None:
    path = write_html(tmp_path, Report(title="t", images={"loss": "gone.png"}))
    text = path.read_text(encoding="utf-8")
    assert "gone.png is missing" in text and "No epochs recorded" in text
    assert "Test metrics" not in text  # metrics=None leaves the section out
    with pytest.raises(ValueError, match=r"\.gif"):
        image(tmp_path / "x.gif", "x")


def test_backtest_table_and_flatten() -> None:
    backtest = {
        "model": {"mae": 1.0, "mase": 0.5, "coverage": 0.8},
        "seasonal_naive": {"mae": 2.0, "mase": 1.0},
    }
    text = render_blocks([backtest_table(backtest)])
    assert text.count("<tr") == 3 and "MASE" in text and "—" in text  # naive has no coverage
    assert flatten({"a": {"b": 1, "c": {"d": None}}, "e": {}}) == [
        ("a.b", 1),
        ("a.c.d", None),
        ("e", {}),
    ]


def test_every_task_writes_report_html(tiny_quickstart) -> None:
    """The classifier, forecaster and language-model pipelines each leave a report.html."""
    expected = {"sentiment": "confusion", "airline": "forecast vs actual", "shakespeare": "Sample"}
    for stage, marker in expected.items():
        text = (tiny_quickstart.runs[stage] / "report.html").read_text(encoding="utf-8")
        assert_self_contained(text)
        assert marker in text
        assert len(embedded_images(text)) >= 1
        assert (tiny_quickstart.runs[stage] / "report.md").is_file()


def test_one_report_value_gives_both_files_with_the_same_content(tmp_path: Path) -> None:
    sample = "ROMEO: <b>soft</b> & light"
    report = Report(
        title="lm",
        metrics={"bits_per_char": 2.5},
        sections=[Section("Sample (temperature 0.8)", [Code(sample)])],
        records=RECORDS,
    )
    markdown, page = write_report(tmp_path, report)
    md, html_text = markdown.read_text(encoding="utf-8"), page.read_text(encoding="utf-8")
    assert (markdown.name, page.name) == ("report.md", "report.html")
    assert f"```\n{sample}\n```" in md and "| bits_per_char | 2.5 |" in md
    assert "<pre>ROMEO: &lt;b&gt;soft&lt;/b&gt; &amp; light</pre>" in html_text
    for heading in ("Sample (temperature 0.8)", "Test metrics", "Training"):
        assert heading in md and heading in html_text
    assert_self_contained(html_text)
