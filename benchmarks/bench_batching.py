"""Padding and LSTM training time: random-order batches vs length buckets, on real reviews.

Tokenises the clothing-reviews texts, then runs one LSTM forward + backward pass over all of them
(embedding 64 -> 1-layer LSTM, hidden 128 -> linear head on the last real step; fp32, padded input,
no packing) with batches from:

  (a) random order, each batch padded to its longest member (what tutorials do);
  (b) `BucketBatchSampler` (length buckets, shuffled each epoch);
  (c) all sequences sorted by length (`shuffle=False`, evaluation order): the least padding any
      batching of these lengths can reach, to show how close (b) comes.

An LSTM over a padded (B, T) batch does B * T steps of work, so time follows the number of slots,
and the best possible speed-up of (b) over (a) is slots(a) / slots(b). Batches are collated before
the clock starts (collation time is printed apart). Strategies take turns batch by batch for
`--repeats` rounds; "seconds" sums each batch's fastest round, which filters out bursts of load
from other processes on a shared machine (the median round is printed too).

    python benchmarks/bench_batching.py                 # full run, prints a markdown table
    python benchmarks/bench_batching.py --limit 2000    # quick check on a subset
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, RandomSampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine

from rnnkit.data import load_dataset
from rnnkit.data.batching import Batch, BucketBatchSampler, PadCollate
from rnnkit.text import TextEncoder

EMBEDDING_DIM = 64
HIDDEN_SIZE = 128


class LstmClassifier(nn.Module):
    """Embedding -> LSTM -> linear head on each sequence's last real step."""

    def __init__(self, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, EMBEDDING_DIM)
        self.lstm = nn.LSTM(EMBEDDING_DIM, HIDDEN_SIZE, batch_first=True)
        self.head = nn.Linear(HIDDEN_SIZE, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(ids))  # (B, T, H)
        # Right padding: the state after the last real token sits at lengths - 1; later steps
        # ran over padding and are ignored (that wasted work is what this benchmark measures).
        last = out[torch.arange(len(ids)), lengths - 1]  # (B, H)
        return self.head(last)  # (B, C)


@dataclass
class Result:
    strategy: str
    batches: int
    slots: int
    padded_fraction: float
    collate_s: float
    seconds: float = float("nan")
    median_round_s: float = float("nan")


def load_token_ids(limit: int | None) -> tuple[list[list[int]], list[int], int, int]:
    """Token ids, label ids, vocabulary size and padding id for the clothing reviews."""
    data = load_dataset("clothing-reviews").data
    texts, labels = data.texts, data.labels
    if limit is not None:
        texts, labels = texts[:limit], labels[:limit]
    encoder = TextEncoder.build(texts, tokenizer="basic_english")
    ids_list = [list(ids) for ids in encoder.encode_batch(texts)]
    classes = {label: i for i, label in enumerate(sorted(set(labels)))}
    keep = [i for i, ids in enumerate(ids_list) if len(ids) > 0]  # an RNN needs >= 1 token
    if len(keep) < len(ids_list):
        print(f"dropped {len(ids_list) - len(keep)} reviews with no tokens")
    kept_ids, kept_labels = [ids_list[i] for i in keep], [classes[labels[i]] for i in keep]
    return kept_ids, kept_labels, len(encoder.vocab), encoder.pad_id


def collate_all(
    plan: Sequence[Sequence[int]], ids_list: list[list[int]], labels: list[int], pad_id: int
) -> tuple[list[Batch], float]:
    collate = PadCollate(pad_id=pad_id)
    start = time.perf_counter()
    batches = [collate([(ids_list[i], labels[i]) for i in indices]) for indices in plan]
    return batches, time.perf_counter() - start


def step_seconds(model: LstmClassifier, batch: Batch, loss_fn: nn.Module) -> float:
    """Seconds for one forward + backward (gradients accumulate; no optimizer step)."""
    start = time.perf_counter()
    loss_fn(model(batch.ids, batch.lengths), batch.labels).backward()
    return time.perf_counter() - start


def time_strategies(
    model: LstmClassifier, batches: dict[str, list[Batch]], repeats: int
) -> dict[str, np.ndarray]:
    """Per-batch seconds, shape (repeats, batches) per strategy, measured interleaved.

    The strategies take turns batch by batch (a1 b1 c1 a2 b2 c2 ...), so a burst of load from
    another process slows them alike instead of whichever happened to be running.
    """
    loss_fn = nn.CrossEntropyLoss()
    times = {name: np.full((repeats, len(b)), np.nan) for name, b in batches.items()}
    for round_ in range(repeats):
        model.zero_grad(set_to_none=True)
        for i in range(max(len(b) for b in batches.values())):
            for name, strategy_batches in batches.items():
                if i < len(strategy_batches):
                    times[name][round_, i] = step_seconds(model, strategy_batches[i], loss_fn)
        totals = ", ".join(f"{name} {t[round_].sum():.2f} s" for name, t in times.items())
        print(f"round {round_ + 1}: {totals}")
    return times


def padding_stats(batches: list[Batch]) -> tuple[int, float]:
    slots = sum(b.ids.numel() for b in batches)
    tokens = sum(b.num_tokens for b in batches)
    return slots, 1.0 - tokens / slots


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="use the first N reviews only")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    ids_list, labels, vocab_size, pad_id = load_token_ids(args.limit)
    lengths = np.array([len(ids) for ids in ids_list])
    print(f"machine: {machine()}")
    print(
        f"data: clothing-reviews, {len(ids_list)} non-empty reviews, {int(lengths.sum())} tokens "
        f"(mean {lengths.mean():.1f}, max {lengths.max()}), vocabulary {vocab_size}"
    )

    generator = torch.Generator().manual_seed(args.seed)
    plans = {
        "(a) random order": list(
            BatchSampler(RandomSampler(ids_list, generator=generator), args.batch_size, False)
        ),
        "(b) length buckets": list(BucketBatchSampler(lengths, args.batch_size, seed=args.seed)),
        "(c) sorted (bound)": list(BucketBatchSampler(lengths, args.batch_size, shuffle=False)),
    }
    results, batches_by_strategy = [], {}
    for name, plan in plans.items():
        batches, collate_s = collate_all(plan, ids_list, labels, pad_id)
        batches_by_strategy[name] = batches
        results.append(Result(name, len(batches), *padding_stats(batches), collate_s))

    model = LstmClassifier(vocab_size, len(set(labels)))
    warm_up = {name: b[:10] for name, b in batches_by_strategy.items()}
    time_strategies(model, warm_up, repeats=1)  # oneDNN builds its kernels on first use
    times = time_strategies(model, batches_by_strategy, args.repeats)
    for result in results:
        # Each batch's fastest round: the cost of the work itself, without other processes'.
        result.seconds = float(times[result.strategy].min(axis=0).sum())
        result.median_round_s = float(np.median(times[result.strategy].sum(axis=1)))

    base = results[0]
    print()
    print(
        "| strategy | batches | slots (B x T) | padded fraction | seconds | speed-up vs (a) "
        "| slot ratio vs (a) | median round s | collate s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.strategy} | {r.batches} | {r.slots:,} | {r.padded_fraction:.1%} "
            f"| {r.seconds:.2f} | {base.seconds / r.seconds:.2f}x | {base.slots / r.slots:.2f}x "
            f"| {r.median_round_s:.2f} | {r.collate_s:.2f} |"
        )


if __name__ == "__main__":
    main()
