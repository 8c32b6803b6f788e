"""Training speed: rnnkit's loop against the tutorial loop, on real reviews, same model size.

    python benchmarks/bench_train.py [--data rotten-tomatoes] [--epochs 5]

(a) tutorial: random-order batches padded to the batch maximum, `pack_padded_sequence`, fp32,
    a bidirectional `nn.LSTM`, final hidden states -> linear (the PyTorch sentiment tutorials).
(b) rnnkit: length-bucketed padded batches through `RecurrentEncoder`'s fused kernels, exact
    final states, same sizes; fp32, and bf16 autocast where the CPU has bf16 LSTM kernels.

Prints tokens/s of one epoch for each, the speed-up, test accuracy after `--epochs` epochs, and
achieved GFLOP/s (useful LSTM FLOPs on real tokens) against a large fp32 matrix product measured
in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, matmul_gflops, table

from rnnkit.data import load_dataset
from rnnkit.models.classifier import ClassifierConfig, TextClassifier
from rnnkit.tasks.classification.pipeline import ClassificationObjective, encode, make_loader
from rnnkit.text import TextEncoder
from rnnkit.training import Callback, EvalContext, TrainConfig, TrainState, fit
from rnnkit.training.precision import cpu_supports_bf16_lstm, resolve_precision


class EpochTimer(Callback):
    """Training time of each epoch, evaluation excluded."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_epoch_begin(self, state: TrainState) -> None:
        self.start = self.last = time.perf_counter()

    def on_step(self, state: TrainState) -> None:
        self.last = time.perf_counter()

    def on_epoch_end(self, state: TrainState) -> None:
        self.times.append(self.last - self.start)


class TutorialModel(nn.Module):
    """The classic tutorial classifier: packed BiLSTM, concatenated final hidden states."""

    def __init__(self, vocab: int, emb: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=0)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(
            self.embedding(ids), lengths, batch_first=True, enforce_sorted=False
        )
        _, (h, _) = self.lstm(packed)
        return self.head(self.dropout(torch.cat([h[-2], h[-1]], dim=1)))


def tutorial_loader(ids, labels, batch_size, shuffle):
    data = list(zip(ids, labels, strict=True))

    def collate(items):
        seqs = [torch.tensor(s) for s, _ in items]
        return (
            pad_sequence(seqs, batch_first=True),
            torch.tensor([len(s) for s in seqs]),
            torch.tensor([y for _, y in items]),
        )

    g = torch.Generator().manual_seed(0)
    return torch.utils.data.DataLoader(
        data, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=g
    )


def tutorial_epoch(model, loader, optimizer) -> tuple[float, int]:
    model.train()
    start, tokens = time.perf_counter(), 0
    for ids, lengths, labels in loader:
        loss = F.cross_entropy(model(ids, lengths), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tokens += int(lengths.sum())
    return time.perf_counter() - start, tokens


def tutorial_accuracy(model, loader) -> float:
    model.eval()
    right = total = 0
    with torch.no_grad():
        for ids, lengths, labels in loader:
            right += int((model(ids, lengths).argmax(1) == labels).sum())
            total += len(labels)
    return right / total


def lstm_flops_per_token(emb: int, hidden: int, directions: int) -> float:
    # forward: 4 gates x (input + recurrent) matmuls = 2 * 4H(E+H) flops; backward ~ 2x forward.
    return 3 * directions * 2 * 4 * hidden * (emb + hidden)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="rotten-tomatoes")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    ds = load_dataset(args.data)
    splits = ds.split(seed=0)
    classes = ds.classes
    index = {c: i for i, c in enumerate(classes)}
    encoder = TextEncoder.build(splits.train.texts, tokenizer="basic_english", min_freq=2)
    train_ids = encode(encoder, splits.train.texts, None)
    test_ids = encode(encoder, splits.test.texts, None)
    val_ids = encode(encoder, splits.validation.texts, None)
    train_y = [index[y] for y in splits.train.labels]
    test_y = [index[y] for y in splits.test.labels]
    val_y = [index[y] for y in splits.validation.labels]
    emb, hidden, bs = 50, args.hidden_size, args.batch_size
    real_tokens = sum(len(s) for s in train_ids)
    flops = lstm_flops_per_token(emb, hidden, 2) * real_tokens
    peak = matmul_gflops()

    rows = []
    # (a) the tutorial loop
    torch.manual_seed(0)
    model = TutorialModel(len(encoder.vocab), emb, hidden, len(classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_loader = tutorial_loader(train_ids, train_y, bs, shuffle=True)
    epoch_times = [tutorial_epoch(model, train_loader, opt)[0] for _ in range(args.epochs)]
    print(f"tutorial epochs: {[round(t, 1) for t in epoch_times]}", flush=True)
    acc = tutorial_accuracy(model, tutorial_loader(test_ids, test_y, bs, shuffle=False))
    base = min(epoch_times)
    rows.append(("tutorial: random order, packed, fp32", base, acc))

    # (b) rnnkit, fp32 and bf16
    precisions = ["fp32", "bf16"]
    for precision in precisions:
        torch.manual_seed(0)
        cfg = ClassifierConfig(
            vocab_size=len(encoder.vocab),
            num_classes=len(classes),
            embedding_dim=emb,
            hidden_size=hidden,
            pooling="last",
            embedding_dropout=0.0,
        )
        model = TextClassifier(cfg)
        train_cfg = TrainConfig(
            epochs=args.epochs,
            batch_size=bs,
            lr=3e-3,
            precision=precision,
            device="cpu",
            patience=None,
        )
        loaders = [
            make_loader(i, y, bs, shuffle=s, seed=0, pad_id=0)
            for i, y, s in ((train_ids, train_y, True), (val_ids, val_y, False))
        ]
        task = ClassificationObjective(classes)
        timer = EpochTimer()
        fit(model, task, loaders[0], loaders[1], train_cfg, callbacks=[timer])
        per_epoch = min(timer.times)  # the first epoch includes warm-up
        ctx = EvalContext(torch.device("cpu"), resolve_precision(precision, torch.device("cpu")))
        acc = task.evaluate(
            model, make_loader(test_ids, test_y, bs, shuffle=False, seed=0, pad_id=0), ctx
        )["accuracy"]
        label = f"rnnkit: buckets, padded fused, {precision}"
        if precision == "bf16" and not cpu_supports_bf16_lstm():
            label += " (LSTM kernel in fp32: no bf16 LSTM on this CPU)"
        rows.append((label, per_epoch, acc))

    print(f"machine: {machine()}")
    print(
        f"data: {args.data}, {len(train_ids)} training texts, {real_tokens:,} tokens; "
        f"BiLSTM {hidden}, embedding {emb}, batch {bs}, {args.epochs} epochs"
    )
    print(f"large fp32 matmul: {peak:.0f} GFLOP/s\n")
    print(
        table(
            ["loop", "epoch s", "tokens/s", "speed-up", "GFLOP/s", "% of matmul", "test acc"],
            [
                (
                    name,
                    f"{s:.2f}",
                    f"{real_tokens / s:,.0f}",
                    f"{base / s:.1f}x",
                    f"{flops / s / 1e9:.1f}",
                    f"{100 * flops / s / 1e9 / peak:.0f}%",
                    f"{acc:.4f}",
                )
                for name, s, acc in rows
            ],
        )
    )


if __name__ == "__main__":
    main()
