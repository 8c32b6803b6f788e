"""Text classification end to end: train -> run folder -> load -> predict, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit.cli import main
from rnnkit.config import apply_overrides
from rnnkit.errors import ConfigError, DataError
from rnnkit.tasks.classification.pipeline import (
    ClassificationRunConfig,
    evaluate_run,
    train_classifier,
)

GOOD = ["a wonderful film", "great acting and a great story", "loved it", "superb and moving"]
BAD = ["a dull film", "terrible acting and a boring story", "hated it", "awful and tedious"]


def write_reviews(path: Path, n: int = 120) -> Path:
    rng = np.random.default_rng(0)
    lines = ["review,stars"]
    for i in range(n):
        good = i % 2 == 0
        words = rng.choice(GOOD if good else BAD, size=2)
        lines.append(f'"{" and ".join(words)}",{"pos" if good else "neg"}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_config(data: Path, **more: str) -> ClassificationRunConfig:
    overrides = [
        f"data.data={data}",
        "data.text_column=review",
        "data.label_column=stars",
        "data.min_freq=1",
        "data.validation=0.2",
        "data.test=0.2",
        "model.hidden_size=16",
        "model.embedding_dim=8",
        "embeddings.vectors=none",
        "train.epochs=6",
        "train.lr=0.02",
        "train.batch_size=16",
        "train.device=cpu",
        "train.precision=fp32",
        *(f"{k}={v}" for k, v in more.items()),
    ]
    return apply_overrides(ClassificationRunConfig(), overrides)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("clf")
    data = write_reviews(root / "reviews.csv")
    run = train_classifier(tiny_config(data), root / "run")
    return data, run


def test_run_folder_holds_everything_needed(trained) -> None:
    _, run = trained
    names = {p.name for p in run.run_dir.iterdir()}
    assert {
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "metrics.jsonl",
        "test_metrics.json",
        "report.md",
        "loss.png",
        "confusion.png",
        "checkpoints",
    } <= names
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["task"] == "classification" and config["classes"] == ["neg", "pos"]
    assert config["split_seed"] == 0 and config["versions"]["torch"]
    assert run.test_metrics["accuracy"] >= 0.9  # the words give the label away


def test_test_metrics_of_a_bf16_run_are_the_fp32_ones_evaluate_gives(tmp_path) -> None:
    # Trained under bf16 autocast (on CPUs without a bf16 LSTM only the embedding and head run
    # bf16), scored in fp32 like `rnnkit evaluate`, down to the calibration error's digits.
    data = write_reviews(tmp_path / "reviews.csv")
    run = train_classifier(tiny_config(data, **{"train.precision": "bf16"}), tmp_path / "run")
    assert run.fit.precision == "bf16"
    again = evaluate_run(run.run_dir)
    assert again["confusion"] == run.test_metrics["confusion"]
    assert again["ece"] == pytest.approx(run.test_metrics["ece"], abs=1e-6)


def test_save_load_predict_round_trip_is_identical(trained) -> None:
    _, run = trained
    texts = ["a wonderful story", "boring and awful", "film"]
    loaded = rnnkit.load(run.run_dir)
    np.testing.assert_array_equal(loaded.predict_proba(texts), run.predictor.predict_proba(texts))
    results = loaded.predict(texts)
    assert [r["label"] for r in results[:2]] == ["pos", "neg"]
    assert set(results[0]["probabilities"]) == {"neg", "pos"}
    assert sum(results[0]["probabilities"].values()) == pytest.approx(1.0)


def test_evaluate_reproduces_the_test_split_metrics(trained) -> None:
    data, run = trained
    again = evaluate_run(run.run_dir)
    assert again["accuracy"] == run.test_metrics["accuracy"]
    assert again["confusion"] == run.test_metrics["confusion"]
    on_file = evaluate_run(run.run_dir, str(data), text_column="review", label_column="stars")
    assert on_file["n"] == 120


def test_cli_predict_and_evaluate_json(trained, capsys) -> None:
    _, run = trained
    assert main(["predict", str(run.run_dir), "loved it", "hated it", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["label"] for x in lines] == ["pos", "neg"]
    assert main(["evaluate", str(run.run_dir), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "per_class", "confusion"} <= set(metrics)


def test_refuses_to_overwrite_a_run(trained) -> None:
    data, run = trained
    with pytest.raises(ConfigError, match="already holds a run"):
        train_classifier(tiny_config(data), run.run_dir)


def test_damaged_run_folders_give_clear_errors(trained, tmp_path) -> None:
    import shutil

    _, run = trained
    broken = tmp_path / "broken"
    shutil.copytree(run.run_dir, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(DataError, match=r"model.safetensors is missing"):
        rnnkit.load(broken)
    config = json.loads((run.run_dir / "config.json").read_text())
    config["model"]["hidden_size"] = 32
    shutil.copy(run.run_dir / "model.safetensors", broken / "model.safetensors")
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match=r"weights do not match config.json: wrong shapes"):
        rnnkit.load(broken)
    with pytest.raises(DataError, match="pickled model files are refused"):
        rnnkit.load(Path(shutil.copy(run.run_dir / "model.safetensors", tmp_path / "m.pt")))
    with pytest.raises(DataError, match=r"not a run folder: config\.json is missing"):
        rnnkit.load(tmp_path)


def test_resume_continues_to_the_same_weights(tmp_path) -> None:
    from safetensors.torch import load_file

    from rnnkit.training import Callback

    class StopAfterOne(Callback):
        def on_epoch_end(self, state) -> None:
            state.stop = True

    data = write_reviews(tmp_path / "reviews.csv", n=60)
    config = tiny_config(data, **{"train.epochs": "3", "train.patience": "none"})
    train_classifier(config, tmp_path / "whole")
    train_classifier(config, tmp_path / "split", callbacks=[StopAfterOne()])
    train_classifier(config, tmp_path / "split", resume=True)
    a = load_file(tmp_path / "whole" / "checkpoints" / "last.safetensors")
    b = load_file(tmp_path / "split" / "checkpoints" / "last.safetensors")
    assert a.keys() == b.keys()
    # rank.* hold each rank's RNG states as safetensors bytes, whose header order is the
    # writer's hash-map order: compare what they hold, not their bytes
    assert all(bool((a[k] == b[k]).all()) for k in a if not k.startswith("rank."))
    for k in (k for k in a if k.startswith("rank.")):
        assert _rank_state(a[k]) == _rank_state(b[k])


def _rank_state(blob) -> tuple:
    import struct

    from safetensors.torch import load

    raw = bytes(blob.numpy())
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    tensors = {k: v.tolist() for k, v in load(raw).items()}
    return header.get("__metadata__"), tensors


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, ["--cell", "lstn"], "argument --cell: invalid choice: 'lstn'"),
        (None, ["--set", "model.cel=gru"], "did you mean 'model.cell'?"),
        ("reviews", ["--text-column", "body"], "no column 'body'"),
        ("empty", [], "the file is empty"),
        ("one_class", [], "every label is 'pos'; a classifier needs at least two classes"),
    ],
)
def test_bad_input_is_one_line_without_traceback(tmp_path, make, args, message) -> None:
    data = tmp_path / "data.csv"
    if make == "empty":
        data.write_text("")
    elif make == "one_class":
        data.write_text("review,stars\n" + "".join(f"nice {i},pos\n" for i in range(20)))
    else:
        write_reviews(data)
    base = ["train", "classifier", "--data", str(data), "--out", str(tmp_path / "run")]
    columns = [] if "--text-column" in args else ["--text-column", "review"]
    proc = _cli(*base, *columns, "--label-column", "stars", "--embeddings", "none", *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1, proc.stderr


@pytest.mark.slow
@pytest.mark.network
def test_real_data_with_glove_one_epoch(tmp_path) -> None:
    config = apply_overrides(
        ClassificationRunConfig(),
        ["train.epochs=1", "model.hidden_size=32", "train.device=cpu", "train.precision=fp32"],
    )
    run = train_classifier(config, tmp_path / "rt")
    saved = json.loads((run.run_dir / "config.json").read_text())
    assert saved["embeddings_coverage"]["found"] > 0.9 * saved["embeddings_coverage"]["total"]
    assert run.test_metrics["n"] == 1280  # 740 fresh + 540 rotten
    assert run.test_metrics["accuracy"] > 0.65
