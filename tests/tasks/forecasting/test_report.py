"""The forecaster's report pieces: the backtest table (methods side by side)."""

from __future__ import annotations

from rnnkit.reports.html import render_blocks
from rnnkit.tasks.forecasting.report import backtest_notes, backtest_table, metrics_table

BACKTEST = {
    "model": {"mae": 1.0, "mase": 0.5, "coverage": 0.8},
    "seasonal_naive": {"mae": 2.0, "mase": 1.0},
}


def test_backtest_table_lists_each_method_and_the_metrics_any_has() -> None:
    table = backtest_table(BACKTEST)
    assert list(table.header) == ["method", "MAE", "MASE", "COVERAGE"]
    assert [row[0] for row in table.rows] == ["model", "seasonal_naive"]
    assert table.rows[1][3] is None  # seasonal naive has no interval: shown as "—"
    assert "—" in render_blocks([table])
    text = metrics_table(BACKTEST)
    assert text.splitlines()[0].split() == ["method", "mae", "mase", "coverage"]


def test_ets_rows_follow_the_naive_ones_and_a_missing_one_is_a_note() -> None:
    with_ets = {**BACKTEST, "ets": {"mae": 1.5, "mase": 0.75}, "naive": {"mae": 3.0}}
    assert [row[0] for row in backtest_table(with_ets).rows] == [
        "model", "naive", "seasonal_naive", "ets"
    ]  # fmt: skip
    assert backtest_notes(with_ets) == []
    without = {**BACKTEST, "notes": {"ets": "not computed: pip install 'rnnkit[ets]' adds it"}}
    assert backtest_notes(without) == ["ets: not computed: pip install 'rnnkit[ets]' adds it"]
