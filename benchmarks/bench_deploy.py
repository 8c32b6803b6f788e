"""Deployment speed and size: `rnnkit bench` on the issue's reference classifier and trained runs.

    python benchmarks/bench_deploy.py [--runs DIR ...] [--repeats 20] [--skip-reference]

1. The issue's reference configuration: a 2-layer bidirectional LSTM classifier, embedding 128,
   hidden 256, a 20,000-word vocabulary, timed at sequence length 256. Its run folder is made by
   `train_classifier` on synthetic texts for one epoch (the weights' values do not change the
   speed), so every backend loads it exactly as it loads a real run.
2. Each `--runs` folder (default: the runs in /tmp/rnnkit-runs/ that exist: classifier,
   forecaster, lm) at its typical sequence length, plus the default int8 path's metric change
   on its held-out data (`rnnkit.export.quantize`).

Ratios are measured in one process and one run each: `vs eager` is eager fp32's median latency
over the backend's, at the same batch size and threads (ONNX Runtime's intra-op threads = torch's).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine

from rnnkit.apps.bench import bench_run
from rnnkit.config import apply_overrides
from rnnkit.errors import RnnkitError
from rnnkit.export.quantize import DEFAULT_INT8, quantize

DEFAULT_RUNS = [f"/tmp/rnnkit-runs/{name}" for name in ("classifier", "forecaster", "lm")]
REFERENCE = {"embedding_dim": 128, "hidden_size": 256, "num_layers": 2, "vocab": 20_000}


def reference_run(root: Path) -> Path:
    """A run folder of the reference shape, trained one epoch on synthetic texts."""
    from rnnkit.tasks.classification.pipeline import ClassificationRunConfig, train_classifier

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(REFERENCE["vocab"] - 2)]  # + <pad>, <unk>
    rows = ["text,label"]
    for i in range(2000):
        # 20 words per text: every word appears (min_freq 1), so the vocabulary is full size.
        chosen = words[(i * 10) % len(words) : (i * 10) % len(words) + 10]
        chosen += list(rng.choice(words, 10))
        rows.append(f"{' '.join(chosen)},{'pos' if i % 2 else 'neg'}")
    data = root / "synthetic.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = apply_overrides(
        ClassificationRunConfig(),
        [
            f"data.data={data}",
            "data.min_freq=1",
            f"model.embedding_dim={REFERENCE['embedding_dim']}",
            f"model.hidden_size={REFERENCE['hidden_size']}",
            f"model.num_layers={REFERENCE['num_layers']}",
            "model.bidirectional=true",
            "embeddings.vectors=none",
            "train.epochs=1",
            "train.device=cpu",
            "train.precision=fp32",
        ],
    )
    train_classifier(config, root / "reference")
    return root / "reference"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", default=None, metavar="DIR")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch-sizes", default="1,64")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(f"machine: {machine()}")
    if not args.skip_reference:
        with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
            run = reference_run(Path(tmp))
            result = bench_run(run, batch_sizes=sizes, seq_len=256, repeats=args.repeats)
            print(
                f"\n### Reference: 2-layer BiLSTM classifier, emb {REFERENCE['embedding_dim']}, "
                f"hidden {REFERENCE['hidden_size']}, vocab {REFERENCE['vocab']:,}, seq 256, "
                f"{result.threads} threads, {args.repeats} timed calls\n"
            )
            print(result.table())
    runs = args.runs if args.runs is not None else [r for r in DEFAULT_RUNS if Path(r).is_dir()]
    for run in runs:
        result = bench_run(run, batch_sizes=sizes, repeats=args.repeats)
        print(
            f"\n### {run} ({result.task}), seq {result.seq_len}, {result.threads} threads, "
            f"{args.repeats} timed calls\n"
        )
        print(result.table())
        try:
            with tempfile.TemporaryDirectory(prefix="bench-deploy-q-") as tmp:
                quantized = quantize(run, Path(tmp) / "q", allow_metric_change=True)
        except RnnkitError as exc:  # e.g. the fp32 export failed its parity check
            print(f"\n{DEFAULT_INT8} metric change not measured: {exc}")
            continue
        print(f"\n{DEFAULT_INT8} metric change on {quantized.report.data}:\n")
        print("```\n" + quantized.report.table() + "\n```")


if __name__ == "__main__":
    main()
