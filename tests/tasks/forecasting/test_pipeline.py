"""Forecasting end to end: train -> run folder -> load -> forecast / backtest / stream."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save as save_tensors

import rnnkit
from rnnkit.cli import main
from rnnkit.config import apply_overrides
from rnnkit.errors import ConfigError, DataError
from rnnkit.tasks.forecasting.pipeline import ForecastingRunConfig, evaluate_run, train_forecaster
from rnnkit.tasks.forecasting.windows import StackedSeries, seasonal_offsets


def write_sales(path: Path, days: int = 140) -> Path:
    """Two daily series in long format with a weekly season, a trend and a covariate."""
    rng = np.random.default_rng(0)
    rows = ["day,shop,sales,visits"]
    times = pd.date_range("2021-01-04", periods=days, freq="D")
    for shop, level in (("north", 100.0), ("south", 20.0)):
        for i, t in enumerate(times):
            weekly = 1 + 0.5 * np.sin(2 * np.pi * i / 7)
            sales = level * weekly * (1 + i / 400) + rng.normal(0, level * 0.03)
            rows.append(f"{t.date()},{shop},{sales:.3f},{sales / 2 + rng.normal():.3f}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def tiny_config(data: Path, **more: str) -> ForecastingRunConfig:
    overrides = [
        f"data.data={data}",
        "data.time_column=day",
        "data.target_columns=sales",
        "data.series_column=shop",
        "data.covariates=visits",
        "window.horizon=7",
        "window.input_length=14",
        "window.min_epoch_windows=64",
        "model.hidden_size=8",
        "model.head_size=16",
        "train.epochs=2",
        "train.batch_size=32",
        "train.device=cpu",
        *(f"{k}={v}" for k, v in more.items()),
    ]
    return apply_overrides(ForecastingRunConfig(), overrides)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("fc")
    data = write_sales(root / "sales.csv")
    run = train_forecaster(tiny_config(data), root / "run")
    return data, run


def test_run_folder_and_backtest(trained) -> None:
    _, run = trained
    for name in ("config.json", "model.safetensors", "backtest.json", "forecast.png", "report.md"):
        assert (run.run_dir / name).is_file(), name
    bt = run.backtest
    assert bt["series"] == 2 and bt["horizon"] == 7 and bt["season"] == 7
    for method in ("model", "naive", "seasonal_naive", "streaming", "ets"):
        assert {"mae", "rmse", "smape", "mase"} <= set(bt[method])
    assert 0.0 <= bt["model"]["coverage"] <= 1.0
    assert set(bt["per_series"]) == {"north", "south"}


def test_load_predict_and_evaluate_round_trip(trained) -> None:
    data, run = trained
    predictor = rnnkit.load(run.run_dir)
    assert predictor.task == "forecasting"
    assert set(predictor.scaler.params) == {"north", "south"}
    frames = pd.read_csv(data, parse_dates=["day"])
    north = frames[frames.shop == "north"].set_index("day")[["sales", "visits"]]
    out = predictor.predict({"north": north}, horizon=5)["north"]
    assert list(out.columns) == ["sales", "sales_lower", "sales_upper"]
    assert len(out) == 5 and out.index[0] == north.index[-1] + pd.Timedelta(days=1)
    assert (out["sales_lower"] <= out["sales"]).all() and (out["sales"] <= out["sales_upper"]).all()
    # The saved model reproduces the backtest written at training time.
    again = evaluate_run(run.run_dir)
    assert again["model"]["mase"] == pytest.approx(run.backtest["model"]["mase"], rel=1e-5)
    with pytest.raises(ConfigError, match="forecasts 1 to 7 steps"):
        predictor.predict({"north": north}, horizon=8)
    with pytest.raises(DataError, match="needs at least 14"):
        predictor.predict({"north": north.iloc[:5]})


def test_streaming_matches_one_pass_and_state_round_trip(trained, tmp_path) -> None:
    data, run = trained
    predictor = run.predictor
    frames = pd.read_csv(data, parse_dates=["day"])
    south = frames[frames.shop == "south"].set_index("day")[["sales", "visits"]].iloc[:40]
    whole = predictor.stream("south")
    whole.start = south.index[0]
    stepper = predictor.stream("south")
    stepper.start = south.index[0]
    values = south.to_numpy(dtype=np.float32)
    stepped = [stepper.update(row[:1], row[1:]) for row in values]
    # One pass over the whole series, head after every step, from the model itself.
    reference = _one_pass(predictor, south)
    for t, fc in enumerate(stepped):
        np.testing.assert_allclose(fc.point[:, 0], reference[t], rtol=1e-5, atol=1e-5)
    last = whole.update_many(torch.tensor(values))
    np.testing.assert_allclose(last.point, stepped[-1].point, rtol=1e-5, atol=1e-5)
    # Save after 20 steps, restore into a fresh streamer, continue: same forecasts.
    first = predictor.stream("south")
    first.start = south.index[0]
    for row in values[:20]:
        first.update(row[:1], row[1:])
    first.save(tmp_path / "stream.safetensors")
    restored = predictor.stream("south")
    restored.start = south.index[0]
    restored.load(tmp_path / "stream.safetensors")
    for t, row in enumerate(values[20:], start=20):
        # the saved state is exact, so the restored stream continues bit for bit
        np.testing.assert_array_equal(restored.update(row[:1], row[1:]).point, stepped[t].point)
    # a blob of the earlier format (scaled float32 buffer, PyTorch-layout state) still loads
    state = first.state if isinstance(first.state, tuple) else (first.state,)
    old = {"buffer": torch.from_numpy(first.buffer), "steps": torch.tensor([first.steps])}
    old |= {f"state.{i}": t.contiguous() for i, t in enumerate(state)}
    older = predictor.stream("south")
    older.start = south.index[0]
    older.load_state_bytes(save_tensors(old, metadata={"start": ""}))
    np.testing.assert_allclose(
        older.update(values[20][:1], values[20][1:]).point, stepped[20].point, rtol=1e-5, atol=1e-5
    )
    restored.reset()
    assert restored.steps == 0 and restored.state is None
    with pytest.raises(DataError, match="not a stream state blob"):
        restored.load_state_bytes(b"garbage")


def test_ensemble_run_merges_members_streams_and_resumes(tmp_path) -> None:
    data = write_sales(tmp_path / "sales.csv")
    config = tiny_config(data, ensemble="2", **{"train.epochs": "1"})
    run = train_forecaster(config, tmp_path / "run")
    saved = json.loads((run.run_dir / "config.json").read_text(encoding="utf-8"))
    assert saved["ensemble"]["members"] == 2 and saved["ensemble"]["member"]["hidden_size"] == 8
    assert saved["model"]["hidden_size"] == 16 and saved["model"]["head_size"] == 32
    lines = (run.run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["member"] for line in lines] == [0, 1]
    predictor = rnnkit.load(run.run_dir)
    for name, value in run.predictor.model.state_dict().items():
        torch.testing.assert_close(predictor.model.state_dict()[name], value)
    # the members were trained from different seeds: their recurrent blocks differ
    w_hh = predictor.model.encoder.layers[0][0].weight_hh_l0  # (4 * 16, 16)
    assert not torch.allclose(w_hh[:8, :8], w_hh[8:16, 8:16])
    assert w_hh[:8, 8:].abs().sum() == 0  # and never read each other's state
    frames = pd.read_csv(data, parse_dates=["day"])
    south = frames[frames.shop == "south"].set_index("day")[["sales", "visits"]].iloc[:30]
    stepper = predictor.stream("south")
    stepper.start = south.index[0]
    stepped = [stepper.update(row[:1], row[1:]) for row in south.to_numpy(dtype=np.float32)]
    reference = _one_pass(predictor, south)
    for t, fc in enumerate(stepped):
        np.testing.assert_allclose(fc.point[:, 0], reference[t], rtol=1e-5, atol=1e-5)
    # resuming a finished ensemble retrains no member and saves the same model
    again = train_forecaster(config, tmp_path / "run", resume=True)
    for name, value in again.predictor.model.state_dict().items():
        torch.testing.assert_close(predictor.model.state_dict()[name], value)


def _one_pass(predictor, frame: pd.DataFrame) -> np.ndarray:
    """(T, H) point forecasts after every step from one `all_steps` forward pass."""
    layout = predictor.layout
    stacked = StackedSeries.build({"south": frame}, layout, predictor.scaler)
    t, h = len(frame), predictor.horizon
    # The horizon after the last steps runs past the data: its calendar comes from a longer index.
    longer = pd.date_range(frame.index[0], periods=t + h, freq=layout.freq)
    future = torch.from_numpy(layout.future_features(np.zeros((t + h, 0), np.float32), longer))
    ahead = torch.arange(t)[:, None] + torch.arange(1, h + 1)  # (T, H)
    back = torch.from_numpy(seasonal_offsets(h, layout.season))
    base = stacked.values[(ahead - back).clamp(min=0)]  # before a full season: the first value
    with torch.no_grad():
        params, _ = predictor.model(
            stacked.features.unsqueeze(0),
            future[ahead].unsqueeze(0),
            base.unsqueeze(0),
            all_steps=True,
        )
    shift, scale = predictor.scaler.params["south"]["sales"]
    return (predictor.model.forecast(params[0]).point[..., 0] * scale + shift).numpy()


def test_cli_train_forecast_evaluate(tmp_path, capsys) -> None:
    data = write_sales(tmp_path / "sales.csv", days=100)
    out = tmp_path / "run"
    code = main(
        [
            "train", "forecaster", "--data", str(data), "--time-column", "day",
            "--target-column", "sales", "--series-column", "shop", "--horizon", "7",
            "--input-length", "14", "--hidden-size", "8", "--epochs", "1", "--quiet",
            "--likelihood", "gaussian", "--set", "window.min_epoch_windows=32",
            "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "seasonal_naive" in printed and "rolling-origin backtest" in printed
    assert main(["evaluate", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["task"] == "forecasting"
    for method in ("model", "naive", "seasonal_naive", "ets"):  # ets: the dev extras have it
        assert {"mae", "rmse", "smape", "mase"} <= set(metrics[method])
    assert "coverage" in metrics["model"] and "ets" in metrics["per_series"]["north"]
    plot = tmp_path / "f.png"
    assert main(["forecast", str(out), "--horizon", "3", "--json", "--plot", str(plot)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert {r["series"] for r in lines} == {"north", "south"}
    assert all(len(r["sales"]) == 3 and len(r["sales_upper"]) == 3 for r in lines)
    assert plot.is_file()
    history = tmp_path / "history.csv"
    frame = pd.read_csv(data)
    frame[frame.shop == "north"].drop(columns="shop").to_csv(history, index=False)
    assert main(["forecast", str(out), "--input", str(history), "--json"]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(line["sales"]) == 7


def test_refuses_existing_run_and_unknown_covariate(trained, tmp_path) -> None:
    data, run = trained
    with pytest.raises(ConfigError, match="already holds a run"):
        train_forecaster(tiny_config(data), run.run_dir)
    with pytest.raises(DataError, match="no column 'price'"):
        train_forecaster(tiny_config(data, **{"data.covariates": "price"}), tmp_path / "r")


@pytest.mark.slow
@pytest.mark.network
def test_airline_backtest_against_baselines(tmp_path) -> None:
    config = apply_overrides(
        ForecastingRunConfig(),
        ["data.data=airline-passengers", "train.epochs=3", "train.device=cpu"],
    )
    run = train_forecaster(config, tmp_path / "air")
    bt = run.backtest
    assert bt["origins"] == 18 and bt["horizon"] == 12
    # Three short epochs from a seasonal-naive start already beat seasonal naive here.
    assert bt["model"]["mase"] < bt["seasonal_naive"]["mase"]


def test_stateful_training_carries_the_state(tmp_path, monkeypatch) -> None:
    data = write_sales(tmp_path / "sales.csv")
    config = tiny_config(data, train_mode="stateful", **{"train.epochs": "1"})
    seen: list = []

    def spy(module, args, kwargs):
        state = kwargs.get("state")
        seen.append(None if state is None else state[0].detach().clone())

    from rnnkit.models.forecaster import Forecaster

    original = Forecaster.__init__

    def init(self, cfg):  # watch the encoder of the model train_forecaster builds
        original(self, cfg)
        self.encoder.register_forward_pre_hook(spy, with_kwargs=True)

    monkeypatch.setattr(Forecaster, "__init__", init)
    run = train_forecaster(config, tmp_path / "run")
    # Windows after the first of a pass start from the last one's (non-zero, detached) state.
    assert seen[0] is None
    carried = [s for s in seen if s is not None]
    assert carried and all(s.abs().sum() > 0 and not s.requires_grad for s in carried)
    assert run.backtest is not None and "streaming" in run.backtest
    assert np.isfinite(run.backtest["streaming"]["mase"])
