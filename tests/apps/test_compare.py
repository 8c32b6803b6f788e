"""`rnnkit.runs.train` for every task, and `rnnkit compare` (files, table, seeds, errors)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit import runs
from rnnkit.apps.compare import compare
from rnnkit.cli import main
from rnnkit.errors import ConfigError

GOOD = ["a wonderful film", "great acting", "loved it", "superb and moving"]
BAD = ["a dull film", "terrible acting", "hated it", "awful and tedious"]
VERSE = "ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\nO Romeo!\n\n"


def write_reviews(path: Path, n: int = 80) -> Path:
    rng = np.random.default_rng(0)
    rows = ["review,stars"]
    for i in range(n):
        good = i % 2 == 0
        rows.append(
            f'"{" and ".join(rng.choice(GOOD if good else BAD, 2))}",{"pos" if good else "neg"}'
        )
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_series(path: Path, days: int = 120) -> Path:
    t = np.arange(days)
    value = 50 + 10 * np.sin(2 * np.pi * t / 7) + t / 10
    frame = pd.DataFrame({"time": pd.date_range("2022-01-03", periods=days), "value": value})
    frame.to_csv(path, index=False)
    return path


def write_corpus(path: Path) -> Path:
    path.write_text(VERSE * 30, encoding="utf-8")
    return path


#: task -> (data writer, tiny settings); one epoch of a model with a few hundred weights.
TINY = {
    "classification": (
        write_reviews,
        {
            "data.text_column": "review",
            "data.label_column": "stars",
            "data.min_freq": 1,
            "data.validation": 0.2,
            "data.test": 0.2,
            "embeddings.vectors": None,
            "model.embedding_dim": 8,
            "model.hidden_size": 8,
            "train.epochs": 1,
            "train.batch_size": 16,
            "train.device": "cpu",
        },
    ),
    "forecasting": (
        write_series,
        {
            "window.horizon": 7,
            "window.input_length": 14,
            "window.min_epoch_windows": 64,
            "model.hidden_size": 8,
            "model.head_size": 8,
            "train.epochs": 1,
            "train.batch_size": 32,
            "train.device": "cpu",
        },
    ),
    "language-model": (
        write_corpus,
        {
            "data.bptt": 16,
            "data.eval_batch_size": 2,
            "model.embedding_dim": 8,
            "model.hidden_size": 8,
            "model.num_layers": 1,
            "model.tie_weights": False,
            "train.epochs": 1,
            "train.max_minutes": None,
            "train.batch_size": 4,
            "train.device": "cpu",
            "sample.max_tokens": 10,
        },
    ),
}
FILES = {"classification": "r.csv", "forecasting": "s.csv", "language-model": "v.txt"}


@pytest.fixture(autouse=True)
def few_latency_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two timed calls at batch 1 and one at 64 are enough to test the plumbing."""
    monkeypatch.setattr("rnnkit.apps.compare.LATENCY_REPEATS", {1: 2, 64: 1})


def tiny(task: str, folder: Path) -> tuple[str, dict]:
    write, settings = TINY[task]
    return str(write(folder / FILES[task])), dict(settings)


@pytest.mark.parametrize("task", list(TINY))
def test_runs_train_writes_a_loadable_run_for_every_task(task: str, tmp_path: Path) -> None:
    data, settings = tiny(task, tmp_path)
    settings |= {"data.data": data, "model.cell": "gru", "train.seed": "3"}  # text or typed
    run_dir = runs.train(task, tmp_path / "run", settings)
    assert run_dir == tmp_path / "run"
    config = runs.read_config(run_dir)
    assert config["task"] == task
    assert config["config"]["model"]["cell"] == "gru"
    assert config["config"]["train"]["seed"] == 3
    record = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert record["tokens_per_second"] > 0
    assert config["model"]["cell"] == "gru"  # the resolved model config the loader rebuilds
    assert rnnkit.load(run_dir).task == task
    assert runs.evaluate(run_dir)["task"] == task


def test_runs_train_refuses_unknown_tasks_keys_and_existing_runs(tmp_path: Path) -> None:
    data, settings = tiny("classification", tmp_path)
    with pytest.raises(ConfigError, match="unknown task 'sentiment'; known: classification"):
        runs.train("sentiment", tmp_path / "a", {})
    with pytest.raises(ConfigError, match=r"unknown key 'model\.hiden_size'.*hidden_size"):
        runs.train("classification", tmp_path / "a", {**settings, "model.hiden_size": 8})
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        runs.train("classification", tmp_path / "a", {"train.epochs": "many"})
    runs.train("classification", tmp_path / "a", {**settings, "data.data": data})
    with pytest.raises(ConfigError, match="already holds a run"):
        runs.train("classification", tmp_path / "a", {**settings, "data.data": data})


def cli_args(task: str, data: str, settings: dict, out: Path) -> list[str]:
    flag = {"classification": "classifier", "forecasting": "forecaster"}.get(task, "lm")
    sets = [f"--set={k}={'none' if v is None else v}" for k, v in settings.items()]
    return ["compare", "--task", flag, "--data", data, "--out", str(out), "--quiet", *sets]


def test_compare_cli_two_seeds_files_table_and_spread(tmp_path: Path, capsys) -> None:
    data, settings = tiny("classification", tmp_path)
    out = tmp_path / "cmp"
    args = cli_args("classification", data, settings, out)
    assert main([*args, "--cells", "rnn,gru", "--seeds", "2"]) == 0
    for name in ("compare.json", "compare.md", "curves.png", "summary.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "compare.json").read_text())
    assert report["task"] == "classification" and report["seeds"] == [0, 1]
    assert list(report["results"]) == ["rnn", "gru"]
    for cell, entry in report["results"].items():
        assert [r["seed"] for r in entry["runs"]] == [0, 1]
        for r in entry["runs"]:
            assert set(r) == {
                "seed", "run", "metrics", "parameters", "train_seconds", "epochs",
                "best_epoch", "throughput", "latency_ms", "wall_seconds",
            }  # fmt: skip
            assert set(r["metrics"]) == {"accuracy", "macro_f1"}
            assert set(r["latency_ms"]) == {"batch_1", "batch_64"}
            assert r["latency_ms"]["batch_64"] > 0 and r["throughput"] > 0
            assert runs.read_config(out / r["run"])["config"]["model"]["cell"] == cell
        acc = entry["summary"]["metrics.accuracy"]
        values = [r["metrics"]["accuracy"] for r in entry["runs"]]
        assert acc["n"] == 2 and acc["mean"] == pytest.approx(np.mean(values))
        assert acc["std"] == pytest.approx(np.std(values, ddof=1))
        assert (acc["min"], acc["max"]) == (min(values), max(values))
    # An LSTM and a GRU of one size differ in gates, so in weights: 4 vs 3 blocks per layer.
    assert (
        report["results"]["rnn"]["runs"][0]["parameters"]
        < (report["results"]["gru"]["runs"][0]["parameters"])
    )
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("cell"))
    assert "test accuracy" in header and "latency b=64 (ms)" in header
    assert any(line.startswith("rnn ") for line in printed.splitlines())
    assert any(line.startswith("gru ") for line in printed.splitlines())
    markdown = (out / "compare.md").read_text()
    assert "| rnn |" in markdown and "![learning curves](curves.png)" in markdown
    assert "±" in markdown or "seeds 0, 1" in markdown


@pytest.mark.parametrize("task", ["forecasting", "language-model"])
def test_compare_api_reads_each_task(task: str, tmp_path: Path) -> None:
    data, settings = tiny(task, tmp_path)
    report = compare(task, data, ["rnn", "lstm"], tmp_path / "cmp", overrides=settings)
    metrics = {
        "forecasting": {"mase", "seasonal_naive_mase", "smape"},
        "language-model": {"loss", "bits_per_char"},
    }[task]
    for cell in ("rnn", "lstm"):
        (run,) = report["results"][cell]["runs"]
        assert set(run["metrics"]) == metrics
        assert all(np.isfinite(v) for v in run["metrics"].values())
        assert run["run"] == cell and (tmp_path / "cmp" / cell / "model.safetensors").is_file()
        assert report["results"][cell]["summary"]["parameters"]["std"] is None  # one seed
    assert (tmp_path / "cmp" / "curves.png").is_file()


def test_budget_sets_max_minutes_and_lifts_the_epoch_ceiling(tmp_path: Path) -> None:
    data, settings = tiny("classification", tmp_path)
    settings.pop("train.epochs")
    settings["train.patience"] = 1  # the tiny data stops improving quickly
    report = compare(
        "classifier", data, ["rnn"], tmp_path / "b", budget_minutes=0.02, overrides=settings
    )
    config = runs.read_config(tmp_path / "b" / "rnn")["config"]["train"]
    assert config["max_minutes"] == 0.02 and config["epochs"] == 1000
    assert report["budget_minutes"] == 0.02


def test_bad_cells_task_and_settings_fail_before_training(tmp_path: Path, capsys) -> None:
    data, settings = tiny("classification", tmp_path)
    args = cli_args("classification", data, settings, tmp_path / "x")
    assert main([*args, "--cells", "rnn,transformer"]) == 2
    err = capsys.readouterr().err
    assert "unknown cell 'transformer'; choose from: rnn, lstm, gru" in err
    assert main([*args, "--cells", "lstm,lstm"]) == 2
    assert "names a cell twice" in capsys.readouterr().err
    assert main([*args, "--set", "model.cell=gru"]) == 2
    assert "compare sets it itself" in capsys.readouterr().err
    assert main([*args, "--set", "model.hidden=3"]) == 2
    assert "unknown key 'model.hidden'" in capsys.readouterr().err
    assert main([*args, "--seed-list", "1,x"]) == 2
    assert "--seed-list" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", "--task", "regressor", "--data", data])
    assert "invalid choice: 'regressor'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--task 'regressor' is not a task"):
        compare("regressor", data)
    assert not (tmp_path / "x").exists()  # nothing trained, nothing written
