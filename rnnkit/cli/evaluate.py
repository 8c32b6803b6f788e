"""`rnnkit evaluate RUN [--data ...] [--json]` and `rnnkit predict RUN TEXT... | --file F`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from rnnkit.cli import classifier, forecaster, lm
from rnnkit.errors import DataError

#: task -> function(metrics) -> text for the terminal; JSON is printed for tasks not listed.
FORMATTERS: dict[str, Callable[[dict], str]] = {
    "classification": classifier.format_metrics,
    "forecasting": forecaster.format_metrics,
    "language-model": lm.format_metrics,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="metrics of a trained run on its test split or on other data"
    )
    p.add_argument("run", metavar="RUN", help="a run folder")
    p.add_argument("--data", metavar="NAME|PATH", help="evaluate on this instead of the test split")
    p.add_argument("--text-column", metavar="C", help="(classifier) text column of --data")
    p.add_argument("--label-column", metavar="C", help="(classifier) label column of --data")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser("predict", help="labels and probabilities for texts")
    p.add_argument("run", metavar="RUN", help="a classifier run folder")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--file", metavar="F", help="one text per line ('-' for stdin)")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    p.set_defaults(func=cmd_predict)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rnnkit.runs import evaluate

    options = {
        k: v
        for k, v in (("text_column", args.text_column), ("label_column", args.label_column))
        if v is not None
    }
    metrics = evaluate(args.run, args.data, **options)
    formatter = FORMATTERS.get(metrics["task"])
    print(json.dumps(metrics) if args.json or formatter is None else formatter(metrics))
    return 0


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
    from rnnkit.runs import load

    texts = list(args.texts) + (_read_lines(args.file) if args.file else [])
    if not texts:
        raise DataError("nothing to predict: give texts as arguments or --file F")
    predictor = load(args.run)
    if predictor.task != "classification":
        raise DataError(
            f"predict is for classifiers; this run is a {predictor.task}", path=args.run
        )
    for text, result in zip(texts, predictor.predict(texts), strict=True):
        if args.json:
            print(json.dumps({"text": text, **result}))
        else:
            p = result["probabilities"][result["label"]]
            print(f"{result['label']}\t{p:.3f}\t{text}")
    return 0
