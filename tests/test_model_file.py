"""The model-file checks: damaged, mismatched or hostile run folders are refused, each by name."""

from __future__ import annotations

import ast
import json
import math
import pathlib
import pickle
import re
import shutil
import struct
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

import rnnkit
from rnnkit.cli import main
from rnnkit.config import apply_overrides
from rnnkit.errors import ModelFileError
from rnnkit.model_file import check_config, read_header
from rnnkit.tasks.classification.pipeline import ClassificationRunConfig, train_classifier
from rnnkit.tasks.forecasting.pipeline import ForecastingRunConfig, train_forecaster
from rnnkit.tasks.language_model.pipeline import LanguageModelRunConfig, train_lm

WEIGHTS = "model.safetensors"
EMBEDDING = "embedding.weight"  # (vocabulary, 4) in the tiny classifier


def _classifier(root: Path) -> Path:
    lines = ["review,stars"] + [
        f"{'a great film' if i % 2 else 'a dull film'},{'pos' if i % 2 else 'neg'}"
        for i in range(40)
    ]
    (root / "reviews.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = apply_overrides(
        ClassificationRunConfig(),
        [
            f"data.data={root / 'reviews.csv'}",
            "data.text_column=review",
            "data.label_column=stars",
            "data.min_freq=1",
            "model.hidden_size=8",
            "model.embedding_dim=4",
            "embeddings.vectors=none",
            "train.epochs=1",
            "train.device=cpu",
        ],
    )
    return train_classifier(config, root / "clf").run_dir


def _forecaster(root: Path) -> Path:
    days = [date(2021, 1, 4) + timedelta(days=i) for i in range(84)]
    rows = ["day,sales"] + [f"{d},{10 + 3 * math.sin(i):.3f}" for i, d in enumerate(days)]
    (root / "sales.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = apply_overrides(
        ForecastingRunConfig(),
        [
            f"data.data={root / 'sales.csv'}",
            "data.time_column=day",
            "data.target_columns=sales",
            "window.horizon=3",
            "window.input_length=7",
            "window.season=7",
            "window.calendar=false",
            "window.min_epoch_windows=16",
            "model.hidden_size=4",
            "model.head_size=8",
            "train.epochs=1",
            "train.device=cpu",
            "backtest=false",
        ],
    )
    return train_forecaster(config, root / "fc").run_dir


def _language_model(root: Path) -> Path:
    (root / "verse.txt").write_text("to be or not to be, that is the question.\n" * 20)
    config = apply_overrides(
        LanguageModelRunConfig(),
        [
            f"data.data={root / 'verse.txt'}",
            "data.bptt=16",
            "data.eval_batch_size=2",
            "model.embedding_dim=4",
            "model.hidden_size=8",
            "model.num_layers=1",
            "train.epochs=1",
            "train.max_minutes=none",
            "train.batch_size=4",
            "train.device=cpu",
            "sample.max_tokens=4",
        ],
    )
    return train_lm(config, root / "lm").run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("model_file")
    return {
        "classification": _classifier(root),
        "forecasting": _forecaster(root),
        "language-model": _language_model(root),
    }


@pytest.fixture
def broken(runs, tmp_path) -> Path:
    """A private copy of the classifier run to damage."""
    return Path(shutil.copytree(runs["classification"], tmp_path / "run"))


def _refused(run: Path, pattern: str) -> ModelFileError:
    with pytest.raises(ModelFileError, match=pattern) as info:
        rnnkit.load(run)
    assert "\n" not in str(info.value)
    return info.value


# --- raw safetensors surgery ----------------------------------------------------------------


def _split(path: Path) -> tuple[dict[str, Any], bytes]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _join(path: Path, header: dict[str, Any], data: bytes) -> None:
    text = json.dumps(header, separators=(",", ":")).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def _edit_header(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    header, data = _split(path)
    edit(header)
    _join(path, header, data)


def _by_offset(header: dict[str, Any]) -> list[str]:
    names = [k for k in header if k != "__metadata__"]
    return sorted(names, key=lambda k: header[k]["data_offsets"][0])


def _shift(header: dict[str, Any], name: str, by: int) -> None:
    begin, end = header[name]["data_offsets"]
    header[name]["data_offsets"] = [begin + by, end + by]


def test_clean_runs_of_every_task_pass_and_load(runs) -> None:
    for task, run in runs.items():
        config = json.loads((run / "config.json").read_text())
        check_config(config, run / "config.json", 1)  # real configs meet the rule
        header = read_header(run / WEIGHTS)
        assert header.tensors and all(e.dtype == "F32" for e in header.tensors.values())
        assert type(rnnkit.load(run)).__name__.endswith("Predictor"), task


def test_truncated_header(broken) -> None:
    weights = broken / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:5])
    _refused(broken, r"model\.safetensors: truncated: 5 bytes, .*8-byte header length")


def test_file_cut_inside_the_header(broken) -> None:
    weights = broken / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:40])
    _refused(broken, r"header length \d+ \(bytes 0-7\) is larger than the file: only 32 bytes")


def test_header_length_larger_than_the_file(broken) -> None:
    weights = broken / WEIGHTS
    raw = weights.read_bytes()
    weights.write_bytes(struct.pack("<Q", 10**12) + raw[8:])
    _refused(broken, rf"header length 1000000000000 .* only {len(raw) - 8} bytes follow")


def test_offsets_past_the_end_of_the_data(broken) -> None:
    weights = broken / WEIGHTS
    _edit_header(weights, lambda h: _shift(h, _by_offset(h)[-1], 4))
    last = _by_offset(_split(weights)[0])[-1]
    _refused(broken, rf"tensor '{last}': data_offsets \[\d+, \d+\] run past the end of the data")


def test_overlapping_offsets(broken) -> None:
    weights = broken / WEIGHTS
    first, second = _by_offset(_split(weights)[0])[:2]
    _edit_header(weights, lambda h: _shift(h, second, -4))
    _refused(broken, rf"tensor '{second}': data_offsets .* overlap tensor '{first}'")


def test_hole_between_tensors(broken) -> None:
    weights = broken / WEIGHTS
    second = _by_offset(_split(weights)[0])[1]
    _edit_header(weights, lambda h: _shift(h, second, 4))
    _refused(broken, rf"tensor '{second}': data_offsets start at \d+, leaving a hole of 4 bytes")


def test_offsets_that_disagree_with_shape_and_dtype(broken) -> None:
    rows, dim = _split(broken / WEIGHTS)[0][EMBEDDING]["shape"]
    _edit_header(broken / WEIGHTS, lambda h: h[EMBEDDING].update(shape=[rows + 1, dim]))
    _refused(
        broken,
        rf"tensor '{EMBEDDING}': F32 \({rows + 1}, {dim}\) needs {(rows + 1) * dim * 4} bytes "
        rf"but data_offsets \[\d+, \d+\] hold {rows * dim * 4}$",
    )


def test_unknown_dtype_and_repeated_name(broken) -> None:
    weights = broken / WEIGHTS
    original = weights.read_bytes()
    _edit_header(weights, lambda h: h[EMBEDDING].update(dtype="F33"))
    _refused(broken, rf"'{EMBEDDING}': unknown dtype 'F33'; known: BOOL")
    weights.write_bytes(original)
    header, data = _split(weights)
    text = json.dumps(header)
    entry = json.dumps({EMBEDDING: header[EMBEDDING]})[1:-1]
    doubled = text[:-1] + ", " + entry + "}"
    weights.write_bytes(struct.pack("<Q", len(doubled)) + doubled.encode() + data)
    _refused(broken, rf"the header: key '{EMBEDDING}' appears twice")


def test_wrong_shape_same_size(broken) -> None:
    rows, dim = _split(broken / WEIGHTS)[0][EMBEDDING]["shape"]
    _edit_header(broken / WEIGHTS, lambda h: h[EMBEDDING].update(shape=[dim, rows]))
    _refused(
        broken,
        rf"weights do not match config.json: wrong shapes: {EMBEDDING} \({dim}, {rows}\) "
        rf"\(config needs \({rows}, {dim}\)\)$",
    )


def test_tied_tensors_are_stored_once_and_older_files_with_both_names_still_load(broken) -> None:
    names = set(read_header(broken / WEIGHTS).tensors)
    # the classifier's embedding is reachable as `embedding` and inside `embed` (its dropout)
    assert "embedding.weight" in names and "embed.embedding.weight" not in names
    tensors = load_file(broken / WEIGHTS)
    tensors["embed.embedding.weight"] = tensors["embedding.weight"].clone()
    save_file(tensors, broken / WEIGHTS)  # the layout written before ties were saved once
    predictor = rnnkit.load(broken)
    model = predictor.model
    assert model.embed.embedding.weight.data_ptr() == model.embedding.weight.data_ptr()
    torch.testing.assert_close(model.embedding.weight, tensors["embedding.weight"])


def _rewrite(run: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    tensors = load_file(run / WEIGHTS)
    edit(tensors)
    save_file(tensors, run / WEIGHTS)


def test_wrong_dtype(broken) -> None:
    _rewrite(broken, lambda t: t.update({"head.bias": t["head.bias"].half()}))
    _refused(broken, r"wrong dtypes: head\.bias F16 \(config needs F32\)")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), r"tensor 'head\.weight' holds 1 NaN and 0 infinite values"),
        (float("inf"), r"tensor 'head\.weight' holds 0 NaN and 1 infinite values"),
    ],
)
def test_nan_and_inf_weights(broken, value, message) -> None:
    def poison(tensors: dict[str, torch.Tensor]) -> None:
        tensors["head.weight"][1, 3] = value

    _rewrite(broken, poison)
    _refused(broken, message + r" \(first at index \(1, 3\)\)")


def test_extra_and_missing_tensors(broken) -> None:
    _rewrite(broken, lambda t: t.update({"extra.weight": torch.zeros(2)}))
    _refused(broken, r"weights do not match config.json: unexpected tensors \['extra\.weight'\]$")
    _rewrite(broken, lambda t: [t.pop("extra.weight"), t.pop("head.bias")])
    _refused(broken, r"weights do not match config.json: missing tensors \['head\.bias'\]$")


@pytest.mark.parametrize("task", ["forecasting", "language-model"])
def test_other_tasks_refuse_an_extra_tensor_and_a_nan(runs, tmp_path, task) -> None:
    run = Path(shutil.copytree(runs[task], tmp_path / "run"))
    _rewrite(run, lambda t: t.update({"extra": torch.zeros(1)}))
    _refused(run, r"unexpected tensors \['extra'\]")
    name = sorted(load_file(runs[task] / WEIGHTS))[0]
    _rewrite(run, lambda t: [t.pop("extra"), t[name].view(-1).__setitem__(0, math.nan)])
    _refused(run, rf"tensor '{re.escape(name)}' holds 1 NaN")


# --- config.json ----------------------------------------------------------------------------


def _edit_config(run: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = run / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["model"].update(cell="torch.nn.LSTM"),
            r"column 'model\.cell': value 'torch\.nn\.LSTM' names a class or import path",
        ),
        (
            lambda c: c["config"]["train"].update(optimizer="torch.optim:SGD"),
            r"column 'config\.train\.optimizer': value 'torch\.optim:SGD' names a class",
        ),
        (
            lambda c: c["model"].update(_target_="rnnkit.models.TextClassifier"),
            r"column 'model\._target_': key '_target_' asks a loader to import or build",
        ),
        (
            lambda c: c["config"].update(model={"class_path": "x.Y", "init_args": {}}),
            r"column 'config\.model\.class_path': key 'class_path' asks a loader",
        ),
        (  # a hook key is refused even inside a free-text field
            lambda c: c.update(classes=[{"py/object": "os.system"}, "pos"]),
            r"column 'classes\.py/object': key 'py/object' asks a loader",
        ),
        (
            lambda c: c["model"].update(__class__="x"),
            r"column 'model\.__class__': key '__class__'",
        ),
        (
            lambda c: c["model"].update(pooling="<class 'torch.nn.LSTM'>"),
            r"column 'model\.pooling': value \"<class 'torch\.nn\.LSTM'>\" names a class",
        ),
        (
            lambda c: c.update(format_version=2),
            r"column 'format_version': format_version 2 is not supported \(this rnnkit reads 1\)",
        ),
        (lambda c: c.update(format_version=True), r"format_version True is not supported"),
        (lambda c: c.update(format_version="1"), r"format_version '1' is not supported"),
    ],
)
def test_config_fields_naming_code_or_unknown_versions(broken, edit, message) -> None:
    _edit_config(broken, edit)
    error = _refused(broken, message)
    assert error.path == str(broken / "config.json")


def test_free_text_fields_may_hold_dotted_names(broken) -> None:
    def words(config: dict[str, Any]) -> None:
        config["classes"] = ["neg.x", "os.system"]  # labels are the data's own words
        config["data_source"] = "reviews.csv"
        config["config"]["data"].update(data="reviews.csv", text_column="review.text")
        config["embeddings_coverage"] = {"missing_examples": ["u.s.a", "e.g"]}

    _edit_config(broken, words)
    assert rnnkit.load(broken).classes == ["neg.x", "os.system"]


def test_repeated_config_key(broken) -> None:
    path = broken / "config.json"
    text = path.read_text()
    path.write_text(text.replace('"task":', '"task": "forecasting", "task":', 1))
    _refused(broken, r"config\.json: key 'task' appears twice in one object")


# --- pickle ---------------------------------------------------------------------------------


class Payload:
    """Unpickling this touches `target`: the file existing afterwards means code ran."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


@pytest.fixture
def payload(tmp_path) -> tuple[Path, Callable[[int], bytes]]:
    target = tmp_path / "pwned"
    # The payload is live: unpickling a twin of it does create its file.
    pickle.loads(pickle.dumps(Payload(tmp_path / "control")))
    assert (tmp_path / "control").exists()
    return target, lambda protocol: pickle.dumps(Payload(target), protocol=protocol)


@pytest.mark.parametrize(
    ("protocol", "kind"), [(4, r"a pickle \(protocol 4\)"), (0, r"a pickle \(protocol 0/1\)")]
)
def test_pickle_renamed_to_model_safetensors_is_refused_unread(
    broken, payload, capsys, protocol, kind
) -> None:
    target, make = payload
    (broken / WEIGHTS).write_bytes(make(protocol))
    _refused(broken, rf"model\.safetensors: pickled model files are refused: this file is {kind}")
    assert main(["evaluate", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pickled model files are refused" in err
    assert not target.exists()


@pytest.mark.parametrize(
    ("length", "last"),
    [(0x0380, 0), (0x0128, ord("."))],  # starts 80 03 (pickle magic); starts "(" and ends "."
)
def test_safetensors_whose_bytes_resemble_a_pickle_are_not_refused(tmp_path, length, last) -> None:
    path = tmp_path / WEIGHTS
    header = {"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}
    text = json.dumps(header).encode().ljust(length, b" ")  # the spec allows space padding
    path.write_bytes(struct.pack("<Q", length) + text + bytes([7, last]))
    assert path.read_bytes()[:2] in (b"\x80\x03", b"(\x01")
    assert read_header(path).tensors["w"].shape == (2,)


def test_torch_save_zip_as_model_safetensors_is_refused(broken, payload, capsys) -> None:
    target, _ = payload
    torch.save({"weights": torch.zeros(2), "hook": Payload(target)}, broken / WEIGHTS)
    _refused(broken, r"this file is a zip archive \(torch\.save format\)")
    assert main(["evaluate", str(broken)]) == 2
    assert "zip archive" in capsys.readouterr().err
    assert not target.exists()


def test_run_folder_with_model_pt_instead_of_safetensors(broken, payload, capsys) -> None:
    target, make = payload
    (broken / WEIGHTS).unlink()
    (broken / "model.pt").write_bytes(make(4))
    _refused(broken, r"model\.safetensors is missing; model\.pt refused: pickled files run code")
    assert main(["evaluate", str(broken)]) == 2
    assert "model.pt refused" in capsys.readouterr().err
    for given in (broken / "model.pt", Path(shutil.copy(broken / "model.pt", broken / "weights"))):
        with pytest.raises(ModelFileError, match="pickled model files are refused"):
            rnnkit.load(given)
        assert main(["evaluate", str(given)]) == 2
        assert "pickled model files are refused" in capsys.readouterr().err
    assert not target.exists()


# --- the source tree ------------------------------------------------------------------------

_PICKLE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _unsafe_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names.append(getattr(node, "module", None) or "")
            found += [f"import {n}" for n in names if n.split(".")[0] in _PICKLE_MODULES]
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = ast.unparse(node.func.value)
        kwargs = {k.arg: k.value for k in node.keywords}
        is_true = lambda v: isinstance(v, ast.Constant) and v.value is True  # noqa: E731
        if (
            owner == "torch"
            and node.func.attr == "load"
            and not is_true(kwargs.get("weights_only"))
        ):
            found.append(f"line {node.lineno}: torch.load without weights_only=True")
        pickles = "allow_pickle" in kwargs and not (
            isinstance(kwargs["allow_pickle"], ast.Constant)
            and kwargs["allow_pickle"].value is False
        )
        if owner in ("np", "numpy") and node.func.attr == "load" and pickles:
            found.append(f"line {node.lineno}: np.load with allow_pickle")
    return found


def test_the_checker_catches_unsafe_loads() -> None:
    bad = "import pickle\nimport torch\ntorch.load('m.pt')\nnp.load('x', allow_pickle=True)\n"
    assert len(_unsafe_calls(ast.parse(bad))) == 3
    assert _unsafe_calls(ast.parse("torch.load('m.pt', weights_only=True)")) == []


def test_no_pickle_loading_anywhere_in_rnnkit() -> None:
    package = Path(rnnkit.__file__).parent
    problems = [
        f"{path.relative_to(package)} {problem}"
        for path in sorted(package.rglob("*.py"))
        for problem in _unsafe_calls(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert problems == []
