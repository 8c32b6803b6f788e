"""Turn a table of timestamped rows into a `TimeSeriesDataset`, refusing what a model cannot use.

Checks, each failing with a `DataError` that names the line (or row) and column: a parseable time
in every row, finite numbers in every target and covariate, rows in strictly increasing time
within each series (a duplicate names both lines), and a frequency that `pandas.infer_freq` can
name and every series follows. Rows are never reordered or filled in silently: a gap or a wrong
order in a user's file is more often a mistake than an intention. A gap (missing time steps on
the inferred grid) is an error naming the rows around it unless `fill_missing` asks for repair:
"interpolate" (linear between neighbours, the nearest value at either end) or "ffill" (carry the
last value forward); either also fills empty or NaN values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from rnnkit.data.tables import Table, cell_to_str, is_missing
from rnnkit.data.types import TimeSeriesDataset
from rnnkit.errors import ConfigError, DataError

FILL_MISSING = ("error", "interpolate", "ffill")

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
    fill_missing: str = "error",
) -> TimeSeriesDataset:
    """Validate `table` and split it into one frame per series (see `load_time_series`).

    `fill_missing` is "error", "interpolate" or "ffill" (see the module docstring).

    Raises:
        ConfigError: no targets, or one column in two roles.
        DataError: a missing column; an unparseable or missing time; a non-numeric or
            infinite target or covariate; a missing or NaN one or a gap (unless filled); a
            duplicate or out-of-order time; a frequency that cannot be inferred or differs
            between series.
    """
    if fill_missing not in FILL_MISSING:
        raise ConfigError(
            f"fill_missing must be one of {', '.join(FILL_MISSING)}, got {fill_missing!r}"
        )
    _check_roles(time_column, target_columns, series_column, covariate_columns)
    times = _parse_times(table, time_column)
    repair = fill_missing != "error"
    values = {c: _numbers(table, c, repair) for c in [*target_columns, *covariate_columns]}
    groups = _group_rows(table, series_column, default_id=target_columns[0])
    for series_id, rows in groups.items():
        _check_order(table, times, rows, time_column, series_id if series_column else None)
    freq = _common_freq(table, times, groups, time_column, series_column, repair)
    series = {}
    for series_id, rows in groups.items():
        own = times[rows]
        frame = pd.DataFrame({c: v[rows] for c, v in values.items()}, index=own)
        if repair:
            frame = _fill(table, frame, rows, freq, fill_missing, series_id, time_column)
        frame.index = pd.DatetimeIndex(frame.index, name=time_column, freq=freq)
        series[series_id] = frame
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


def _fill(
    table: Table,
    frame: pd.DataFrame,
    rows: np.ndarray,
    freq: str,
    how: str,
    series_id: str,
    time_column: str,
) -> pd.DataFrame:
    """Insert the missing steps of `frame` on its `freq` grid and fill every missing value."""
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=freq)
    filled = frame.reindex(grid)
    if how == "interpolate":
        return filled.interpolate(method="linear", limit_direction="both")
    filled = filled.ffill()
    for column in filled.columns:
        if filled[column].isna().any():  # only a leading gap survives a forward fill
            raise table.error(
                f"missing value at the start of series {series_id!r}: ffill has nothing to "
                "carry forward; use fill_missing='interpolate' or drop the leading rows",
                int(rows[0]),
                column,
            )
    del time_column
    return filled


def _numbers(table: Table, column: str, allow_missing: bool = False) -> np.ndarray:
    raw = table.column(column)
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        numbers = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        unparsed = np.zeros(len(raw), dtype=bool)
    else:
        cells = raw.astype(object)
        numbers = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        blank = np.array([is_missing(v) or (isinstance(v, str) and not v.strip()) for v in cells])
        unparsed = np.isnan(numbers) & ~blank & ~_spelled_nan(cells)
    invalid = np.isinf(numbers) if allow_missing else ~np.isfinite(numbers)
    bad = np.flatnonzero(unparsed | invalid)
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
        message = (
            f"missing value ({shown}); every row needs a finite number (no NaN), or pass "
            "--fill-missing interpolate|ffill to fill it"
        )
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
    repair: bool = False,
) -> str:
    """The one frequency every series follows, inferred from the series long enough to tell.

    A series that `infer_freq` cannot name is checked for gaps: if every time lies on the grid
    of its regular prefix, the missing steps are named (an error unless `repair`).
    """
    freqs: dict[str, str] = {}
    for series_id, rows in groups.items():
        if len(rows) < 3:
            continue
        freq = _infer_freq(times[rows])
        if freq is None:
            freq = _gapped_freq(times[rows])
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
        grid = pd.date_range(own[0], max(own[-1], own[0]), freq=freq)
        off_grid = np.flatnonzero(~own.isin(grid))
        if freqs.get(series_id, freq) != freq:
            i = int(np.flatnonzero(pd.date_range(own[0], periods=len(own), freq=freq) != own)[0])
            raise table.error(
                f"series {series_id!r} does not step by {freq!r} like series {first_id!r} but "
                f"by {freqs[series_id]!r}; every series needs the same frequency",
                int(rows[i]),
                column,
            )
        if len(off_grid):
            i = int(off_grid[0])
            expected = grid[np.searchsorted(grid, own[i]) - 1]
            raise table.error(
                f"series {series_id!r} does not step by {freq!r} like series {first_id!r}: "
                f"{_show(own[i])} is not on its grid (nearest step before: {_show(expected)}); "
                "every series needs the same frequency",
                int(rows[i]),
                column,
            )
        if len(grid) != len(own) and not repair:
            raise _gap(table, own, rows, grid, freq, column, series_id if series_column else None)
    return freq


def _gapped_freq(own: pd.DatetimeIndex) -> str | None:
    """The frequency of a series with missing steps: its regular prefix's, if all times fit it."""
    if len(own) < 4 or _infer_freq(own[:3]) is None:
        return None
    good, bad = 3, len(own)
    while bad - good > 1:
        middle = (good + bad) // 2
        if _infer_freq(own[:middle]) is None:
            bad = middle
        else:
            good = middle
    freq = _infer_freq(own[:good])
    if freq is None:
        return None
    grid = pd.date_range(own[0], own[-1], freq=freq)
    return freq if own.isin(grid).all() else None


def _gap(table, own, rows, grid, freq, column, series_id) -> DataError:
    """A DataError naming the first gap: the rows on either side and how many steps are absent."""
    present = grid.isin(own)
    missing_at = int(np.flatnonzero(~present)[0])
    after = int(np.searchsorted(own, grid[missing_at]))  # first row after the gap
    n_missing = int(np.searchsorted(grid, own[after]) - missing_at)
    total = int((~present).sum())
    in_series = f" in series {series_id!r}" if series_id is not None else ""
    return table.error(
        f"gap{in_series}: {n_missing} step(s) of {freq!r} missing between {_show(own[after - 1])} "
        f"({_place(table, int(rows[after - 1]))}) and {_show(own[after])} ({total} missing in "
        "all); add the rows, or pass --fill-missing interpolate|ffill to fill them",
        int(rows[after]),
        column,
    )


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
