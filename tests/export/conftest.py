"""Tiny trained runs for the export tests, one per task and cell, trained once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit.config import apply_overrides

TASKS = ("classification", "language-model", "forecasting")
CELLS = ("lstm", "gru", "rnn")

GOOD = ["a wonderful film", "great acting and a great story", "loved it", "superb and moving"]
BAD = ["a dull film", "terrible acting and a boring story", "hated it", "awful and tedious"]
VERSE = "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east.\n\n"


def _reviews(path: Path, n: int = 60) -> Path:
    rng = np.random.default_rng(0)
    lines = ["review,stars"]
    for i in range(n):
        good = i % 2 == 0
        words = rng.choice(GOOD if good else BAD, size=2)
        lines.append(f'"{" and ".join(words)}",{"pos" if good else "neg"}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _sales(path: Path, days: int = 70) -> Path:
    rng = np.random.default_rng(0)
    rows = ["day,shop,sales,visits"]
    times = pd.date_range("2021-01-04", periods=days, freq="D")
    for shop, level in (("north", 100.0), ("south", 20.0)):
        for i, t in enumerate(times):
            sales = level * (1 + 0.5 * np.sin(2 * np.pi * i / 7)) + rng.normal(0, level * 0.03)
            rows.append(f"{t.date()},{shop},{sales:.3f},{sales / 2 + rng.normal():.3f}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def train_tiny(task: str, cell: str, root: Path) -> Path:
    """A one-epoch run of `task` with `cell`; LSTMs get two layers (multi-layer paths)."""
    run = root / f"{task}-{cell}"
    layers = "2" if cell == "lstm" else "1"
    common = [f"model.cell={cell}", f"model.num_layers={layers}", "train.device=cpu"]
    if task == "classification":
        from rnnkit.tasks.classification.pipeline import ClassificationRunConfig, train_classifier

        data = _reviews(root / "reviews.csv")
        config = apply_overrides(
            ClassificationRunConfig(),
            [
                *common,
                f"data.data={data}",
                "data.text_column=review",
                "data.label_column=stars",
                "data.min_freq=1",
                "data.validation=0.2",
                "data.test=0.2",
                "model.hidden_size=8",
                "model.embedding_dim=8",
                f"model.pooling={ {'lstm': 'max', 'gru': 'last', 'rnn': 'mean'}[cell] }",
                "embeddings.vectors=none",
                "train.epochs=1",
                "train.batch_size=16",
                "train.precision=fp32",
            ],
        )
        train_classifier(config, run)
    elif task == "language-model":
        from rnnkit.tasks.language_model.pipeline import LanguageModelRunConfig, train_lm

        data = root / "verse.txt"
        data.write_text(VERSE * 8, encoding="utf-8")
        config = apply_overrides(
            LanguageModelRunConfig(),
            [
                *common,
                f"data.data={data}",
                "data.bptt=12",
                "data.eval_batch_size=2",
                "model.embedding_dim=8",
                "model.hidden_size=16",
                "train.epochs=1",
                "train.max_minutes=none",
                "train.batch_size=4",
                "sample.max_tokens=4",
            ],
        )
        train_lm(config, run)
    else:
        from rnnkit.tasks.forecasting.pipeline import ForecastingRunConfig, train_forecaster

        data = _sales(root / "sales.csv")
        config = apply_overrides(
            ForecastingRunConfig(),
            [
                *common,
                f"data.data={data}",
                "data.time_column=day",
                "data.target_columns=sales",
                "data.series_column=shop",
                "data.covariates=visits",
                "window.horizon=7",
                "window.input_length=14",
                "window.min_epoch_windows=32",
                "model.hidden_size=8",
                "model.head_size=16",
                "train.epochs=1",
                "train.batch_size=32",
            ],
        )
        train_forecaster(config, run)
    return run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """`tiny_run(task, cell) -> run folder`, each trained once per session."""
    root = tmp_path_factory.mktemp("export-runs")
    cache: dict[tuple[str, str], Path] = {}

    def get(task: str, cell: str) -> Path:
        if (task, cell) not in cache:
            folder = root / f"{task}-{cell}-data"
            folder.mkdir()
            cache[task, cell] = train_tiny(task, cell, folder)
        return cache[task, cell]

    return get
