"""Tiny trained run folders of each task, trained once per test session (a few seconds each).

Used by tests/test_fuzz_run_folders.py and tests/test_hardening.py; `reference(task, run)` gives
the outputs an undamaged folder produces, which a damaged one must either reproduce (finite and
unchanged) or refuse with rnnkit's own one-line error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnkit.config import apply_overrides

TASKS = ("classification", "language-model", "forecasting")
GOOD = ["a wonderful film", "great acting and a great story", "loved it", "superb and moving"]
BAD = ["a dull film", "terrible acting and a boring story", "hated it", "awful and tedious"]
VERSE = "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east.\n\n"
TEXTS = ["a wonderful film", "boring acting", "unseen words here"]
PROMPT = "ROMEO:"

_CACHE: dict[str, Path] = {}


def reviews(path: Path, n: int = 60) -> Path:
    rng = np.random.default_rng(0)
    lines = ["text,label"]
    for i in range(n):
        good = i % 2 == 0
        words = rng.choice(GOOD if good else BAD, size=2)
        lines.append(f'"{" and ".join(words)}",{"pos" if good else "neg"}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def monthly(path: Path, months: int = 96, constant: float | None = None) -> Path:
    """A monthly series (`time,value`), seasonal, or flat at `constant`."""
    rng = np.random.default_rng(0)
    m = np.arange(months)
    values = 100 + m + 20 * np.sin(2 * np.pi * m / 12) + rng.normal(0, 2, months)
    if constant is not None:
        values = np.full(months, constant)
    times = pd.date_range("1950-01-01", periods=months, freq="MS")
    lines = [f"{t.date()},{v:.3f}" for t, v in zip(times, values, strict=True)]
    path.write_text("time,value\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def train(task: str, root: Path, data: Path | None = None, **extra: str) -> Path:
    """Train a one-epoch tiny run of `task` in `root / task`; `extra` are dotted overrides."""
    run = root / task
    common = ["train.device=cpu", "train.epochs=1", "train.precision=fp32"]
    common += [f"{k}={v}" for k, v in extra.items()]
    if task == "classification":
        from rnnkit.tasks.classification.pipeline import ClassificationRunConfig, train_classifier

        data = data or reviews(root / "reviews.csv")
        options = ["data.min_freq=1", "data.validation=0.2", "data.test=0.2"]
        options += ["model.hidden_size=8", "model.embedding_dim=8", "embeddings.vectors=none"]
        options += ["train.batch_size=16"]
        config = apply_overrides(
            ClassificationRunConfig(), [f"data.data={data}", *options, *common]
        )
        train_classifier(config, run)
    elif task == "language-model":
        from rnnkit.tasks.language_model.pipeline import LanguageModelRunConfig, train_lm

        if data is None:
            data = root / "verse.txt"
            data.write_text(VERSE * 8, encoding="utf-8")
        options = ["data.bptt=12", "data.eval_batch_size=2", "model.embedding_dim=8"]
        options += ["model.hidden_size=16", "model.num_layers=1", "train.max_minutes=none"]
        options += ["train.batch_size=4", "sample.max_tokens=4"]
        config = apply_overrides(LanguageModelRunConfig(), [f"data.data={data}", *options, *common])
        train_lm(config, run)
    else:
        from rnnkit.tasks.forecasting.pipeline import ForecastingRunConfig, train_forecaster

        data = data or monthly(root / "monthly.csv")
        options = ["window.horizon=6", "window.input_length=24", "window.min_epoch_windows=32"]
        options += ["model.hidden_size=8", "model.head_size=16", "train.batch_size=32"]
        options += ["ensemble=1", "backtest=false"]
        config = apply_overrides(ForecastingRunConfig(), [f"data.data={data}", *options, *common])
        train_forecaster(config, run)
    return run


def tiny_run(task: str, tmp_path_factory: Any) -> Path:
    """The session's tiny run of `task` (trained on first use); never modify it in place."""
    if task not in _CACHE:
        _CACHE[task] = train(task, tmp_path_factory.mktemp(f"tiny-{task}"))
    return _CACHE[task]


def history(run: Path) -> pd.DataFrame:
    """The forecasting run's own series, as a history frame."""
    frame = pd.read_csv(run.parent / "monthly.csv", parse_dates=["time"], index_col="time")
    frame.index.freq = None
    return frame


def outputs(task: str, predictor: Any, run: Path) -> np.ndarray:
    """What a loaded predictor computes on fixed inputs, as one float64 array."""
    if task == "classification":
        return np.asarray(predictor.predict_proba(TEXTS), dtype=np.float64)
    if task == "language-model":
        scores = predictor.evaluate_text(VERSE, bptt=8, batch_size=2)
        text = predictor.generate(PROMPT, temperature=0, max_tokens=6, num_samples=1)[0]
        codes = [float(ord(c)) for c in text]
        return np.asarray([scores["loss"], *codes], dtype=np.float64)
    frames = predictor.predict(history(run))
    return np.concatenate([f.to_numpy(dtype=np.float64).ravel() for f in frames.values()])
