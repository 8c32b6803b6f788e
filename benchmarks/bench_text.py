"""Text to ids: rnnkit's `TextEncoder` vs a plain-Python torchtext-style loop, on real reviews.

Tokenises and numericalises every clothing-reviews text (22,641 reviews, ~310 characters each):

  baseline     torchtext's basic_english as its 12 regex substitutions + `str.split()`, then
               `dict.get` per token: one Python loop per text, what old tutorials run.
  HF WordLevel the same tokens through HuggingFace `tokenizers` (`Replace` normalizers, `Split`
               pre-tokenizers, a `WordLevel` model over the same vocabulary) and `encode_batch`:
               the obvious "do it in Rust" design, measured to show why rnnkit does not use it
               for word-level tokens.
  rnnkit       `TextEncoder.encode_batch` (list of lists) and `encode_batch_arrays` (flat int64
               ids + offsets), Arrow string kernels in threads.

Also: building the vocabulary (count + sort), and the `char` and `bpe` tokenizers. Every method's
ids are checked equal to the baseline's before timing. Each time is the best of `--repeats` runs,
the methods taking turns, which filters out bursts of load from other processes.

    python benchmarks/bench_text.py                 # full run, prints a markdown table
    python benchmarks/bench_text.py --limit 2000    # quick check on a subset
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow
import tokenizers
import torch

from rnnkit.data import load_dataset
from rnnkit.text import TextEncoder
from rnnkit.text.reference import torchtext_basic_english


def baseline_encode(texts: list[str], stoi: dict[str, int], unk: int) -> list[list[int]]:
    return [[stoi.get(token, unk) for token in torchtext_basic_english(t)] for t in texts]


def baseline_build(texts: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(torchtext_basic_english(text))
    return counts


def hf_wordlevel(stoi: dict[str, int]) -> Any:
    """basic_english in HuggingFace tokenizers; equal tokens (checked), lower() done in Python."""
    from tokenizers import Regex, normalizers, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers.models import WordLevel

    space = "".join(f"\\x{{{c:X}}}" for c in range(0x110000) if chr(c).isspace())
    hf = HFTokenizer(WordLevel(stoi, unk_token="<unk>"))
    hf.normalizer = normalizers.Sequence(
        [normalizers.Replace('"', ""), normalizers.Replace("<br />", " ")]
    )
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(f"[{space};:]+"), behavior="removed"),
            pre_tokenizers.Split(Regex(r"[.,()!?']"), behavior="isolated"),
        ]
    )
    return hf


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def best_times(methods: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each method over `repeats` rounds, methods taking turns in each round."""
    best = dict.fromkeys(methods, float("inf"))
    for _ in range(repeats):
        for name, fn in methods.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N texts")
    parser.add_argument("--repeats", type=int, default=3, help="runs per method; best is kept")
    args = parser.parse_args()

    texts = load_dataset("clothing-reviews").data.texts[: args.limit]
    n = len(texts)
    chars = sum(map(len, texts))

    # Vocabulary: every method below uses this one, so their ids must agree exactly.
    encoder = TextEncoder.build(texts, tokenizer="basic_english")
    stoi = {token: i for i, token in enumerate(encoder.vocab.tokens)}
    unk = encoder.unk_id
    hf = hf_wordlevel(stoi)

    def hf_encode() -> list[list[int]]:
        lowered = [t.lower() for t in texts]
        return [e.ids for e in hf.encode_batch_fast(lowered, add_special_tokens=False)]

    reference = baseline_encode(texts, stoi, unk)
    tokens = sum(map(len, reference))
    assert encoder.encode_batch(texts) == reference, "rnnkit ids differ from the baseline"
    assert encoder.encode_batch_arrays(texts).to_lists() == reference
    assert hf_encode() == reference, "HF WordLevel ids differ from the baseline"
    assert encoder.vocab == TextEncoder.build(texts).vocab

    char_encoder = TextEncoder.build(texts, tokenizer="char")
    char_stoi = {token: i for i, token in enumerate(char_encoder.vocab.tokens)}
    char_reference = [[char_stoi.get(c, unk) for c in t] for t in texts]
    assert char_encoder.encode_batch(texts) == char_reference

    bpe_train_start = time.perf_counter()
    bpe_encoder = TextEncoder.build(texts, tokenizer="bpe", vocab_size=8000)
    bpe_train_s = time.perf_counter() - bpe_train_start
    assert bpe_encoder.decode(bpe_encoder.encode(texts[0])) == texts[0]

    times = best_times(
        {
            "baseline": lambda: baseline_encode(texts, stoi, unk),
            "hf": hf_encode,
            "lists": lambda: encoder.encode_batch(texts),
            "arrays": lambda: encoder.encode_batch_arrays(texts),
            "build_baseline": lambda: baseline_build(texts),
            "build": lambda: TextEncoder.build(texts),
            "char_baseline": lambda: [[char_stoi.get(c, unk) for c in t] for t in texts],
            "char_lists": lambda: char_encoder.encode_batch(texts),
            "char_arrays": lambda: char_encoder.encode_batch_arrays(texts),
            "bpe_lists": lambda: bpe_encoder.encode_batch(texts),
            "bpe_arrays": lambda: bpe_encoder.encode_batch_arrays(texts),
        },
        args.repeats,
    )

    enc, build, char, bpe = (
        "basic_english: tokenise + ids",
        "basic_english: build vocab",
        "char: ids",
        "bpe (vocab 8,000): tokenise + ids",
    )
    baseline_of = {enc: "baseline", build: "build_baseline", char: "char_baseline"}
    rows = [
        (enc, "plain Python: torchtext regexes, dict per token", "baseline"),
        (enc, "HF tokenizers WordLevel, encode_batch", "hf"),
        (enc, "rnnkit encode_batch -> list[list[int]]", "lists"),
        (enc, "rnnkit encode_batch_arrays -> int64 ids + offsets", "arrays"),
        (build, "plain Python: torchtext regexes, Counter", "build_baseline"),
        (build, "rnnkit TextEncoder.build", "build"),
        (char, "plain Python: dict per character", "char_baseline"),
        (char, "rnnkit encode_batch -> list[list[int]]", "char_lists"),
        (char, "rnnkit encode_batch_arrays", "char_arrays"),
        (bpe, "rnnkit encode_batch (HF byte-level BPE)", "bpe_lists"),
        (bpe, "rnnkit encode_batch_arrays", "bpe_arrays"),
    ]

    print(
        f"## Text to ids: {n:,} clothing-reviews texts ({chars:,} characters, {tokens:,} "
        f"basic_english tokens)\n"
    )
    print(f"| task | method | best of {args.repeats} (s) | texts/s | vs plain Python |")
    print("|---|---|---:|---:|---:|")
    for task, method, key in rows:
        seconds = times[key]
        ratio = f"{times[baseline_of[task]] / seconds:.1f}x" if task in baseline_of else "n/a"
        print(f"| {task} | {method} | {seconds:.3f} | {n / seconds:,.0f} | {ratio} |")
    print(
        f"\nbpe training (vocab_size 8,000, once): {bpe_train_s:.2f} s. "
        "Each basic_english and char method's ids were checked equal to its baseline's."
    )
    print(
        f"\nMachine: {cpu_model()}, {os.cpu_count()} logical cores; Python "
        f"{platform.python_version()}, torch {torch.__version__}, pyarrow {pyarrow.__version__}, "
        f"tokenizers {tokenizers.__version__}, numpy {np.__version__}."
    )
    print(
        "Command: `python benchmarks/bench_text.py"
        + (f" --limit {args.limit}" if args.limit else "")
        + (f" --repeats {args.repeats}" if args.repeats != 3 else "")
        + "`"
    )


if __name__ == "__main__":
    main()
