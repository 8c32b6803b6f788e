"""Errors for people: each names the value, the place and what would be accepted.

The CLI prints these as one line (no traceback); anything else escaping is a bug in rnnkit.
"""

from __future__ import annotations

from pathlib import Path


class RnnkitError(Exception):
    """Base class of every error rnnkit raises on purpose."""


class ConfigError(RnnkitError, ValueError):
    """A bad option, config key or argument value."""


class DataError(RnnkitError, ValueError):
    """Bad input data, located as precisely as we can: file, row or line, column or key.

    Args:
        message: what is wrong and what would be accepted.
        path: the file (or folder) the data came from.
        line: 1-based line number in a text file (CSV rows count their header as line 1).
        row: 0-based row index in a table, when lines are not meaningful (Parquet).
        column: the column or JSON key.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.row = row
        self.column = column
        self.reason = message
        where = []
        if self.path is not None:
            where.append(self.path + (f":{line}" if line is not None else ""))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ModelFileError(DataError):
    """A run folder's model file (config.json, model.safetensors) is damaged, hostile or a pickle.

    A `DataError` (same path/column fields), raised by `rnnkit.model_file` before a model is built.
    """


class FetchError(RnnkitError, RuntimeError):
    """A dataset could not be downloaded, verified or unpacked into the cache."""
