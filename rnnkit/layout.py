"""The run folder's layout: every file name in one place, importable without torch.

`rnnkit.run_folder` reads and writes these files; reports and apps that only need the names
import them from here.
"""

from __future__ import annotations


class Files:
    """File names inside a run folder (relative paths); every module reads them from here."""

    CONFIG = "config.json"
    WEIGHTS = "model.safetensors"
    TOKENIZER = "tokenizer.json"
    RECORDS = "metrics.jsonl"
    TEST_METRICS = "test_metrics.json"
    BACKTEST = "backtest.json"
    SAMPLE = "sample.txt"
    REPORT_MD = "report.md"
    REPORT_HTML = "report.html"
    LOSS_PLOT = "loss.png"
    CONFUSION_PLOT = "confusion.png"
    FORECAST_PLOT = "forecast.png"
    BACKTEST_PLOT = "backtest.png"
    CHECKPOINT = "checkpoints/last.safetensors"
    #: the checkpoint before the last one, kept in case the last is damaged.
    PREVIOUS_CHECKPOINT = "checkpoints/previous.safetensors"
    #: held (flock) by the process training into the folder, for the run's whole life.
    LOCK = ".rnnkit.lock"
    #: written by `rnnkit.train` for in-memory data, so that the run can reopen its held-out part.
    DATA_DIR = "data"
