"""Read users' tables (CSV, TSV, JSONL, Parquet) with pandas, remembering where each row came from.

Every failure is a `DataError` that names the file and, where it can, the line (text formats,
1-based, header = line 1) or the 0-based row (Parquet, or a CSV whose line numbers could not be
matched to pandas' rows). Text formats are decoded as strict UTF-8 before pandas sees them, so a
bad byte is reported with its line and byte offset instead of as mojibake or a codec traceback.

CSV/TSV cells are read as strings with no NA guessing (a review that says "NA" or "null" stays
text); JSONL and Parquet keep their native types. Callers convert columns themselves.
"""

from __future__ import annotations

import bz2
import csv
import difflib
import functools
import gzip
import io
import json
import lzma
import math
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from rnnkit.errors import DataError

T = TypeVar("T")

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
COMPRESSIONS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.decompress,
    ".bz2": bz2.decompress,
    ".xz": lzma.decompress,
}
_BOM = b"\xef\xbb\xbf"


def accepted_table_suffixes() -> str:
    """The table suffixes we read, for error messages."""
    compressed = [f"{s}{c}" for s in (".csv", ".tsv", ".jsonl") for c in COMPRESSIONS]
    return ", ".join([*FORMATS, *compressed])


def split_suffix(path: Path) -> tuple[str, str | None]:
    """`data.csv.gz` -> (".csv", ".gz"); `data.csv` -> (".csv", None). Lower-cased."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        return (suffixes[-2] if len(suffixes) > 1 else ""), suffixes[-1]
    return (suffixes[-1] if suffixes else ""), None


def existing(path: str | Path) -> Path:
    """`path` as a `Path`, or a `DataError` if nothing is there."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError("no such file or folder", path=path)
    return path


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when its last suffix is .gz, .bz2 or .xz."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"could not read the file: {err.strerror or err}", path=path) from err
    compression = split_suffix(path)[1]
    if compression is None:
        return data
    try:
        return COMPRESSIONS[compression](data)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as err:
        raise DataError(f"could not decompress the {compression} file: {err}", path=path) from err


def decode_utf8(data: bytes, path: Path) -> str:
    """Strict UTF-8 (a leading byte-order mark is dropped), with a located error if not.

    Line endings are left as they are; callers that want "\\n" normalise.
    """
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = start + err.start
        line = data.count(b"\n", 0, offset) + 1
        after = " (after decompression)" if split_suffix(path)[1] else ""
        raise DataError(
            f"not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset}{after}. "
            "Re-encode the file as UTF-8, e.g. `iconv -f cp1252 -t utf-8 IN > OUT` "
            "(cp1252 or latin-1 is the usual culprit)",
            path=path,
            line=line,
        ) from None


def read_text(path: Path) -> str:
    """A text file (optionally compressed) as a string with "\\n" line endings."""
    text = decode_utf8(read_bytes(path), path)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA/NaT: a cell with no value."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


class Table:
    """A pandas frame read from `path`, plus a way to point at any of its rows.

    Args:
        path: the file the frame came from.
        frame: the rows, with a default RangeIndex (row i is `frame.iloc[i]`).
        line_numbers: returns the 1-based file line of each row, or None when rows have no
            meaningful line (Parquet). Called only when an error needs it, because matching
            lines to rows costs a second pass over the file.
        column_word: "column" for tables, "key" for JSONL, used in messages.
    """

    def __init__(
        self,
        path: Path,
        frame: pd.DataFrame,
        line_numbers: Callable[[], list[int] | None],
        column_word: str = "column",
    ) -> None:
        self.path = path
        self.frame = frame
        self._line_numbers = line_numbers
        self.column_word = column_word

    def __len__(self) -> int:
        return len(self.frame)

    @cached_property
    def lines(self) -> list[int] | None:
        """The file line of each row, or None where rows are located by index instead."""
        return self._line_numbers()

    def where(self, row: int) -> dict[str, int]:
        """`DataError` keywords that locate `row`: its line if known, else the row index."""
        lines = self.lines
        return {"line": lines[row]} if lines is not None else {"row": row}

    def error(self, message: str, row: int | None = None, column: str | None = None) -> DataError:
        """A `DataError` about this file, located at `row` and `column` when given."""
        where = {} if row is None else self.where(row)
        return DataError(message, path=self.path, column=column, **where)

    def column(self, name: str) -> pd.Series:
        """The column `name`; if absent, an error listing the columns and the closest name."""
        if name in self.frame.columns:
            return self.frame[name]
        columns = [str(c) for c in self.frame.columns]
        raise _missing_column(self.path, name, columns, self.column_word)


#: False while a run reopens a file that its config.json names (`unquoted_columns`)
_QUOTE_COLUMNS: ContextVar[bool] = ContextVar("rnnkit_quote_columns", default=True)


@contextmanager
def unquoted_columns() -> Iterator[None]:
    """Errors inside name no column of the file read.

    A file the user passed on this command line may have its header quoted back ("did you mean
    'text'?"); a file a run folder's `config.json` names may not: an edited config.json could
    name any local file, and the error would print its first line.
    """
    token = _QUOTE_COLUMNS.set(False)
    try:
        yield
    finally:
        _QUOTE_COLUMNS.reset(token)


def reopens_config_data(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorate a function that reopens the data a run's config.json names: `unquoted_columns`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with unquoted_columns():
            return fn(*args, **kwargs)

    return wrapper


def _missing_column(path: Path, name: str, columns: list[str], word: str) -> DataError:
    """ "no column 'txt'; did you mean 'text'? The file has columns: ..." as a DataError."""
    if not _QUOTE_COLUMNS.get():
        return DataError(
            f"no {word} {name!r} (this file is named by the run's config.json, so its "
            f"{word}s are not shown)",
            path=path,
        )
    folded = {c.strip().lower(): c for c in columns}
    guess = folded.get(name.strip().lower())
    if guess is None:
        close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
        guess = close[0] if close else None
    hint = f"; did you mean {guess!r}?" if guess is not None else "."
    shown = ", ".join(repr(c) for c in columns[:30]) + (" ..." if len(columns) > 30 else "")
    return DataError(f"no {word} {name!r}{hint} The file has {word}s: {shown}", path=path)


def read_table(path: str | Path) -> Table:
    """Read a CSV, TSV, JSONL or Parquet file (chosen by suffix) that has at least one row.

    Raises:
        DataError: the path does not exist, its suffix is not a table format, it is empty or
            has a header but no rows, it is not UTF-8, or it does not parse.
    """
    path = existing(path)
    if path.is_dir():
        raise DataError(
            f"expected a table file ({accepted_table_suffixes()}), got a folder", path=path
        )
    suffix, compression = split_suffix(path)
    kind = FORMATS.get(suffix)
    if kind is None or (kind == "parquet" and compression is not None):
        raise DataError(
            f"unknown table format {''.join(path.suffixes) or '(no suffix)'!r}; "
            f"accepted: {accepted_table_suffixes()}",
            path=path,
        )
    if kind == "parquet":
        table = _read_parquet(path)
    elif kind == "jsonl":
        table = _read_jsonl(path)
    else:
        table = _read_delimited(path, "\t" if kind == "tsv" else ",")
    if len(table) == 0:
        raise table.error("the file has no data rows (only a header, or nothing at all)")
    return table


def _read_parquet(path: Path) -> Table:
    import pyarrow as pa

    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise DataError(f"not a readable Parquet file: {err}", path=path) from err
    return Table(path, frame.reset_index(drop=True), lambda: None)


def _read_jsonl(path: Path) -> Table:
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    # split("\n") rather than splitlines(): JSON strings may hold U+2028 and friends verbatim.
    for number, raw in enumerate(read_text(path).split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as err:
            raise DataError(
                f"malformed JSON: {err.msg} at character {err.colno}; expected one JSON "
                "object per line",
                path=path,
                line=number,
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"expected a JSON object {{...}} on each line, got {type(record).__name__}",
                path=path,
                line=number,
            )
        records.append(record)
        lines.append(number)
    return Table(path, pd.DataFrame.from_records(records), lambda: lines, column_word="key")


def _read_delimited(path: Path, sep: str) -> Table:
    text = decode_utf8(read_bytes(path), path)
    try:
        with warnings.catch_warnings():
            # pandas only warns when a row has more fields than the header (and drops them).
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                dtype=str,
                keep_default_na=False,
                index_col=False,
            )
    except pd.errors.EmptyDataError:
        raise DataError(
            "the file is empty; expected a header line and at least one row", path=path
        ) from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as err:
        raise _locate_parse_error(path, text, sep, err) from None

    def line_numbers() -> list[int] | None:
        starts = _record_lines(text, sep)
        # Trust our own count only where it agrees with pandas' (header + one per row).
        return starts[1:] if len(starts) == len(frame) + 1 else None

    return Table(path, frame, line_numbers)


def _records(text: str, sep: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based start line, fields) of each CSV record, skipping blank lines as pandas does.

    Quoted fields may span lines, so record i need not be on line i + 1; the csv module's
    reader counts physical lines as it goes, which gives the real position.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    consumed = 0
    for record in reader:
        # [] is an empty line and ["  "] a whitespace-only one; pandas skips both (but not a
        # quoted "", which reads as [""]).
        if record and not (len(record) == 1 and record[0] and not record[0].strip()):
            yield consumed + 1, record
        consumed = reader.line_num


def _record_lines(text: str, sep: str) -> list[int]:
    return [line for line, _ in _records(text, sep)]


def _locate_parse_error(path: Path, text: str, sep: str, err: Exception) -> DataError:
    """Turn pandas' tokenizer error into one with a real line number."""
    reason = str(err).strip().removeprefix("Error tokenizing data. C error: ")
    width = None
    line = None
    for line, record in _records(text, sep):
        if width is None:
            width = len(record)
        elif len(record) > width:
            separator = "a tab" if sep == "\t" else "a comma"
            return DataError(
                f"{len(record)} fields where the header has {width}; quote fields that contain "
                f"{separator} or a line break",
                path=path,
                line=line,
            )
    if "EOF inside string" in reason and line is not None:
        # The csv module swallows the rest of the file into the open field, so the last record
        # it saw is where the quote was opened.
        return DataError(
            'a quoted field opened here is never closed (missing ")', path=path, line=line
        )
    return DataError(f"could not parse the file: {reason}", path=path)


def cell_to_str(value: Any) -> str:
    """A label or id cell as a string: 3 -> "3", 3.0 -> "3", 0.5 -> "0.5", " pos " -> "pos".

    Whole floats lose their ".0" because pandas, JSON writers and Parquet turn an integer column
    with a gap into floats; the label is still the integer.
    """
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()
