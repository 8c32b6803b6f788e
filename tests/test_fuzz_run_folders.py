"""A seeded, time-bounded fuzzer over run folders of every task (issue 17).

Each task's tiny run folder is trained once; each case copies it, damages one file (the
safetensors header or data, config.json, tokenizer.json) and loads the copy in-process with
`rnnkit.load`, under a 5 s alarm. A case must end in one of:

- rnnkit's own error: an `RnnkitError` whose message is one line (what the CLI prints after
  `rnnkit: error:`, with exit code 2);
- a load whose outputs are finite and equal to the undamaged run's (within 1e-6).

Anything else (another exception, a multi-line message, NaN/inf outputs, changed outputs: a
damaged folder that loads as another valid model, or the 5 s alarm) fails the test with the
seed and the mutation, so a failure can be replayed with `replay(task, seed, index)`. A few
cases run through the CLI in a subprocess (exit 0, or 2 with one line on stderr and no
traceback).

Run it alone: `.venv/bin/pytest -q -p no:cacheprovider tests/test_fuzz_run_folders.py`.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rnnkit
from rnnkit.errors import RnnkitError

sys.path.insert(0, str(Path(__file__).parent))  # pytest runs with --import-mode=importlib
from tiny_runs import TASKS, outputs, tiny_run

SEED = 17
#: cases per task; with the special cases below, over 1,000 in all.
CASES = 800
#: the most seconds one case may take.
CASE_SECONDS = 5.0

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer.json"
DEEP = "[" * 100_000 + "]" * 100_000
#: values a careless edit or a hostile file puts in place of a config.json / tokenizer.json leaf
VALUES: list[Any] = [
    "x",
    "",
    "XYZ",
    "NaN",
    "1e9",
    "torch.nn.LSTM",
    1.5,
    -1,
    0,
    1,
    3,
    True,
    False,
    None,
    [],
    {},
    [1, 2],
    {"a": 1},
    10**6,
    10**9,
    2**64,
    "@@BIGINT@@",  # written as a 5,001-digit integer (past Python's int-from-text limit)
    1e308,
    -1e308,
    1e-300,
    float("nan"),
    float("inf"),
    "@@NESTED@@",  # replaced below: 70 levels of lists
]


VALUES[-1] = 0
for _ in range(70):
    VALUES[-1] = [VALUES[-1]]


class Hang(Exception):
    """The per-case alarm fired."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang(f"over {CASE_SECONDS} s")


# --- mutations: each edits the copy of a run folder and returns a description ---------------


def _split(path: Path) -> tuple[int, bytes, bytes]:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return length, data[8 : 8 + length], data[8 + length :]


def _leaves(node: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every key path in a JSON tree (sections and values)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:50]):  # the first items of long lists
            yield (*path, i)
            yield from _leaves(value, (*path, i))


def _set(tree: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def _delete(tree: Any, path: tuple) -> None:
    for key in path[:-1]:
        tree = tree[key]
    del tree[path[-1]]


def _edit_json(path: Path, rng: random.Random) -> str:
    tree = json.loads(path.read_text(encoding="utf-8"))
    keys = list(_leaves(tree))
    where = rng.choice(keys)
    roll = rng.random()
    if roll < 0.75:
        value = rng.choice(VALUES)
        _set(tree, where, value)
        what = f"{'.'.join(map(str, where))} = {str(value)[:40]}"
    elif roll < 0.9:
        _delete(tree, where)
        what = f"del {'.'.join(map(str, where))}"
    else:
        parent = where[:-1]
        node = tree
        for key in parent:
            node = node[key]
        if isinstance(node, dict):
            node["unknown_key"] = 1
        what = f"unknown key under {'.'.join(map(str, parent)) or 'top'}"
    text = json.dumps(tree).replace('"@@BIGINT@@"', "1" + "0" * 5000)  # NaN/Infinity written bare
    path.write_text(text, encoding="utf-8")
    return f"{path.name}: {what}"


def _deep(path: Path, rng: random.Random) -> str:
    tree = json.loads(path.read_text(encoding="utf-8"))
    where = rng.choice(list(_leaves(tree)))
    _set(tree, where, "@@DEEP@@")
    path.write_text(json.dumps(tree).replace('"@@DEEP@@"', DEEP), encoding="utf-8")
    return f"{path.name}: 100,000 nested brackets at {'.'.join(map(str, where))}"


def _raw(path: Path, rng: random.Random) -> str:
    choices: list[tuple[str, bytes]] = [
        ("empty", b""),
        ("a list", b"[1, 2]"),
        ("invalid UTF-8", b'{"a": "\xff\xfe"}'),
        ("truncated", path.read_bytes()[: rng.randrange(1, max(2, path.stat().st_size))]),
        ("deep", DEEP.encode()),
        ("repeated key", b'{"format_version": 1, "format_version": 1}'),
    ]
    name, data = rng.choice(choices)
    path.write_bytes(data)
    return f"{path.name}: {name}"


def _flip_header(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    length = struct.unpack("<Q", data[:8])[0]
    at = rng.randrange(0, 8 + length)
    data[at] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return f"{path.name}: bit flipped at header byte {at}"


def _flip_body(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    length = struct.unpack("<Q", data[:8])[0]
    at = rng.randrange(8 + length, len(data))
    data[at] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return f"{path.name}: bit flipped at data byte {at}"


def _cut_or_grow(path: Path, rng: random.Random) -> str:
    data = path.read_bytes()
    if rng.random() < 0.5:
        at = rng.randrange(0, len(data))
        path.write_bytes(data[:at])
        return f"{path.name}: truncated to {at} bytes"
    extra = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    path.write_bytes(data + extra)
    return f"{path.name}: {len(extra)} bytes appended"


def _edit_header(path: Path, rng: random.Random) -> str:
    """Rewrite the header JSON with one semantic change (its length fixed up)."""
    _, raw, body = _split(path)
    header = json.loads(raw)
    names = [k for k in header if k != "__metadata__"]
    name = rng.choice(names)
    roll = rng.randrange(7)
    if roll == 0:
        header[name]["dtype"] = rng.choice(["F16", "F64", "I64", "F33", 7])
        what = f"dtype of {name}"
    elif roll == 1:
        header[name]["shape"] = rng.choice([[], [10**9], [-1], ["a"], [2**64], [1, 1, 1]])
        what = f"shape of {name}"
    elif roll == 2:
        begin, end = header[name]["data_offsets"]
        header[name]["data_offsets"] = rng.choice([[end, begin], [0, 4], [begin, end + 4], [-1, 1]])
        what = f"offsets of {name}"
    elif roll == 3:
        header.pop("__metadata__", None)
        what = "checksums removed (an older file)"
    elif roll == 4:
        sums = json.loads(header["__metadata__"]["rnnkit.sha256"])
        sums[name] = rng.choice(["0" * 64, "x", sums[name][::-1]])
        header["__metadata__"]["rnnkit.sha256"] = json.dumps(sums)
        what = f"checksum of {name}"
    elif roll == 5:
        header["__metadata__"] = rng.choice([{"rnnkit.sha256": "[1"}, {"a": 1}, [], "x"])
        what = "metadata"
    else:
        header[name] = rng.choice(VALUES)
        what = f"entry of {name}"
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)
    return f"{path.name}: header {what}"


def _header_deep(path: Path, rng: random.Random) -> str:
    _, _, body = _split(path)
    text = ('{"__metadata__": ' + DEEP + "}").encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)
    return f"{path.name}: 100,000 nested brackets in the header"


Mutation = tuple[str, Callable[[Path, random.Random], str], bool]  # (file, edit, weights-only)
MUTATIONS: list[tuple[float, Mutation]] = [
    (0.10, (WEIGHTS, _flip_header, True)),
    (0.12, (WEIGHTS, _flip_body, True)),
    (0.05, (WEIGHTS, _cut_or_grow, True)),
    (0.10, (WEIGHTS, _edit_header, True)),
    (0.01, (WEIGHTS, _header_deep, True)),
    (0.40, (CONFIG, _edit_json, False)),
    (0.02, (CONFIG, _deep, False)),
    (0.03, (CONFIG, _raw, False)),
    (0.13, (TOKENIZER, _edit_json, False)),
    (0.02, (TOKENIZER, _deep, False)),
    (0.02, (TOKENIZER, _raw, False)),
]


def _pick(rng: random.Random, task: str) -> Mutation:
    options = [(w, m) for w, m in MUTATIONS if task != "forecasting" or m[0] != TOKENIZER]
    total = sum(w for w, _ in options)
    roll = rng.random() * total
    for weight, mutation in options:
        roll -= weight
        if roll <= 0:
            return mutation
    return options[-1][1]


# --- one case ---------------------------------------------------------------------------------


def run_case(task: str, base: Path, expected: np.ndarray, work: Path, seed: int) -> tuple[str, str]:
    """Mutate a copy of `base` with `random.Random(seed)` and judge the load: (outcome, what)."""
    rng = random.Random(seed)
    folder = work / f"case-{seed}"
    shutil.copytree(base, folder)
    name, edit, weights_only = _pick(rng, task)
    what = edit(folder / name, rng)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        got = outputs(task, rnnkit.load(folder), base)
    except RnnkitError as exc:
        outcome = "error" if "\n" not in str(exc) and str(exc) else f"multi-line error: {exc!r}"
    except Hang as exc:
        outcome = f"hang: {exc}"
    except Exception as exc:
        outcome = f"traceback: {type(exc).__name__}: {str(exc)[:300]}"
    else:
        if not np.isfinite(got).all():
            outcome = "non-finite outputs"
        elif got.shape == expected.shape and np.allclose(got, expected, rtol=1e-6, atol=1e-6):
            outcome = "same"
        elif weights_only:
            outcome = "changed outputs after damage to the weights file"
        else:
            outcome = "changed"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        shutil.rmtree(folder, ignore_errors=True)
    return outcome, what


# "changed" (a damaged folder that loads as another valid model) used to be accepted for edits
# of tokenizer.json's tokens; tokenizer.json now carries its sha256, and no case may change
# the outputs silently.
OK = ("error", "same")


@pytest.mark.parametrize("task", TASKS)
def test_fuzz_run_folders(task: str, tmp_path_factory, tmp_path) -> None:
    base = tiny_run(task, tmp_path_factory)
    expected = outputs(task, rnnkit.load(base), base)
    assert np.isfinite(expected).all()
    start = time.monotonic()
    counts: Counter[str] = Counter()
    failures = []
    offset = {t: i for i, t in enumerate(TASKS)}[task] * 100_000
    for i in range(CASES):
        seed = SEED * 1_000_000 + offset + i
        outcome, what = run_case(task, base, expected, tmp_path, seed)
        counts[outcome if outcome in OK else "failed"] += 1
        if outcome not in OK:
            failures.append(f"seed {seed}: {what}: {outcome}")
    elapsed = time.monotonic() - start
    print(f"\n{task}: {CASES} cases in {elapsed:.1f} s: {dict(counts)}")
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:30])
    assert counts["error"] > CASES // 4  # the mutations do reach the checks


def replay(task: str, seed: int, root: Path) -> tuple[str, str]:
    """Re-run one failing case by hand (outside pytest): `replay("forecasting", seed, tmp)`."""
    from tiny_runs import train

    base = train(task, root)
    return run_case(task, base, outputs(task, rnnkit.load(base), base), root, seed)


# --- named cases the random ones may miss ---------------------------------------------------


SPECIAL: list[tuple[str, str, Callable[[Any], None]]] = []


def _special(task: str, name: str) -> Callable:
    def register(fn: Callable[[Any], None]) -> Callable:
        SPECIAL.append((task, name, fn))
        return fn

    return register


def _config_edit(path: tuple, value: Any) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        tree = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
        _set(tree, path, value)
        (folder / CONFIG).write_text(json.dumps(tree), encoding="utf-8")

    return edit


for _task in TASKS:
    for _key in ("num_layers", "hidden_size"):
        for _value in (10**6, 10**9, 2**64, 0, -3, "8", 8.5, True):
            _special(_task, f"model.{_key}={_value}")(_config_edit(("model", _key), _value))
for _task in ("classification", "language-model"):
    for _value in (10**6, 3 * 10**6, 10**9):
        _special(_task, f"model.vocab_size={_value}")(_config_edit(("model", "vocab_size"), _value))
        _special(_task, f"model.embedding_dim={_value}")(
            _config_edit(("model", "embedding_dim"), _value)
        )
_special("classification", "classes=1.5")(_config_edit(("classes",), 1.5))
_special("classification", "classes=['pos','pos']")(_config_edit(("classes",), ["pos", "pos"]))
_special("classification", "tokenizer renamed")(
    _config_edit(("config", "data", "tokenizer"), "char")
)
_special("language-model", "chars_per_token='x'")(_config_edit(("chars_per_token",), "x"))
_special("language-model", "tokenizer renamed")(
    _config_edit(("config", "data", "tokenizer"), "basic_english")
)
for _path, _value in [
    (("scaler", "params"), {}),
    (("scaler", "params", "value", "value"), [100.0, 0.0]),
    (("scaler", "params", "value", "value"), [100.0, float("nan")]),
    (("scaler", "params", "value", "value"), [100.0]),
    (("layout", "freq"), "XYZ"),
    (("layout", "season"), 0),
    (("layout", "calendar"), False),
    (("layout", "calendar"), "no"),
    (("input_length",), 10**9),
    (("input_length",), "24"),
    (("model", "horizon"), 10**6),
    (("config", "window", "season"), 0),
    (("config", "ensemble"), 10**6),
    (("config", "train", "seed"), 2**64),
]:
    _special("forecasting", f"{'.'.join(_path)}={_value}")(_config_edit(_path, _value))


@pytest.mark.parametrize("task,name,edit", SPECIAL, ids=[f"{t}:{n}" for t, n, _ in SPECIAL])
def test_named_damage(task: str, name: str, edit: Callable, tmp_path_factory, tmp_path) -> None:
    base = tiny_run(task, tmp_path_factory)
    folder = Path(shutil.copytree(base, tmp_path / "run"))
    edit(folder)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        got = outputs(task, rnnkit.load(folder), base)
    except RnnkitError as exc:
        assert "\n" not in str(exc)
        return
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert np.isfinite(got).all(), f"{name}: loads and gives non-finite outputs"
    expected = outputs(task, rnnkit.load(base), base)
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-6), f"{name}: loads with other outputs"


# --- through the CLI: exit 0, or 2 with one line on stderr ----------------------------------


def _cli(task: str, folder: Path) -> list[str]:
    if task == "classification":
        return ["predict", str(folder), "a wonderful film"]
    if task == "language-model":
        return ["generate", str(folder), "--max-tokens", "5", "--seed", "0"]
    return ["forecast", str(folder), "--json"]


@pytest.mark.parametrize("task", TASKS)
def test_fuzz_through_the_cli(task: str, tmp_path_factory, tmp_path) -> None:
    base = tiny_run(task, tmp_path_factory)
    rng = random.Random(SEED)
    edits: list[Callable[[Path, random.Random], str]] = [_flip_body, _deep, _edit_json]
    for i, edit in enumerate(edits):
        folder = Path(shutil.copytree(base, tmp_path / f"case-{i}"))
        target = folder / (WEIGHTS if edit is _flip_body else CONFIG)
        what = edit(target, rng)
        done = subprocess.run(
            [sys.executable, "-m", "rnnkit", *_cli(task, folder)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=base.parent,
        )
        err = done.stderr.strip().splitlines()
        assert "Traceback" not in done.stderr, f"{what}: {done.stderr[-2000:]}"
        if done.returncode != 0:
            assert done.returncode == 2 and len(err) == 1, f"{what}: {done.stderr[-2000:]}"
            assert err[0].startswith("rnnkit: error")


def test_case_count_is_at_least_1000() -> None:
    assert CASES * len(TASKS) + len(SPECIAL) + 3 * len(TASKS) >= 1000
    assert math.isfinite(CASE_SECONDS)
