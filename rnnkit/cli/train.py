"""`rnnkit train classifier ...`: flags, a config file and --set overrides -> one run folder.

Precedence: defaults < --config FILE < flags < --set key=value. Every flag is a shorthand for a
dotted config key (listed in each flag's help), so a YAML file and the command line say the same
things in the same words.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rnnkit.cli.progress import ProgressBar

# flag dest -> dotted config key
CLASSIFIER_FLAGS: dict[str, str] = {
    "data": "data.data",
    "text_column": "data.text_column",
    "label_column": "data.label_column",
    "tokenizer": "data.tokenizer",
    "max_length": "data.max_length",
    "cell": "model.cell",
    "hidden_size": "model.hidden_size",
    "num_layers": "model.num_layers",
    "bidirectional": "model.bidirectional",
    "pooling": "model.pooling",
    "dropout": "model.dropout",
    "embeddings": "embeddings.vectors",
    "freeze_embeddings": "embeddings.freeze",
    "unfreeze_after": "embeddings.unfreeze_after",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "precision": "train.precision",
    "device": "train.device",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model and write a run folder")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    p = tasks.add_parser(
        "classifier",
        help="a recurrent text classifier (sentiment, topics, ratings)",
        description="Train a text classifier. Each flag sets the config key shown in brackets; "
        "--config FILE.yaml and --set key=value set any key.",
    )

    def flag(*names: str, **kwargs) -> None:
        dest = kwargs.get("dest") or names[0].lstrip("-").replace("-", "_")
        kwargs["help"] = f"{kwargs.get('help', '')} [{CLASSIFIER_FLAGS[dest]}]".strip()
        p.add_argument(*names, default=None, **kwargs)

    flag("--data", metavar="NAME|PATH", help="registry dataset or your file/folder")
    flag("--text-column", metavar="C", help="text column of a table")
    flag("--label-column", metavar="C", help="label column of a table")
    flag("--tokenizer", choices=["basic_english", "char", "bpe"])
    flag("--max-length", type=int, metavar="N", help="keep the first N tokens of each text")
    flag("--cell", choices=["rnn", "lstm", "gru"])
    flag("--hidden-size", type=int, metavar="N")
    flag("--num-layers", type=int, metavar="N")
    flag("--bidirectional", action=argparse.BooleanOptionalAction)
    flag("--pooling", choices=["last", "mean", "max"])
    flag("--dropout", type=float, metavar="P", help="dropout before the output layer")
    flag("--embeddings", metavar="NAME|PATH|none", help="glove-6b-50d, a GloVe .txt, or none")
    flag("--freeze-embeddings", action=argparse.BooleanOptionalAction)
    flag("--unfreeze-after", type=int, metavar="N", help="fine-tune frozen vectors after N epochs")
    flag("--epochs", type=int, metavar="N")
    flag("--batch-size", type=int, metavar="N")
    flag("--lr", type=float, metavar="LR", help="peak learning rate")
    flag("--seed", type=int, metavar="N")
    flag("--precision", choices=["auto", "fp32", "bf16", "fp16"])
    flag("--device", metavar="auto|cpu|cuda|mps")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/<data>-<cell>-<time>)")
    p.add_argument("--config", metavar="FILE", help="YAML or TOML file of config keys")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set any config key"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train_classifier)


def _flag_overrides(args: argparse.Namespace, mapping: dict[str, str]) -> list[str]:
    out = []
    for dest, key in mapping.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest == "embeddings" and str(value).lower() == "none":
            value = "none"
        out.append(f"{key}={value}")
    return out


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from rnnkit.config import load_config
    from rnnkit.tasks.classification import ClassifierRunConfig, train_classifier

    config = load_config(
        ClassifierRunConfig,
        path=args.config,
        overrides=_flag_overrides(args, CLASSIFIER_FLAGS) + list(args.set),
    )
    if args.out:
        out = Path(args.out)
    else:
        if args.resume:
            from rnnkit.errors import ConfigError

            raise ConfigError("--resume needs --out DIR naming the run to continue")
        name = Path(config.data.data).stem if Path(config.data.data).exists() else config.data.data
        out = Path("runs") / f"{name}-{config.model.cell}-{time.strftime('%Y%m%d-%H%M%S')}"
    bar = ProgressBar("accuracy", disable=args.quiet)
    run = train_classifier(config, out, callbacks=[bar], resume=args.resume)
    m = run.test_metrics
    print(
        f"test accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} on {m['n']} texts; "
        f"best epoch {run.fit.best_epoch}; {run.seconds:.0f} s"
    )
    print(f"run folder: {out}  (report: {out / 'report.md'})")
    print(json.dumps({"run": str(out), "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}))
    return 0
