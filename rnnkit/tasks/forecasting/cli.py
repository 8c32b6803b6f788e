"""`rnnkit train forecasting ...` and `rnnkit forecast RUN ...`: recurrent time-series forecasts."""

from __future__ import annotations

import argparse
from pathlib import Path

from rnnkit import run_folder
from rnnkit.cli.progress import ProgressBar
from rnnkit.io import dumps_json
from rnnkit.tasks.forecasting.config import SUMMARY, TASK
from rnnkit.tasks.forecasting.predictor import ForecastPredictor

# flag dest -> dotted config key of ForecastingRunConfig
FLAGS: dict[str, str] = {
    "data": "data.data",
    "time_column": "data.time_column",
    "target_column": "data.target_columns",
    "series_column": "data.series_column",
    "covariates": "data.covariates",
    "future_covariates": "data.future_covariates",
    "fill_missing": "data.fill_missing",
    "scaling": "data.scaling",
    "test_steps": "data.test_steps",
    "horizon": "window.horizon",
    "input_length": "window.input_length",
    "season": "window.season",
    "calendar": "window.calendar",
    "baseline": "window.baseline",
    "cell": "model.cell",
    "norm": "model.norm",
    "hidden_size": "model.hidden_size",
    "num_layers": "model.num_layers",
    "dropout": "model.dropout",
    "likelihood": "model.likelihood",
    "quantiles": "model.quantiles",
    "backtest": "backtest",
    "train_mode": "train_mode",
    "ensemble": "ensemble",
}


def register_train(tasks: argparse._SubParsersAction) -> None:
    from rnnkit.cli.flags import (
        add_config_flag,
        add_run_arguments,
        add_train_flags,
        cell_choices,
        norm_choices,
    )

    p = tasks.add_parser(
        "forecasting",
        aliases=["forecaster"],
        help=SUMMARY,
        description="Train a forecaster, then backtest it over the test span against naive and "
        "seasonal-naive forecasts. Each flag sets the config key shown in brackets; "
        "--config FILE.yaml and --set key=value set any key.",
    )

    def flag(*names: str, **kwargs) -> None:
        add_config_flag(p, FLAGS, *names, **kwargs)

    flag("--data", metavar="NAME|PATH", help="registry dataset or your CSV/TSV/JSONL/Parquet")
    flag("--time-column", metavar="C", help="time column of a table")
    flag("--target-column", metavar="C[,C]", help="column(s) to forecast")
    flag("--series-column", metavar="C", help="column naming each series (long format)")
    flag("--covariates", metavar="C[,C]", help="past covariate columns")
    flag("--future-covariates", metavar="C[,C]", help="covariates known over the horizon too")
    flag("--fill-missing", choices=["error", "interpolate", "ffill"], help="gaps and NaNs")
    flag("--scaling", choices=["standard", "minmax", "none"], help="per-series scaling")
    flag("--test-steps", type=int, metavar="N", help="backtest over the last N steps")
    flag("--horizon", type=int, metavar="H", help="steps forecast at once")
    flag("--input-length", type=int, metavar="L", help="steps the model reads")
    flag("--season", type=int, metavar="M", help="seasonal period (default from the frequency)")
    flag("--calendar", action=argparse.BooleanOptionalAction, help="hour/weekday/month features")
    flag("--baseline", choices=["seasonal_naive", "last", "none"], help="predict a residual over")
    flag("--cell", choices=cell_choices())
    flag("--norm", choices=norm_choices(), help="normalise each recurrent layer's output")
    flag("--hidden-size", type=int, metavar="N")
    flag("--num-layers", type=int, metavar="N")
    flag("--dropout", type=float, metavar="P")
    flag("--likelihood", choices=["none", "gaussian", "quantile"], help="intervals or point")
    flag("--quantiles", metavar="Q,Q,Q", help="quantile levels, e.g. 0.1,0.5,0.9")
    flag("--backtest", action=argparse.BooleanOptionalAction, help="backtest after training")
    flag(
        "--ensemble",
        type=int,
        metavar="K",
        help="seeds averaged in one model (default 5 for short series, else 1)",
    )
    flag(
        "--train-mode",
        choices=["windows", "stateful"],
        help="shuffled windows from a zero state, or streams in order with the state carried",
    )
    add_train_flags(p)
    add_run_arguments(p)
    p.set_defaults(func=cmd_train_forecaster)


def cmd_train_forecaster(args: argparse.Namespace) -> int:
    from rnnkit.cli.flags import config_overrides, run_folder
    from rnnkit.config import load_config
    from rnnkit.tasks.forecasting.pipeline import ForecastingRunConfig, train_forecaster

    config = load_config(
        ForecastingRunConfig, path=args.config, overrides=config_overrides(args, FLAGS)
    )
    out = run_folder(args, config.data.data, config.model.cell)
    bar = ProgressBar("loss", disable=args.quiet)
    run = train_forecaster(config, out, callbacks=[bar], resume=args.resume)
    if run is None:  # a torchrun rank other than 0: rank 0 prints and writes
        return 0
    print(f"best epoch {run.fit.best_epoch}; {run.seconds:.0f} s")
    if run.backtest is not None:
        print(format_metrics(run.backtest))
    print(f"run folder: {out}  (report: {out / 'report.md'})")
    summary = {"run": str(out)}
    if run.backtest is not None:
        methods = ("model", "seasonal_naive", "ets")
        summary |= {m: run.backtest[m]["mase"] for m in methods if m in run.backtest}
    print(dumps_json(summary))
    return 0


def format_metrics(metrics: dict) -> str:
    """The human-readable form of a backtest (`evaluate_run`'s result), notes last."""
    from rnnkit.tasks.forecasting.report import backtest_notes, metrics_table

    head = (
        f"{metrics['data']}: rolling-origin backtest, {metrics['origins']} origins over "
        f"{metrics['series']} series, horizon {metrics['horizon']}, season {metrics['season']}"
    )
    return "\n".join([head, metrics_table(metrics), *backtest_notes(metrics)])


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("forecast", help="forecast the next steps with a trained forecaster")
    p.add_argument("run", metavar="RUN", help="a forecaster run folder")
    p.add_argument(
        "--input", metavar="FILE", help="history table (default: the run's own data, to its end)"
    )
    p.add_argument("--horizon", type=int, metavar="H", help="steps (at most the trained horizon)")
    p.add_argument(
        "--fill-missing", choices=["error", "interpolate", "ffill"], help="gaps in --input"
    )
    p.add_argument("--plot", metavar="F.png", help="draw history, forecast and interval")
    p.add_argument("--json", action="store_true", help="one JSON object per series")
    p.set_defaults(func=cmd_forecast)


def cmd_forecast(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rnnkit.config import from_dict
    from rnnkit.tasks.forecasting.pipeline import ForecastingRunConfig, load_series

    config = run_folder.config_for_task(args.run, TASK, "forecast")
    predictor = ForecastPredictor.from_run(Path(args.run), config)
    run_cfg = from_dict(ForecastingRunConfig, config["config"])
    data_cfg = run_cfg.data
    if args.input:
        data_cfg = replace(data_cfg, data=args.input)
        if not data_cfg.target_columns or data_cfg.target_columns == ("value",):
            data_cfg = replace(data_cfg, target_columns=predictor.layout.targets)
        from rnnkit.data.tables import read_table

        if data_cfg.series_column not in {str(c) for c in read_table(args.input).frame.columns}:
            # One series without an id column: scaled with its own history's statistics.
            data_cfg = replace(data_cfg, series_column=None)
    if args.fill_missing:
        data_cfg = replace(data_cfg, fill_missing=args.fill_missing)
    dataset = load_series(data_cfg)
    forecasts = predictor.predict(dataset, args.horizon)
    for key, frame in forecasts.items():
        if args.json:
            record = {"series": key, "time": [t.isoformat() for t in frame.index]}
            record |= {c: frame[c].round(6).tolist() for c in frame.columns}
            print(dumps_json(record))
        else:
            print(f"# {key}")
            print(frame.to_string(float_format=lambda v: f"{v:.4g}"))
    if args.plot:
        from rnnkit.tasks.forecasting.report import plot_forecast

        key, frame = next(iter(forecasts.items()))
        target = predictor.layout.targets[0]
        history = dataset.series[key][target]
        lower, upper = frame.get(f"{target}_lower"), frame.get(f"{target}_upper")
        plot_forecast(
            args.plot,
            history.iloc[-4 * len(frame) :],
            [
                (
                    frame.index,
                    frame[target].to_numpy(),
                    None if lower is None else lower.to_numpy(),
                    None if upper is None else upper.to_numpy(),
                )
            ],
            title=f"{key}: forecast of {target}",
        )
        print(f"plot: {args.plot}")
    return 0
