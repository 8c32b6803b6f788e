"""Checks on a run folder's model file before anything uses it: no pickle, no surprises.

A run folder's model is `config.json` + `model.safetensors` (+ tokenizer/scaler JSON). This
module validates both before `rnnkit.runs` builds a model from them, so every entry point (CLI,
`rnnkit.load()`, export) refuses the same damaged or hostile files with the same one-line
`ModelFileError`, naming the file and exactly what is wrong.

What is checked:

- **Pickle, refused unread.** A `.pt`/`.pth`/`.pkl`/`.pickle`/`.bin`/`.ckpt` path, or a file whose
  first bytes are a pickle (protocol 2+ magic `0x80 N`; protocol 0/1: an opening opcode and the
  STOP byte `.` at the end) or a zip archive (`torch.save`'s format) where safetensors was
  expected, unless it starts like a safetensors file (length, then `{`). Only the first and
  last bytes are read; nothing is unpickled.
- **config.json.** `format_version` is an integer this rnnkit reads; no key or value names a
  class or import path (rule below).
- **The safetensors header, parsed here first** (the library would do it too, but its messages
  do not name the byte offset or tensor): the 8-byte little-endian length fits the file and
  the 100 MB cap, the header is a UTF-8 JSON object without repeated keys, every entry has
  exactly `dtype`, `shape`, `data_offsets` with a known dtype, and the offsets tile the data
  section in order, with no overlap, hole or trailing bytes, each span exactly
  `prod(shape) x itemsize` bytes.
- **The tensors against the model built from config.json:** every expected tensor present with
  the expected shape and dtype, none unexpected, and no NaN or infinity in floating tensors.
- **A sha256 of every tensor's bytes**, written by rnnkit into the header's `__metadata__`
  (`CHECKSUM_KEY`) and verified on load, so a flipped byte in the data section (a bad disk, a
  damaged copy, an edit) is refused naming the tensor instead of loading as finite garbage.
  Files written before the checksums load as before, with a logged note.
- **Nesting depth.** Every JSON document parsed here (config.json, the header, tokenizer.json
  through `rnnkit.run_folder`) is refused past `MAX_JSON_DEPTH` levels, with one line rather
  than a `RecursionError`.

The class/import-path rule for config.json. rnnkit never imports or instantiates anything named
in a config, so such a field can only come from another tool's file (Hydra's `_target_`,
jsonargparse's `class_path`, jsonpickle's `py/object`) or from tampering; refusing it keeps the
format data-only. Precisely:

1. A key that is an instantiation hook is refused anywhere in the tree: a dunder (`__class__`,
   `__reduce__`, ...), anything starting with `py/`, or one of `INSTANTIATION_KEYS`.
2. Outside the free-text fields, a string value or key that reads as a Python reference is
   refused: a dotted path of identifiers (`torch.nn.LSTM`, `os.system`), an entry-point
   reference (`module:attr`), or a repr such as `<class 'x.Y'>`.
3. Free-text fields (`FREE_TEXT`: data paths and dataset names, column names, class labels,
   series ids, stop strings, vocabulary examples, versions, timestamps) hold the user's own
   words, so rule 2 does not apply inside them: `reviews.csv` is a file name and `sports.golf`
   a label. Values that are choices (`cell`, `tokenizer`, `optimizer`, ...) are identifiers
   without dots, and each task's config loader checks them against its choices anyway.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import math
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from rnnkit.errors import ModelFileError

logger = logging.getLogger(__name__)

#: file suffixes of pickled model files (torch.save, pickle, joblib); refused by name alone.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")

#: the most header bytes we parse (the safetensors library's own limit).
MAX_HEADER_BYTES = 100_000_000

#: the `__metadata__` key holding `{tensor name: sha256 hex of its bytes}` as JSON.
CHECKSUM_KEY = "rnnkit.sha256"

#: the deepest JSON nesting we accept. rnnkit's own files nest 6 levels at most (config.json's
#: scaler.params); 64 leaves room for any hand-made file while keeping 100,000 nested brackets
#: (which would overflow Python's recursion limit in the parser or in any walk over the tree)
#: a one-line error.
MAX_JSON_DEPTH = 64

#: keys that ask a loader to import or build something; refused anywhere in config.json.
INSTANTIATION_KEYS = frozenset(
    {
        "_target_",  # Hydra
        "_partial_",
        "_args_",
        "class_path",  # jsonargparse / Lightning CLI
        "init_args",
        "classpath",
        "class_name",
        "$type",  # Json.NET
        "@class",  # Jackson
    }
)

#: config.json fields that hold the user's own text (dotted key paths, `fnmatch` patterns; list
#: items belong to their field). Rule 2 of the module docstring does not apply inside them.
FREE_TEXT = (
    "config.data.data",  # a file path or registry dataset name
    "config.data.*_column",
    "config.data.target_columns",
    "config.data.covariates",
    "config.data.future_covariates",
    "config.embeddings.vectors",  # a registry name or a GloVe .txt path
    "config.transfer.init_from",  # a run folder
    "config.sample.stop",  # stop strings for generation
    "classes",  # class labels as found in the data
    "series",  # series ids as found in the data
    "data_source",
    "data_sources",
    "embeddings_coverage",  # includes example vocabulary words
    "layout.targets",
    "layout.covariates",
    "layout.future_covariates",
    "scaler.params",  # keyed by series id, then column
    "versions",
    "created",
)

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(
    rf"^\s*(?:{_IDENT}(?:\.{_IDENT})+|{_IDENT}(?:\.{_IDENT})*:{_IDENT}(?:\.{_IDENT})*)\s*$"
    r"|^\s*<(?:class|function|built-in function|module|bound method|method) "
)

#: safetensors dtype names -> torch dtypes (those this torch build has).
DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, attr)
    for name, attr in {
        "BOOL": "bool",
        "U8": "uint8",
        "I8": "int8",
        "U16": "uint16",
        "I16": "int16",
        "U32": "uint32",
        "I32": "int32",
        "U64": "uint64",
        "I64": "int64",
        "F16": "float16",
        "BF16": "bfloat16",
        "F32": "float32",
        "F64": "float64",
        "C64": "complex64",
        "F8_E4M3": "float8_e4m3fn",
        "F8_E5M2": "float8_e5m2",
    }.items()
    if hasattr(torch, attr)
}
_DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as the safetensors header describes it.

    Attributes:
        name: the tensor's key in the header.
        dtype: the safetensors dtype name, e.g. "F32".
        shape: the tensor's shape.
        begin: first byte, relative to the start of the data section.
        end: one past the last byte, relative to the start of the data section.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    """A parsed and checked safetensors header.

    Attributes:
        tensors: name -> entry, in header order.
        metadata: the optional `__metadata__` string map.
        data_start: the file offset of the data section (8 + header length).
    """

    tensors: dict[str, TensorEntry]
    metadata: dict[str, str]
    data_start: int


# --- pickle ---------------------------------------------------------------------------------

# Opcodes a protocol 0/1 pickle can open with: MARK, EMPTY_DICT/LIST/TUPLE, GLOBAL, INT, LONG,
# FLOAT, STRING, UNICODE, NONE, PERSID (legacy torch.save files start with protocol 2 magic).
_OLD_PICKLE_START = frozenset(b"(}])cILFSVNP")


def pickle_signature(path: str | Path) -> str | None:
    """What kind of pickle `path` looks like from its first and last bytes, or None.

    Reads at most 9 bytes from the start and 1 from the end; never unpickles. A file that starts
    like a safetensors file (a header length that fits the file, then `{`) is never called a
    pickle: its length bytes can happen to equal a pickle's first bytes (a 896-byte header
    starts `80 03`).

    Returns:
        e.g. "a pickle (protocol 4)" or "a zip archive (torch.save format)", None otherwise.
    """
    with open(path, "rb") as f:
        head = f.read(9)
        if not head:
            return None
        size = f.seek(0, 2)
        f.seek(-1, 2)
        last = f.read(1)
    if len(head) == 9 and head[8:] == b"{" and struct.unpack("<Q", head[:8])[0] <= size - 8:
        return None
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return f"a pickle (protocol {head[1]})"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "a zip archive (torch.save format)"
    if head[0] in _OLD_PICKLE_START and last == b".":
        return "a pickle (protocol 0/1)"
    return None


def refuse_pickle(path: str | Path) -> None:
    """Raise if `path` is a pickled model file, by its suffix or its first bytes.

    Raises:
        ModelFileError: the path ends in one of `PICKLE_SUFFIXES` or starts like a pickle or a
            torch.save zip archive. The file is never unpickled.
    """
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelFileError(
            f"pickled model files are refused ({path.suffix} files run code when loaded); give "
            "a run folder with config.json and model.safetensors",
            path=path,
        )
    if path.is_file():
        kind = pickle_signature(path)
        if kind is not None:
            raise ModelFileError(
                f"pickled model files are refused: this file is {kind}, which runs code when "
                "loaded; rnnkit reads only model.safetensors + config.json",
                path=path,
            )


def pickles_in(folder: str | Path) -> list[str]:
    """Names of the files in `folder` whose suffix marks a pickled model file, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)


# --- config.json ----------------------------------------------------------------------------


def parse_json_object(text: str, path: str | Path) -> dict[str, Any]:
    """Parse `text` as a JSON object, refusing repeated keys (json.loads keeps the last silently).

    Raises:
        ModelFileError: invalid JSON, a repeated key (named), or a top level that is not an object.
    """

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ModelFileError(f"key {key!r} appears twice in one object", path=path)
            out[key] = value
        return out

    depth = text_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ModelFileError(
            f"JSON nested {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted", path=path
        )
    try:
        data = json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"not valid JSON: {exc}", path=path) from exc
    except ModelFileError:  # a repeated key, from `unique`
        raise
    except ValueError as exc:  # an integer longer than Python converts (4300 digits)
        raise ModelFileError(f"not usable JSON: {exc}", path=path) from None
    except RecursionError:  # text_depth counts brackets outside strings; this is a backstop
        raise ModelFileError(
            f"JSON nested too deep; at most {MAX_JSON_DEPTH} levels are accepted", path=path
        ) from None
    if not isinstance(data, dict):
        raise ModelFileError("top level must be a JSON object", path=path)
    return data


_BRACKETS_OR_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def text_depth(text: str) -> int:
    """The deepest bracket nesting of JSON `text` (brackets inside strings do not count).

    Linear and without recursion, so it is safe on hostile input; malformed JSON gives some
    number and is refused by the parser afterwards.
    """
    depth = deepest = 0
    for match in _BRACKETS_OR_STRINGS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def check_config(config: Mapping[str, Any], path: str | Path, format_version: int) -> None:
    """Check `format_version` and the class/import-path rule (module docstring) on config.json.

    Args:
        config: the parsed config.json.
        path: the file, for messages.
        format_version: the version this rnnkit reads.

    Raises:
        ModelFileError: an unknown format version, or a key/value naming a class or import path;
            the message gives the dotted key path.
    """
    version = config.get("format_version")
    if type(version) is not int or version != format_version:  # true == 1 in Python; refuse it
        raise ModelFileError(
            f"format_version {version!r} is not supported (this rnnkit reads {format_version})",
            path=path,
            column="format_version",
        )
    for keys, key, value in _walk(config, ()):
        where = ".".join(keys)
        free = _is_free_text(keys)
        if key is not None and _is_instantiation_key(key):
            raise ModelFileError(
                f"key {key!r} asks a loader to import or build an object; config.json holds "
                "plain data only",
                path=path,
                column=where,
            )
        if free:
            continue
        for text, what in ((key, "key"), (value, "value")):
            if isinstance(text, str) and _REFERENCE.match(text):
                raise ModelFileError(
                    f"{what} {text!r} names a class or import path; config.json holds plain "
                    "data only (file paths and names belong in the data fields)",
                    path=path,
                    column=where,
                )


def _walk(node: Any, keys: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str | None, Any]]:
    """(key path, key or None for list items, value) for every node below `node`."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = (*keys, str(key))
            yield path, str(key), value
            yield from _walk(value, path)
    elif isinstance(node, list):
        for value in node:
            yield keys, None, value
            yield from _walk(value, keys)


def _is_free_text(keys: tuple[str, ...]) -> bool:
    return any(
        fnmatch.fnmatchcase(".".join(keys[:n]), pattern)
        for n in range(1, len(keys) + 1)
        for pattern in FREE_TEXT
    )


def _is_instantiation_key(key: str) -> bool:
    dunder = len(key) > 4 and key.startswith("__") and key.endswith("__")
    return dunder or key.startswith("py/") or key in INSTANTIATION_KEYS


# --- model.safetensors ----------------------------------------------------------------------


def read_header(path: str | Path) -> SafetensorsHeader:
    """Parse and check a safetensors header without trusting the library's parser.

    Reads the 8-byte length and the header only (not the tensor data).

    Raises:
        ModelFileError: a pickle, a truncated file, a header length past the end of the file, a
            header that is not a JSON object, an unknown dtype, a malformed entry, or data
            offsets that leave the data section, overlap, leave a hole, or disagree with
            shape x dtype. The message names the tensor and the byte offsets.
    """
    path = Path(path)
    refuse_pickle(path)
    size = path.stat().st_size
    if size < 8:
        raise ModelFileError(
            f"truncated: {size} bytes, but a safetensors file starts with an 8-byte header length",
            path=path,
        )
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > size - 8:
            raise ModelFileError(
                f"header length {length} (bytes 0-7) is larger than the file: only {size - 8} "
                "bytes follow (truncated or not a safetensors file)",
                path=path,
            )
        if length > MAX_HEADER_BYTES:
            raise ModelFileError(
                f"header length {length} is over the {MAX_HEADER_BYTES}-byte limit", path=path
            )
        raw = f.read(length)
    if not raw.startswith(b"{"):
        raise ModelFileError(
            f"the header (bytes 8-{8 + length}) does not start with '{{': not a safetensors file",
            path=path,
        )
    try:
        text = raw.decode("utf-8").rstrip(" ")  # writers may pad the header with spaces
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"the header is not UTF-8 (byte {8 + exc.start})", path=path) from None
    try:
        header = parse_json_object(text, path)
    except ModelFileError as exc:
        raise ModelFileError(f"the header: {exc.reason}", path=path) from None
    data_start = 8 + length
    data_size = size - data_start
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata  # absent or null: no metadata
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ModelFileError("__metadata__ must map strings to strings", path=path)
    tensors = {name: _entry(name, spec, path) for name, spec in header.items()}
    _check_layout(list(tensors.values()), data_start, data_size, path)
    return SafetensorsHeader(tensors, metadata, data_start)


def _entry(name: str, spec: Any, path: Path) -> TensorEntry:
    where = f"tensor {name!r}"
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        found = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise ModelFileError(
            f"{where}: an entry needs exactly dtype, shape and data_offsets; found {found}",
            path=path,
        )
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if dtype not in DTYPES:
        raise ModelFileError(
            f"{where}: unknown dtype {dtype!r}; known: {', '.join(DTYPES)}", path=path
        )
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        raise ModelFileError(
            f"{where}: shape {shape!r} is not a list of non-negative integers", path=path
        )
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_natural, offsets))):
        raise ModelFileError(
            f"{where}: data_offsets {offsets!r} is not a pair of non-negative integers", path=path
        )
    begin, end = offsets
    if end < begin:
        raise ModelFileError(f"{where}: data_offsets [{begin}, {end}] are reversed", path=path)
    needed = math.prod(shape) * DTYPES[dtype].itemsize
    if end - begin != needed:
        raise ModelFileError(
            f"{where}: {dtype} {tuple(shape)} needs {needed} bytes but data_offsets "
            f"[{begin}, {end}] hold {end - begin}",
            path=path,
        )
    return TensorEntry(name, dtype, tuple(shape), begin, end)


def _natural(value: Any) -> bool:
    return type(value) is int and value >= 0


def _check_layout(entries: list[TensorEntry], data_start: int, data_size: int, path: Path) -> None:
    """The spans must tile [0, data_size) in order: no overlap, no hole, nothing past the end."""
    cursor, previous = 0, None
    for entry in sorted(entries, key=lambda e: (e.begin, e.end)):
        if entry.end > data_size:
            raise ModelFileError(
                f"tensor {entry.name!r}: data_offsets [{entry.begin}, {entry.end}] run past the "
                f"end of the data section ({data_size} bytes from file offset {data_start}; the "
                "file is truncated or the offsets are wrong)",
                path=path,
            )
        if entry.begin < cursor:
            raise ModelFileError(
                f"tensor {entry.name!r}: data_offsets [{entry.begin}, {entry.end}] overlap "
                f"tensor {previous!r}, which ends at {cursor}",
                path=path,
            )
        if entry.begin > cursor:
            raise ModelFileError(
                f"tensor {entry.name!r}: data_offsets start at {entry.begin}, leaving a hole "
                f"of {entry.begin - cursor} bytes after offset {cursor}",
                path=path,
            )
        cursor, previous = entry.end, entry.name
    if cursor != data_size:
        raise ModelFileError(
            f"{data_size - cursor} bytes after the last tensor's data (file offset "
            f"{data_start + cursor}); the header does not describe the whole file",
            path=path,
        )


def check_tensors(
    header: SafetensorsHeader, expected: Mapping[str, torch.Tensor], path: str | Path
) -> None:
    """Every expected tensor present with its shape and dtype, and nothing else.

    Args:
        header: from `read_header`.
        expected: the model's `state_dict()` (built from config.json).
        path: the weights file, for messages.

    Raises:
        ModelFileError: "weights do not match config.json: ..." listing missing and unexpected
            tensors, wrong shapes and wrong dtypes (file vs config), up to five of each.
    """
    found = header.tensors
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    common = sorted(set(expected) & set(found))
    shapes = [
        f"{k} {found[k].shape} (config needs {tuple(expected[k].shape)})"
        for k in common
        if found[k].shape != tuple(expected[k].shape)
    ]
    dtypes = [
        f"{k} {found[k].dtype} (config needs {_DTYPE_NAMES.get(expected[k].dtype)})"
        for k in common
        if DTYPES[found[k].dtype] != expected[k].dtype
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors {missing[:5]}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected[:5]}")
    if shapes:
        problems.append(f"wrong shapes: {', '.join(shapes[:5])}")
    if dtypes:
        problems.append(f"wrong dtypes: {', '.join(dtypes[:5])}")
    if problems:
        raise ModelFileError("weights do not match config.json: " + "; ".join(problems), path=path)


def check_finite(tensors: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Refuse NaN or infinity in any floating tensor, naming the tensor and where.

    Raises:
        ModelFileError: e.g. "tensor 'head.bias' holds 1 NaN and 0 infinite values (first at
            index (3,))".
    """
    for name, tensor in tensors.items():
        if not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            nan = int(torch.isnan(tensor).sum())
            first = tuple(int(i) for i in bad.nonzero()[0])
            raise ModelFileError(
                f"tensor {name!r} holds {nan} NaN and {int(bad.sum()) - nan} infinite values "
                f"(first at index {first}); the weights are unusable (did training diverge?)",
                path=path,
            )


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    """The bytes safetensors stores for `tensor`: C order, little-endian (as on x86 and ARM)."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def checksums(tensors: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """`{name: sha256 hex}` of each tensor's stored bytes, for `CHECKSUM_KEY`."""
    return {name: hashlib.sha256(tensor_bytes(t)).hexdigest() for name, t in tensors.items()}


def with_checksums(
    tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`metadata` plus `CHECKSUM_KEY`: what a model file's `__metadata__` should hold."""
    return {**(metadata or {}), CHECKSUM_KEY: json.dumps(checksums(tensors), sort_keys=True)}


def check_checksums(header: SafetensorsHeader, path: str | Path) -> None:
    """Compare each tensor's bytes in the file with the sha256 its header records.

    A file without `CHECKSUM_KEY` (written before rnnkit stored one) passes with a logged note.

    Raises:
        ModelFileError: a malformed checksum record, a tensor it omits or names wrongly, or a
            tensor whose bytes changed since they were written (named with its file offsets).
    """
    raw = header.metadata.get(CHECKSUM_KEY)
    if raw is None:
        logger.info("%s has no tensor checksums (written before rnnkit stored them)", path)
        return
    where = f"__metadata__[{CHECKSUM_KEY!r}]"
    try:
        record = parse_json_object(raw, path)
    except ModelFileError as exc:
        raise ModelFileError(f"{where}: {exc.reason}", path=path) from None
    if set(record) != set(header.tensors):
        missing = sorted(set(header.tensors) - set(record))[:5]
        extra = sorted(set(record) - set(header.tensors))[:5]
        raise ModelFileError(
            f"{where} does not list the file's tensors (missing {missing}, unknown {extra})",
            path=path,
        )
    with open(path, "rb") as f:
        for name, entry in header.tensors.items():
            expected = record[name]
            if not (isinstance(expected, str) and re.fullmatch(r"[0-9a-f]{64}", expected)):
                raise ModelFileError(
                    f"{where}: the checksum of tensor {name!r} is not a sha256 hex digest: "
                    f"{str(expected)[:80]!r}",
                    path=path,
                )
            f.seek(header.data_start + entry.begin)
            digest = hashlib.sha256(f.read(entry.end - entry.begin)).hexdigest()
            if digest != expected:
                begin, end = header.data_start + entry.begin, header.data_start + entry.end
                raise ModelFileError(
                    f"tensor {name!r} (file bytes {begin}-{end}) does not match its sha256 in "
                    "the header: the data changed after it was written (a damaged disk or "
                    "copy, or an edit); restore the file from a good copy or retrain",
                    path=path,
                )


def split_aliases(
    state: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Separate a state dict's tied names from the tensors they share.

    A module reachable under two names (a classifier's embedding inside its `EmbeddingDropout`)
    and a tied weight (an LM's decoder = its embedding, Press & Wolf, 2017) appear in
    `state_dict()` once per name, all views of one storage. The model file holds each tensor
    once, under its first name; the model built from config.json re-creates the ties.

    Args:
        state: a `state_dict()`.

    Returns:
        (name -> tensor for the first name of each storage, alias -> that first name).
    """
    first: dict[tuple[int, int, tuple[int, ...], tuple[int, ...], torch.dtype], str] = {}
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for name, tensor in state.items():
        key = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
            tensor.dtype,
        )
        if tensor.numel() and key in first:
            aliases[name] = first[key]
        else:
            first.setdefault(key, name)
            unique[name] = tensor
    return unique, aliases


def load_tensors(
    path: str | Path, expected: Mapping[str, torch.Tensor], device: str = "cpu"
) -> dict[str, torch.Tensor]:
    """Validate `path` fully (pickle, header, names, shapes, dtypes, finiteness) and read it.

    Args:
        path: a `model.safetensors` file.
        expected: the model's `state_dict()`, built from config.json.
        device: where to put the tensors.

    Returns:
        name -> tensor, ready for `model.load_state_dict`.

    Raises:
        ModelFileError: the first problem found, as described in `read_header`, `check_tensors`
            and `check_finite`.
    """
    path = Path(path)
    header = read_header(path)
    unique, aliases = split_aliases(expected)
    # Files written before tied names were saved once still hold the aliases: accept them.
    written = {k: v for k, v in expected.items() if k in unique or k in header.tensors}
    check_tensors(header, written, path)
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            tensors = {k: f.get_tensor(k) for k in header.tensors}
    except Exception as exc:  # our checks passed, so this is the library disagreeing
        raise ModelFileError(f"not a readable safetensors file: {exc}", path=path) from exc
    check_checksums(header, path)
    check_finite(tensors, path)
    for alias, name in aliases.items():
        tensors.setdefault(alias, tensors[name])
    return tensors
