"""Pretrained word vectors (GloVe) read into `WordVectors`: from the registry or a text file.

    vectors = load_word_vectors("glove-6b-50d")          # registry name, or a GloVe .txt path

`rnnkit.models.embeddings.align_vectors` then turns them into a model's embedding matrix.

GloVe text format, as read here: one word per line, `word v1 v2 ... vD`, fields separated by
single spaces, UTF-8. Every line must carry the same number of values as the first one. Also
accepted, because other tools write them:

- a first line of exactly two integers, `<count> <dim>`, is a word2vec/fastText header and is
  skipped (its `dim` must match the vectors; a `count` that disagrees is only logged);
- trailing spaces (fastText `.vec`), Windows line ends, a UTF-8 byte-order mark, blank lines.

A word that occurs twice keeps both rows in the file's order, and lookups use the first one
(`WordVectors.index`), as GloVe files list words most frequent first.

Reading is fast because pandas' C parser does the tokenising and number parsing (0.3-0.6 s for 100k
words x 50 here, against ~2 s for a Python split-per-line loop). When it refuses a file, a plain
Python pass reads it again, and that pass defines the format: it either reads the file or raises
a `DataError` naming the line and the field. The registry's GloVe (`glove-6b-50d`) ships as a
`.npy` matrix with a Parquet word index, read by its parser in `rnnkit.data.parsers`.
"""

from __future__ import annotations

import csv
import difflib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from rnnkit.data.registry import DATASETS, load_dataset
from rnnkit.data.types import WordVectors
from rnnkit.errors import ConfigError, DataError

__all__ = ["embedding_names", "load_word_vectors", "read_glove_text"]

logger = logging.getLogger(__name__)

_FORMAT = "a GloVe-format text file ('word v1 v2 ... vD' per line)"
_CHUNK_LINES = 8192  # the Python pass converts this many lines at once: bounded memory, bulk speed


def embedding_names() -> list[str]:
    """The registry datasets that are word vectors."""
    return [name for name, spec in DATASETS.items() if spec.task == "embeddings"]


def load_word_vectors(name_or_path: str | Path) -> WordVectors:
    """Word vectors from the registry (by name) or from a GloVe-format text file.

    Args:
        name_or_path: a registry embedding such as "glove-6b-50d", or a path to a text file in
            the format described in this module's docstring.

    Returns:
        `WordVectors` with `vectors` of shape (num_words, D), float32.

    Raises:
        ConfigError: a registry dataset that is not word vectors.
        DataError: a missing file (listing the registry's embeddings), a folder, or a malformed
            file (naming the line and field).
    """
    key = str(name_or_path)
    names = embedding_names()
    if key in DATASETS:
        spec = DATASETS[key]
        if spec.task != "embeddings":
            raise ConfigError(
                f"dataset {key!r} holds {spec.task} data, not word vectors; "
                f"embeddings in the registry: {', '.join(names)}; or give {_FORMAT}"
            )
        vectors = load_dataset(key)
        assert isinstance(vectors, WordVectors), f"{key} parsed to {type(vectors).__name__}"
        return vectors
    path = Path(key).expanduser()
    if not path.exists():
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(
            f"no such file, and not a registry embedding either.{hint} "
            f"Embeddings in the registry: {', '.join(names)}; or give {_FORMAT}",
            path=key,
        )
    if path.is_dir():
        raise DataError(f"is a folder; expected {_FORMAT}", path=path)
    return read_glove_text(path)


def read_glove_text(path: str | Path) -> WordVectors:
    """Read a GloVe-format text file (see the module docstring for the exact format).

    Args:
        path: the file.

    Returns:
        `WordVectors` named after the path, with every line's word in file order and `vectors`
        of shape (num_words, D), float32.

    Raises:
        DataError: naming the file and line: an empty file, a line with a different number of
            values than the first, a value that is not a finite float32 (with its field), text
            that is not UTF-8, or a word2vec header whose dimension disagrees with the vectors.
    """
    path = Path(path)
    start = time.perf_counter()
    layout = _sniff(path)
    parsed = _read_fast(path, layout) if layout is not None else None
    if parsed is None:
        parsed = _read_exact(path)
    words, matrix, declared = parsed
    if declared is not None and declared != len(words):
        logger.warning("%s: header says %d words, the file has %d", path, declared, len(words))
    duplicates = len(words) - len(set(words))
    if duplicates:
        logger.warning(
            "%s: %d duplicate words; the first occurrence of each is used", path, duplicates
        )
    logger.info(
        "read %s words x %d from %s in %.2f s",
        f"{len(words):,}",
        matrix.shape[1],
        path,
        time.perf_counter() - start,
    )
    return WordVectors(str(path), words, matrix, source=str(path))


# --- reading ----------------------------------------------------------------------------------


def _fields(line: str) -> list[str] | None:
    """A line's space-separated fields, or None for a blank line."""
    line = line.rstrip(" \t\r\n")  # trailing spaces (fastText), Windows line ends
    return line.split(" ") if line.strip() else None


def _is_header(fields: list[str]) -> bool:
    """Whether the fields are a word2vec `<count> <dim>` header line."""
    return len(fields) == 2 and all(f.isascii() and f.isdigit() for f in fields)


class _Layout(NamedTuple):
    """What the fast reader needs to know, from the lines up to the first vector."""

    skip: int  # lines before the first vector that pandas must skip (the header, if any)
    dim: int
    trailing: bool  # lines end in a space (fastText), which pandas sees as an empty last field
    declared: int | None  # the word count a word2vec header states


def _sniff(path: Path) -> _Layout | None:
    """The file's layout, or None for anything unusual (left to the exact pass to judge)."""
    header: list[str] | None = None
    skip = 0
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return None
            fields = _fields(text.removeprefix("\ufeff") if number == 1 else text)
            if fields is None:
                continue
            if header is None and _is_header(fields):
                header, skip = fields, number
                continue
            dim = len(fields) - 1
            if dim < 1 or (header is not None and int(header[1]) != dim):
                return None
            trailing = text.rstrip("\r\n").endswith(" ")
            return _Layout(skip, dim, trailing, None if header is None else int(header[0]))
    return None


def _read_fast(path: Path, layout: _Layout) -> tuple[list[str], np.ndarray, int | None] | None:
    """Parse with pandas' C reader; None when it refuses, so the exact pass can say why."""
    dim = layout.dim
    columns = dim + 2 if layout.trailing else dim + 1  # a trailing space adds an empty field
    dtype: dict[int, Any] = {0: str, **dict.fromkeys(range(1, dim + 1), np.float32)}
    if layout.trailing:
        dtype[dim + 1] = str
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow shows up as inf below
            frame = pd.read_csv(
                path,
                sep=" ",
                header=None,
                names=list(range(columns)),
                index_col=False,
                dtype=dtype,
                skiprows=layout.skip,
                lineterminator="\n",  # as the exact pass: a stray \r inside a word is no line end
                quoting=csv.QUOTE_NONE,  # '"' and '#' are words in GloVe, not syntax
                doublequote=False,
                comment=None,
                na_filter=False,  # "nan", "null" and "NA" are words too
                encoding="utf-8",
                engine="c",
            )
    except ValueError as exc:  # ParserError, EmptyDataError and UnicodeDecodeError included
        logger.debug("%s: fast reader refused (%s); reading line by line", path, exc)
        return None
    if frame.empty or (layout.trailing and not (frame[dim + 1] == "").all()):
        return None
    matrix = np.ascontiguousarray(frame.iloc[:, 1 : dim + 1].to_numpy(np.float32))
    if not np.isfinite(matrix).all():
        return None
    return frame[0].tolist(), matrix, layout.declared


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of a UTF-8 file; a `DataError` at the first undecodable line."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"not UTF-8 text (byte {raw[exc.start]:#04x}, the line's byte {exc.start + 1})",
                    path=path,
                    line=number,
                ) from None
            yield number, (text.removeprefix("\ufeff") if number == 1 else text)


def _read_exact(path: Path) -> tuple[list[str], np.ndarray, int | None]:
    """Read line by line in Python; this pass defines the format and locates every error."""
    words: list[str] = []
    blocks: list[np.ndarray] = []
    pending: list[list[str]] = []  # values of lines not yet converted
    pending_lines: list[int] = []
    dim = first = declared = header_line = header_dim = None
    for number, text in _lines(path):
        fields = _fields(text)
        if fields is None:
            continue
        if dim is None:
            if header_line is None and _is_header(fields):
                header_line, declared = number, int(fields[0])
                header_dim = int(fields[1])
                continue
            if len(fields) < 2:
                raise DataError(
                    f"expected a word followed by its vector's values, got {text.strip()!r}",
                    path=path,
                    line=number,
                )
            dim, first = len(fields) - 1, number
            if header_line is not None and header_dim != dim:
                raise DataError(
                    f"the word2vec header '<count> <dim>' on line {header_line} says "
                    f"{header_dim} dimensions, but the first vector has {dim} values",
                    path=path,
                    line=number,
                )
        if len(fields) - 1 != dim:
            blocks.append(_convert(pending, pending_lines, dim, path))  # earlier errors first
            raise DataError(
                f"expected {dim} values after the word (as on line {first}), got {len(fields) - 1}",
                path=path,
                line=number,
            )
        words.append(fields[0])
        pending.append(fields[1:])
        pending_lines.append(number)
        if len(pending) == _CHUNK_LINES:
            blocks.append(_convert(pending, pending_lines, dim, path))
            pending, pending_lines = [], []
    if dim is None:
        what = "holds only a word2vec header" if header_line is not None else "is empty"
        raise DataError(f"the file {what}, no word vectors; expected {_FORMAT}", path=path)
    blocks.append(_convert(pending, pending_lines, dim, path))
    return words, np.concatenate(blocks), declared


def _convert(rows: list[list[str]], lines: list[int], dim: int, path: Path) -> np.ndarray:
    """(len(rows), dim) float32 from the rows' value strings; a `DataError` at the first bad one."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            block = np.array(rows, dtype=np.float32).reshape(len(rows), dim)
    except ValueError:
        block = None
    if block is not None and np.isfinite(block).all():
        return block
    for values, number in zip(rows, lines, strict=True):
        for column, value in enumerate(values, start=1):
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    ok = bool(np.isfinite(np.float32(value)))
                why = "is not a finite float32"
            except ValueError:
                ok, why = False, "is not a number"
            if not ok:
                raise DataError(
                    f"{value!r} {why} (value {column} of {dim} after the word)",
                    path=path,
                    line=number,
                    column=str(column + 1),  # fields counted from 1, the word being field 1
                )
    raise AssertionError("a block failed to convert but no value is bad")
