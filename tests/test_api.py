"""`rnnkit.train` from Python: data in memory for every task, the run it returns, bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.config import load_config
from rnnkit.data import load_dataset
from rnnkit.errors import ConfigError, DataError
from rnnkit.run_folder import Files
from rnnkit.tasks import TASKS, get_task

GOOD = ["a gorgeous, witty film", "loved every minute", "a triumph", "funny and warm"]
BAD = ["the plot is a mess", "dull and far too long", "a waste of time", "the jokes fall flat"]
TEXTS = GOOD * 5 + BAD * 5
LABELS = ["fresh"] * 20 + ["rotten"] * 20
VERSE = "To be, or not to be, that is the question.\n" * 40
TINY = {"hidden_size": 8, "epochs": 2, "device": "cpu"}


def monthly(n: int = 96, scale: float = 1.0) -> pd.Series:
    months = pd.date_range("2000-01", periods=n, freq="MS")
    return pd.Series(scale * (100 + 10 * np.sin(np.arange(n) * np.pi / 6)), index=months)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, rnnkit.Run]:
    """One tiny run per task, trained from data in memory (a few seconds each)."""
    root = tmp_path_factory.mktemp("api")
    frame = pd.DataFrame({"review": TEXTS, "stars": [5] * 20 + [1] * 20, "other": 0})
    return {
        "classification": rnnkit.train(
            "classification",
            frame,
            root / "rt",
            # options win over config; config keys the flags do not reach still apply
            config={"model.hidden_size": 32, "model.num_layers": 1, "data.min_freq": 1},
            text_column="review",
            label_column="stars",
            embeddings=None,
            **TINY,
        ),
        "forecasting": rnnkit.train(
            "forecaster",
            {"north": monthly(), "south": monthly(scale=2.0)},
            root / "air",
            {"window.min_epoch_windows": 64},
            horizon=6,
            input_length=24,
            ensemble=1,
            **TINY,
        ),
        "language-model": rnnkit.train(
            "lm", VERSE, root / "bard", {"data.bptt": 16}, batch_size=4, **TINY
        ),
    }


def test_every_task_has_a_data_hook() -> None:
    assert all(spec.write_data is not None for spec in TASKS.values())


def test_import_rnnkit_exports_train() -> None:
    from rnnkit.api import train

    assert rnnkit.train is train


@pytest.mark.parametrize(
    ("task", "file"),
    [
        ("classification", "texts.csv"),
        ("forecasting", "series.csv"),
        ("language-model", "text.txt"),
    ],
)
def test_run_folder_holds_the_data_and_names_it(runs, task: str, file: str) -> None:
    run = runs[task]
    assert isinstance(run, rnnkit.Run) and run.task.name == task
    for name in (Files.CONFIG, Files.WEIGHTS, Files.RECORDS, f"{Files.DATA_DIR}/{file}"):
        assert (run.path / name).is_file(), name
    data = json.loads((run.path / Files.CONFIG).read_text())["config"]["data"]["data"]
    assert data == str((run.path / Files.DATA_DIR / file).resolve())
    assert not list(run.path.glob(".data-*"))  # nothing left aside


def test_options_beat_config_and_name_their_keys(runs) -> None:
    config = runs["classification"].config
    assert (config.model.hidden_size, config.model.num_layers) == (8, 1)
    assert (config.data.text_column, config.data.label_column) == ("review", "stars")
    assert config.embeddings.vectors is None and config.train.epochs == 2
    assert runs["forecasting"].config.data.series_column == "series"


def test_classifier_predicts_evaluates_and_loads_the_same(runs) -> None:
    run = runs["classification"]
    texts = ["a witty triumph", "a dull mess"]
    predicted = run.predict(texts)
    assert [p["label"] in ("1", "5") for p in predicted] == [True, True]
    part = run.held_out()
    assert len(part.data) == 4 and "data/texts.csv (test split, seed 0)" in part.description
    metrics = run.evaluate()
    assert metrics["task"] == "classification" and metrics["n"] == 4
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert rnnkit.load(run.path).predict(texts) == predicted


def test_forecaster_forecasts_evaluates_and_loads_the_same(runs) -> None:
    run = runs["forecasting"]
    history = run.held_out().data
    assert sorted(history.series) == ["north", "south"]
    forecasts = run.forecast(history, horizon=3)
    assert sorted(forecasts) == ["north", "south"]
    assert list(forecasts["north"].index) == list(pd.date_range("2008-01", periods=3, freq="MS"))
    assert "value" in forecasts["south"].columns
    metrics = run.evaluate()
    assert metrics["task"] == "forecasting" and np.isfinite(metrics["model"]["mase"])
    again = rnnkit.load(run.path).predict(history, horizon=3)
    for key, frame in forecasts.items():
        pd.testing.assert_frame_equal(again[key], frame)


def test_language_model_generates_evaluates_and_loads_the_same(runs) -> None:
    run = runs["language-model"]
    sample = run.generate("To be", max_tokens=20, seed=0)
    assert isinstance(sample[0], str) and sample[0]
    metrics = run.evaluate()
    assert metrics["task"] == "language-model" and np.isfinite(metrics["loss"])
    assert rnnkit.load(run.path).generate("To be", max_tokens=20, seed=0) == sample


@pytest.mark.parametrize("task", ["classification", "forecasting", "language-model"])
def test_rnnkit_evaluate_reopens_the_data_from_another_folder(
    runs, task: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    from rnnkit.cli import main

    monkeypatch.chdir(tmp_path)  # the run's data is found wherever it is evaluated from
    assert main(["evaluate", str(runs[task].path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["task"] == task


def test_a_list_of_documents_is_one_text(tmp_path: Path) -> None:
    spec = get_task("lm")
    config = spec.write_data(["To be", "or not"], tmp_path, load_config(spec.config))
    assert load_dataset(config.data.data).documents == ["To be\n\nor not"]


# --- data in memory, each form, read back as training reads it --------------------------------


@pytest.mark.parametrize(
    "data",
    [
        (TEXTS[:3], LABELS[:3]),
        {"text": TEXTS[:3], "label": LABELS[:3]},
        pd.DataFrame({"label": LABELS[:3], "text": TEXTS[:3]}),
        (np.array(TEXTS[:3]), pd.Series(LABELS[:3])),
    ],
    ids=["pair", "dict", "frame", "array-and-series"],
)
def test_classification_data_forms(tmp_path: Path, data) -> None:
    spec = get_task("classification")
    config = spec.write_data(data, tmp_path, load_config(spec.config))
    dataset = load_dataset(config.data.data, task="classification")
    assert (dataset.data.texts, dataset.data.labels) == (TEXTS[:3], LABELS[:3])


def test_texts_that_look_like_syntax_survive_the_file(tmp_path: Path) -> None:
    spec = get_task("classification")
    texts = ['say "hi", then\nleave', "NA", "# not a comment", "null", "  padded  ", "1e5"]
    labels = [1, 2.0, "x", True, "y", "z"]
    config = spec.write_data((texts, labels), tmp_path, load_config(spec.config))
    dataset = load_dataset(config.data.data, task="classification")
    assert dataset.data.texts == texts
    assert dataset.data.labels == ["1", "2.0", "x", "True", "y", "z"]


def test_forecasting_data_forms(tmp_path: Path) -> None:
    spec = get_task("forecasting")
    defaults = load_config(spec.config)
    series = monthly(24)
    frame = pd.DataFrame({"sales": series.to_numpy(), "visits": 1.0}, index=series.index)
    with_column = frame.rename_axis("day").reset_index()
    forms = {
        "series": (series, {}),
        "indexed frame": (frame, {"target_columns": ("sales",)}),
        "time column": (with_column, {"time_column": "day", "target_columns": ("sales",)}),
    }
    for name, (data, columns) in forms.items():
        config = replace(defaults, data=replace(defaults.data, **columns))
        written = spec.write_data(data, tmp_path / name.replace(" ", "-"), config)
        dataset = load_dataset(written.data.data, task="forecasting", **_columns(written))
        ((_, got),) = dataset.series.items()
        np.testing.assert_array_equal(got.iloc[:, 0].to_numpy(), series.to_numpy(), err_msg=name)
        assert dataset.freq == "MS" and got.index.equals(series.index.rename(got.index.name))
    many = spec.write_data({"a": series, 7: 2 * series}, tmp_path / "many", defaults)
    dataset = load_dataset(many.data.data, task="forecasting", **_columns(many))
    assert sorted(dataset.series) == ["7", "a"]
    np.testing.assert_array_equal(dataset.series["7"]["value"].to_numpy(), 2 * series.to_numpy())


def _columns(config) -> dict:
    data = config.data
    return {
        "time_column": data.time_column,
        "target_columns": list(data.target_columns),
        "series_column": data.series_column,
    }


# --- bad input ------------------------------------------------------------------------------


def test_unknown_option_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        rnnkit.train("classification", (TEXTS, LABELS), tmp_path / "x", hiden_size=8)
    assert str(err.value).startswith(
        "unknown option 'hiden_size' for classification; did you mean 'hidden_size'? "
        "valid options: batch_size, bidirectional, cell, checkpoint_every, checkpoint_seconds, "
        "device, dropout, embeddings, epochs, "
    )
    assert str(err.value).endswith(" (config= sets any config key)")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("task", "data", "options", "error", "message"),
    [
        (
            "classification",
            (TEXTS[:3], LABELS[:2]),
            {},
            DataError,
            "3 texts but 2 labels; every text needs one label",
        ),
        (
            "classification",
            42,
            {},
            ConfigError,
            "classification data is a registry dataset name, a path, a pandas DataFrame with "
            "'text' and 'label' columns, a pair (texts, labels) or a dict "
            "{'text': texts, 'label': labels}; got int",
        ),
        (
            "classification",
            "my reviews.csv",
            {},
            ConfigError,
            "classification data is a registry dataset name, a path, a pandas DataFrame with "
            "'text' and 'label' columns, a pair (texts, labels) or a dict "
            "{'text': texts, 'label': labels}; got the text 'my reviews.csv'",
        ),
        (
            "classification",
            pd.DataFrame({"review": TEXTS, "label": LABELS}),
            {},
            DataError,
            "the DataFrame has no column 'text' (its columns: ['review', 'label']); name its "
            "text and label columns with text_column= and label_column=",
        ),
        (
            "classification",
            ([*TEXTS[:2], 3], LABELS[:3]),
            {},
            DataError,
            "text 2 is int 3; expected a string",
        ),
        (
            "forecasting",
            {"a": pd.Series([1.0, 2.0, 3.0])},
            {},
            DataError,
            "series 'a' is indexed by RangeIndex, not by time; expected a pandas DatetimeIndex "
            "or a 'time' column (time_column= names it)",
        ),
        (
            "forecasting",
            pd.DataFrame({"sales": [1.0, 2.0]}, index=pd.date_range("2000", periods=2)),
            {},
            DataError,
            "the DataFrame has no column 'value' (its columns: ['sales']); name the column(s) "
            "to forecast with target_column=",
        ),
        (
            "forecasting",
            [1.0, 2.0, 3.0],
            {},
            ConfigError,
            "forecasting data is a registry dataset name, a path, a pandas DataFrame (indexed "
            "by time, or with a time column), a pandas Series with a DatetimeIndex, or "
            "{series id: Series}; got list",
        ),
        ("forecasting", {}, {}, DataError, "the dict holds no series; expected {series id: "),
        (
            "lm",
            [1, 2],
            {},
            ConfigError,
            "language-model data is a registry dataset name, a path, a string of text or a "
            "list of strings; got list",
        ),
        (
            "lm",
            " \n ",
            {},
            DataError,
            "the text is empty; a language model needs text to learn from",
        ),
        (
            "classification",
            (TEXTS, LABELS),
            {"hidden_size": "big"},
            ConfigError,
            "options: 'model.hidden_size' expects an int, got 'big'",
        ),
    ],
    ids=[
        "lengths",
        "type",
        "missing-path",
        "column",
        "text-type",
        "no-time-index",
        "no-target",
        "series-type",
        "no-series",
        "lm-type",
        "lm-empty",
        "option-type",
    ],
)
def test_bad_data_is_refused_before_anything_is_written(
    tmp_path: Path, task: str, data, options: dict, error: type, message: str
) -> None:
    out = tmp_path / "run"
    with pytest.raises(error) as err:
        rnnkit.train(task, data, out, **options)
    assert str(err.value).startswith(message)
    assert not out.exists()


def test_a_missing_registry_name_gets_the_loaders_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Did you mean 'shakespeare'\?"):
        rnnkit.train("lm", "shakespear", tmp_path / "run", **TINY)


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  hidden_size: x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        rnnkit.train("classification", (TEXTS, LABELS), tmp_path / "run", path)
    assert str(err.value) == f"{path}: 'model.hidden_size' expects an int, got 'x'"
    with pytest.raises(ConfigError, match=r"^config= takes a dict of config keys or a YAML/TOML"):
        rnnkit.train("classification", (TEXTS, LABELS), tmp_path / "run", config=3)


def test_an_existing_run_is_never_overwritten(runs) -> None:
    run = runs["classification"]
    before = (run.path / Files.DATA_DIR / "texts.csv").read_bytes()
    with pytest.raises(ConfigError) as err:
        rnnkit.train("classification", (TEXTS, LABELS), run.path)
    assert str(err.value) == (
        f"{run.path} already holds a run; choose another out= or pass resume=True"
    )
    other = pd.DataFrame({"review": TEXTS[::-1], "stars": [1] * 20 + [5] * 20})
    with pytest.raises(ConfigError) as err:
        rnnkit.train(
            "classification",
            other,
            run.path,
            resume=True,
            text_column="review",
            label_column="stars",
            **TINY,
        )
    assert str(err.value).startswith("resume: the data differs from the run's (")
    assert (run.path / Files.DATA_DIR / "texts.csv").read_bytes() == before
    assert not list(run.path.glob(".data-*"))
    with pytest.raises(ConfigError, match=r"^resume=True needs out= naming the run"):
        rnnkit.train("classification", other, resume=True)


def test_resume_needs_a_run_trained_on_data_in_memory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        rnnkit.train("lm", VERSE, tmp_path, resume=True)
    assert str(err.value) == (
        f"resume: {tmp_path} was not trained on data in memory (it has no data/); "
        "resume with the data it names"
    )
    assert list(tmp_path.iterdir()) == []


def test_out_defaults_to_a_fresh_folder_under_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = rnnkit.train("lm", VERSE, None, {"data.bptt": 16}, batch_size=4, **TINY)
    second = rnnkit.train("lm", VERSE, None, {"data.bptt": 16}, batch_size=4, **TINY)
    assert first.path.parent == second.path.parent == Path("runs")
    assert first.path.name.startswith("language-model-") and first.path != second.path
