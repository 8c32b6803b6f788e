"""Turn a table of timestamped rows into a `TimeSeriesDataset`, refusing what a model cannot use.

Checks, each failing with a `DataError` that names the line (or row) and column: a parseable time
in every row, finite numbers in every target and covariate, rows in strictly increasing time
within each series (a duplicate names both lines), and a frequency that `pandas.infer_freq` can
name and every series follows. Rows are never reordered or filled in silently: a gap or a wrong
order in a user's file is more often a mistake than an intention.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from rnnkit.data.tables import Table, cell_to_str, is_missing
from rnnkit.data.types import TimeSeriesDataset
from rnnkit.errors import ConfigError, DataError

# pandas names anchored offsets in full ("YS-JAN"); the registry and most users write the
# default anchor as the bare alias, which pandas reads back as the same offset.
_DEFAULT_ANCHORS = {"YS-JAN": "YS", "YE-DEC": "YE", "QS-JAN": "QS", "QE-DEC": "QE", "W-SUN": "W"}


def series_from_table(
    table: Table,
    *,
    time_column: str,
    target_columns: list[str],
    series_column: str | None,
    covariate_columns: list[str],
) -> TimeSeriesDataset:
    """Validate `table` and split it into one frame per series (see `load_time_series`).

    Raises:
        ConfigError: no targets, or one column in two roles.
        DataError: a missing column; an unparseable or missing time; a non-numeric, missing,
            NaN or infinite target or covariate; a duplicate or out-of-order time; a frequency
            that cannot be inferred or differs between series.
    """
    _check_roles(time_column, target_columns, series_column, covariate_columns)
    times = _parse_times(table, time_column)
    values = {c: _numbers(table, c) for c in [*target_columns, *covariate_columns]}
    groups = _group_rows(table, series_column, default_id=target_columns[0])
    for series_id, rows in groups.items():
        _check_order(table, times, rows, time_column, series_id if series_column else None)
    freq = _common_freq(table, times, groups, time_column, series_column)
    series = {}
    for series_id, rows in groups.items():
        index = pd.DatetimeIndex(times[rows], name=time_column, freq=freq)
        series[series_id] = pd.DataFrame({c: v[rows] for c, v in values.items()}, index=index)
    return TimeSeriesDataset(
        str(table.path),
        series,
        freq,
        list(target_columns),
        list(covariate_columns),
        source=str(table.path),
    )


def _check_roles(
    time_column: str, targets: list[str], series_column: str | None, covariates: list[str]
) -> None:
    if not targets:
        raise ConfigError("target_columns is empty; name at least one column to forecast")
    roles = [("time_column", time_column), ("series_column", series_column)]
    roles += [("target_columns", c) for c in targets] + [
        ("covariate_columns", c) for c in covariates
    ]
    seen: dict[str, str] = {}
    for role, column in roles:
        if column is None:
            continue
        if column in seen:
            raise ConfigError(f"column {column!r} is given twice: in {seen[column]} and {role}")
        seen[column] = role


def _parse_times(table: Table, column: str) -> pd.DatetimeIndex:
    raw = table.column(column)
    if pd.api.types.is_datetime64_any_dtype(raw):
        cells = raw
    else:
        cells = pd.Series([None if is_missing(v) else cell_to_str(v) for v in raw], dtype=object)
    for row, cell in enumerate(cells):
        if is_missing(cell) or cell == "":
            raise table.error("missing time; every row needs one", row, column)
    try:
        times = pd.to_datetime(cells, errors="coerce")
    except (ValueError, TypeError) as err:
        raise _mixed_offsets(table, cells, column, err) from None
    bad = np.flatnonzero(times.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise table.error(
            f"could not parse {cells.iloc[row]!r} as a date/time; expected the format of the "
            f"first row ({cells.iloc[0]!r}), ISO 8601 (2020-01-31 or 2020-01-31 13:00) is safest",
            row,
            column,
        )
    return pd.DatetimeIndex(times)


def _mixed_offsets(table: Table, cells: pd.Series, column: str, err: Exception) -> DataError:
    """Locate the first time whose UTC offset differs from the first row's.

    pandas refuses a column mixing offsets (typically across a daylight-saving change) without
    saying where; parsing cell by cell finds the row.
    """
    first = None
    for row, cell in enumerate(cells):
        try:
            offset = pd.Timestamp(cell).utcoffset()
        except (ValueError, TypeError):
            continue
        if row == 0:
            first = offset
        elif offset != first:
            return table.error(
                f"time {cell!r} has UTC offset {offset} but the first row has {first}; write "
                "every time with one offset, or all in UTC",
                row,
                column,
            )
    return DataError(f"could not parse the times: {err}", path=table.path, column=column)


def _numbers(table: Table, column: str) -> np.ndarray:
    raw = table.column(column)
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        numbers = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        unparsed = np.zeros(len(raw), dtype=bool)
    else:
        cells = raw.astype(object)
        numbers = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        blank = np.array([is_missing(v) or (isinstance(v, str) and not v.strip()) for v in cells])
        unparsed = np.isnan(numbers) & ~blank & ~_spelled_nan(cells)
    bad = np.flatnonzero(unparsed | ~np.isfinite(numbers))
    if not len(bad):
        return numbers
    row = int(bad[0])
    cell = raw.iloc[row]
    if unparsed[row]:
        message = f"expected a number, got {cell!r}"
    elif np.isinf(numbers[row]):
        message = f"infinite value {cell!r}; every value must be a finite number"
    else:
        shown = "an empty cell" if is_missing(cell) or str(cell).strip() == "" else repr(cell)
        message = f"missing value ({shown}); every row needs a finite number (no NaN)"
    raise table.error(message, row, column)


def _spelled_nan(cells: pd.Series) -> np.ndarray:
    """Cells that spell NaN ("nan", "NaN"): missing values, not malformed numbers."""
    return np.array([isinstance(v, str) and v.strip().lower() == "nan" for v in cells], dtype=bool)


def _group_rows(table: Table, column: str | None, default_id: str) -> dict[str, np.ndarray]:
    """Series id -> its rows in file order; series in order of first appearance."""
    if column is None:
        return {default_id: np.arange(len(table))}
    groups: dict[str, list[int]] = {}
    for row, value in enumerate(table.column(column).tolist()):
        series_id = "" if is_missing(value) else cell_to_str(value)
        if not series_id:
            raise table.error("missing series id; every row needs one", row, column)
        groups.setdefault(series_id, []).append(row)
    return {key: np.asarray(rows) for key, rows in groups.items()}


def _check_order(
    table: Table, times: pd.DatetimeIndex, rows: np.ndarray, column: str, series_id: str | None
) -> None:
    """Strictly increasing times: a duplicate names both lines, a step back names its line."""
    in_series = f" in series {series_id!r}" if series_id is not None else ""
    own = times[rows]
    duplicated = np.flatnonzero(own.duplicated())
    if len(duplicated):
        second = int(duplicated[0])
        first = int(np.flatnonzero(own == own[second])[0])
        raise table.error(
            f"duplicate time {_show(own[second])}{in_series}: also at "
            f"{_place(table, int(rows[first]))}; each time may appear once per series",
            int(rows[second]),
            column,
        )
    backwards = np.flatnonzero(np.diff(own.asi8) < 0)
    if len(backwards):
        i = int(backwards[0]) + 1
        raise table.error(
            f"time {_show(own[i])} comes after {_show(own[i - 1])} at "
            f"{_place(table, int(rows[i - 1]))}{in_series}; sort the rows by time",
            int(rows[i]),
            column,
        )


def _common_freq(
    table: Table,
    times: pd.DatetimeIndex,
    groups: dict[str, np.ndarray],
    column: str,
    series_column: str | None,
) -> str:
    """The one frequency every series follows, inferred from the series long enough to tell."""
    freqs: dict[str, str] = {}
    for series_id, rows in groups.items():
        if len(rows) < 3:
            continue
        freq = _infer_freq(times[rows])
        if freq is None:
            raise _irregular(table, times, rows, column, series_id if series_column else None)
        freqs[series_id] = freq
    if not freqs:
        raise DataError(
            "need at least 3 time steps in a series to infer its frequency; the longest has "
            f"{max(len(rows) for rows in groups.values())}",
            path=table.path,
            column=column,
        )
    first_id, freq = next(iter(freqs.items()))
    for series_id, rows in groups.items():
        own = times[rows]
        expected = pd.date_range(own[0], periods=len(own), freq=freq)
        off_grid = np.flatnonzero(expected != own)
        if len(off_grid):
            i = int(off_grid[0])
            raise table.error(
                f"series {series_id!r} does not step by {freq!r} like series {first_id!r}: "
                f"expected {_show(expected[i])} here, got {_show(own[i])}; every series needs "
                "the same frequency",
                int(rows[i]),
                column,
            )
    return freq


def _infer_freq(index: pd.DatetimeIndex) -> str | None:
    with warnings.catch_warnings():
        # pandas 3 warns that infer_freq will return an offset; we take .freqstr either way.
        warnings.simplefilter("ignore", DeprecationWarning)
        freq = pd.infer_freq(index)
    if freq is None:
        return None
    alias = freq if isinstance(freq, str) else freq.freqstr
    return _DEFAULT_ANCHORS.get(alias, alias)


def _irregular(
    table: Table,
    times: pd.DatetimeIndex,
    rows: np.ndarray,
    column: str,
    series_id: str | None,
) -> DataError:
    """Say where regular spacing first breaks: the longest regular prefix ends before it.

    A prefix of a regular series is regular, so a binary search over prefix lengths finds the
    first bad step with O(log n) calls to `infer_freq`.
    """
    own = times[rows]
    in_series = f" of series {series_id!r}" if series_id is not None else ""
    if _infer_freq(own[:3]) is None:
        return table.error(
            f"could not infer a regular frequency{in_series}: the first steps differ, "
            f"{_show(own[0])} -> {_show(own[1])} -> {_show(own[2])}",
            int(rows[2]),
            column,
        )
    good, bad = 3, len(own)  # own[:good] is regular, own[:bad] is not
    while bad - good > 1:
        middle = (good + bad) // 2
        if _infer_freq(own[:middle]) is None:
            bad = middle
        else:
            good = middle
    step = bad - 1
    return table.error(
        f"could not infer a regular frequency{in_series}: the first irregular step is "
        f"{_show(own[step - 1])} ({_place(table, int(rows[step - 1]))}) -> {_show(own[step])}, "
        f"after {step - 1} steps of {_infer_freq(own[:good])!r}. Are time steps missing or "
        "repeated? Rows must be evenly spaced (gaps are not filled in)",
        int(rows[step]),
        column,
    )


def _show(time: pd.Timestamp) -> str:
    return time.strftime("%Y-%m-%d") if time == time.normalize() else time.isoformat(sep=" ")


def _place(table: Table, row: int) -> str:
    where = table.where(row)
    return f"line {where['line']}" if "line" in where else f"row {where['row']}"
