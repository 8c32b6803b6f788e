"""The tutorial PyTorch loop: a packed BiLSTM over GloVe 50d, on rnnkit's classification splits.

    .venv/bin/python benchmarks/peers/tutorial_classifier.py --data rotten-tomatoes \\
        [--epochs 10] [--max-minutes 10] [--splits runs/peers/splits]

(plain PyTorch and NumPy only: runs in rnnkit's .venv or the keras peer environment.)

Protocol: the exported train/validation/test splits of `rnnkit train classifier --data D`
(stratified, split seed 0); trained on train, the epoch with the best validation accuracy kept
(the tutorials save the best model by validation), scored once on test: accuracy and macro-F1.

The loop, as the PyTorch sentiment tutorials write it (and as `benchmarks/bench_train.py`'s
tutorial row does, copied here so this script imports nothing of rnnkit):

- torchtext's `basic_english` tokenizer (lower-case, punctuation split off), a vocabulary of the
  training words seen at least twice, `<pad>` 0 and `<unk>` 1;
- `nn.Embedding` initialised from the exported GloVe 6B 50d (words GloVe lacks: small random
  vectors) and fine-tuned; `nn.LSTM(50, 128, bidirectional=True)` over `pack_padded_sequence`;
  the two final hidden states concatenated -> dropout 0.3 -> `nn.Linear`;
- random-order batches of 64 padded with `pad_sequence`, Adam 1e-3, cross-entropy, fp32,
  at most `--epochs` epochs and `--max-minutes` of training.

Wall time counts tokenizing, building the vocabulary and embedding, training (with its per-epoch
validation) and predicting the test split.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from protocol import (
    RESULTS,
    SPLITS,
    Stopwatch,
    classification_metrics,
    read_classification,
    read_glove,
    versions,
    write_result,
)

# torchtext's `basic_english` (torchtext/data/utils.py): these substitutions, then split.
_PATTERNS = [
    (re.compile(p), r)
    for p, r in (
        (r"\'", " '  "),
        (r"\"", ""),
        (r"\.", " . "),
        (r"<br \/>", " "),
        (r",", " , "),
        (r"\(", " ( "),
        (r"\)", " ) "),
        (r"\!", " ! "),
        (r"\?", " ? "),
        (r"\;", " "),
        (r"\:", " "),
        (r"\s+", " "),
    )
]


def basic_english(text: str) -> list[str]:
    """torchtext's `basic_english` tokenizer."""
    text = text.lower()
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text.split()


class TutorialModel(nn.Module):
    """The classic tutorial classifier: packed BiLSTM, concatenated final hidden states."""

    def __init__(self, vocab: int, emb: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=0)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) ids, (B,) lengths -> (B, classes) logits."""
        packed = pack_padded_sequence(
            self.embedding(ids), lengths, batch_first=True, enforce_sorted=False
        )
        _, (h, _) = self.lstm(packed)  # h: (2, B, H)
        return self.head(self.dropout(torch.cat([h[-2], h[-1]], dim=1)))


def batches(
    ids: list[list[int]], labels: np.ndarray, size: int, shuffle: bool, generator: torch.Generator
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(padded ids, lengths, labels) batches, in random order when `shuffle`."""
    order = torch.randperm(len(ids), generator=generator) if shuffle else torch.arange(len(ids))
    out = []
    for start in range(0, len(ids), size):
        chunk = order[start : start + size].tolist()
        seqs = [torch.tensor(ids[i]) for i in chunk]
        out.append(
            (
                pad_sequence(seqs, batch_first=True),
                torch.tensor([len(s) for s in seqs]),
                torch.as_tensor(labels[chunk], dtype=torch.long),
            )
        )
    return out


def predict(model: nn.Module, data: list[tuple[torch.Tensor, ...]]) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = [model(ids, lengths).argmax(1) for ids, lengths, _ in data]
    model.train()
    return torch.cat(out).numpy()


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(0)
    data = read_classification(args.splits, args.data)
    if args.limit:  # smoke runs: the first N texts of each split
        data |= {p: (t[: args.limit], y[: args.limit]) for p, (t, y) in list(data.items())[1:]}
    classes = len(data["classes"])
    watch = Stopwatch()
    with watch("vectorize"):
        tokens = {
            p: [basic_english(t) for t in data[p][0]] for p in ("train", "validation", "test")
        }
        counts = Counter(w for text in tokens["train"] for w in text)
        vocab = ["<pad>", "<unk>", *sorted((w for w, c in counts.items() if c >= 2), key=str)]
        index = {w: i for i, w in enumerate(vocab)}
        ids = {p: [[index.get(w, 1) for w in text] or [1] for text in t] for p, t in tokens.items()}
        words, vectors = read_glove(args.splits)
        glove = {w: i for i, w in enumerate(words)}
        model = TutorialModel(len(vocab), vectors.shape[1], 128, classes)
        weight = model.embedding.weight.data
        hits = 0
        for i, word in enumerate(vocab[2:], start=2):
            row = glove.get(word)
            if row is not None:
                weight[i] = torch.from_numpy(vectors[row])
                hits += 1
        weight[0] = 0
    generator = torch.Generator().manual_seed(0)
    labels = {p: data[p][1] for p in ids}
    evaluation = {p: batches(ids[p], labels[p], 256, False, generator) for p in ("validation",)}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    best, best_state, epochs = -1.0, None, 0
    with watch("train"):
        start = time.perf_counter()
        for _ in range(args.epochs):
            for batch_ids, lengths, y in batches(
                ids["train"], labels["train"], 64, True, generator
            ):
                loss = F.cross_entropy(model(batch_ids, lengths), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            epochs += 1
            accuracy = float(
                (predict(model, evaluation["validation"]) == labels["validation"]).mean()
            )
            if accuracy > best:
                best = accuracy
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            if time.perf_counter() - start > 60 * args.max_minutes:
                break
        assert best_state is not None
        model.load_state_dict(best_state)
    with watch("predict"):
        predicted = predict(model, batches(ids["test"], labels["test"], 256, False, generator))
    metrics = classification_metrics(labels["test"], predicted, classes)
    row = {
        "name": "tutorial PyTorch loop (packed BiLSTM + GloVe)",
        **metrics,
        "seconds": watch.total,
        "phases": watch.seconds,
        "epochs": epochs,
        "best_val_accuracy": best,
    }
    print(f"{row['name']}: accuracy {metrics['accuracy']:.4f}, {watch.total:.0f} s", flush=True)
    return {
        "task": "classification",
        "data": args.data,
        "tool": "tutorial",
        "rows": [row],
        "settings": {
            "tokenizer": "torchtext basic_english, min_freq 2",
            "vocabulary": len(vocab),
            "glove_hits": hits,
            "model": "Embedding(GloVe 50d, tuned) -> packed BiLSTM 128 -> dropout 0.3 -> Linear",
            "optimizer": "Adam 1e-3, batch 64, random order",
            "epochs": args.epochs,
            "max_minutes": args.max_minutes,
            "limit": args.limit,
            "threads": torch.get_num_threads(),
        },
        "versions": versions("torch", "numpy"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, choices=["rotten-tomatoes", "clothing-reviews"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-minutes", type=float, default=10.0, help="training budget")
    parser.add_argument("--limit", type=int, help="first N texts of each split (smoke runs)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--splits", type=Path, default=SPLITS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", help="result file name (default tutorial-<data>)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    record = run(args)
    record["script_seconds"] = time.perf_counter() - started
    write_result(args.results, args.name or f"tutorial-{args.data}", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
