"""What a classifier run shows: its report (metrics, per class, confusion, plots) and, for pages
that gather several runs, its score against the majority class and a few example predictions.

`write_outputs` ends `train_classifier`: `test_metrics.json`, `loss.png`, `confusion.png`, and one
`Report` written as `report.md` and `report.html`. `baseline` and `showcase` are the spec's hooks
(`rnnkit.tasks.spec.TaskSpec`), called with a finished `rnnkit.run.Run`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnkit.reports.report import Figures, Image, Report, Section, Table
from rnnkit.run_folder import Files
from rnnkit.tasks.classification.config import TASK, ClassificationRunConfig
from rnnkit.tasks.classification.data import load_splits
from rnnkit.tasks.spec import BaselineScore

if TYPE_CHECKING:
    from rnnkit.models.classifier import ClassifierConfig
    from rnnkit.run import Run
    from rnnkit.training import FitResult

#: the validation metric drawn beside the loss (`loss.png`, `rnnkit compare`'s curves).
CURVE_METRIC = "val_accuracy"

#: `classification_metrics` keys -> how the metrics table names them, in the table's order.
_LABELS = {
    "accuracy": "accuracy",
    "macro_f1": "macro-F1",
    "ece": "expected calibration error",
    "n": "test samples",
}
#: keys shown as their own sections, not in the metrics table.
_TABLES = ("per_class", "confusion", "classes")

#: the longest test text shown as an example prediction (short ones read best in a table).
EXAMPLE_CHARS = 160


def metrics_table(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """`classification_metrics`' scalars, labelled: accuracy, macro-F1, ECE, n, then the rest."""
    table = {label: metrics[key] for key, label in _LABELS.items() if key in metrics}
    table.update({k: v for k, v in metrics.items() if k not in _LABELS and k not in _TABLES})
    return table


def metric_sections(metrics: Mapping[str, Any]) -> list[Section]:
    """Per-class precision/recall/F1/support and the confusion matrix, where `metrics` has them."""
    sections = []
    per_class = metrics.get("per_class")
    if per_class:
        rows = [
            [name, m.get("precision"), m.get("recall"), m.get("f1"), m.get("support")]
            for name, m in per_class.items()
        ]
        table = Table(["class", "precision", "recall", "F1", "support"], rows)
        sections.append(Section("Per class", [table]))
    confusion = metrics.get("confusion")
    if confusion:
        classes = list(
            metrics.get("classes") or per_class or [str(i) for i in range(len(confusion))]
        )
        rows = [[name, *row] for name, row in zip(classes, confusion, strict=False)]
        table = Table(["true \\ predicted", *classes], rows, row_headers=True)
        sections.append(Section("Confusion (rows = true, columns = predicted)", [table]))
    return sections


def build_report(
    title: str,
    summary: Mapping[str, Any],
    metrics: Mapping[str, Any] | None,
    records: Sequence[Mapping[str, Any]],
    images: Mapping[str, str],
) -> Report:
    """A classifier's `Report`: `classification_metrics`' result as a table and two sections."""
    return Report(
        title=title,
        summary=summary,
        metrics=metrics_table(metrics) if metrics is not None else None,
        sections=metric_sections(metrics) if metrics is not None else [],
        images=images,
        records=records,
    )


def write_outputs(
    run_dir: Path,
    config: ClassificationRunConfig,
    model_cfg: ClassifierConfig,
    result: FitResult,
    test_metrics: dict[str, Any],
    seconds: float,
    coverage: Any,
) -> None:
    """`test_metrics.json`, the loss and confusion plots, and `report.md` + `report.html`.

    Args:
        run_dir: the run folder.
        config: the run's config.
        model_cfg: the model's resolved config (vocabulary size filled in).
        result: what `fit` returned (records, best epoch, precision, device).
        test_metrics: `classification_metrics` on the test split.
        seconds: the run's wall time so far.
        coverage: the pretrained vectors' coverage of the vocabulary, or None.
    """
    from rnnkit.io import atomic_write_json
    from rnnkit.reports import write_report
    from rnnkit.reports.figures import plot_confusion, plot_loss

    run_dir = Path(run_dir)
    atomic_write_json(run_dir / Files.TEST_METRICS, test_metrics)
    loss = plot_loss(result.records, run_dir / Files.LOSS_PLOT, metric=CURVE_METRIC)
    confusion = plot_confusion(
        test_metrics["confusion"], test_metrics["classes"], run_dir / Files.CONFUSION_PLOT
    )
    summary = {
        "task": TASK,
        "data": config.data.data,
        "model": f"{'bi' if model_cfg.bidirectional else ''}{model_cfg.cell} "
        f"{model_cfg.num_layers}x{model_cfg.hidden_size}, {model_cfg.pooling} pooling",
        "embeddings": str(coverage) if coverage is not None else "random init",
        "epochs run": len(result.records),
        "best epoch": result.best_epoch,
        "precision": result.precision,
        "device": result.device,
        "time": f"{seconds:.1f} s",
    }
    images = {"loss": loss.name, "confusion": confusion.name}
    title = f"Classifier run {run_dir.name}"
    write_report(run_dir, build_report(title, summary, test_metrics, result.records, images))


# ----------------------------------------------------------------------- hooks for summary pages


def baseline(run: Run) -> list[BaselineScore]:
    """Test accuracy against always predicting the training split's most frequent class."""
    splits = load_splits(run.config.data)
    majority, _ = Counter(splits.train.labels).most_common(1)[0]
    test_labels = list(splits.test.labels)
    accuracy = sum(label == majority for label in test_labels) / len(test_labels)
    metrics = run.test_metrics() or run.evaluate()
    return [
        BaselineScore(
            "test accuracy",
            float(metrics["accuracy"]),
            accuracy,
            f"majority class ({majority})",
            higher_is_better=True,
        )
    ]


def showcase(run: Run, examples: int) -> list[Any]:
    """Up to `examples` short test texts with their predictions, the confusion and loss plots."""
    test = run.held_out().data
    # Short texts read best in a table; take the first ones of the (shuffled) test split.
    picked = [i for i, text in enumerate(test.texts) if len(text) <= EXAMPLE_CHARS][:examples]
    texts = [test.texts[i] for i in picked]
    predictions = run.predictor().predict(texts) if texts else []
    rows, marks = [], []
    for i, text, p in zip(picked, texts, predictions, strict=True):
        rows.append([text, test.labels[i], p["label"], p["probabilities"][p["label"]]])
        marks.append("good" if test.labels[i] == p["label"] else "bad")
    blocks: list[Any] = []
    if rows:
        header = ["text", "true", "predicted", "probability"]
        table = Table(header, rows, row_classes=marks)
        blocks.append(Section("Example predictions (test split)", [table]))
    blocks.append(
        Figures(
            [
                Image(Files.CONFUSION_PLOT, "confusion matrix", "test split"),
                Image(Files.LOSS_PLOT, "training curves"),
            ]
        )
    )
    return blocks
