"""Models with an output norm (`model.norm`) export and pass the parity checks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from rnnkit.export import build_graph, export_onnx, export_torchscript
from rnnkit.export.parity import check_parity
from rnnkit.models.norm import MaskedBatchNorm

sys.path.insert(0, str(Path(__file__).parents[1]))  # pytest runs with --import-mode=importlib
import tiny_runs


class _Predictor:
    """The two attributes `build_graph` and `check_parity` read from a loaded run."""

    def __init__(self, model: torch.nn.Module, task: str) -> None:
        for norm in model.modules():  # running statistics away from (0, 1)
            if isinstance(norm, MaskedBatchNorm):
                norm.running_mean.normal_(0, 0.5)
                norm.running_var.uniform_(0.5, 2.0)
        self.model, self.task = model.eval(), task


def _graph_runner(predictor: _Predictor):
    graph, spec = build_graph(predictor)

    @torch.no_grad()
    def run(inputs):
        out = graph(*(torch.from_numpy(inputs[n]) for n in spec.input_names))
        out = out if isinstance(out, tuple) else (out,)
        return {n: t.numpy() for n, t in zip(spec.output_names, out, strict=True)}

    return run


@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("task", ["classification", "forecasting", "language-model"])
def test_graphs_apply_the_norm_like_the_model(task: str, norm: str) -> None:
    from rnnkit.models.classifier import ClassifierConfig, TextClassifier
    from rnnkit.models.forecaster import Forecaster, ForecasterConfig
    from rnnkit.models.language_model import LanguageModel, LanguageModelConfig

    torch.manual_seed(0)
    if task == "classification":
        model = TextClassifier(
            ClassifierConfig(vocab_size=30, embedding_dim=5, hidden_size=6, num_layers=2, norm=norm)
        )
    elif task == "forecasting":
        config = ForecasterConfig(
            num_features=3, horizon=4, hidden_size=6, head_size=8, num_layers=2, norm=norm
        )
        model = Forecaster(config)
        torch.nn.init.normal_(model.head[-1].weight, std=0.3)  # not the zero start
    else:
        model = LanguageModel(
            LanguageModelConfig(vocab_size=13, embedding_dim=6, hidden_size=8, norm=norm)
        )
    predictor = _Predictor(model, task)
    report = check_parity(predictor, _graph_runner(predictor), format="onnx", long_length=11)
    assert report.passed, report.table()
    assert report.max_abs_diff < 1e-5


@pytest.mark.parametrize(
    ("task", "norm"),
    [("classification", "batch"), ("forecasting", "layer"), ("language-model", "batch")],
)
def test_a_normed_run_exports_to_onnx_and_torchscript(task: str, norm: str, tmp_path) -> None:
    run = tiny_runs.train(task, tmp_path, **{"model.norm": norm, "model.num_layers": "2"})
    assert json.loads((run / "config.json").read_text())["model"]["norm"] == norm
    for export, name in ((export_onnx, "onnx"), (export_torchscript, "ts")):
        result = export(run, tmp_path / name)
        parity = json.loads((tmp_path / name / "parity.json").read_text())
        assert result.parity.passed and parity["passed"] and parity["max_abs_diff"] <= 1e-4
