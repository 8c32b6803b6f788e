"""Gaps and missing values in users' series: named errors by default, explicit repair on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.files import load_path, load_time_series
from rnnkit.errors import ConfigError, DataError

# Thursday to Saturday, then Tuesday and Wednesday: a daily series with Sunday and Monday missing.
GAPPED = "time,value\n2020-02-13,1\n2020-02-14,2\n2020-02-15,3\n2020-02-18,6\n2020-02-19,7\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_gap_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_time_series(write(tmp_path / "g.csv", GAPPED))
    message = str(excinfo.value)
    assert "g.csv:5, column 'time'" in message
    assert "2 step(s) of 'D' missing between 2020-02-15 (line 4) and 2020-02-18" in message
    assert "--fill-missing interpolate|ffill" in message


def test_gap_in_one_series_of_many_names_it(tmp_path: Path) -> None:
    text = "time,id,value\n" + "".join(f"2020-01-0{d},a,1\n" for d in range(1, 6))
    text += "".join(f"2020-01-0{d},b,1\n" for d in (1, 2, 3, 5))
    with pytest.raises(DataError, match=r"g.csv:10, column 'time': gap in series 'b'"):
        load_time_series(write(tmp_path / "g.csv", text), series_column="id")


@pytest.mark.parametrize(
    ("how", "expected"),
    [("interpolate", [1, 2, 3, 4, 5, 6, 7]), ("ffill", [1, 2, 3, 3, 3, 6, 7])],
)
def test_fill_missing_repairs_gaps(tmp_path: Path, how: str, expected: list[float]) -> None:
    data = load_time_series(write(tmp_path / "g.csv", GAPPED), fill_missing=how)
    frame = data.series["value"]
    assert frame["value"].tolist() == expected
    assert frame.index.freqstr == "D" and len(frame) == 7


def test_fill_missing_repairs_empty_and_nan_values(tmp_path: Path) -> None:
    text = "time,value\n2020-01-01,1\n2020-01-02,\n2020-01-03,NaN\n2020-01-04,4\n"
    path = write(tmp_path / "n.csv", text)
    with pytest.raises(DataError, match=r"n.csv:3, column 'value': missing value"):
        load_time_series(path)
    filled = load_time_series(path, fill_missing="interpolate").series["value"]
    np.testing.assert_allclose(filled["value"], [1, 2, 3, 4])
    # Through load_path too (the CLI's route).
    dataset = load_path(path, task="forecasting", target_columns="value", fill_missing="ffill")
    assert dataset.series["value"]["value"].tolist() == [1, 1, 1, 4]


def test_ffill_cannot_fill_a_leading_gap(tmp_path: Path) -> None:
    text = "time,value\n2020-01-01,\n2020-01-02,2\n2020-01-03,3\n"
    with pytest.raises(DataError, match=r"l.csv:2, column 'value': missing value at the start"):
        load_time_series(write(tmp_path / "l.csv", text), fill_missing="ffill")


def test_fill_missing_still_refuses_bad_numbers_and_unknown_modes(tmp_path: Path) -> None:
    text = "time,value\n2020-01-01,1\n2020-01-02,inf\n2020-01-03,3\n2020-01-04,x\n"
    with pytest.raises(DataError, match=r"b.csv:3, column 'value': infinite value"):
        load_time_series(write(tmp_path / "b.csv", text), fill_missing="interpolate")
    with pytest.raises(ConfigError, match="fill_missing must be one of error, interpolate, ffill"):
        load_time_series(write(tmp_path / "g.csv", GAPPED), fill_missing="zero")
