"""`rnnkit train language-model ...` and `rnnkit generate RUN ...`: models that write text."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rnnkit import run_folder
from rnnkit.cli.progress import ProgressBar
from rnnkit.tasks.language_model.config import SUMMARY, TASK
from rnnkit.tasks.language_model.predictor import LanguageModelPredictor

# flag dest -> dotted config key of LanguageModelRunConfig
FLAGS: dict[str, str] = {
    "data": "data.data",
    "tokenizer": "data.tokenizer",
    "vocab_size": "data.vocab_size",
    "bptt": "data.bptt",
    "carry_state": "data.carry_state",
    "streaming": "data.streaming",
    "cell": "model.cell",
    "norm": "model.norm",
    "embedding_dim": "model.embedding_dim",
    "hidden_size": "model.hidden_size",
    "num_layers": "model.num_layers",
    "dropout": "model.dropout",
    "tie_weights": "model.tie_weights",
    "max_minutes": "train.max_minutes",
}


def register_train(tasks: argparse._SubParsersAction) -> None:
    from rnnkit.cli.flags import (
        add_config_flag,
        add_run_arguments,
        add_train_flags,
        cell_choices,
        norm_choices,
    )

    p = tasks.add_parser(
        "language-model",
        aliases=["lm", "language-modeling"],
        help=SUMMARY,
        description="Train a recurrent language model on running text (the last 10% is "
        "validation). Each flag sets the config key shown in brackets; --config FILE.yaml and "
        "--set key=value set any key. The default trains a character LSTM on shakespeare for "
        "10 minutes (train.max_minutes).",
    )

    def flag(*names: str, **kwargs) -> None:
        add_config_flag(p, FLAGS, *names, **kwargs)

    flag("--data", metavar="NAME|PATH", help="corpus name or .txt file/folder; join with +")
    flag("--tokenizer", choices=["char", "bpe", "basic_english"])
    flag("--vocab-size", type=int, metavar="N", help="BPE vocabulary size")
    flag("--bptt", type=int, metavar="T", help="steps per truncated-BPTT window")
    flag(
        "--carry-state",
        action=argparse.BooleanOptionalAction,
        help="carry the hidden state across windows (--no-carry-state resets it)",
    )
    flag(
        "--streaming",
        choices=["auto", "on", "off"],
        help="tokenise a corpus file/folder once into a token file in the cache and train from "
        "it without loading the text (auto: corpora of 256 MB or more)",
    )
    flag("--cell", choices=cell_choices())
    flag("--norm", choices=norm_choices(), help="normalise each recurrent layer's output")
    flag("--embedding-dim", type=int, metavar="N")
    flag("--hidden-size", type=int, metavar="N")
    flag("--num-layers", type=int, metavar="N")
    flag("--dropout", type=float, metavar="P", help="dropout on the recurrent outputs")
    flag(
        "--tie-weights",
        action=argparse.BooleanOptionalAction,
        help="share embedding and output weights (needs embedding-dim == hidden-size)",
    )
    flag("--max-minutes", type=float, metavar="M", help="wall-clock training budget")
    add_train_flags(
        p,
        help={
            "epochs": "upper bound on passes over the text",
            "batch_size": "rows of text read in parallel",
        },
    )
    add_run_arguments(p)
    p.set_defaults(func=cmd_train_lm)


def cmd_train_lm(args: argparse.Namespace) -> int:
    from rnnkit.cli.flags import config_overrides, run_folder
    from rnnkit.config import load_config
    from rnnkit.tasks.language_model.pipeline import LanguageModelRunConfig, train_lm

    config = load_config(
        LanguageModelRunConfig, path=args.config, overrides=config_overrides(args, FLAGS)
    )
    name = config.data.data.replace("+", "-")
    out = run_folder(args, name, f"{config.model.cell}-{config.data.tokenizer}")
    bar = ProgressBar("loss", disable=args.quiet)
    run = train_lm(config, out, callbacks=[bar], resume=args.resume)
    if run is None:  # a torchrun rank other than 0: rank 0 prints and writes
        return 0
    m = run.metrics
    print(
        f"{m['data']} loss {m['loss']:.4f} nats/token, perplexity {m['perplexity']:.2f}, "
        f"{m['bits_per_char']:.4f} bits/char; best epoch {run.fit.best_epoch}; "
        f"{run.seconds:.0f} s"
    )
    print(f"sample:\n{run.sample}\n")
    print(f"run folder: {out}  (report: {out / 'report.md'})")
    print(json.dumps({"run": str(out), **m}))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="write text with a trained language model",
        description="Continue --prompt with a trained language model, printing text as it is "
        "produced. --temperature 0 is greedy; --seed makes sampling reproducible.",
    )
    p.add_argument("run", metavar="RUN", help="a language-model run folder")
    p.add_argument("--prompt", default="", metavar="TEXT", help="text that primes the model")
    p.add_argument("--max-tokens", type=int, default=500, metavar="N", help="tokens per sample")
    p.add_argument(
        "--temperature", type=float, default=0.8, metavar="T", help="0 = greedy (default 0.8)"
    )
    p.add_argument("--top-k", type=int, metavar="K", help="sample from the K likeliest tokens")
    p.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling: mass P")
    p.add_argument(
        "--repetition-penalty", type=float, default=1.0, metavar="R", help="> 1 avoids repeats"
    )
    p.add_argument(
        "--stop", action="append", default=[], metavar="S", help="end a sample at S (repeatable)"
    )
    p.add_argument("--seed", type=int, metavar="N", help="reproducible sampling")
    p.add_argument("--num-samples", type=int, default=1, metavar="N", help="samples in a batch")
    p.add_argument("--device", default="cpu", metavar="cpu|cuda|mps")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from rnnkit.tasks.language_model.generate import SamplingConfig

    config = SamplingConfig(
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        stop=tuple(args.stop),
        seed=args.seed,
        num_samples=args.num_samples,
    )
    run_config = run_folder.config_for_task(args.run, TASK, "generate")
    predictor = LanguageModelPredictor.from_run(Path(args.run), run_config, args.device)
    if args.json or config.num_samples > 1:
        # JSON Lines, one object per sample as soon as its batch is done (flushed), so Ctrl-C
        # keeps every sample printed so far; see `sample_batches`.
        for i, text in sample_batches(predictor, args.prompt, config):
            if args.json:
                print(json.dumps({"sample": i, "prompt": args.prompt, "text": text}), flush=True)
            else:
                print(f"--- sample {i + 1} ---\n{args.prompt}{text}\n", flush=True)
        return 0
    if config.num_samples == 1:
        sys.stdout.write(args.prompt)
        for _, piece in predictor.stream(args.prompt, config):
            sys.stdout.write(piece)
            sys.stdout.flush()  # tokens appear as they are produced
        sys.stdout.write("\n")
        return 0
    samples = predictor.generate(args.prompt, config)
    for i, text in enumerate(samples, 1):
        print(f"--- sample {i} ---\n{args.prompt}{text}\n")
    return 0


#: samples generated together per batch by `generate --num-samples N`: each batch is printed
#: when done, so a long run shows (and keeps, on Ctrl-C) its samples 8 at a time.
SAMPLE_BATCH = 8


def sample_batches(
    predictor: LanguageModelPredictor, prompt: str, config: Any
) -> Iterator[tuple[int, str]]:
    """`(index, text)` of each of `config.num_samples` samples, a batch of `SAMPLE_BATCH` at a time.

    Batch b is seeded with `seed + b` (None stays None), so up to 8 samples are exactly what
    one `generate` call gives, and every batch is reproducible on its own.
    """
    from dataclasses import replace

    done = 0
    for b in range(math.ceil(config.num_samples / SAMPLE_BATCH)):
        size = min(SAMPLE_BATCH, config.num_samples - done)
        seed = None if config.seed is None else (config.seed + b) % 2**32
        for text in predictor.generate(prompt, replace(config, num_samples=size, seed=seed)):
            yield done, text
            done += 1


def format_metrics(metrics: dict) -> str:
    """The human-readable form of `evaluate_run`'s result."""
    return "\n".join(
        [
            f"{metrics['data']}: {metrics['tokens']:,} tokens",
            f"loss           {metrics['loss']:.4f} nats/token",
            f"perplexity     {metrics['perplexity']:.3f}",
            f"bits per char  {metrics['bits_per_char']:.4f}",
        ]
    )
