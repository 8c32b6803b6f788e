"""`rnnkit bench`: every backend row, table and JSON, on a tiny classifier run; no timing checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnkit.apps.bench import BACKENDS
from rnnkit.cli import main
from rnnkit.config import apply_overrides


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> Path:
    from rnnkit.tasks.classification.pipeline import ClassificationRunConfig, train_classifier

    root = tmp_path_factory.mktemp("bench")
    texts = {"pos": "a wonderful film", "neg": "a dull boring film"}
    labels = ["pos", "neg"] * 20
    rows = ["review,stars"] + [f'"{texts[y]} {i % 5}",{y}' for i, y in enumerate(labels)]
    (root / "reviews.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = apply_overrides(
        ClassificationRunConfig(),
        [
            f"data.data={root / 'reviews.csv'}",
            "data.text_column=review",
            "data.label_column=stars",
            "data.min_freq=1",
            "data.validation=0.2",
            "data.test=0.2",
            "model.hidden_size=8",
            "model.embedding_dim=8",
            "embeddings.vectors=none",
            "train.epochs=1",
            "train.batch_size=16",
            "train.device=cpu",
            "train.precision=fp32",
        ],
    )
    train_classifier(config, root / "run")
    return root / "run"


def test_bench_prints_every_backend(tiny_classifier, capsys) -> None:
    code = main(["bench", str(tiny_classifier), "--repeats", "2", "--warmup", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "intra_op_num_threads" in out and "seq_len" in out
    table = [line for line in out.splitlines() if line.startswith("| ")][1:]
    for backend in BACKENDS:
        assert sum(line.startswith(f"| {backend} |") for line in table) == 2, backend  # B 1, 64


def test_bench_json_rows(tiny_classifier, capsys) -> None:
    args = ["bench", str(tiny_classifier), "--repeats", "2", "--warmup", "0"]
    assert main([*args, "--batch-sizes", "1,3", "--seq-len", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "classification" and result["seq_len"] == 5
    rows = result["rows"]
    assert [(r["backend"], r["batch_size"]) for r in rows] == [
        (b, n) for n in (1, 3) for b in BACKENDS
    ]
    for row in rows:
        if row["p50_ms"] is None:  # only bf16 on a CPU without native bf16, with the reason
            assert row["backend"] == "bf16" and row["note"].startswith("not run: no native bf16")
            continue
        assert row["p99_ms"] >= row["p50_ms"] > 0
        assert row["tokens_per_s"] == pytest.approx(row["sequences_per_s"] * 5)
        assert row["size_bytes"] > 0 and row["max_abs_diff"] < 0.1
    eager = [r for r in rows if r["backend"] == "eager fp32"]
    assert all(r["speedup"] == 1.0 and r["max_abs_diff"] == 0.0 for r in eager)


def test_bad_batch_sizes_are_one_line_errors(tiny_classifier, capsys) -> None:
    assert main(["bench", str(tiny_classifier), "--batch-sizes", "0,x"]) == 2
    assert "--batch-sizes '0,x': give positive integers" in capsys.readouterr().err
