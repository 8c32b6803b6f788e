"""`rnnkit train classification ...` and `rnnkit predict RUN TEXT...`: text classifiers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rnnkit import run_folder
from rnnkit.cli.progress import ProgressBar
from rnnkit.errors import DataError
from rnnkit.tasks.classification.config import SUMMARY, TASK
from rnnkit.tasks.classification.predictor import ClassifierPredictor

# flag dest -> dotted config key of ClassificationRunConfig
FLAGS: dict[str, str] = {
    "data": "data.data",
    "text_column": "data.text_column",
    "label_column": "data.label_column",
    "tokenizer": "data.tokenizer",
    "max_length": "data.max_length",
    "cell": "model.cell",
    "norm": "model.norm",
    "hidden_size": "model.hidden_size",
    "num_layers": "model.num_layers",
    "bidirectional": "model.bidirectional",
    "pooling": "model.pooling",
    "dropout": "model.dropout",
    "embeddings": "embeddings.vectors",
    "freeze_embeddings": "embeddings.freeze",
    "unfreeze_after": "embeddings.unfreeze_after",
    "init_from": "transfer.init_from",
    "gradual_unfreezing": "transfer.gradual_unfreezing",
    "monitor": "monitor",
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
        "classification",
        aliases=["classifier"],
        help=SUMMARY,
        description="Train a text classifier. Each flag sets the config key shown in brackets; "
        "--config FILE.yaml and --set key=value set any key.",
    )

    def flag(*names: str, **kwargs) -> None:
        add_config_flag(p, FLAGS, *names, **kwargs)

    flag("--data", metavar="NAME|PATH", help="registry dataset or your file/folder")
    flag("--text-column", metavar="C", help="text column of a table")
    flag("--label-column", metavar="C", help="label column of a table")
    flag("--tokenizer", choices=["basic_english", "char", "bpe"])
    flag("--max-length", type=int, metavar="N", help="keep the first N tokens of each text")
    flag("--cell", choices=cell_choices())
    flag("--norm", choices=norm_choices(), help="normalise each recurrent layer's output")
    flag("--hidden-size", type=int, metavar="N")
    flag("--num-layers", type=int, metavar="N")
    flag("--bidirectional", action=argparse.BooleanOptionalAction)
    flag("--pooling", choices=["last", "mean", "max"])
    flag("--dropout", type=float, metavar="P", help="dropout before the output layer")
    flag("--embeddings", metavar="NAME|PATH|none", help="glove-6b-50d, a GloVe .txt, or none")
    flag("--freeze-embeddings", action=argparse.BooleanOptionalAction)
    flag("--unfreeze-after", type=int, metavar="N", help="fine-tune frozen vectors after N epochs")
    flag("--init-from", metavar="RUN", help="start from a language-model run (ULMFiT)")
    flag(
        "--gradual-unfreezing",
        action=argparse.BooleanOptionalAction,
        help="with --init-from, thaw pretrained layers one per epoch from the top",
    )
    flag("--monitor", choices=["accuracy", "macro_f1", "loss"], help="picks the best epoch")
    add_train_flags(p)
    add_run_arguments(p)
    p.set_defaults(func=cmd_train_classifier)


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from rnnkit.cli.flags import config_overrides, run_folder
    from rnnkit.config import load_config
    from rnnkit.tasks.classification.pipeline import ClassificationRunConfig, train_classifier

    config = load_config(
        ClassificationRunConfig, path=args.config, overrides=config_overrides(args, FLAGS)
    )
    out = run_folder(args, config.data.data, config.model.cell)
    bar = ProgressBar(config.monitor, disable=args.quiet)
    run = train_classifier(config, out, callbacks=[bar], resume=args.resume)
    if run is None:  # a torchrun rank other than 0: rank 0 prints and writes
        return 0
    m = run.test_metrics
    print(
        f"test accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} on {m['n']} texts; "
        f"best epoch {run.fit.best_epoch}; {run.seconds:.0f} s"
    )
    print(f"run folder: {out}  (report: {out / 'report.md'})")
    print(json.dumps({"run": str(out), "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}))
    return 0


def format_metrics(metrics: dict) -> str:
    """The human-readable form of `evaluate_run`'s result."""
    lines = [
        f"{metrics['data']}: {metrics['n']} texts",
        f"accuracy  {metrics['accuracy']:.4f}",
        f"macro-F1  {metrics['macro_f1']:.4f}",
    ]
    if "ece" in metrics:  # expected calibration error of the predicted probabilities
        lines.append(f"ECE       {metrics['ece']:.4f}")
    width = max(len(c) for c in metrics["classes"])
    lines.append(f"\n{'class':<{width}}  precision  recall  f1      support")
    for name, row in metrics["per_class"].items():
        lines.append(
            f"{name:<{width}}  {row['precision']:.4f}     {row['recall']:.4f}  {row['f1']:.4f}"
            f"  {row['support']}"
        )
    lines.append("\nconfusion (rows: true, columns: predicted)")
    lines.append(" " * width + "  " + "  ".join(f"{c:>8}" for c in metrics["classes"]))
    for name, row in zip(metrics["classes"], metrics["confusion"], strict=True):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{v:>8}" for v in row))
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="labels and probabilities for texts")
    p.add_argument("run", metavar="RUN", help="a classifier run folder")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--file", metavar="F", help="one text per line ('-' for stdin)")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    p.set_defaults(func=cmd_predict)


def _read_lines(path: str) -> list[str]:
    if path == "-":
        return [line.rstrip("\n") for line in sys.stdin if line.strip()]
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("no such file", path=path) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid UTF-8 at byte {exc.start}", path=path) from None
    return [line for line in text.splitlines() if line.strip()]


def cmd_predict(args: argparse.Namespace) -> int:
    texts = list(args.texts) + (_read_lines(args.file) if args.file else [])
    if not texts:
        raise DataError("nothing to predict: give texts as arguments or --file F")
    config = run_folder.config_for_task(args.run, TASK, "predict")
    predictor = ClassifierPredictor.from_run(Path(args.run), config)
    for text, result in zip(texts, predictor.predict(texts), strict=True):
        if args.json:
            print(json.dumps({"text": text, **result}))
        else:
            p = result["probabilities"][result["label"]]
            print(f"{result['label']}\t{p:.3f}\t{text}")
    return 0
