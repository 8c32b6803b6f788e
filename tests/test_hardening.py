"""One test per load/predict-time finding of issue 17, named after it.

Each damages a copy of a tiny run (tests/tiny_runs.py, trained once per session) or calls the CLI
with the offending flag, and expects rnnkit's one-line error (exit 2 through `main`) or, where
the finding was a wrong answer, the right one.
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import rnnkit
from rnnkit.cli.commands import main
from rnnkit.errors import ConfigError, DataError, ModelFileError, RnnkitError
from rnnkit.model_file import CHECKSUM_KEY

sys.path.insert(0, str(Path(__file__).parent))  # pytest runs with --import-mode=importlib
from tiny_runs import history, monthly, outputs, tiny_run, train


def copy(task: str, factory: Any, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_run(task, factory), tmp_path / "run"))


def edit_config(run: Path, *path: Any, value: Any) -> None:
    tree = json.loads((run / "config.json").read_text(encoding="utf-8"))
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (run / "config.json").write_text(json.dumps(tree), encoding="utf-8")


def refused(run: Path, error: type[RnnkitError], pattern: str) -> None:
    with pytest.raises(error, match=pattern) as info:
        rnnkit.load(run)
    assert "\n" not in str(info.value)


def cli_refuses(argv: list[str], capsys: Any, pattern: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert pattern in err[0], err[0]
    return err[0]


# --- silent garbage -----------------------------------------------------------------------------


def test_flipped_tensor_byte_refused(tmp_path_factory, tmp_path) -> None:
    run = copy("forecasting", tmp_path_factory, tmp_path)
    data = bytearray((run / "model.safetensors").read_bytes())
    data[-5] ^= 0x40  # an exponent bit of the last float: a finite, wrong weight
    (run / "model.safetensors").write_bytes(bytes(data))
    refused(run, ModelFileError, r"model\.safetensors: tensor '.*' \(file bytes \d+-\d+\) does not")


def test_file_without_checksums_loads_with_a_note(tmp_path_factory, tmp_path, caplog) -> None:
    run = copy("classification", tmp_path_factory, tmp_path)
    path = run / "model.safetensors"
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    assert CHECKSUM_KEY in header.pop("__metadata__")
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length :])
    with caplog.at_level("INFO", logger="rnnkit.model_file"):
        got = outputs("classification", rnnkit.load(run), run)
    base = tiny_run("classification", tmp_path_factory)
    assert np.allclose(got, outputs("classification", rnnkit.load(base), base))
    assert "no tensor checksums" in caplog.text


def test_scaler_std_zero_refused(tmp_path_factory, tmp_path) -> None:
    run = copy("forecasting", tmp_path_factory, tmp_path)
    edit_config(run, "scaler", "params", "value", "value", value=[120.0, 0.0])
    refused(run, DataError, r"scaler\.params\.value\.value: the scale must be positive")


def test_scaler_params_empty_refused(tmp_path_factory, tmp_path) -> None:
    run = copy("forecasting", tmp_path_factory, tmp_path)
    edit_config(run, "scaler", "params", value={})
    refused(run, DataError, r"config\.json: scaler\.params must map each series")


def test_layout_freq_unknown_refused(tmp_path_factory, tmp_path) -> None:
    run = copy("forecasting", tmp_path_factory, tmp_path)
    edit_config(run, "layout", "freq", value="XYZ")
    refused(run, DataError, r"layout\.freq 'XYZ' is not a pandas frequency")


def test_layout_season_zero_refused(tmp_path_factory, tmp_path) -> None:
    run = copy("forecasting", tmp_path_factory, tmp_path)
    edit_config(run, "layout", "season", value=0)
    refused(run, DataError, r"layout\.season must be from 1")


def test_layout_calendar_false_refused(tmp_path_factory, tmp_path) -> None:
    run = copy("forecasting", tmp_path_factory, tmp_path)
    edit_config(run, "layout", "calendar", value=False)
    refused(run, DataError, r"makes 2 num_features but model\.num_features is 4")


def test_forecast_horizon_zero_refused(tmp_path_factory, tmp_path, capsys) -> None:
    run = tiny_run("forecasting", tmp_path_factory)
    cli_refuses(["forecast", str(run), "--horizon", "0"], capsys, "--horizon 0")
    predictor = rnnkit.load(run)
    with pytest.raises(ConfigError, match="--horizon 0"):
        predictor.predict(history(run), 0)


def test_season_zero_refused(tmp_path, capsys) -> None:
    data = monthly(tmp_path / "m.csv")
    argv = ["train", "forecasting", "--data", str(data), "--out", str(tmp_path / "r")]
    cli_refuses([*argv, "--season", "0", "--quiet"], capsys, "window.season must be from 1")


def test_nan_label_refused(tmp_path, capsys) -> None:
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\ngood film,pos\nbad film,NaN\nfine,pos\n", encoding="utf-8")
    argv = ["train", "classification", "--data", str(data), "--out", str(tmp_path / "r")]
    line = cli_refuses([*argv, "--quiet"], capsys, "label 'NaN' marks a missing value")
    assert f"{data}:3" in line


def test_tokenizer_name_changed_refused(tmp_path_factory, tmp_path) -> None:
    run = copy("language-model", tmp_path_factory, tmp_path)
    edit_config(run, "config", "data", "tokenizer", value="basic_english")
    refused(run, ModelFileError, r"tokenizer\.json, column 'tokenizer\.name': holds the 'char'")


def test_evaluate_json_is_strict_json(tmp_path_factory, tmp_path, capsys, monkeypatch) -> None:
    run = tiny_run("classification", tmp_path_factory)
    import rnnkit.runs

    real = rnnkit.runs.evaluate
    monkeypatch.setattr(
        rnnkit.runs, "evaluate", lambda *a, **k: {**real(*a, **k), "loss": float("nan")}
    )
    assert main(["evaluate", str(run), "--json"]) == 0
    out = capsys.readouterr().out
    record = json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in {out}"))
    assert record["loss"] is None


def test_constant_series_mase_undefined() -> None:
    from rnnkit.tasks.forecasting.backtest import mase_scale, point_metrics

    scale = mase_scale(np.full((30, 1), 5.0), 12)
    assert np.isnan(scale[0])
    metrics = point_metrics(np.full((3, 2), 5.0), np.full((3, 2), 5.0), float(scale[0]))
    assert metrics["mase"] is None and "flat" in metrics["mase_note"]
    assert metrics["mae"] == 0.0


def test_huge_value_in_series_refused(tmp_path, capsys) -> None:
    data = monthly(tmp_path / "m.csv")
    lines = data.read_text().splitlines()
    lines[10] = lines[10].split(",")[0] + ",1e300"
    data.write_text("\n".join(lines) + "\n")
    argv = ["train", "forecasting", "--data", str(data), "--out", str(tmp_path / "r"), "--quiet"]
    line = cli_refuses(argv, capsys, "1e+300 is beyond +-1e+30")
    assert str(data) in line and "column 'value'" in line


def test_daily_history_for_monthly_model_refused(tmp_path_factory) -> None:
    run = tiny_run("forecasting", tmp_path_factory)
    frame = history(run)
    frame.index = pd.date_range("2020-01-01", periods=len(frame), freq="D")
    with pytest.raises(DataError, match=r"not at the model's frequency 'MS' \(it looks like 'D'\)"):
        rnnkit.load(run).predict(frame)


def test_seed_2_64_refused(tmp_path, capsys) -> None:
    data = monthly(tmp_path / "m.csv")
    argv = ["train", "forecasting", "--data", str(data), "--out", str(tmp_path / "r"), "--quiet"]
    cli_refuses([*argv, "--seed", str(2**64)], capsys, "train.seed must be from 0 to")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_generate_device_cuda_without_cuda_refused(tmp_path_factory, capsys) -> None:
    run = tiny_run("language-model", tmp_path_factory)
    cli_refuses(["generate", str(run), "--device", "cuda"], capsys, "--device cuda: not available")


def test_generate_num_samples_json_lines_streamed(tmp_path_factory, capsys) -> None:
    run = tiny_run("language-model", tmp_path_factory)
    argv = ["generate", str(run), "--max-tokens", "5", "--seed", "1", "--json"]
    assert main([*argv, "--num-samples", "10"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["sample"] for r in records] == list(range(10))
    # up to one batch (8), the samples are exactly what one generate call gives
    assert main([*argv, "--num-samples", "3"]) == 0
    texts = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    predictor = rnnkit.load(run)
    assert texts == predictor.generate("", max_tokens=5, seed=1, num_samples=3)
    assert main(["generate", str(run), "--max-tokens", "3", "--num-samples", "2"]) == 0
    assert capsys.readouterr().out.count("--- sample") == 2
    cli_refuses([*argv, "--num-samples", "1000000"], capsys, "num_samples must be from 1 to")


def test_bpe_vocab_size_1e9_refused(tmp_path, capsys) -> None:
    data = tmp_path / "verse.txt"
    data.write_text("some text\n" * 20, encoding="utf-8")
    argv = ["train", "lm", "--data", str(data), "--out", str(tmp_path / "r"), "--quiet"]
    argv += ["--tokenizer", "bpe", "--vocab-size", str(10**9)]
    cli_refuses(argv, capsys, "data.vocab_size must be from 1 to 1,000,000")


# --- unbounded sizes and types in config.json ---------------------------------------------------


@pytest.mark.parametrize("task", ["classification", "language-model", "forecasting"])
def test_num_layers_huge_refused(task: str, tmp_path_factory, tmp_path) -> None:
    run = copy(task, tmp_path_factory, tmp_path)
    edit_config(run, "model", "num_layers", value=10**6)
    refused(run, DataError, r"num_layers must be from 1 to 32")


@pytest.mark.parametrize("task", ["classification", "language-model"])
def test_hidden_and_embedding_huge_refused(task: str, tmp_path_factory, tmp_path) -> None:
    run = copy(task, tmp_path_factory, tmp_path)
    edit_config(run, "model", "hidden_size", value=8000)
    edit_config(run, "model", "num_layers", value=30)
    refused(run, DataError, r"a model of about [\d,]+ weights")
    edit_config(run, "model", "embedding_dim", value=10**7)
    refused(run, DataError, r"embedding_dim must be from 1 to 8,192")


def test_num_layers_flag_and_ensemble_flag_refused(tmp_path, capsys) -> None:
    data = monthly(tmp_path / "m.csv")
    argv = ["train", "forecasting", "--data", str(data), "--out", str(tmp_path / "r"), "--quiet"]
    cli_refuses([*argv, "--num-layers", "1000000"], capsys, "num_layers must be from 1 to 32")
    cli_refuses([*argv, "--ensemble", "1000000"], capsys, "ensemble must be from 1 to 64")


def test_chars_per_token_string_refused(tmp_path_factory, tmp_path) -> None:
    run = copy("language-model", tmp_path_factory, tmp_path)
    edit_config(run, "chars_per_token", value="x")
    refused(run, DataError, r"column 'chars_per_token': expected a positive number")


def test_classes_float_refused(tmp_path_factory, tmp_path) -> None:
    run = copy("classification", tmp_path_factory, tmp_path)
    edit_config(run, "classes", value=1.5)
    refused(run, DataError, r"column 'classes': expected a list of class labels")


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "model.safetensors"])
def test_deep_nesting_refused(name: str, tmp_path_factory, tmp_path) -> None:
    run = copy("language-model", tmp_path_factory, tmp_path)
    deep = "[" * 100_000 + "]" * 100_000
    path = run / name
    if name == "model.safetensors":
        data = path.read_bytes()
        (length,) = struct.unpack("<Q", data[:8])
        text = ('{"__metadata__": ' + deep + "}").encode()
        path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length :])
    else:
        tree = json.loads(path.read_text(encoding="utf-8"))
        tree["extra"] = "@@"
        path.write_text(json.dumps(tree).replace('"@@"', deep), encoding="utf-8")
    refused(run, ModelFileError, r"nested 100001 levels deep; at most 64")


def test_float_nan_in_config_refused(tmp_path_factory, tmp_path) -> None:
    run = copy("classification", tmp_path_factory, tmp_path)
    edit_config(run, "model", "dropout", value=float("nan"))
    refused(run, DataError, r"'dropout' expects a finite float, got nan")


def test_train_a_flat_series_reports_mase_undefined(tmp_path) -> None:
    run = train("forecasting", tmp_path, monthly(tmp_path / "flat.csv", constant=5.0))
    backtest = rnnkit.runs.evaluate(run)
    assert backtest["model"]["mase"] is None
    assert "flat" in backtest["model"]["mase_note"]


def test_error_messages_do_not_echo_the_header_of_a_file_config_json_names(
    tmp_path_factory, tmp_path, capsys
) -> None:
    # an edited config.json points the run's data at some other local file: the error names the
    # missing column, never that file's first line
    run = copy("classification", tmp_path_factory, tmp_path)
    private = tmp_path / "private.csv"
    private.write_text("hunter2_secret,other\n1,2\n", encoding="utf-8")
    edit_config(run, "config", "data", "data", value=str(private))
    line = cli_refuses(["evaluate", str(run)], capsys, "no column 'text'")
    assert "hunter2" not in line and "are not shown" in line
    # the same file passed on the command line is the user's own: its columns help
    line = cli_refuses(["evaluate", str(run), "--data", str(private)], capsys, "no column")
    assert "hunter2_secret" in line


def test_an_edited_token_in_tokenizer_json_is_refused(tmp_path_factory, tmp_path) -> None:
    # a vocabulary with one token changed is still a valid vocabulary: only the checksum
    # written with it tells that every text would now map to other ids
    run = copy("language-model", tmp_path_factory, tmp_path)
    data = json.loads((run / "tokenizer.json").read_text(encoding="utf-8"))
    data["vocab"]["tokens"][5] = "XYZ"
    (run / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    refused(run, DataError, r"tokenizer\.json, column 'sha256': the tokenizer does not match")


def test_a_tokenizer_json_without_a_checksum_still_loads(tmp_path_factory, tmp_path) -> None:
    run = copy("language-model", tmp_path_factory, tmp_path)
    data = json.loads((run / "tokenizer.json").read_text(encoding="utf-8"))
    del data["sha256"]  # as written before the checksum existed
    (run / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    assert rnnkit.load(run).generate("RO", max_tokens=3, seed=0)
