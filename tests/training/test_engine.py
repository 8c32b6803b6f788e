"""The engine on a tiny synthetic task: learns, clips, autocasts, stops on NaN, resumes exactly."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load, load_file

from rnnkit.data.batching import BucketBatchSampler, PadCollate, SequenceDataset
from rnnkit.models.classifier import ClassifierConfig, TextClassifier
from rnnkit.training import Callback, TrainConfig, TrainingError, TrainState, fit
from rnnkit.training.engine import EvalContext, make_optimizer
from rnnkit.training.schedule import lr_factor

X = 3  # the token whose presence is the label


def token_occurs_data(n: int, seed: int) -> tuple[list[list[int]], list[int]]:
    """Sequences of ids 4..19 with token X inserted in half of them; label = X occurs."""
    g = torch.Generator().manual_seed(seed)
    ids, labels = [], []
    for i in range(n):
        length = int(torch.randint(2, 12, (1,), generator=g))
        seq = torch.randint(4, 20, (length,), generator=g)
        label = i % 2
        if label:
            seq[int(torch.randint(0, length, (1,), generator=g))] = X
        ids.append(seq.tolist())
        labels.append(label)
    return ids, labels


def loader(ids, labels, batch_size=32, shuffle=True, seed=0):
    ds = SequenceDataset(ids, labels)
    sampler = BucketBatchSampler(ds.lengths, batch_size, shuffle=shuffle, seed=seed)
    return torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=PadCollate(0))


class TokenTask:
    monitor = "accuracy"
    monitor_mode = "max"

    def compute_loss(self, model, batch):
        return F.cross_entropy(model(batch.ids, batch.lengths).float(), batch.labels)

    def evaluate(self, model, data, ctx: EvalContext):
        model.eval()
        right = total = 0
        loss = 0.0
        with torch.no_grad():
            for batch in data:
                logits = model(batch.ids, batch.lengths).float()
                loss += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
                right += int((logits.argmax(1) == batch.labels).sum())
                total += len(batch.labels)
        model.train()
        return {"loss": loss / total, "accuracy": right / total}


def tiny_model(cell: str, seed: int = 0, **kw) -> TextClassifier:
    torch.manual_seed(seed)
    cfg = ClassifierConfig(
        vocab_size=20, num_classes=2, embedding_dim=16, cell=cell, hidden_size=24, **kw
    )
    return TextClassifier(cfg)


FAST = TrainConfig(epochs=8, batch_size=32, lr=1e-2, precision="fp32", device="cpu", patience=None)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_every_cell_learns_whether_a_token_occurs(cell: str, tmp_path) -> None:
    train, val = token_occurs_data(512, 0), token_occurs_data(256, 1)
    model = tiny_model(cell, dropout=0.0, embedding_dropout=0.0)
    result = fit(
        model, TokenTask(), loader(*train), loader(*val, shuffle=False), FAST, run_dir=tmp_path
    )
    assert result.best >= 0.97, result.records
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, 9))
    assert records[-1]["val_accuracy"] == pytest.approx(result.records[-1]["val_accuracy"])
    best = load_file(tmp_path / "model.safetensors")
    torch.testing.assert_close(best["head.weight"], model.head.weight.detach())


def test_gradient_clipping_is_applied(monkeypatch) -> None:
    seen = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):
        params = list(params)
        total = real(params, max_norm, *args, **kwargs)
        after = torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        seen.append((max_norm, float(total), float(after)))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    train = token_occurs_data(64, 0)
    config = replace(FAST, epochs=1, clip_norm=0.05, lr=1e-1)
    fit(tiny_model("lstm"), TokenTask(), loader(*train), loader(*train, shuffle=False), config)
    assert len(seen) == 2  # one per step: 64 items / 32
    assert all(max_norm == 0.05 for max_norm, _, _ in seen)
    assert any(total > 0.05 for _, total, _ in seen), "the test needs gradients above the limit"
    assert all(after <= 0.05 * 1.001 for _, _, after in seen)


def test_no_clipping_when_turned_off(monkeypatch) -> None:
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *a, **k: pytest.fail("clipped"))
    train = token_occurs_data(32, 0)
    config = replace(FAST, epochs=1, clip_norm=None)
    fit(tiny_model("gru"), TokenTask(), loader(*train), loader(*train, shuffle=False), config)


def test_the_optimizer_is_fused_on_cpu_and_follows_the_config() -> None:
    model = torch.nn.Linear(3, 2)
    adamw = make_optimizer(model, TrainConfig(lr=0.1, weight_decay=0.2), torch.device("cpu"))
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.defaults["fused"] and adamw.defaults["lr"] == 0.1
    assert adamw.defaults["weight_decay"] == 0.2
    adam = make_optimizer(model, TrainConfig(optimizer="adam"), torch.device("cpu"))
    assert type(adam) is torch.optim.Adam
    # the fused kernel does the update the per-tensor loop does
    torch.manual_seed(0)
    a, b = torch.nn.Linear(5, 4), torch.nn.Linear(5, 4)
    b.load_state_dict(a.state_dict())
    opt_a = make_optimizer(a, TrainConfig(lr=0.01), torch.device("cpu"))
    opt_b = torch.optim.AdamW(b.parameters(), lr=0.01, weight_decay=0.01, foreach=False)
    for _ in range(3):
        x = torch.randn(8, 5)
        for m, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_bf16_autocast_is_applied_on_cpu() -> None:
    model = tiny_model("lstm")
    dtypes = []

    def record(module, inputs, output) -> None:
        if module.training:
            dtypes.append(output.dtype)

    model.head.register_forward_hook(record)
    train = token_occurs_data(64, 0)
    result = fit(
        model,
        TokenTask(),
        loader(*train),
        loader(*train, shuffle=False),
        replace(FAST, epochs=1, precision="bf16"),
    )
    assert result.precision == "bf16"
    assert dtypes and all(d == torch.bfloat16 for d in dtypes)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32


def test_fp32_runs_without_autocast() -> None:
    model = tiny_model("gru")
    dtypes = []
    model.head.register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
    train = token_occurs_data(32, 0)
    fit(model, TokenTask(), loader(*train), loader(*train, shuffle=False), replace(FAST, epochs=1))
    assert set(dtypes) == {torch.float32}


class NanAtStep(TokenTask):
    def __init__(self, step: int) -> None:
        self.step, self.calls = step, 0

    def compute_loss(self, model, batch):
        self.calls += 1
        loss = super().compute_loss(model, batch)
        return loss * float("nan") if self.calls == self.step else loss


def test_nan_loss_stops_with_epoch_step_and_value(tmp_path) -> None:
    train = token_occurs_data(128, 0)  # 4 steps per epoch
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 2, step 6"):
        fit(
            tiny_model("gru"),
            NanAtStep(6),
            loader(*train),
            loader(*train, shuffle=False),
            replace(FAST, epochs=3),
            run_dir=tmp_path,
        )
    # The checkpoint of epoch 1 is intact and loadable.
    info = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert info["epoch"] == 1


def fit_tokens(model, config, run_dir, callbacks=(), resume=False):
    """`fit` on the token-occurs task's fixed training and validation data; returns `model`."""
    train, val = token_occurs_data(256, 0), token_occurs_data(64, 1)
    fit(
        model,
        TokenTask(),
        loader(*train, seed=config.seed),
        loader(*val, shuffle=False),
        config,
        run_dir=run_dir,
        callbacks=callbacks,
        resume=resume,
    )
    return model


class StopAfter(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, state: TrainState) -> None:
        state.stop = state.epoch >= self.epoch


def test_resume_after_epoch_one_matches_an_uninterrupted_run(tmp_path) -> None:
    config = replace(FAST, epochs=3, lr=5e-3)

    def run(run_dir, callbacks=(), resume=False, model=None):
        model = model or tiny_model("lstm", seed=7, dropout=0.3, embedding_dropout=0.1)
        return fit_tokens(model, config, run_dir, callbacks, resume)

    whole = run(tmp_path / "whole")
    run(tmp_path / "split", callbacks=[StopAfter(1)])
    records = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert len(records) == 1
    resumed = run(tmp_path / "split", resume=True, model=tiny_model("lstm", seed=99))
    ckpt_whole = load_file(tmp_path / "whole" / "checkpoints" / "last.safetensors")
    ckpt_split = load_file(tmp_path / "split" / "checkpoints" / "last.safetensors")
    for key in ckpt_whole:
        if key.startswith("rank."):  # Python's and NumPy's generators are the process's own
            whole_rng = load(bytes(ckpt_whole[key].numpy()))["rng.torch"]
            split_rng = load(bytes(ckpt_split[key].numpy()))["rng.torch"]
            torch.testing.assert_close(split_rng, whole_rng, rtol=0, atol=0)
            continue
        torch.testing.assert_close(ckpt_split[key], ckpt_whole[key], rtol=0, atol=0)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert len((tmp_path / "split" / "metrics.jsonl").read_text().splitlines()) == 3


class CrashAt(Callback):
    """Raise inside the step loop, as a crash would stop the process mid-epoch."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, state: TrainState) -> None:
        if state.step == self.step:
            raise KeyboardInterrupt(f"crash at step {state.step}")


@pytest.mark.parametrize("crash_step", [3, 9, 14])
def test_a_crash_mid_epoch_resumes_to_bitwise_equal_weights(tmp_path, crash_step) -> None:
    config = replace(FAST, epochs=3, lr=5e-3, checkpoint_every=2, batch_size=48)

    def run(run_dir, callbacks=(), resume=False):
        model = tiny_model("lstm", seed=7, dropout=0.3, embedding_dropout=0.1)
        return fit_tokens(model, config, run_dir, callbacks, resume)

    whole = run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "split", callbacks=[CrashAt(crash_step)])
    info = json.loads(
        safe_open_metadata(tmp_path / "split" / "checkpoints" / "last.safetensors")["info"]
    )
    assert info["step"] < crash_step  # the run really resumes from before the crash
    resumed = run(tmp_path / "split", resume=True)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def safe_open_metadata(path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def test_a_damaged_last_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog) -> None:
    config = replace(FAST, epochs=3, lr=5e-3, checkpoint_seconds=0)

    def run(run_dir, callbacks=(), resume=False):
        model = tiny_model("gru", seed=7)
        return fit_tokens(model, config, run_dir, callbacks, resume)

    whole = run(tmp_path / "whole")
    run(tmp_path / "split", callbacks=[StopAfter(2)])
    last = tmp_path / "split" / "checkpoints" / "last.safetensors"
    assert (last.parent / "previous.safetensors").is_file()
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # cut short
    with caplog.at_level("WARNING"):
        resumed = run(tmp_path / "split", resume=True)  # from epoch 1's checkpoint
    assert "trying the checkpoint before it" in caplog.text
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_early_stopping_and_best_weights(tmp_path) -> None:
    train = token_occurs_data(64, 0)
    frozen_val = token_occurs_data(64, 1)

    class Flat(TokenTask):
        def evaluate(self, model, data, ctx):
            return {"loss": 1.0, "accuracy": 0.5}  # never improves after epoch 1

    result = fit(
        tiny_model("rnn"),
        Flat(),
        loader(*train),
        loader(*frozen_val, shuffle=False),
        replace(FAST, epochs=10, patience=2),
        run_dir=tmp_path,
    )
    assert result.stopped_early and len(result.records) == 3 and result.best_epoch == 1


def test_schedules() -> None:
    total = 100
    onecycle = [lr_factor("onecycle", s, total, 0.1) for s in range(total)]
    assert onecycle[9] == pytest.approx(1.0) and onecycle[0] < 0.2 and onecycle[-1] < 0.01
    assert max(onecycle) == pytest.approx(1.0)
    cosine = [lr_factor("cosine", s, total, 0.0) for s in range(total)]
    assert cosine[0] == pytest.approx(1.0) and cosine == sorted(cosine, reverse=True)
    assert all(lr_factor("constant", s, total, 0.1) == 1.0 for s in range(total))


@pytest.mark.parametrize(("seconds", "saved_after"), [(0.0, [1, 2, 3, 4]), (1e9, [1, 4])])
def test_the_run_folder_is_saved_after_the_first_and_last_epoch_and_when_due(
    tmp_path, monkeypatch, seconds, saved_after
) -> None:
    import rnnkit.training.engine as engine

    saved: list[int] = []
    real = engine.save_checkpoint
    monkeypatch.setattr(
        engine,
        "save_checkpoint",
        lambda path, m, o, info, **kw: [saved.append(info["epoch"]), real(path, m, o, info, **kw)],
    )
    train, val = token_occurs_data(128, 0), token_occurs_data(32, 1)
    model = tiny_model("gru", seed=3)
    result = fit(
        model,
        TokenTask(),
        loader(*train),
        loader(*val, shuffle=False),
        replace(FAST, epochs=4, checkpoint_seconds=seconds),
        run_dir=tmp_path,
    )
    assert saved == saved_after
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4
    # the weights left in the model (and on disk) are the best epoch's, whenever it was
    best = load_file(tmp_path / "model.safetensors")
    assert result.best_epoch is not None
    for name, tensor in best.items():
        torch.testing.assert_close(model.state_dict()[name], tensor)
