"""Load users' own data: labelled tables, aclImdb-style folders, plain text and time series.

Formats, chosen by suffix: CSV, TSV, JSONL/NDJSON (each optionally .gz/.bz2/.xz) and Parquet for
tables; `.txt` for text. Bad input raises `rnnkit.errors.DataError` naming the file, the line
(text formats; 1-based, a CSV header is line 1, quoted fields spanning lines are counted) or the
0-based row (Parquet), the column, and what was expected.

A path holds one of three kinds of data (`KINDS`), each read into its own type: labelled texts
(`TextClassificationDataset`), time series (`TimeSeriesDataset`) or a text corpus (`TextCorpus`).
This layer knows kinds of data, not what a model will do with them.

Labels are strings: 1 and 1.0 both become "1", so a rating column reads the same from every
format. Texts in tables are kept exactly as written; `.txt` files get "\n" line endings, and a
class folder's example loses its final line break.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.series_table import series_from_table
from rnnkit.data.tables import (
    Table,
    cell_to_str,
    existing,
    is_missing,
    read_table,
)
from rnnkit.data.text_folders import folder_kind, is_text_file, load_corpus, load_text_folder
from rnnkit.data.types import (
    Dataset,
    LabeledTexts,
    TextClassificationDataset,
    TimeSeriesDataset,
)
from rnnkit.errors import ConfigError

__all__ = [
    "KINDS",
    "OLDER_WORDS",
    "load_corpus",
    "load_path",
    "load_text_classification",
    "load_text_folder",
    "load_time_series",
]

#: The kinds of data a path can hold -> the options its loader takes.
KINDS: dict[str, tuple[str, ...]] = {
    "labeled-texts": ("text_column", "label_column", "test_path"),
    "time-series": (
        "time_column",
        "target_columns",
        "series_column",
        "covariate_columns",
        "fill_missing",
    ),
    "corpus": (),
}
#: Older words for the kinds, still accepted: callers used to name the job the data was for
#: (the dataset types' `task` values and the CLI's short names) before kinds had names.
OLDER_WORDS: dict[str, str] = {
    "classification": "labeled-texts",
    "classifier": "labeled-texts",
    "forecasting": "time-series",
    "forecaster": "time-series",
    "language-model": "corpus",
    "language-modeling": "corpus",
    "lm": "corpus",
}
_WHOLE_NUMBER = re.compile(r"[+-]?\d+(\.0*)?")


def load_text_classification(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    test_path: str | Path | None = None,
) -> TextClassificationDataset:
    """Labelled texts from a table file, with an optional predefined test file.

    Args:
        path: a CSV, TSV, JSONL or Parquet file with one text and one label per row.
        text_column: the column (JSON key) holding the text.
        label_column: the column holding the label; numbers become strings ("1", "2", ...).
        test_path: a second table with the same columns, returned as `dataset.test`.

    Returns:
        The dataset; `name` and `source` are `path`, `test_source` is `test_path`.

    Raises:
        DataError: a missing file or column, an empty text, a missing label, a test label that
            training never shows, or any problem `read_table` reports, located by line or row.
    """
    return _classification(read_table(path), text_column, label_column, test_path)


def load_time_series(
    path: str | Path,
    *,
    time_column: str = "time",
    target_columns: Sequence[str] | str = ("value",),
    series_column: str | None = None,
    covariate_columns: Sequence[str] | str = (),
    fill_missing: str = "error",
) -> TimeSeriesDataset:
    """Regular time series from a table file, one series or one per `series_column` value.

    Rows must be in time order within each series, one row per time step; the frequency is
    inferred with `pandas.infer_freq`. Gaps and missing values are errors unless
    `fill_missing` is "interpolate" or "ffill".

    Args:
        path: a CSV, TSV, JSONL or Parquet file.
        time_column: dates or date-times (ISO 8601 is safest; a bare year like 1949 works).
        target_columns: the numeric columns to forecast.
        series_column: the column whose values name each series; None for a single series,
            whose id is the (first) target's name.
        covariate_columns: other numeric columns known at every step.
        fill_missing: "error", "interpolate" or "ffill" for gaps and missing values.

    Returns:
        The dataset; each frame is indexed by a `DatetimeIndex` named `time_column` and holds
        the targets then the covariates as float64.

    Raises:
        DataError: see `rnnkit.data.series_table.series_from_table`.
        ConfigError: no targets, or one column given two roles.
    """
    return _series(
        read_table(path),
        time_column,
        target_columns,
        series_column,
        covariate_columns,
        fill_missing,
    )


def load_path(
    path: str | Path, *, kind: str | None = None, task: str | None = None, **columns: Any
) -> Dataset:
    """Load a file or folder, choosing the loader from `kind` or from what the path holds.

    Without `kind`: a `.txt` file is a corpus; a folder with class folders (or `train/`) is an
    aclImdb layout of labelled texts, a folder with `.txt` files only is a corpus; a table
    holds labelled texts if the options or its columns name text and label ("text", "label"),
    time series if they name a time column ("time").

    Args:
        path: the file or folder.
        kind: "labeled-texts", "time-series" or "corpus" (`KINDS`); the older words of
            `OLDER_WORDS` ("classification", "forecaster", "lm", ...) are accepted too.
        task: the older name of `kind`, still accepted.
        **columns: options of the chosen loader (`text_column=`, `time_column=`, ...).

    Raises:
        ConfigError: an unknown kind, an option the kind does not take, or a kind that cannot
            be told from the path.
        DataError: whatever the loader raises.
    """
    path = existing(path)
    if kind is not None and task is not None:
        raise ConfigError(f"pass kind= or its older name task=, not both (got {kind!r}, {task!r})")
    resolved = _resolve_kind(kind, "kind") if task is None else _resolve_kind(task, "task")
    table = None
    if resolved is None:
        resolved, table = _guess_kind(path, columns)
    accepted = KINDS[resolved]
    unknown = sorted(set(columns) - set(accepted))
    if unknown:
        raise ConfigError(
            f"option(s) {unknown} do not apply to {resolved}; accepted: "
            f"{', '.join(accepted) or 'none'}"
        )
    if resolved == "corpus":
        return load_corpus(path)
    if resolved == "labeled-texts" and path.is_dir():
        if columns:
            raise ConfigError(f"a class folder takes no column options, got {sorted(columns)}")
        return load_text_folder(path)
    if table is None:
        table = read_table(path)
    # A table read to guess the kind is reused: guessing happens only without column options.
    if resolved == "labeled-texts":
        return _classification(table, **columns)
    return _series(table, **columns)


def _resolve_kind(word: str | None, name: str) -> str | None:
    """The kind `word` names (a kind or an older word); `name` is the argument, for messages."""
    if word is None or word in KINDS:
        return word
    if word not in OLDER_WORDS:
        raise ConfigError(
            f"unknown {name} {word!r}; accepted: {', '.join(KINDS)} "
            f"(or the older words {', '.join(OLDER_WORDS)})"
        )
    return OLDER_WORDS[word]


def _guess_kind(path: Path, columns: dict[str, Any]) -> tuple[str, Table | None]:
    """The kind of data a path holds, and the table if one had to be read to tell."""
    for kind in ("labeled-texts", "time-series"):
        if any(key in KINDS[kind] for key in columns):
            return kind, None
    if path.is_dir():
        kind = folder_kind(path)
        if kind is not None:
            return kind, None
        raise ConfigError(
            f"cannot tell what {path} holds (class folders and loose .txt files, or neither); "
            "pass kind='labeled-texts' or kind='corpus'"
        )
    if is_text_file(path):
        return "corpus", None
    table = read_table(path)
    names = {str(c) for c in table.frame.columns}
    if {"text", "label"} <= names:
        return "labeled-texts", table
    if "time" in names:
        return "time-series", table
    raise ConfigError(
        f"cannot tell what {path} holds from its columns {sorted(names)}; pass "
        "kind='labeled-texts' with text_column=/label_column=, or kind='time-series' with "
        "time_column=/target_columns="
    )


def _as_list(columns: Sequence[str] | str) -> list[str]:
    # A lone string is one column, not a sequence of one-letter columns.
    return [columns] if isinstance(columns, str) else list(columns)


def _classification(
    table: Table,
    text_column: str = "text",
    label_column: str = "label",
    test_path: str | Path | None = None,
) -> TextClassificationDataset:
    name = str(table.path)
    data = _labeled_texts(table, text_column, label_column)
    if test_path is None:
        return TextClassificationDataset(name, data, source=name)
    test_table = read_table(test_path)
    test = _labeled_texts(test_table, text_column, label_column)
    _check_test_labels(test_table, test.labels, set(data.labels), label_column)
    return TextClassificationDataset(
        name, data, test, source=name, test_source=str(test_table.path)
    )


def _series(
    table: Table,
    time_column: str = "time",
    target_columns: Sequence[str] | str = ("value",),
    series_column: str | None = None,
    covariate_columns: Sequence[str] | str = (),
    fill_missing: str = "error",
) -> TimeSeriesDataset:
    return series_from_table(
        table,
        time_column=time_column,
        target_columns=_as_list(target_columns),
        series_column=series_column,
        covariate_columns=_as_list(covariate_columns),
        fill_missing=fill_missing,
    )


def _labeled_texts(table: Table, text_column: str, label_column: str) -> LabeledTexts:
    if text_column == label_column:
        raise ConfigError(f"text_column and label_column are both {text_column!r}")
    texts = _texts(table, text_column)
    return LabeledTexts(texts, _labels(table, label_column))


def _texts(table: Table, column: str) -> list[str]:
    texts = table.column(column).tolist()
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            if is_missing(text):
                raise table.error("missing text; expected a non-empty string", row, column)
            raise table.error(
                f"expected text (a string), got {type(text).__name__} {text!r}", row, column
            )
        if not text.strip():
            raise table.error(
                "empty text; every row needs a non-empty text (drop the row or fill it in)",
                row,
                column,
            )
    return texts


#: labels that spreadsheets and pandas write for a missing value; as a class they would be
#: trained and predicted like any other (issue 17), so they are refused. ("none" is left alone:
#: it is a real class in many label sets.)
MISSING_MARKERS = frozenset({"nan", "na", "n/a", "#n/a", "null", "<na>"})


def _labels(table: Table, column: str) -> list[str]:
    labels = []
    for row, value in enumerate(table.column(column).tolist()):
        if isinstance(value, (list, tuple, dict, np.ndarray)):
            raise table.error(f"expected one label, got {value!r}", row, column)
        label = "" if is_missing(value) else cell_to_str(value)
        if not label:
            raise table.error("missing label; every row needs one", row, column)
        if label.strip().lower() in MISSING_MARKERS:
            raise table.error(
                f"label {label!r} marks a missing value, not a class; fill in the label or drop "
                "the row",
                row,
                column,
            )
        labels.append(label)
    # A CSV rating column written from floats ("1.0") reads as the integers pandas would infer.
    if all(_WHOLE_NUMBER.fullmatch(label) for label in labels):
        labels = [str(int(label.split(".")[0])) for label in labels]
    return labels


def _check_test_labels(table: Table, labels: list[str], known: set[str], column: str) -> None:
    for row, label in enumerate(labels):
        if label not in known:
            raise table.error(
                f"label {label!r} appears only in the test file; training labels are "
                f"{sorted(known)}",
                row,
                column,
            )
