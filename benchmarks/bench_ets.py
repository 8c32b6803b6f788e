"""What the ETS baseline costs and scores in a forecaster's backtest, per trained run.

    python benchmarks/bench_ets.py RUN [RUN ...]
    python benchmarks/bench_ets.py runs/cells/forecasting-*/gru-seed0

For each forecasting run folder: its rolling-origin backtest (`run_backtest`, what `rnnkit
evaluate` runs) once without and once with the ETS baseline (statsforecast's AutoETS, the `ets`
extra), in one process, after one untimed backtest that pays the one-off imports; the table
gives the seconds ETS adds and the MASE of the model, seasonal naive and ETS.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="forecasting run folders")
    args = parser.parse_args(argv)

    from rnnkit import run_folder
    from rnnkit.config import from_dict
    from rnnkit.tasks.forecasting.config import ForecastingRunConfig
    from rnnkit.tasks.forecasting.data import prepare
    from rnnkit.tasks.forecasting.pipeline import run_backtest
    from rnnkit.tasks.forecasting.predictor import ForecastPredictor

    rows = []
    for i, path in enumerate(args.runs):
        config = run_folder.read_config_file(path)
        run_cfg = from_dict(ForecastingRunConfig, config["config"])
        predictor = ForecastPredictor.from_run(path, config)
        prep = prepare(run_cfg, scaler=predictor.scaler)
        if i == 0:  # imports (statsforecast, numba) and first-call costs, untimed
            run_backtest(predictor.model, prep, run_cfg, ets=True)
        seconds = {}
        for ets in (False, True):
            start = time.perf_counter()
            metrics, _ = run_backtest(predictor.model, prep, run_cfg, ets=ets)
            seconds[ets] = time.perf_counter() - start
        ets_mase = metrics["ets"]["mase"] if "ets" in metrics else None
        rows.append(
            [
                run_cfg.data.data,
                metrics["origins"],
                f"{seconds[False]:.2f}",
                f"{seconds[True]:.2f}",
                f"{seconds[True] - seconds[False]:+.2f}",
                f"{metrics['model']['mase']:.3f}",
                f"{metrics['seasonal_naive']['mase']:.3f}",
                "—" if ets_mase is None else f"{ets_mase:.3f}",
            ]
        )
        print(f"{path}: done", flush=True)
    print(f"\n{machine()}")
    header = ["data", "origins", "backtest s", "with ETS s", "ETS adds s"]
    header += ["model MASE", "seasonal naive", "ETS"]
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
