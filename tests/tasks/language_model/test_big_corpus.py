"""A 2 GB corpus trains a language model in under 1 GB of memory (issue 15).

`rnnkit train language-model` runs in a child process on a generated corpus of at least 2e9
bytes; `data.streaming: auto` sends it through a token file, and the child's peak resident
memory (`ru_maxrss` from `os.wait4`, that child alone) must stay under 1 GiB. The run folder
must then load and write text. About a minute on the 2-vCPU VM; the 4 GB it writes are removed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rnnkit

CORPUS_BYTES = 2_000_000_000
PEAK_RSS_LIMIT = 1 << 30


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
            k = (part * 7919) % len(lines)  # each copy starts at another line
            block = b"".join([f"PART {part}\n".encode(), *lines[k:], *lines[:k], b"\n"])
            f.write(block)
            written += len(block)
            part += 1
    return written


# Runs argv[1:] (its stdout into stderr) and prints its peak RSS; exits with its status.
PEAK_OF = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=sys.stderr)
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"maxrss_kib": usage.ru_maxrss}))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.slow
def test_a_2gb_corpus_trains_under_1gb_of_memory(tmp_path: Path) -> None:
    corpus, run, cache = tmp_path / "corpus.txt", tmp_path / "run", tmp_path / "cache"
    try:
        assert write_corpus(corpus, CORPUS_BYTES) >= CORPUS_BYTES
        command = [
            sys.executable,
            "-m",
            "rnnkit",
            "train",
            "language-model",
            "--data",
            str(corpus),
            "--tokenizer",
            "char",
            "--embedding-dim",
            "16",
            "--hidden-size",
            "32",
            "--num-layers",
            "1",
            "--epochs",
            "1",
            "--max-minutes",
            "0.1",
            "--out",
            str(run),
            "--quiet",
            "--set",
            "data.max_eval_tokens=50000",
            "--set",
            "sample.max_tokens=100",
        ]
        env = {**os.environ, "RNNKIT_CACHE": str(cache)}
        # The child's ru_maxrss counts the memory of the process it was forked from (Linux keeps
        # the old address space's high-water mark across exec, and subprocess uses vfork): from
        # pytest, by then over 1 GB, that would be measured instead of rnnkit. A small Python
        # launches it and reports its peak.
        with open(tmp_path / "out.log", "wb") as log:
            child = subprocess.Popen(
                [sys.executable, "-c", PEAK_OF, *command],
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
            )
            report, _ = child.communicate()
        output = (tmp_path / "out.log").read_text(errors="replace")
        assert child.returncode == 0, output[-3000:]
        peak = json.loads(report)["maxrss_kib"] * 1024
        record = json.loads((run / "config.json").read_text())["token_file"]  # streamed (auto)
        meta = json.loads(Path(record["path"]).with_suffix(".json").read_text())
        print(
            f"\n{CORPUS_BYTES / 1e9:.1f} GB corpus: peak RSS {peak / 2**20:.0f} MiB, "
            f"tokenised at {meta['mb_per_second']} MB/s ({meta['tokens']:,} tokens, "
            f"{meta['seconds']} s)"
        )
        assert meta["tokens"] >= CORPUS_BYTES
        assert peak < PEAK_RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MiB"
        loaded = rnnkit.load(run)
        text = loaded.generate("The", max_tokens=50, seed=0)[0]
        assert isinstance(text, str) and len(text) > 0
    finally:
        corpus.unlink(missing_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
