"""Corpora larger than memory: tokenisation throughput and peak memory of a streamed LM run.

Writes a generated corpus of `--size` bytes (default 2 GB: English-like lines, a 4 MB block
written again and again, each copy rotated), then measures, each in a fresh child process with
an empty cache:

1. `tokenise`: the corpus's sha256, the vocabulary (a streaming pass over the training 90%), and
   the token file (`rnnkit.text.token_file.tokenize_corpus`), each timed, and the child's peak
   RSS;
2. `train`: `rnnkit train language-model` on the corpus (`data.streaming: on`), a tiny model
   for `--minutes`; the child's peak RSS (`ru_maxrss` from `os.wait4`, that child alone) and its
   wall time, tokenisation included;
3. `in memory` (with `--in-memory-mb N`): the same corpus's first N MB through the in-memory
   path (`data.streaming: off`), for the peak memory per byte that sets `STREAMING_BYTES`.

    .venv/bin/python benchmarks/bench_corpus.py                      # 2 GB, char
    .venv/bin/python benchmarks/bench_corpus.py --size 256e6 --tokenizer bpe
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, table


def write_corpus(path: Path, nbytes: int, seed: int = 0) -> int:
    """Varied English-like lines, a ~4 MB block written again and again, rotated each time."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ro", "sa", "tu", "vi", "an", "el", "or", "is", "th"]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(3000)]
    words += ["the", "and", "of", "to", "a", "in", "that", "is", "was", "he", "for"] * 40
    lines, size = [], 0
    while size < 4 << 20:
        chosen = rng.choices(words, k=rng.randint(3, 14))
        line = " ".join([chosen[0].capitalize(), *chosen[1:]]) + rng.choice(".,;!?:") + "\n"
        lines.append(line.encode("ascii"))
        size += len(line)
    written = part = 0
    with open(path, "wb") as f:
        while written < nbytes:
            k = (part * 7919) % len(lines)
            block = b"".join([f"PART {part}\n".encode(), *lines[k:], *lines[:k], b"\n"])
            f.write(block)
            written += len(block)
            part += 1
    return written


TOKENISE = """
import json, resource, sys, time
from rnnkit.text import TextEncoder
from rnnkit.text.token_file import Corpus, tokenize_corpus
corpus = Corpus.open(sys.argv[1])
t = time.perf_counter(); sha = corpus.sha256(); hashed = time.perf_counter() - t
t = time.perf_counter()
chunks = corpus.chunks(max_bytes=int(corpus.nbytes * 0.9))
encoder = TextEncoder.build_stream(chunks, tokenizer=sys.argv[2], vocab_size=8000)
vocab = time.perf_counter() - t
t = time.perf_counter(); tf = tokenize_corpus(corpus, encoder, corpus_sha256=sha, desc=None)
tokenise = time.perf_counter() - t
print(json.dumps({"hash_s": hashed, "vocab_s": vocab, "tokenise_s": tokenise,
                  "tokens": tf.tokens, "vocab_size": len(encoder.vocab)}))
"""

IN_MEMORY = """
import sys
from rnnkit.tasks.language_model.config import LMDataConfig
from rnnkit.tasks.language_model.data import load_streams
from rnnkit.tasks.language_model.batches import LMWindows
streams = load_streams(LMDataConfig(data=sys.argv[1], tokenizer=sys.argv[2], streaming="off"))
LMWindows(streams.train, 32, 32)
"""


# Runs argv[1:] and prints its peak RSS (KiB) last. A child's ru_maxrss also counts the process
# it was forked from (Linux keeps the high-water mark across exec): from this script, with torch
# imported (~220 MiB), it would be measured instead; a bare Python launches the child instead.
PEAK_OF = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
print(f"\\nmaxrss_kib={usage.ru_maxrss}", flush=True)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def child(command: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """(stdout, peak RSS in MiB, wall seconds) of one child process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", PEAK_OF, *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        status = proc.wait()
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    if status != 0:
        raise SystemExit(f"{' '.join(command[:6])} ... failed:\n{text[-3000:]}")
    text, _, peak = text.rpartition("\nmaxrss_kib=")
    return text, int(peak) / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=2e9, help="corpus bytes (default 2e9)")
    parser.add_argument("--tokenizer", default="char", choices=["char", "bpe", "basic_english"])
    parser.add_argument("--minutes", type=float, default=0.1, help="training budget")
    parser.add_argument("--in-memory-mb", type=float, default=0, help="also the in-memory path")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp folder)")
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        corpus = root / "corpus.txt"
        started = time.perf_counter()
        nbytes = write_corpus(corpus, int(args.size))
        print(f"wrote {nbytes / 1e9:.2f} GB in {time.perf_counter() - started:.1f} s")
        mb = nbytes / 1e6
        env = {**os.environ, "RNNKIT_CACHE": str(root / "cache-tokenise")}
        out, rss, _ = child([py, "-c", TOKENISE, str(corpus), args.tokenizer], env)
        t = json.loads(out.strip().splitlines()[-1])
        rows = [
            [
                "tokenise",
                f"{mb:,.0f}",
                args.tokenizer,
                f"{t['hash_s']:.1f} s ({mb / t['hash_s']:.0f} MB/s)",
                f"{t['vocab_s']:.1f} s ({0.9 * mb / t['vocab_s']:.0f} MB/s)",
                f"{t['tokenise_s']:.1f} s (**{mb / t['tokenise_s']:.0f} MB/s**)",
                f"{rss:.0f}",
                f"{t['hash_s'] + t['vocab_s'] + t['tokenise_s']:.1f} s",
            ]
        ]
        shutil.rmtree(root / "cache-tokenise", ignore_errors=True)
        env = {**os.environ, "RNNKIT_CACHE": str(root / "cache-train")}
        train = [py, "-m", "rnnkit", "train", "language-model", "--data", str(corpus)]
        train += ["--tokenizer", args.tokenizer, "--embedding-dim", "16", "--hidden-size", "32"]
        train += ["--num-layers", "1", "--epochs", "1", "--max-minutes", str(args.minutes)]
        train += ["--out", str(root / "run"), "--quiet", "--set", "sample.max_tokens=100"]
        train += ["--set", "data.streaming=on"]  # also below the auto threshold
        _, rss, seconds = child(train, env)
        record = json.loads((root / "run" / "config.json").read_text())["token_file"]
        meta = json.loads(Path(record["path"]).with_suffix(".json").read_text())
        rows.append(
            [
                f"train ({args.minutes:g} min)",
                f"{mb:,.0f}",
                args.tokenizer,
                "",
                "",
                f"{meta['seconds']:.1f} s (**{meta['mb_per_second']:.0f} MB/s**)",
                f"**{rss:.0f}**",
                f"{seconds:.1f} s",
            ]
        )
        shutil.rmtree(root / "cache-train", ignore_errors=True)
        if args.in_memory_mb:
            part = root / "part.txt"
            with open(corpus, "rb") as src, open(part, "wb") as dst:
                dst.write(src.read(int(args.in_memory_mb * 1e6)))
            _, base, _ = child([py, "-c", "import rnnkit.tasks.language_model.pipeline"], env)
            _, rss, seconds = child([py, "-c", IN_MEMORY, str(part), args.tokenizer], env)
            rows.append(
                [
                    "in memory (streaming off)",
                    f"{args.in_memory_mb:,.0f}",
                    args.tokenizer,
                    "",
                    "",
                    f"{(rss - base) / args.in_memory_mb:.1f} bytes of peak per byte",
                    f"{rss:.0f} ({base:.0f} after imports)",
                    f"{seconds:.1f} s",
                ]
            )
    print(machine())
    header = ["run", "corpus MB", "tokenizer", "sha256", "vocabulary (90%)", "tokenise"]
    print(table([*header, "peak RSS MiB", "wall"], rows))


if __name__ == "__main__":
    main()
