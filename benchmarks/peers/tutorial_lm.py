"""The tutorial character-LSTM loop on rnnkit's exported shakespeare split, for a time budget.

    .venv/bin/python benchmarks/peers/tutorial_lm.py [--seconds 600] [--splits runs/peers/splits]

(plain PyTorch and NumPy only: runs in rnnkit's .venv or the keras peer environment.)

Protocol: the exported `language_model/shakespeare/{train,validation}.txt`, the contiguous split
of `rnnkit train lm --data shakespeare` (the last 10% of characters validate); the vocabulary is
the training text's characters (a validation character never seen in training maps to one
`<unk>` id). The loop is `benchmarks/bench_lm_quality.py`'s `tutorial` mode (the 1.48 of
PRODUCT.md), copied so this script imports nothing of rnnkit: embedding 64 ->
`nn.LSTM(num_layers=2)` hidden 256 -> linear; 64 random windows of 128 characters per step, state
from zeros, Adam 2e-3, fp32, trained for `--seconds` (the issue's 10 minutes). Then scored on the
whole validation part two ways, in nats per character: each 128-character window from zeros (the
tutorial's), and 16 contiguous rows read in 128-character windows with the state carried
(rnnkit's way of scoring, as `rnnkit train lm` reports its validation loss): the table's metric.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from protocol import RESULTS, SPLITS, versions, write_result

BATCH, BPTT, EVAL_ROWS = 64, 128, 16


class TutorialLM(nn.Module):
    """The tutorial char model: embedding -> nn.LSTM(num_layers=2) -> linear."""

    def __init__(self, vocab: int, embedding_dim: int = 64, hidden_size: int = 256) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers=2, batch_first=True)
        self.decoder = nn.Linear(hidden_size, vocab)

    def forward(self, ids: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """(B, T) ids -> (B, T, V) logits and the new state."""
        out, state = self.lstm(self.embedding(ids), state)  # (B, T, H)
        return self.decoder(out), state


@torch.no_grad()
def validation_loss(model: TutorialLM, ids: torch.Tensor, carry: bool) -> float:
    """Mean nats per character of `ids` (N,): EVAL_ROWS rows, BPTT-long windows."""
    model.eval()
    rows = (len(ids) - 1) // EVAL_ROWS
    inputs = ids[: rows * EVAL_ROWS].view(EVAL_ROWS, rows)  # (R, L)
    targets = ids[1 : rows * EVAL_ROWS + 1].view(EVAL_ROWS, rows)
    nats, count, state = 0.0, 0, None
    for start in range(0, rows, BPTT):
        x, y = inputs[:, start : start + BPTT], targets[:, start : start + BPTT]
        logits, state = model(x, state if carry else None)
        nats += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
        count += y.numel()
    model.train()
    return nats / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="training budget")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--splits", type=Path, default=SPLITS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", default="tutorial-shakespeare")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = args.splits / "language_model" / "shakespeare"
    text = {}
    for part in ("train", "validation"):
        with open(folder / f"{part}.txt", encoding="utf-8", newline="") as f:
            text[part] = f.read()
    started = time.perf_counter()
    chars = sorted(set(text["train"]))
    index = {c: i + 1 for i, c in enumerate(chars)}  # 0: <unk>
    train = torch.as_tensor(np.array([index[c] for c in text["train"]]), dtype=torch.long)
    val = torch.as_tensor(np.array([index.get(c, 0) for c in text["validation"]]), dtype=torch.long)
    torch.manual_seed(0)
    model = TutorialLM(len(chars) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps, train_start = 0, time.perf_counter()
    while time.perf_counter() - train_start < args.seconds:
        starts = torch.randint(0, len(train) - BPTT - 1, (BATCH,))
        rows = torch.stack([train[s : s + BPTT + 1] for s in starts.tolist()])  # (B, T + 1)
        logits, _ = model(rows[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    trained = time.perf_counter() - train_start
    carried = validation_loss(model, val, carry=True)
    from_zeros = validation_loss(model, val, carry=False)
    seconds = time.perf_counter() - started
    row = {
        "name": "tutorial char-LSTM loop (2x256)",
        "val_loss": carried,
        "val_loss_windows_from_zeros": from_zeros,
        "seconds": seconds,
        "train_seconds": trained,
        "steps": steps,
        "chars_per_s": steps * BATCH * BPTT / trained,
    }
    print(f"{row['name']}: val loss {carried:.4f} ({steps} steps), {seconds:.0f} s", flush=True)
    record = {
        "task": "language_model",
        "data": "shakespeare",
        "tool": "tutorial",
        "rows": [row],
        "settings": {
            "seconds": args.seconds,
            "vocabulary": len(chars) + 1,
            "batch": BATCH,
            "bptt": BPTT,
            "threads": torch.get_num_threads(),
        },
        "versions": versions("torch", "numpy"),
    }
    write_result(args.results, args.name, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
