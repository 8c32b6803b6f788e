"""The quickstart: three real tasks trained in about ten minutes, each scored against a baseline.

`run_quickstart(out, minutes)` fetches the datasets, trains one run per stage through
`rnnkit.runs.train` (each with `train.max_minutes` cut from what is left of the wall-clock budget:
see `training_minutes`), then reads the run folders back (`rnnkit.run.Run`) and
asks each task's spec to score its model against the simplest honest baseline (`spec.baseline`)
and to show what it does (`spec.showcase`):

    stage         task             metric                   baseline
    sentiment     classification   test accuracy            majority class of the training split
    airline       forecasting      backtest MASE            seasonal naive (same origins)
    electricity   forecasting      backtest MASE            seasonal naive (budget >= 8 minutes)
    shakespeare   language model   nats/char, bits/char     unigram character model of the
                                                            training text, on the same text

and writes `report.html` (one self-contained page linking each run's own `report.html`),
`summary.json` and `summary.md` into `out`. The library logs; the CLI (`rnnkit quickstart`) draws
progress bars through the callbacks it passes in.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit import runs
from rnnkit.errors import ConfigError
from rnnkit.io import atomic_write_json, atomic_write_text
from rnnkit.reports import html as h
from rnnkit.run import Run
from rnnkit.run_folder import Files
from rnnkit.tasks.spec import BaselineScore

__all__ = [
    "STAGES",
    "QuickstartResult",
    "Row",
    "Stage",
    "format_summary",
    "plan",
    "run_quickstart",
]

logger = logging.getLogger(__name__)

#: the budget (minutes) from which the quickstart also trains the electricity forecaster
ELECTRICITY_FROM_MINUTES = 8.0


@dataclass(frozen=True)
class Stage:
    """One quickstart run.

    Attributes:
        name: the run folder's name under `out`, and the key of per-stage overrides.
        task: the task name of config.json ("classification", "forecasting", "language-model").
        title: how the report and the table name it.
        share: the share of the budget given to training (`train.max_minutes`); the rest of the
            budget goes to loading data, evaluation, backtests and sampling.
        overrides: config keys set for this stage (dotted, as `--set` takes them).
        monitor: the validation metric the progress bar shows.
        min_minutes: the stage runs only when the budget is at least this.
    """

    name: str
    task: str
    title: str
    share: float
    overrides: Mapping[str, Any] = field(default_factory=dict)
    monitor: str = "loss"
    min_minutes: float = 0.0


# Shares sum to 0.85 of the budget; the rest pays for GloVe loading, the LM's evaluation over
# half a million characters, backtests and samples (~1.5 minutes at the 10-minute default on an
# idle machine; `training_minutes` scales that by how slow the finished stages' overhead was).
STAGES: tuple[Stage, ...] = (
    Stage(
        "sentiment",
        "classification",
        "Sentiment classifier (BiLSTM + GloVe) on rotten-tomatoes",
        0.30,
        {
            "data.data": "rotten-tomatoes",
            "model.cell": "lstm",
            "model.bidirectional": True,
            "embeddings.vectors": "glove-6b-50d",
        },
        monitor="accuracy",
    ),
    Stage(
        "airline",
        "forecasting",
        "Forecaster (LSTM) on airline-passengers",
        0.08,
        {"data.data": "airline-passengers", "window.horizon": 12},
    ),
    Stage(
        "electricity",
        "forecasting",
        "Forecaster (LSTM) on hourly electricity demand",
        0.12,
        # The benchmark's protocol (the last 8,760 hours held out), scored every 24 hours
        # instead of every hour: 365 origins say the same and cost 1/24 of the time.
        {
            "data.data": "electricity",
            "window.horizon": 24,
            "data.test_steps": 8760,
            "window.backtest_stride": 24,
        },
        min_minutes=ELECTRICITY_FROM_MINUTES,
    ),
    Stage(
        "shakespeare",
        "language-model",
        "Character language model (LSTM 2x256) on shakespeare",
        0.35,
        {"data.data": "shakespeare"},
    ),
)


@dataclass(frozen=True)
class Row(BaselineScore):
    """One line of the summary table: a stage's `TaskSpec.baseline` score, with its data."""

    stage: str = ""
    data: str = ""


@dataclass
class QuickstartResult:
    """What `run_quickstart` returns.

    Attributes:
        out: the quickstart folder.
        rows: the summary table, stage by stage.
        runs: stage name -> its run folder.
        seconds: the whole quickstart's wall time.
        report: the summary page (`out/report.html`).
        details: stage name -> `{"seconds": its wall time, "showcase": its task's report
            blocks}` (`TaskSpec.showcase`), drawn on the page.
    """

    out: Path
    rows: list[Row]
    runs: dict[str, Path]
    seconds: float
    report: Path
    details: dict[str, dict[str, Any]]


def plan(
    minutes: float,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    stages: Sequence[Stage] = STAGES,
) -> list[tuple[Stage, dict[str, Any]]]:
    """The stages a budget of `minutes` runs, each with its full overrides.

    Args:
        minutes: the whole budget; each stage trains for `share * minutes`.
        overrides: stage name -> extra config keys (they win over the stage's own), e.g.
            `{"shakespeare": {"model.hidden_size": 64}}`.
        stages: the stages to choose from.

    Raises:
        ConfigError: a budget that is not positive, or overrides for a stage that does not exist.
    """
    if not minutes > 0:
        raise ConfigError(f"--minutes must be positive, got {minutes}")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {s.name for s in stages})
    if unknown:
        raise ConfigError(
            f"quickstart overrides name unknown stages {unknown}; "
            f"stages: {', '.join(s.name for s in stages)}"
        )
    out = []
    for stage in stages:
        if minutes < stage.min_minutes:
            continue
        keys = {**stage.overrides, "train.max_minutes": stage.share * minutes}
        keys.update(overrides.get(stage.name, {}))
        out.append((stage, keys))
    return out


#: seconds of loading, evaluation and reports per second of training, on an idle machine
OVERHEAD = 0.15 / 0.85


def training_minutes(
    share: float, shares_left: float, seconds_left: float, slowdown: float
) -> float:
    """The training budget of the next stage, so that the quickstart ends by its deadline.

    The budget is a wall-clock cap, not a training-time one: each stage's training time is cut
    from what is left, after reserving every remaining stage's overhead (loading, evaluation,
    backtests, reports: `OVERHEAD` per second of training on an idle machine, times
    `slowdown`, how much slower than that the finished stages' overhead was). A stage that
    stopped early leaves its time to the next ones; one whose evaluation ran slow (another
    process on the machine) takes time from them.

    Args:
        share: the stage's share of the budget (`Stage.share`).
        shares_left: the shares of this stage and every one after it.
        seconds_left: seconds to the deadline.
        slowdown: observed overhead / expected overhead so far (1 before any stage finished).
    """
    per_second = 1.0 + OVERHEAD * max(1.0, slowdown)
    return max(0.05, seconds_left * share / shares_left / per_second / 60.0)


def _fetch(keys: Mapping[str, Any]) -> None:
    """Download (or verify in the cache) the registry datasets a stage names up front."""
    from rnnkit.data import DATASETS, fetch

    for key in ("data.data", "embeddings.vectors"):
        name = keys.get(key)
        if isinstance(name, str) and name in DATASETS:
            fetch(name)


def run_quickstart(
    out: str | Path = "runs/quickstart",
    minutes: float = 10.0,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    callbacks: Callable[[Stage], Sequence[Any]] | None = None,
    examples: int = 8,
    replace: bool = False,
) -> QuickstartResult:
    """Train every stage of `plan(minutes)` into `out/<stage>`, score them, write the report.

    Args:
        out: the quickstart folder; stage run folders must not exist yet.
        minutes: the budget the stages' training time is cut from.
        overrides: extra config keys per stage name (see `plan`); tests shrink models with it.
        callbacks: stage -> training callbacks (the CLI's progress bars).
        examples: the most example inputs a stage shows (the classifier's test texts).
        replace: delete run folders a previous quickstart left in `out` (only folders holding
            a `config.json`) instead of refusing to start.

    Returns:
        The summary rows, the run folders, the time taken and the report's path.
    """
    started = time.perf_counter()
    out = Path(out)
    stages = plan(minutes, overrides)
    taken = [stage.name for stage, _ in stages if (out / stage.name).exists()]
    if taken and replace:
        _remove_runs([out / name for name in taken])
    elif taken:
        raise ConfigError(
            f"{out} already holds quickstart runs ({', '.join(taken)}); choose another --out "
            "or pass --force to replace them"
        )
    out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    run_dirs: dict[str, Path] = {}
    details: dict[str, dict[str, Any]] = {}
    fixed = {name for name, keys in (overrides or {}).items() if "train.max_minutes" in keys}
    deadline = started + 60.0 * minutes
    overhead_seen = overhead_expected = 0.0
    for i, (stage, keys) in enumerate(stages, 1):
        if stage.name not in fixed:
            slowdown = overhead_seen / overhead_expected if overhead_expected > 0 else 1.0
            keys["train.max_minutes"] = training_minutes(
                stage.share,
                sum(s.share for s, _ in stages[i - 1 :]),
                deadline - time.perf_counter(),
                slowdown,
            )
        budget = keys["train.max_minutes"]  # text when given on the command line
        logger.info(
            "[%d/%d] %s: %s, %s minutes of training",
            i,
            len(stages),
            stage.name,
            stage.title,
            f"{budget:.1f}" if isinstance(budget, int | float) else budget,
        )
        _fetch(keys)
        stage_started = time.perf_counter()
        run_dir = runs.train(
            stage.task,
            out / stage.name,
            keys,
            callbacks=list(callbacks(stage)) if callbacks else (),
        )
        run_dirs[stage.name] = run_dir
        scored, extra = _score(stage, run_dir, examples)
        extra["seconds"] = time.perf_counter() - stage_started
        trained = _training_seconds(run_dir)
        overhead_seen += max(0.0, extra["seconds"] - trained)
        overhead_expected += OVERHEAD * trained
        rows += scored
        details[stage.name] = extra
        for row in scored:
            logger.info(
                "%s: %s %.4g (baseline %s %.4g)",
                stage.name,
                row.metric,
                row.model,
                row.baseline_name,
                row.baseline,
            )
    seconds = time.perf_counter() - started
    result = QuickstartResult(out, rows, run_dirs, seconds, out / Files.REPORT_HTML, details)
    _write_summary(result, minutes, stages)
    return result


def _training_seconds(run_dir: Path) -> float:
    """Seconds the run's training loop took (its last record), evaluation after it excluded."""
    records = Run(run_dir).records()
    return float(records[-1].get("seconds", 0.0)) if records else 0.0


def _remove_runs(folders: Sequence[Path]) -> None:
    import shutil

    for folder in folders:
        if not (folder / Files.CONFIG).is_file():
            raise ConfigError(
                f"{folder} is not a run folder (no {Files.CONFIG}); remove it yourself or "
                "choose another --out"
            )
    for folder in folders:
        logger.info("replacing %s", folder)
        shutil.rmtree(folder)


# ------------------------------------------------------------------------------------- scoring


def _data_name(data: str) -> str:
    """A registry name as is; a path by its file name (the table stays narrow)."""
    path = Path(data)
    return path.name if path.exists() else data


def _score(stage: Stage, run_dir: Path, examples: int) -> tuple[list[Row], dict[str, Any]]:
    """A finished stage's rows against its baseline, and what its page block shows.

    The task's spec does both (`baseline`, `showcase`); the quickstart only adds the stage and
    the data's name.
    """
    run = Run(run_dir)
    if run.task.baseline is None or run.task.showcase is None:
        raise ConfigError(f"the {run.task.name} task cannot be scored against a baseline")
    data = _data_name(str(run.config.data.data))
    rows = [
        Row(**dataclasses.asdict(score), stage=stage.name, data=data)
        for score in run.task.baseline(run)
    ]
    return rows, {"showcase": run.task.showcase(run, examples)}


# ------------------------------------------------------------------------------------- outputs


_HEADER = ("stage", "data", "metric", "model", "baseline", "baseline is", "beats it")


def _cells(row: Row) -> list[Any]:
    return [
        row.stage,
        row.data,
        row.metric,
        row.model,
        row.baseline,
        row.baseline_name,
        "yes" if row.beats_baseline else "no",
    ]


def format_summary(rows: Sequence[Row]) -> str:
    """The summary as an aligned text table (numbers with 4 significant digits)."""
    lines = [list(_HEADER)]
    for row in rows:
        lines.append([f"{v:.4g}" if isinstance(v, float) else str(v) for v in _cells(row)])
    widths = [max(len(line[j]) for line in lines) for j in range(len(_HEADER))]
    numeric = {3, 4}
    return "\n".join(
        "  ".join(
            cell.rjust(widths[j]) if j in numeric else cell.ljust(widths[j])
            for j, cell in enumerate(line)
        ).rstrip()
        for line in lines
    )


def _summary_markdown(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    for row in rows:
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in _cells(row)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _link(out: Path, run_dir: Path, text: str) -> str:
    target = Path(os.path.relpath(run_dir / Files.REPORT_HTML, out)).as_posix()
    folder = Path(os.path.relpath(run_dir, out)).as_posix()
    return (
        f'<p>Run folder: <a href="{h.esc(folder)}/">{h.esc(folder)}/</a> — '
        f'<a href="{h.esc(target)}">{h.esc(text)}</a></p>'
    )


def _stage_html(stage: Stage, run_dir: Path, out: Path, extra: Mapping[str, Any]) -> str:
    parts = [
        _link(out, run_dir, "its full report"),
        f'<p class="muted">{extra["seconds"]:.0f} s including data and evaluation</p>',
        h.render_blocks(extra.get("showcase", ()), run_dir, level=3),
    ]
    return h.section(stage.title, "\n".join(parts))


def _write_summary(result: QuickstartResult, minutes: float, stages: Sequence) -> None:
    out = result.out
    intro = (
        f"<p>Budget {minutes:g} minute{'' if minutes == 1 else 's'}; the whole quickstart took "
        f"{result.seconds / 60:.1f} minutes. Each model is scored against the simplest honest "
        "baseline on the same held-out data.</p>"
    )
    classes = ["good" if row.beats_baseline else "bad" for row in result.rows]
    body = [
        intro,
        h.section(
            "Summary",
            '<div id="summary">'
            + h.table(list(_HEADER), [_cells(r) for r in result.rows], row_classes=classes)
            + "</div>",
        ),
    ]
    for stage, _ in stages:
        body.append(_stage_html(stage, result.runs[stage.name], out, result.details[stage.name]))
    atomic_write_text(out / Files.REPORT_HTML, h.page("rnnkit quickstart", body))
    atomic_write_text(out / "summary.md", _summary_markdown(result.rows) + "\n")
    atomic_write_json(
        out / "summary.json",
        {
            "minutes": minutes,
            "seconds": result.seconds,
            "runs": {name: str(path) for name, path in result.runs.items()},
            "rows": [
                {
                    "stage": r.stage,
                    "data": r.data,
                    "metric": r.metric,
                    "model": r.model,
                    "baseline": r.baseline,
                    "baseline_name": r.baseline_name,
                    "beats_baseline": r.beats_baseline,
                }
                for r in result.rows
            ],
        },
    )
