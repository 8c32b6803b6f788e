"""ONNX export: every task x cell round trips through onnxruntime in a process without rnnkit."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import rnnkit
from rnnkit.cli import main
from rnnkit.export import build_graph, example_inputs, export_onnx
from rnnkit.export.parity import eager_outputs

from .conftest import CELLS, TASKS

ROOT = Path(__file__).resolve().parents[2]

# Runs in `python -I` (no site-packages path tricks, no cwd on sys.path) with rnnkit made
# unimportable, so only numpy and onnxruntime answer.
GUARD = "import sys; sys.modules['rnnkit'] = None\n"

RUN_ORT = (
    GUARD
    + """
import json, sys
import numpy as np
import onnxruntime as ort
for job in json.loads(sys.argv[1]):
    session = ort.InferenceSession(job["model"], providers=["CPUExecutionProvider"])
    with np.load(job["inputs"]) as f:
        feed = {k: f[k] for k in f.files}
    names = [o.name for o in session.get_outputs()]
    np.savez(job["outputs"], **dict(zip(names, session.run(None, feed))))
"""
)


def run_isolated(code: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("task", TASKS)
def test_export_writes_model_sidecars_and_passing_parity(tiny_run, tmp_path, task, cell) -> None:
    run = tiny_run(task, cell)
    result = export_onnx(run, tmp_path / "onnx")
    assert result.path == tmp_path / "onnx" / "model.onnx"
    assert all(p.is_file() for p in result.files)
    names = {p.name for p in result.files}
    sidecar = "scaler.json" if task == "forecasting" else "tokenizer.json"
    assert {"model.onnx", "export.json", "parity.json", sidecar} <= names
    manifest = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert manifest["task"] == task and manifest["format"] == "onnx"
    # real recurrent operators (one per layer and direction), not an unrolled loop
    op = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[cell]
    ops = [n.op_type for n in onnx.load(str(result.path)).graph.node]
    assert ops.count(op) == manifest["recurrent_ops"][op] >= 1
    assert "Loop" not in ops
    # dynamic batch and sequence axes
    first = onnx.load(str(result.path)).graph.input[0].type.tensor_type.shape.dim
    assert first[0].dim_param == "batch"
    if task != "forecasting":
        assert first[1].dim_param == "seq"
    parity = json.loads((tmp_path / "onnx" / "parity.json").read_text())
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4
    kinds = {(c["kind"], c["batch_size"]) for c in parity["cases"]}
    assert {("random", 1), ("random", 7), ("random", 64)} <= kinds
    lengths = {c["seq_len"] for c in parity["cases"]}
    assert 1 in lengths and max(lengths) > 14  # longer than any training window here
    assert any(c["kind"] == "stream" for c in parity["cases"]) == (task != "classification")


def test_round_trips_in_onnxruntime_without_rnnkit(tiny_run, tmp_path) -> None:
    jobs, expected = [], {}
    for task in TASKS:
        for cell in CELLS:
            run = tiny_run(task, cell)
            out = tmp_path / f"{task}-{cell}"
            result = export_onnx(run, out)
            predictor = rnnkit.load(run)
            inputs = example_inputs(predictor, batch_size=5, seq_len=23, seed=7)
            np.savez(out / "inputs.npz", **inputs)
            _, spec = build_graph(predictor)
            expected[task, cell] = eager_outputs(predictor, spec, inputs)
            jobs.append(
                {
                    "model": str(result.path),
                    "inputs": str(out / "inputs.npz"),
                    "outputs": str(out / "outputs.npz"),
                }
            )
    run_isolated(RUN_ORT, json.dumps(jobs), cwd=tmp_path)
    for (task, cell), reference in expected.items():
        with np.load(tmp_path / f"{task}-{cell}" / "outputs.npz") as got:
            assert set(got.files) == set(reference)
            for name, want in reference.items():
                np.testing.assert_allclose(got[name], want, atol=1e-4, err_msg=f"{task} {cell}")


def _doc_blocks() -> list[str]:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_docs_classifier_example_matches_eager(tiny_run, tmp_path) -> None:
    run = tiny_run("classification", "lstm")
    export_onnx(run, tmp_path / "onnx")
    texts = ["a wonderful film!", "Terrible acting; a BORING story", "unseen words only"]
    out = run_isolated(GUARD + _doc_blocks()[0], str(tmp_path / "onnx"), *texts, cwd=tmp_path)
    rows = [json.loads(line) for line in out.splitlines()]
    probs = rnnkit.load(run).predict_proba(texts)
    assert [r["text"] for r in rows] == texts
    np.testing.assert_allclose([r["probabilities"] for r in rows], probs, atol=1e-5)


def test_docs_language_model_streaming_example_matches_eager(tiny_run, tmp_path) -> None:
    import torch

    run = tiny_run("language-model", "lstm")
    export_onnx(run, tmp_path / "onnx")
    prompt, steps = "ROMEO:\nBut", 12
    out = run_isolated(
        GUARD + _doc_blocks()[1], str(tmp_path / "onnx"), prompt, str(steps), cwd=tmp_path
    )
    got = json.loads(out)["continuation"]
    predictor = rnnkit.load(run)  # eager greedy decoding, one step at a time with the state
    ids = torch.tensor([predictor.encoder.encode(prompt)])
    state, text = None, ""
    with torch.no_grad():
        for _ in range(steps):
            logits, state = predictor.model(ids, state)
            next_id = int(logits[0, -1].argmax())
            text += predictor.encoder.vocab.tokens[next_id]
            ids = torch.tensor([[next_id]])
    assert got == text


def test_cli_export_prints_the_parity_table(tiny_run, tmp_path, capsys) -> None:
    run = tiny_run("forecasting", "gru")
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "stream" in out and "tolerance 0.0001 -> ok" in out and "model.onnx" in out
    assert main(["export", str(run), "--format", "torchscript", "--opset", "17"]) == 2
    assert "--opset applies to --format onnx" in capsys.readouterr().err
    assert main(["export", str(run), "--out", str(run)]) == 2
    assert "is the run folder itself" in capsys.readouterr().err


def test_cli_quantize_writes_the_int8_model_beside_the_fp32_export(
    tiny_run, tmp_path, capsys
) -> None:
    run = tiny_run("classification", "lstm")
    args = ["export", str(run), "--quantize", "int8", "--out", str(tmp_path / "q")]
    assert main([*args, "--quantize-method", "torch-dynamic", "--format", "onnx"]) == 2
    assert "writes torchscript, not --format onnx" in capsys.readouterr().err
    assert main(["export", str(run), "--quantize-method", "bf16"]) == 2
    assert "--quantize-method needs --quantize int8" in capsys.readouterr().err
    assert main([*args, "--allow-metric-change"]) == 0
    out = capsys.readouterr().out
    assert "fp32 onnx parity: worst" in out and "model.int8.onnx" in out
    assert (tmp_path / "q" / "model.int8.onnx").is_file()
    assert (tmp_path / "q" / "parity.json").is_file()
