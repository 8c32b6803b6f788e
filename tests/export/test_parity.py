"""The parity check fails loudly, naming the worst case, when an export drifts from eager."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import rnnkit
from rnnkit.errors import RnnkitError
from rnnkit.export import TOLERANCES, ParityError, export_onnx, export_torchscript
from rnnkit.export.onnx import check_onnx
from rnnkit.export.parity import check_parity
from rnnkit.export.torchscript import torchscript_runner
from rnnkit.tasks.classification.export import ClassifierGraph
from rnnkit.tasks.language_model.export import LanguageModelGraph


def test_fp32_tolerance_is_documented_per_format() -> None:
    assert TOLERANCES == {"onnx": 1e-4, "torchscript": 1e-4}
    assert issubclass(ParityError, RnnkitError)


def test_a_perturbed_weight_in_the_onnx_file_is_caught(tiny_run, tmp_path) -> None:
    run = tiny_run("classification", "lstm")
    result = export_onnx(run, tmp_path / "onnx")
    assert check_onnx(run, result.path).passed
    model = onnx.load(str(result.path))
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    weight = next(t for t in model.graph.initializer if t.name == lstm.input[1])  # W
    values = numpy_helper.to_array(weight).copy()
    values.flat[0] += 0.05
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(
        ParityError,
        match=r"bad\.onnx: onnx export does not match.*batch \d+, "
        r"length \d+, output 'logits': max diff .* > tolerance 0\.0001",
    ):
        check_onnx(run, bad)


def test_a_perturbed_torchscript_weight_is_caught(tiny_run, tmp_path) -> None:
    run = tiny_run("language-model", "gru")
    result = export_torchscript(run, tmp_path / "ts")
    module = torch.jit.load(str(result.path))
    with torch.no_grad():
        next(p for name, p in module.named_parameters() if "weight_hh" in name).add_(1e-3)
    torch.jit.save(module, str(tmp_path / "ts" / "bad.pt"))
    predictor = rnnkit.load(run)
    report = check_parity(
        predictor,
        torchscript_runner(tmp_path / "ts" / "bad.pt"),
        format="torchscript",
        long_length=25,
    )
    assert not report.passed and report.max_abs_diff > 1e-4
    assert report.worst.kind in {"random", "stream"}
    with pytest.raises(ParityError, match="torchscript export does not match"):
        report.raise_if_failed()


def test_export_refuses_a_wrong_graph_and_still_writes_the_report(
    tiny_run, tmp_path, monkeypatch
) -> None:
    original = ClassifierGraph.forward

    def drifted(self, ids, lengths):
        return original(self, ids, lengths) + 1e-3 * (lengths.unsqueeze(1) > 5)

    monkeypatch.setattr(ClassifierGraph, "forward", drifted)
    run = tiny_run("classification", "gru")
    with pytest.raises(ParityError, match=r"model\.onnx: onnx export does not match"):
        export_onnx(run, tmp_path / "onnx")
    report = json.loads((tmp_path / "onnx" / "parity.json").read_text())
    assert not report["passed"]
    assert report["worst"]["max_abs_diff"] == pytest.approx(1e-3, rel=1e-2)
    assert report["worst"]["seq_len"] > 5  # only rows longer than 5 drift


def test_streaming_case_catches_a_state_that_is_not_carried(
    tiny_run, tmp_path, monkeypatch
) -> None:
    original = LanguageModelGraph.forward

    def forgetful(self, ids, h, c=None):  # ignores the incoming state
        return original(self, ids, torch.zeros_like(h), None if c is None else torch.zeros_like(c))

    monkeypatch.setattr(LanguageModelGraph, "forward", forgetful)
    run = tiny_run("language-model", "lstm")
    with pytest.raises(ParityError):
        export_torchscript(run, tmp_path / "ts")
    cases = json.loads((tmp_path / "ts" / "parity.json").read_text())["cases"]
    stream = next(c for c in cases if c["kind"] == "stream")
    assert stream["max_abs_diff"] > 1e-3


def test_report_table_lists_every_case(tiny_run, tmp_path) -> None:
    run = tiny_run("forecasting", "rnn")
    result = export_onnx(run, tmp_path / "onnx")
    table = result.parity.table()
    assert len(table.splitlines()) == len(result.parity.cases) + 2
    assert "stream" in table and "-> ok" in table
    outputs = set().union(*(c.diffs for c in result.parity.cases))
    assert {"params", "point", "lower", "upper", "h_out"} <= outputs
    assert all(np.isfinite(c.max_abs_diff) for c in result.parity.cases)


class _Predictor:
    """The two attributes `build_graph` and `check_parity` read from a loaded run."""

    def __init__(self, model: torch.nn.Module, task: str) -> None:
        self.model, self.task = model.eval(), task


def _graph_runner(predictor: _Predictor):
    from rnnkit.export import build_graph

    graph, spec = build_graph(predictor)

    @torch.no_grad()
    def run(inputs):
        out = graph(*(torch.from_numpy(inputs[n]) for n in spec.input_names))
        out = out if isinstance(out, tuple) else (out,)
        return {n: t.numpy() for n, t in zip(spec.output_names, out, strict=True)}

    return run


@pytest.mark.parametrize(
    "options",
    [
        {"likelihood": "quantile", "num_future": 2},
        {"likelihood": "gaussian", "num_future": 0, "cell": "gru"},
        {"likelihood": "none", "num_future": 1, "cell": "rnn", "num_layers": 2},
        {"likelihood": "quantile", "quantiles": (0.25, 0.5, 0.75), "num_targets": 2},
    ],
)
def test_forecaster_graph_matches_the_model_for_every_head(options) -> None:
    from rnnkit.models.forecaster import Forecaster, ForecasterConfig

    torch.manual_seed(0)
    config = ForecasterConfig(num_features=3, horizon=4, hidden_size=6, head_size=8, **options)
    model = Forecaster(config)
    with torch.no_grad():  # a non-trivial head (it starts at zero) and calibration
        model.head[-1].weight.normal_(0, 0.3)
        model.interval_scale.fill_(1.3)
    predictor = _Predictor(model, "forecasting")
    report = check_parity(predictor, _graph_runner(predictor), format="onnx", long_length=9)
    assert report.passed, report.table()
    assert any(c.kind == "stream" for c in report.cases)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_classifier_graph_matches_the_model_on_ragged_batches(pooling, bidirectional) -> None:
    from rnnkit.models.classifier import ClassifierConfig, TextClassifier

    torch.manual_seed(0)
    config = ClassifierConfig(
        vocab_size=30,
        embedding_dim=5,
        hidden_size=6,
        num_layers=2,
        bidirectional=bidirectional,
        pooling=pooling,
        cell="lstm",
    )
    predictor = _Predictor(TextClassifier(config), "classification")
    report = check_parity(predictor, _graph_runner(predictor), format="onnx", long_length=17)
    assert report.passed, report.table()
    assert report.max_abs_diff < 1e-5
