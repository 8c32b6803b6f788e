"""Int8 / bf16 quantization: quantized models load, stay close to fp32, and are judged by metric."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from rnnkit.errors import ConfigError
from rnnkit.export import example_inputs, metric_change
from rnnkit.export import quantize as q
from rnnkit.export.onnx import onnx_runner

REPORT_KEYS = {
    "classification": {"accuracy", "macro_f1"},
    "language-model": {"loss", "perplexity", "bits_per_char"},
    "forecasting": {"mase", "mae", "smape"},
}


def _rel_error(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Worst output's mean absolute difference relative to its mean magnitude.

    Tiny models (8-16 units, per-tensor int8 scales) have a few outliers of ~20% of the largest
    value; the mean error is a few percent, while wrong weights or wiring give ~100%.
    """
    return max(float(np.abs(a[k] - b[k]).mean() / np.abs(a[k]).mean()) for k in a)


@pytest.mark.parametrize("task", ["classification", "language-model", "forecasting"])
def test_ort_int8_loads_matches_fp32_and_reports_the_metric(tiny_run, tmp_path, task) -> None:
    run = tiny_run(task, "lstm")
    result = q.quantize(run, tmp_path / "out", method="ort-dynamic")
    assert result.path.name == "model.int8.onnx"
    # A plain ONNX Runtime session loads it; its ops are the quantized ones.
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name in ("ids", "x")
    import onnx

    graph = onnx.load(str(result.path)).graph
    ops = {n.op_type for n in graph.node}
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops
    # Weights stored as int8 (sizes shrink ~4x on real models; tiny ones are all overhead).
    assert onnx.TensorProto.INT8 in {t.data_type for t in graph.initializer}
    feeds = example_inputs(run, batch_size=4, seq_len=9, seed=1)
    fp32 = onnx_runner(result.path.parent / "model.onnx")(feeds)
    int8 = onnx_runner(result.path)(feeds)
    assert 0 < _rel_error(fp32, int8) < 0.1  # quantized (not identical), yet close
    saved = json.loads((result.path.parent / q.REPORT_FILE).read_text())
    assert set(saved["metrics"]) == REPORT_KEYS[task]
    for values in saved["metrics"].values():
        assert set(values) == {"fp32", "quantized", "change"}
    assert saved["checked"] == q.metric_limit(task).metric and saved["passed"] is True
    manifest = json.loads((result.path.parent / "export.json").read_text())
    assert manifest["quantized"]["model_file"] == "model.int8.onnx"


def test_torch_int8_torchscript_loads_and_matches_fp32(tiny_run, tmp_path) -> None:
    run = tiny_run("classification", "lstm")
    result = q.quantize(run, tmp_path / "ts", method="torch-dynamic")
    module = torch.jit.load(str(result.path))
    text = str(module.graph)
    assert "quantized" in text  # the dynamic int8 LSTM/Linear ops, not the fp32 ones
    feeds = example_inputs(run, batch_size=5, seq_len=7, seed=2)
    ref = torch.jit.load(str(result.path.parent / "model.pt"))
    with torch.no_grad():
        args = (torch.from_numpy(feeds["ids"]), torch.from_numpy(feeds["lengths"]))
        diff = (module(*args) - ref(*args)).abs().max().item()
    assert 0 < diff < 0.1
    assert result.report.metrics.keys() == REPORT_KEYS["classification"]


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_ort_int8_for_cells_without_int8_recurrent_kernels(tiny_run, tmp_path, cell) -> None:
    # ORT has no int8 GRU/RNN: the recurrence stays fp32, the embedding shrinks.
    result = q.quantize(tiny_run("classification", cell), tmp_path / cell, method="ort-dynamic")
    import onnx

    ops = {n.op_type for n in onnx.load(str(result.path)).graph.node}
    assert cell.upper() in ops and "DequantizeLinear" in ops
    assert result.report.passed


def test_bf16_weights_and_support_line(tiny_run, tmp_path) -> None:
    supported, why = q.bf16_support()
    assert isinstance(supported, bool) and why
    result = q.quantize(tiny_run("language-model", "lstm"), tmp_path / "bf16", method="bf16")
    from safetensors import safe_open

    with safe_open(str(result.path), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}  # noqa: SIM118
    assert abs(result.report.metrics["loss"]["change"]) < 0.05


def test_metric_change_beyond_the_limit_fails_loudly_unless_allowed(
    tiny_run, tmp_path, monkeypatch
) -> None:
    run = tiny_run("classification", "lstm")
    # A limit no model can meet (any change counts as too much), to see the refusal.
    strict = q.MetricLimit("accuracy", True, -1.0, False, "test: nothing passes")
    monkeypatch.setattr(metric_change, "metric_limit", lambda task: strict)
    with pytest.raises(q.MetricChangeError, match="--allow-metric-change"):
        q.quantize(run, tmp_path / "a", method="ort-dynamic")
    report = json.loads((tmp_path / "a" / q.REPORT_FILE).read_text())
    assert report["passed"] is False and report["allowed"] is False
    # export.json names a quantized file only once it passed (or was allowed): last
    assert "quantized" not in json.loads((tmp_path / "a" / "export.json").read_text())
    result = q.quantize(run, tmp_path / "b", method="ort-dynamic", allow_metric_change=True)
    assert not result.report.passed and result.report.allowed
    assert "EXCEEDED (allowed)" in result.report.table()
    assert "quantized" in json.loads((tmp_path / "b" / "export.json").read_text())


def test_method_names_and_formats_are_checked() -> None:
    assert q.method_for() == q.DEFAULT_INT8
    assert q.method_for(format="torchscript") == "torch-dynamic"
    with pytest.raises(ConfigError, match="choose one of: ort-dynamic, torch-dynamic, bf16"):
        q.method_for("int4")
    with pytest.raises(ConfigError, match="writes onnx, not --format torchscript"):
        q.method_for("ort-dynamic", format="torchscript")
