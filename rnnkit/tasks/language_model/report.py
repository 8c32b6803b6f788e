"""What a language-model run shows: its report (metrics, a sample, plots) and, for pages that
gather several runs, its loss against a unigram character model and its sample.

`write_outputs` ends `train_lm`: `test_metrics.json`, `sample.txt`, `loss.png`, and one `Report`
written as `report.md` and `report.html`. `baseline` and `showcase` are the spec's hooks
(`rnnkit.tasks.spec.TaskSpec`), called with a finished `rnnkit.run.Run`.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnkit.reports.report import Code, Image, Report, Section
from rnnkit.run_folder import Files
from rnnkit.tasks.language_model.config import TASK, LanguageModelRunConfig
from rnnkit.tasks.spec import BaselineScore

if TYPE_CHECKING:
    from rnnkit.models.language_model import LanguageModelConfig
    from rnnkit.run import Run
    from rnnkit.training import FitResult

#: the validation metric drawn beside the loss (`loss.png`, `rnnkit compare`'s curves).
CURVE_METRIC = "val_bits_per_char"


def sample_section(sample: str, temperature: float, heading: str = "Sample") -> Section:
    """A generated sample, shown as it is (a fenced block in Markdown, `<pre>` in HTML)."""
    return Section(f"{heading} (temperature {temperature})", [Code(sample)])


def write_outputs(
    run_dir: Path,
    config: LanguageModelRunConfig,
    model_cfg: LanguageModelConfig,
    result: FitResult,
    metrics: dict[str, Any],
    sample: str,
    seconds: float,
) -> None:
    """`test_metrics.json`, `sample.txt`, the loss plot, and `report.md` + `report.html`.

    Args:
        run_dir: the run folder.
        config: the run's config.
        model_cfg: the model's resolved config (vocabulary size filled in).
        result: what `fit` returned (records, best epoch, precision, device).
        metrics: the held-out metrics, with `data` naming the part evaluated.
        sample: the text generated at the end of training.
        seconds: the run's wall time so far.
    """
    from rnnkit.io import atomic_write_json, atomic_write_text
    from rnnkit.reports import write_report
    from rnnkit.reports.figures import plot_loss

    run_dir = Path(run_dir)
    atomic_write_json(run_dir / Files.TEST_METRICS, metrics)
    atomic_write_text(run_dir / Files.SAMPLE, sample + "\n")
    loss = plot_loss(result.records, run_dir / Files.LOSS_PLOT, metric=CURVE_METRIC)
    summary = {
        "task": TASK,
        "data": config.data.data,
        "tokenizer": f"{config.data.tokenizer}, vocabulary {model_cfg.vocab_size}",
        "model": f"{model_cfg.cell} {model_cfg.num_layers}x{model_cfg.hidden_size}, "
        f"embedding {model_cfg.embedding_dim}{', tied' if model_cfg.tie_weights else ''}",
        "windows": f"bptt {config.data.bptt}, batch {config.train.batch_size}, "
        f"{'carried' if config.data.carry_state else 'reset'} state",
        "epochs run": len(result.records),
        "best epoch": result.best_epoch,
        "precision": result.precision,
        "device": result.device,
        "time": f"{seconds:.1f} s",
    }
    report = Report(
        title=f"Language model run {run_dir.name}",
        summary=summary,
        metrics={k: v for k, v in metrics.items() if k != "data"},
        sections=[sample_section(sample, config.sample.temperature)],
        images={"loss": loss.name},
        records=result.records,
    )
    write_report(run_dir, report)


# ----------------------------------------------------------------------- hooks for summary pages


def unigram_nats_per_char(train: str, evaluated: str) -> float:
    """Cross-entropy (nats per character) of `evaluated` under `train`'s character frequencies.

    Add-one smoothing over the characters of both texts, so a character unseen in training costs
    a finite amount; this is the model that knows which characters are common and nothing about
    order, the bar any sequence model must clear.

    Args:
        train: the text the frequencies are counted on.
        evaluated: the text scored.
    """
    if not evaluated:
        raise ValueError("the evaluated text is empty")
    counts = Counter(train)
    alphabet = set(counts) | set(evaluated)
    total = len(train) + len(alphabet)
    seen = Counter(evaluated)
    return -sum(n * math.log((counts[c] + 1) / total) for c, n in seen.items()) / len(evaluated)


def baseline(run: Run) -> list[BaselineScore]:
    """Loss in nats/char and bits/char against a unigram character model, on the same text."""
    from rnnkit.tasks.language_model.data import load_text

    text = load_text(run.config.data)
    metrics = run.test_metrics() or run.evaluate()
    evaluated = text.test if metrics.get("data") == "test" else text.validation
    unigram = unigram_nats_per_char(text.train, evaluated)
    bits = float(metrics["bits_per_char"])
    name = f"unigram chars ({metrics.get('data', 'validation')} text)"
    return [
        BaselineScore("loss, nats/char", bits * math.log(2), unigram, name, False),
        BaselineScore("bits/char", bits, unigram / math.log(2), name, False),
    ]


def showcase(run: Run, examples: int) -> list[Any]:
    """The sample written at the end of training, and the training curves after several epochs."""
    del examples  # one sample, whatever the number of examples asked for
    sample = (run.path / Files.SAMPLE).read_text(encoding="utf-8").rstrip("\n")
    temperature = run.config.sample.temperature
    blocks: list[Any] = [sample_section(sample, temperature, heading="Generated sample")]
    # Within a short budget the model sees less than one pass over the text: one epoch, one
    # point, no curve worth a figure (the run's own report still has it).
    if len(run.records()) > 1:
        blocks.append(Image(Files.LOSS_PLOT, "training curves"))
    return blocks
