"""The quickstart: stages by budget, run folders, the summary table against baselines, report."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from rnnkit.apps.quickstart import format_summary, plan, run_quickstart
from rnnkit.cli import main
from rnnkit.cli.quickstart import stage_overrides
from rnnkit.errors import ConfigError


def test_plan_scales_budgets_and_adds_electricity_from_8_minutes() -> None:
    short = plan(4)
    assert [s.name for s, _ in short] == ["sentiment", "airline", "shakespeare"]
    long = dict((s.name, keys) for s, keys in plan(10))
    assert list(long) == ["sentiment", "airline", "electricity", "shakespeare"]
    assert long["sentiment"]["train.max_minutes"] == pytest.approx(3.0)
    assert long["shakespeare"]["train.max_minutes"] == pytest.approx(3.5)
    assert sum(keys["train.max_minutes"] for keys in long.values()) < 10
    assert plan(10, {"airline": {"model.hidden_size": 4}})[1][1]["model.hidden_size"] == 4
    with pytest.raises(ConfigError, match=r"unknown stages \['nope'\]"):
        plan(10, {"nope": {}})
    with pytest.raises(ConfigError, match="--minutes must be positive"):
        plan(0)


def test_quickstart_writes_runs_summary_and_linked_report(tiny_quickstart) -> None:
    result = tiny_quickstart
    out = result.out
    assert set(result.runs) == {"sentiment", "airline", "shakespeare"}
    for name, run_dir in result.runs.items():
        assert run_dir == out / name
        assert {"config.json", "model.safetensors", "report.md", "report.html"} <= {
            p.name for p in run_dir.iterdir()
        }
    metrics = [(r.stage, r.metric) for r in result.rows]
    assert metrics == [
        ("sentiment", "test accuracy"),
        ("airline", "backtest MASE"),
        ("shakespeare", "loss, nats/char"),
        ("shakespeare", "bits/char"),
    ]
    rows = {(r.stage, r.metric): r for r in result.rows}
    # Balanced labels: always answering the majority class scores one half.
    assert rows["sentiment", "test accuracy"].baseline == pytest.approx(0.5)
    backtest = json.loads((out / "airline" / "backtest.json").read_text())
    assert rows["airline", "backtest MASE"].baseline == backtest["seasonal_naive"]["mase"]
    nats, bits = rows["shakespeare", "loss, nats/char"], rows["shakespeare", "bits/char"]
    assert nats.model == pytest.approx(bits.model * math.log(2))
    assert nats.baseline == pytest.approx(bits.baseline * math.log(2))
    assert nats.model < nats.baseline  # even a tiny LM beats character frequencies here

    summary = json.loads((out / "summary.json").read_text())
    assert [r["metric"] for r in summary["rows"]] == [m for _, m in metrics]
    table = format_summary(result.rows)
    assert table.splitlines()[0].split()[:3] == ["stage", "data", "metric"]
    assert len(table.splitlines()) == 1 + len(result.rows)

    text = result.report.read_text(encoding="utf-8")
    assert result.report == out / "report.html"
    assert '<div id="summary">' in text and text.count("<figure>") >= 4
    links = re.findall(r'href="([^"]+)"', text)
    assert {"sentiment/report.html", "airline/report.html", "shakespeare/report.html"} <= set(links)
    assert all((out / link).exists() for link in links)  # relative, and they resolve
    assert "Example predictions" in text and "Generated sample" in text and "80% interval" in text


def test_refuses_to_overwrite_runs_and_bad_stage_flags(tiny_quickstart, capsys) -> None:
    with pytest.raises(ConfigError, match="already holds quickstart runs"):
        run_quickstart(tiny_quickstart.out, 1.0)
    assert stage_overrides(["shakespeare.model.hidden_size=64"]) == {
        "shakespeare": {"model.hidden_size": "64"}
    }
    assert main(["quickstart", "--set", "hidden_size=64"]) == 2
    assert "expected STAGE.KEY=VALUE" in capsys.readouterr().err


def test_force_refuses_folders_that_are_not_runs(tmp_path: Path, capsys) -> None:
    (tmp_path / "sentiment").mkdir()
    code = main(["quickstart", "--out", str(tmp_path), "--minutes", "1", "--force"])
    assert code == 2
    assert "is not a run folder" in capsys.readouterr().err
    assert (tmp_path / "sentiment").is_dir()


class FakeClock:
    """`time.perf_counter` for the quickstart: advanced by the stages' fake work."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


def fake_stages(monkeypatch, clock: FakeClock, *, overhead: float, stop_at: float = 1.0) -> dict:
    """Stages that train `stop_at` of their budget, then spend `overhead` x OVERHEAD on the rest."""
    import rnnkit.apps.quickstart as qs

    budgets, trained = {}, {}

    def train(task, out_dir, keys, callbacks=()):
        name = Path(out_dir).name
        budgets[name] = keys["train.max_minutes"]
        trained[name] = 60 * float(keys["train.max_minutes"]) * stop_at
        clock.now += trained[name]
        return Path(out_dir)

    def score(stage, run, n):
        clock.now += overhead * qs.OVERHEAD * trained[stage.name]
        return [], {}

    monkeypatch.setattr(qs, "time", clock)
    monkeypatch.setattr(qs.runs, "train", train)
    monkeypatch.setattr(qs, "_score", score)
    monkeypatch.setattr(qs, "_training_seconds", lambda run_dir: trained[Path(run_dir).name])
    monkeypatch.setattr(qs, "_write_summary", lambda *args: None)
    return budgets


def test_time_early_stages_leave_unused_goes_to_later_ones(tmp_path: Path, monkeypatch) -> None:
    clock = FakeClock()
    budgets = fake_stages(monkeypatch, clock, overhead=1.0, stop_at=0.0)
    # Stages that finish at once leave their time to the rest; a budget set by hand stays as set.
    run_quickstart(tmp_path, 10, overrides={"airline": {"train.max_minutes": "0.5"}})
    assert budgets["sentiment"] == pytest.approx(3.0)
    assert budgets["airline"] == "0.5"
    assert budgets["electricity"] > 3.0 * 0.12 / 0.30  # more than its own share
    # the last stage gets all that is left but its own overhead
    assert budgets["shakespeare"] == pytest.approx(10 / (1 + 0.15 / 0.85), abs=0.01)


@pytest.mark.parametrize("overhead", [1.0, 2.0, 3.0])
def test_the_budget_is_a_wall_clock_cap_when_evaluation_runs_slow(
    tmp_path: Path, monkeypatch, overhead: float
) -> None:
    # another process on the machine: every stage's evaluation and reports take `overhead`
    # times as long as on an idle machine; the later stages train less, and it ends on time
    clock = FakeClock()
    budgets = fake_stages(monkeypatch, clock, overhead=overhead)
    started = clock.now
    run_quickstart(tmp_path, 10)
    assert clock.now - started <= 600 * 1.10, (clock.now - started, budgets)
    assert clock.now - started >= 600 * 0.95  # and it uses the budget it has
