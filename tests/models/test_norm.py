"""Output norms (`model.norm`): padding never enters batch statistics, every cell x direction x
depth keeps padded/packed parity, and every path that walks the layers itself applies them."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from rnnkit.errors import ConfigError
from rnnkit.models.classifier import ClassifierConfig, TextClassifier
from rnnkit.models.encoder import EncoderConfig, RecurrentEncoder
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.models.lean import LeanEncoder
from rnnkit.models.norm import NORMS, GroupedLayerNorm, MaskedBatchNorm
from rnnkit.run_folder import load_weights
from rnnkit.training.checkpoint import save_weights

CELLS = ("rnn", "lstm", "gru")
NORMED = ("layer", "batch")


def _real(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    return torch.arange(steps)[None, :] < lengths[:, None]  # (B, T)


def _randomize_running_stats(module: torch.nn.Module) -> None:
    """Running statistics away from (0, 1), so eval-mode paths that skip them are caught."""
    for norm in module.modules():
        if isinstance(norm, MaskedBatchNorm):
            norm.running_mean.normal_(0, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
        if isinstance(norm, MaskedBatchNorm | GroupedLayerNorm):
            norm.weight.data.normal_(1, 0.3)
            norm.bias.data.normal_(0, 0.3)


# --- MaskedBatchNorm ---------------------------------------------------------------------------


def test_batch_statistics_ignore_padding() -> None:
    torch.manual_seed(0)
    lengths = torch.tensor([5, 2, 3])
    real = _real(lengths, 5)
    x = torch.randn(3, 5, 4) * 2 + 1
    huge = x.masked_fill(~real.unsqueeze(-1), 1e6)  # padded steps hold huge values
    zeros = x.masked_fill(~real.unsqueeze(-1), 0.0)
    a, b = MaskedBatchNorm(4).train(), MaskedBatchNorm(4).train()
    out_huge, out_zeros = a(huge, lengths), b(zeros, lengths)
    torch.testing.assert_close(out_huge[real], out_zeros[real], rtol=0, atol=0)
    torch.testing.assert_close(a.running_mean, b.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(a.running_var, b.running_var, rtol=0, atol=0)
    # ... and equal to statistics taken by hand over the 10 real steps only
    steps = x[real]  # (10, 4)
    mean, var = steps.mean(0), steps.var(0, unbiased=False)
    torch.testing.assert_close(a.running_mean, 0.1 * mean)
    torch.testing.assert_close(a.running_var, 0.9 + 0.1 * steps.var(0, unbiased=True))
    torch.testing.assert_close(out_huge[real], (steps - mean) / torch.sqrt(var + 1e-5))
    # The check has teeth: statistics over every position (padding in) are far from these.
    everything = zeros.reshape(-1, 4)
    assert (everything.mean(0) - mean).abs().max() > 0.1
    assert (everything.var(0, unbiased=False) - var).abs().max() > 0.1


def test_padding_gets_no_gradient_through_the_statistics() -> None:
    torch.manual_seed(0)
    lengths = torch.tensor([4, 1, 2])
    real = _real(lengths, 4)
    x = torch.randn(3, 4, 5, requires_grad=True)
    MaskedBatchNorm(5).train()(x, lengths)[real].square().sum().backward()
    assert x.grad is not None
    assert (x.grad[~real] == 0).all() and (x.grad[real] != 0).any()


def test_eval_uses_running_statistics_and_takes_single_steps() -> None:
    torch.manual_seed(0)
    norm = MaskedBatchNorm(3)
    _randomize_running_stats(norm)
    norm.eval()
    x = torch.randn(2, 4, 3)
    want = (x - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps)
    want = want * norm.weight + norm.bias
    torch.testing.assert_close(norm(x), want)
    torch.testing.assert_close(norm(x[:, 2]), want[:, 2])  # (B, F), the one-step paths
    before = norm.running_mean.clone()
    norm(x)
    torch.testing.assert_close(norm.running_mean, before, rtol=0, atol=0)  # eval updates nothing


def test_grouped_layer_norm_normalises_each_block_apart() -> None:
    x = torch.randn(2, 3, 6)
    grouped = GroupedLayerNorm(6, groups=2)
    one = torch.nn.functional.layer_norm
    want = torch.cat([one(x[..., :3], (3,)), one(x[..., 3:], (3,))], dim=-1)
    torch.testing.assert_close(grouped(x), want)
    torch.testing.assert_close(GroupedLayerNorm(6)(x), one(x, (6,)))


def test_config_errors_list_the_valid_norms() -> None:
    assert list(NORMS) == ["none", "layer", "batch"]
    with pytest.raises(
        ConfigError, match="unknown norm 'group'; choose one of: none, layer, batch"
    ):
        EncoderConfig(norm="group")
    with pytest.raises(ConfigError, match="unknown norm 'batchnorm'"):
        ClassifierConfig(norm="batchnorm")
    with pytest.raises(ConfigError, match="norm_groups must divide the 8 output features"):
        ForecasterConfig(hidden_size=8, norm="layer", norm_groups=3)


def test_no_norm_adds_no_tensors() -> None:
    """Old run folders' state dicts load unchanged: norm "none" builds no module."""
    plain = RecurrentEncoder(EncoderConfig(input_size=3, hidden_size=4, num_layers=2))
    assert not hasattr(plain, "norms")
    assert not any("norm" in k for k in plain.state_dict())
    batch = RecurrentEncoder(EncoderConfig(input_size=3, hidden_size=4, num_layers=2, norm="batch"))
    assert {k for k in batch.state_dict() if k.startswith("norms.")} == {
        f"norms.{i}.{n}"
        for i in range(2)
        for n in ("weight", "bias", "running_mean", "running_var")
    }
    x = torch.randn(2, 3, 3)
    torch.testing.assert_close(plain.normalize(0, x), x, rtol=0, atol=0)


# --- the encoder: every cell x direction x depth x norm ------------------------------------


@pytest.mark.parametrize(
    ("cell", "bidirectional", "num_layers", "norm"),
    list(itertools.product(CELLS, [False, True], [1, 2], NORMED)),
)
def test_every_cell_direction_and_depth(cell, bidirectional, num_layers, norm) -> None:
    torch.manual_seed(0)
    config = EncoderConfig(
        cell=cell,
        input_size=3,
        hidden_size=4,
        num_layers=num_layers,
        bidirectional=bidirectional,
        norm=norm,
    )
    encoder = RecurrentEncoder(config).train()
    _randomize_running_stats(encoder)
    start = {k: v.clone() for k, v in encoder.state_dict().items()}
    x, lengths = torch.randn(4, 6, 3), torch.tensor([6, 2, 5, 1])
    real = _real(lengths, 6)
    padded, padded_state = encoder(x, lengths)
    assert padded.shape == (4, 6, 4 * (2 if bidirectional else 1))
    padded[real].square().sum().backward()  # backward reaches every weight, the norms' included
    grads = {name: p.grad.clone() for name, p in encoder.named_parameters()}
    for name, grad in grads.items():
        assert torch.isfinite(grad).all(), name
    assert all(p.grad.abs().sum() > 0 for p in encoder.norms.parameters())
    after_padded = {k: v.clone() for k, v in encoder.state_dict().items()}
    encoder.zero_grad()
    with torch.no_grad():
        encoder.load_state_dict(start)
    packed, packed_state = encoder(x, lengths, packed=True)
    packed[real].square().sum().backward()
    torch.testing.assert_close(padded[real], packed[real], rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(_parts(padded_state), _parts(packed_state), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)
    for name, value in encoder.state_dict().items():  # the same running statistics
        torch.testing.assert_close(value, after_padded[name], rtol=1e-5, atol=1e-6)
    for name, p in encoder.named_parameters():  # and the same gradients
        torch.testing.assert_close(p.grad, grads[name], rtol=1e-4, atol=1e-4)
    # Eval: deterministic, and padded still equals packed.
    encoder.eval()
    with torch.no_grad():
        first, _ = encoder(x, lengths)
        second, _ = encoder(x, lengths)
        packed, _ = encoder(x, lengths, packed=True)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first[real], packed[real], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("norm", NORMED)
def test_the_state_is_never_normalised(cell: str, norm: str) -> None:
    """One layer's final state is the same with or without a norm on its output."""
    torch.manual_seed(0)
    normed = RecurrentEncoder(EncoderConfig(cell=cell, input_size=3, hidden_size=4, norm=norm))
    plain = RecurrentEncoder(EncoderConfig(cell=cell, input_size=3, hidden_size=4))
    plain.load_state_dict(normed.state_dict(), strict=False)
    x, lengths = torch.randn(3, 5, 3), torch.tensor([5, 3, 2])
    with torch.no_grad():
        out, state = normed(x, lengths)
        raw, want = plain(x, lengths)
    for mine, theirs in zip(_parts(state), _parts(want), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    assert not torch.allclose(out, raw)


def _parts(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


# --- the models: build, train a step, save and load --------------------------------------------


def _train_step(model: torch.nn.Module, loss_fn) -> None:
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = loss_fn()
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    for name in before:
        if ".norms." in name:
            assert not torch.equal(before[name], after[name]), f"{name} did not train"


def _round_trip(model: torch.nn.Module, build, tmp_path, call) -> None:
    save_weights(model, tmp_path / "model.safetensors")
    loaded = build()
    load_weights(loaded, tmp_path)  # every tensor checked against the model built from config
    model.eval(), loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(call(loaded), call(model), rtol=0, atol=0)


@pytest.mark.parametrize("norm", NORMED)
def test_classifier_trains_and_round_trips(norm: str, tmp_path) -> None:
    torch.manual_seed(0)
    config = ClassifierConfig(
        vocab_size=20, embedding_dim=5, hidden_size=6, num_layers=2, norm=norm, pooling="mean"
    )
    model = TextClassifier(config)
    ids, lengths = torch.randint(1, 20, (4, 7)), torch.tensor([7, 3, 5, 2])
    labels = torch.tensor([0, 1, 1, 0])
    ce = torch.nn.functional.cross_entropy
    _train_step(model, lambda: ce(model(ids, lengths), labels))
    _round_trip(model, lambda: TextClassifier(config), tmp_path, lambda m: m(ids, lengths))


@pytest.mark.parametrize("norm", NORMED)
def test_forecaster_trains_and_round_trips(norm: str, tmp_path) -> None:
    torch.manual_seed(0)
    config = ForecasterConfig(
        hidden_size=6, head_size=8, num_layers=2, num_features=3, horizon=4, norm=norm
    )
    model = Forecaster(config)
    torch.nn.init.normal_(model.head[-1].weight, std=0.3)  # the zero start passes no gradient
    x, future, base = torch.randn(5, 9, 3), torch.zeros(5, 4, 0), torch.randn(5, 4, 1)
    target = torch.randn(5, 4, 1)
    _train_step(model, lambda: model.loss(model(x, future, base)[0], target))
    _round_trip(model, lambda: Forecaster(config), tmp_path, lambda m: m(x, future, base)[0])


@pytest.mark.parametrize("norm", NORMED)
def test_language_model_trains_and_round_trips(norm: str, tmp_path) -> None:
    torch.manual_seed(0)
    config = LanguageModelConfig(
        vocab_size=11, embedding_dim=6, hidden_size=8, num_layers=2, norm=norm
    )
    model = LanguageModel(config)
    ids = torch.randint(0, 11, (3, 10))
    ce = torch.nn.functional.cross_entropy
    _train_step(model, lambda: ce(model(ids[:, :-1])[0].reshape(-1, 11), ids[:, 1:].reshape(-1)))
    _round_trip(model, lambda: LanguageModel(config), tmp_path, lambda m: m(ids)[0])


# --- paths that walk the layers themselves ---------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("norm", NORMED)
def test_language_model_single_steps_match_the_fused_pass(cell: str, norm: str) -> None:
    torch.manual_seed(0)
    config = LanguageModelConfig(
        vocab_size=11, embedding_dim=6, cell=cell, hidden_size=8, num_layers=2, norm=norm
    )
    model = LanguageModel(config)
    _randomize_running_stats(model)
    model.eval()  # one-token calls take the cell-function path (`_step`)
    ids = torch.randint(0, 11, (4, 9))
    with torch.no_grad():
        whole, final = model(ids)
        logits, state = model(ids[:, :1])
        steps = [logits]
        for t in range(1, 9):
            logits, state = model(ids[:, t : t + 1], state)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole)
    for mine, theirs in zip(_parts(state), _parts(final), strict=True):
        torch.testing.assert_close(mine, theirs)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("norm", NORMED)
def test_lean_step_matches_the_module(cell: str, num_layers: int, norm: str) -> None:
    torch.manual_seed(0)
    config = EncoderConfig(cell=cell, input_size=3, hidden_size=6, num_layers=num_layers, norm=norm)
    encoder = RecurrentEncoder(config)
    _randomize_running_stats(encoder)
    encoder.eval()
    x = torch.randn(1, 9, 3)
    with torch.no_grad():
        outputs, final = encoder(x)
    lean = LeanEncoder(encoder)
    state = lean.zero_state(extra=2)
    for t in range(9):
        state.x[:] = x[0, t].numpy()
        out = lean.step(state)
        np.testing.assert_allclose(out, outputs[0, t].numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(state.tail[:6], out, rtol=0, atol=0)  # what a head reads
    for mine, theirs in zip(_parts(lean.to_torch(state)), _parts(final), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)  # h is not normalised
    # A state loaded from PyTorch's layout continues as the module does.
    fresh = lean.zero_state(extra=2)
    lean.load_torch(fresh, final)
    np.testing.assert_allclose(fresh.tail[:6], outputs[0, -1].numpy(), rtol=1e-5, atol=1e-5)
    more = torch.randn(1, 3, 3)
    with torch.no_grad():
        want, _ = encoder(more, state=final)
    for t in range(3):
        fresh.x[:] = more[0, t].numpy()
        np.testing.assert_allclose(lean.step(fresh), want[0, t].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("norm", NORMED)
def test_streaming_forecaster_with_a_norm_matches_its_fused_warm_up(norm: str) -> None:
    import pandas as pd

    from rnnkit.tasks.forecasting.streaming import StreamingForecaster
    from rnnkit.tasks.forecasting.windows import Scaler, SeriesLayout

    rng = np.random.default_rng(0)
    index = pd.date_range("2022-01-03", periods=20, freq="D")
    frame = pd.DataFrame({"y": 50 + 10 * rng.standard_normal(20)}, index=index)
    layout = SeriesLayout("D", ("y",), (), (), 3, True)
    scaler = Scaler.fit({"s": frame}, ["y"], "standard")
    torch.manual_seed(0)
    config = ForecasterConfig(
        hidden_size=6, head_size=8, num_layers=2, num_features=layout.num_features,
        num_future=layout.num_future, horizon=4, norm=norm,
    )  # fmt: skip
    model = Forecaster(config)
    _randomize_running_stats(model)
    torch.nn.init.normal_(model.head[-1].weight, std=0.3)
    model.eval()
    stepped = StreamingForecaster(model, layout, scaler.params["s"])
    stepped.start = index[0]
    for value in frame["y"].to_numpy():
        last = stepped.update(float(value))
    fused = StreamingForecaster(model, layout, scaler.params["s"])
    warm = fused.warm_up(frame)  # one module pass, then the state loaded into the lean buffers
    np.testing.assert_allclose(warm.point, last.point, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        fused.update(51.0).point, stepped.update(51.0).point, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("norm", NORMED)
def test_merged_ensemble_with_a_norm_is_the_mean_of_its_members(cell, num_layers, norm) -> None:
    from rnnkit.tasks.forecasting.ensemble import merge_forecasters

    cfg = ForecasterConfig(
        cell=cell, hidden_size=6, num_layers=num_layers, head_size=5, num_features=3,
        num_future=2, horizon=4, norm=norm,
    )  # fmt: skip
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        member = Forecaster(cfg)
        for p in member.parameters():  # nonzero everywhere, the last layer included
            p.data.normal_(0, 0.5)
        _randomize_running_stats(member)
        members.append(member.eval())
    merged = merge_forecasters(members)
    assert merged.config.norm_groups == (3 if norm == "layer" else 1)
    x, future, base = torch.randn(2, 7, 3), torch.randn(2, 7, 4, 2), torch.randn(2, 7, 4, 1)
    with torch.no_grad():
        want = torch.stack([m(x, future, base, all_steps=True)[0] for m in members])
        got, _ = merged(x, future, base, all_steps=True)
    torch.testing.assert_close(got, want.mean(0), atol=1e-5, rtol=1e-5)


# --- ULMFiT's layer groups, flags ------------------------------------------------------------


def test_gradual_unfreezing_groups_hold_the_norms() -> None:
    from rnnkit.tasks.classification.transfer import classifier_shape, layer_groups

    model = TextClassifier(
        ClassifierConfig(vocab_size=9, embedding_dim=4, hidden_size=4, num_layers=2, norm="batch")
    )
    grouped = {id(p) for group in layer_groups(model) for p in group}
    pretrained = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    assert {id(p) for p in pretrained} == grouped
    top = {id(p) for p in layer_groups(model)[0]}
    assert {id(p) for p in model.encoder.norms[1].parameters()} <= top
    lm = {"model": {"cell": "gru", "embedding_dim": 4, "hidden_size": 4, "num_layers": 2}}
    assert classifier_shape(ClassifierConfig(), lm).norm == "none"  # LM runs from before norms
    lm["model"]["norm"] = "layer"
    assert classifier_shape(ClassifierConfig(norm="batch"), lm).norm == "layer"


@pytest.mark.parametrize("task", ["classification", "forecasting", "language-model"])
def test_norm_flag_and_option_set_model_norm(task: str) -> None:
    from rnnkit.api import option_keys
    from rnnkit.tasks import get_task

    spec = get_task(task)
    assert option_keys(spec, {"norm": "layer"}) == {"model.norm": "layer"}
    assert spec.options["norm"] == "model.norm"


def test_a_classifier_starts_from_a_normed_language_model(tmp_path) -> None:
    """`--init-from` takes the LM's norm with its encoder; the norms' tensors are copied too."""
    import sys
    from pathlib import Path

    from safetensors.torch import load_file

    sys.path.insert(0, str(Path(__file__).parents[1]))  # pytest runs with --import-mode=importlib
    import tiny_runs

    lm = tiny_runs.train("language-model", tmp_path, **{"model.norm": "batch"})
    clf = tiny_runs.train("classification", tmp_path, **{"transfer.init_from": str(lm)})
    saved = json.loads((clf / "config.json").read_text())["model"]
    assert saved["norm"] == "batch" and saved["bidirectional"] is False
    assert any(k.startswith("encoder.norms.0.") for k in load_file(clf / "model.safetensors"))
