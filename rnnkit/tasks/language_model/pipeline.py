"""Language modelling: running text in, a trained next-token model (and a text generator) out.

`train_lm(config, run_dir)` is the pipeline the CLI and Python share: load the corpus (or several,
joined with `+`) -> contiguous split (the last 10% is validation) -> `TextEncoder` built on the
training text -> one id stream -> contiguous rows and truncated-BPTT windows
(`batches.py`) -> `LanguageModel` -> `fit`, with the hidden state carried from one
window to the next -> validation loss, perplexity, bits per character, a generated sample, plots
and report. The loss and metrics live in `lm_task.py`; `LanguageModelPredictor`
(`lm_predictor.py`) is what `rnnkit.load()` returns for such a run.

Metrics: `loss` is the mean cross-entropy in nats per token, `perplexity` is exp(loss), and
`bits_per_char` is the total cross-entropy in bits divided by the characters of the evaluated text
(equal to loss / ln 2 for the `char` tokenizer; comparable across tokenizers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from rnnkit import runs
from rnnkit.config import from_dict, to_dict
from rnnkit.data import TextClassificationDataset, TextCorpus, load_dataset
from rnnkit.errors import ConfigError, DataError
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.tasks.language_model.batches import LMWindows
from rnnkit.tasks.language_model.generate import SamplingConfig, generate
from rnnkit.tasks.language_model.objective import LanguageModelTask, encode_stream
from rnnkit.tasks.language_model.predictor import TASK, LanguageModelPredictor
from rnnkit.text import TextEncoder
from rnnkit.training import Callback, EvalContext, FitResult, TrainConfig, fit
from rnnkit.training.precision import resolve_precision

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LMDataConfig:
    """Which text, how it becomes ids, and how the id stream is cut into windows.

    Attributes:
        data: a registry name or a path (.txt file or folder of them); several joined by `+`
            (e.g. "shakespeare+rotten-tomatoes"). A labelled dataset contributes the texts of
            its classification training split only, so a classifier's test texts never leak.
        tokenizer: "char" (a character model; the default for generation) or "bpe" (subwords;
            shorter sequences per text), or "basic_english" (lower-cased words, to pre-train a
            classifier that uses the same tokenizer).
        vocab_size: the BPE vocabulary size (bpe only).
        min_freq: keep tokens seen at least this often (word tokenizers); 1 keeps every char.
        max_size: cap on a word vocabulary; None keeps all.
        validation: the last share of the stream held out for validation (contiguous, so no
            sentence is on both sides).
        test: a share after the validation part for a final evaluation; 0 by default, in which
            case `rnnkit evaluate` reports on the validation part.
        bptt: steps per truncated-BPTT window. 32: on a fixed budget of characters, shorter
            windows give more optimizer steps at nearly the same chars/s, and on shakespeare
            128 -> 64 -> 32 lowered the validation loss 2.23 -> 2.04 -> 1.90 nats/char after
            1.5M characters (docs/benchmarks.md); the carried state gives context beyond it.
        carry_state: start each window from the state the previous one ended with (detached);
            False resets it to zeros every window (the tutorial way; measured worse).
        eval_batch_size: rows of the validation stream; few rows mean few cold starts (each
            row begins with no context), so the loss hardly depends on the layout.
        split_seed: the classification split of a labelled source (matches `rnnkit train
            classifier`'s default, so its test texts stay unseen).
    """

    data: str = "shakespeare"
    tokenizer: Literal["char", "bpe", "basic_english"] = "char"
    vocab_size: int = 8000
    min_freq: int = 1
    max_size: int | None = None
    validation: float = 0.1
    test: float = 0.0
    bptt: int = 32
    carry_state: bool = True
    eval_batch_size: int = 16
    split_seed: int = 0

    def __post_init__(self) -> None:
        if self.bptt < 1:
            raise ConfigError(f"data.bptt must be at least 1, got {self.bptt}")
        if self.eval_batch_size < 1:
            raise ConfigError(
                f"data.eval_batch_size must be at least 1, got {self.eval_batch_size}"
            )


def _default_train() -> TrainConfig:
    return TrainConfig(
        epochs=100,  # an upper bound: the 10-minute budget ends training first
        # rows read in parallel: 32 x 32 characters per step. Twice the steps of 64 rows at
        # ~0.85x the chars/s, and 1.465 -> 1.459 nats/char in 10 minutes (docs/benchmarks.md)
        batch_size=32,
        lr=5e-3,  # 10-minute runs at bptt 32: 1.516 nats/char vs 1.536 at 3e-3 (docs/benchmarks.md)
        weight_decay=0.01,
        schedule="onecycle",  # warm-up, then cosine decay to ~0 right at the budget's end
        warmup_fraction=0.03,  # language models need little warm-up; decay time matters more
        clip_norm=1.0,
        # bf16 autocast where the CPU has AVX-512 BF16 (oneDNN's bf16 LSTM: 1.6x the chars/s of
        # fp32 on the 2-vCPU Zen 4 VM, docs/benchmarks.md), fp16 on CUDA, fp32 elsewhere.
        precision="auto",
        patience=None,  # the loss keeps falling for the whole budget; no early stop
        max_minutes=10.0,  # the quality bar: <= 1.45 nats/char on shakespeare in 10 minutes
    )


@dataclass(frozen=True)
class LMRunConfig:
    """Everything `rnnkit train lm` needs; config files and --set map onto this."""

    data: LMDataConfig = field(default_factory=LMDataConfig)
    model: LanguageModelConfig = field(default_factory=LanguageModelConfig)
    train: TrainConfig = field(default_factory=_default_train)
    sample: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(max_tokens=600, temperature=0.8, seed=0)
    )


# -- data ---------------------------------------------------------------------------------------


@dataclass
class LMText:
    """The text of a run's sources, cut into contiguous parts."""

    train: str
    validation: str
    test: str
    sources: list[str]


def _sources(data: str) -> list[str]:
    if Path(data).expanduser().exists() or "+" not in data:
        return [data]
    return [part.strip() for part in data.split("+") if part.strip()]


def load_text(config: LMDataConfig) -> LMText:
    """The training, validation and test text of `config.data` (see `LMDataConfig.data`)."""
    parts: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    sources = []
    for name in _sources(config.data):
        is_path = Path(name).expanduser().exists()
        dataset = load_dataset(name)
        sources.append(dataset.source or name if is_path else name)
        if isinstance(dataset, TextCorpus):
            split = dataset.split(validation=config.validation, test=config.test)
            parts["train"].append(split.train)
            parts["validation"].append(split.validation)
            parts["test"].append(split.test)
        elif isinstance(dataset, TextClassificationDataset):
            split = dataset.split(seed=config.split_seed)  # the classifier's own split
            parts["train"].append("\n".join(split.train.texts))
            parts["validation"].append("\n".join(split.validation.texts))
        else:
            raise ConfigError(
                f"--data {name} is a {dataset.task} dataset; a language model needs text "
                "(a corpus, .txt files, or labelled texts)"
            )
    text = LMText(*("\n\n".join(p for p in parts[k] if p) for k in parts), sources=sources)
    if not text.train or not text.validation:
        raise DataError(
            f"too little text for a training and a validation part ({len(text.train)} and "
            f"{len(text.validation)} characters); give more text or change data.validation",
            path=config.data,
        )
    return text


# -- training -----------------------------------------------------------------------------------


@dataclass
class LMRun:
    """What `train_lm` returns."""

    run_dir: Path
    fit: FitResult
    metrics: dict[str, Any]
    sample: str
    seconds: float
    predictor: LanguageModelPredictor


def train_lm(
    config: LMRunConfig,
    run_dir: str | Path,
    *,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
) -> LMRun:
    """Train, evaluate and save a language model; see the module docstring for the steps."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    runs.check_run_dir(run_dir, to_dict(config), resume)
    data_cfg = config.data
    text = load_text(data_cfg)
    if resume:
        encoder = TextEncoder.load(run_dir / runs.TOKENIZER_FILE)
    else:
        encoder = TextEncoder.build(
            [text.train],
            tokenizer=data_cfg.tokenizer,
            min_freq=data_cfg.min_freq,
            max_size=data_cfg.max_size,
            vocab_size=data_cfg.vocab_size,
        )
    train_ids = encode_stream(encoder, text.train)
    val_ids = encode_stream(encoder, text.validation)
    chars_per_token = len(text.validation) / max(len(val_ids), 1)
    logger.info(
        "data: %s; %s train / %s validation tokens (%s tokenizer, vocabulary %d, %.2f chars/token)",
        " + ".join(text.sources),
        f"{len(train_ids):,}",
        f"{len(val_ids):,}",
        data_cfg.tokenizer,
        len(encoder.vocab),
        chars_per_token,
    )
    model_cfg = replace(config.model, vocab_size=len(encoder.vocab))
    torch.manual_seed(config.train.seed)
    model = LanguageModel(model_cfg)
    task = LanguageModelTask(
        data_cfg.carry_state, chars_per_token, data_cfg.bptt, data_cfg.eval_batch_size
    )
    train_loader = LMWindows(
        train_ids,
        config.train.batch_size,
        data_cfg.bptt,
        shift_per_epoch=True,
        seed=config.train.seed,
    )
    val_loader = task.windows(val_ids)
    if not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        encoder.save(run_dir / runs.TOKENIZER_FILE)
        runs.write_config(
            run_dir,
            TASK,
            {
                "config": to_dict(config),
                "model": to_dict(model_cfg),
                "data_sources": text.sources,
                "chars_per_token": chars_per_token,
            },
        )
    result = fit(
        model,
        task,
        train_loader,
        val_loader,
        config.train,
        run_dir=run_dir,
        callbacks=callbacks,
        resume=resume,
    )
    device = torch.device(result.device)
    # Reported in fp32 whatever the training precision, so the figure is the one `rnnkit
    # evaluate` and a served fp32 model give (bf16 autocast moves the loss in the 3rd decimal).
    ctx = EvalContext(device, resolve_precision("fp32", device))
    final_ids = encode_stream(encoder, text.test) if text.test else val_ids
    metrics = task.evaluate(model, task.windows(final_ids), ctx)
    metrics["data"] = "test" if text.test else "validation"
    sample = generate(model, encoder, "", config.sample)[0]
    seconds = time.perf_counter() - started
    _write_outputs(run_dir, config, model_cfg, result, metrics, sample, seconds)
    predictor = LanguageModelPredictor(model, encoder, chars_per_token, device=result.device)
    return LMRun(run_dir, result, metrics, sample, seconds, predictor)


def _write_outputs(run_dir, config, model_cfg, result, metrics, sample, seconds) -> None:
    from rnnkit.io import atomic_write_json, atomic_write_text
    from rnnkit.report import plot_loss, write_report
    from rnnkit.report_html import pre, write_html_report

    atomic_write_json(run_dir / "test_metrics.json", metrics)
    atomic_write_text(run_dir / "sample.txt", sample + "\n")
    images = {"loss": plot_loss(result.records, run_dir / "loss.png").name}
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
    report = dict(
        title=f"Language model run {run_dir.name}",
        summary=summary,
        metrics={k: v for k, v in metrics.items() if k != "data"},
        records=result.records,
        images=images,
    )
    heading = f"Sample (temperature {config.sample.temperature})"
    write_report(run_dir, **report, sections=[(heading, f"```\n{sample}\n```")])
    write_html_report(run_dir, **report, sections=[(heading, pre(sample))])


def evaluate_run(run_dir: str | Path, data: str | None = None) -> dict[str, Any]:
    """Metrics of a saved language model on its own held-out text, or on all of `data`.

    Args:
        run_dir: the run folder.
        data: a registry name or path (.txt) to evaluate on instead.

    Returns:
        `loss` (nats/token), `perplexity`, `bits_per_char`, `tokens`, and `data` (what was
        evaluated).
    """
    config = runs.read_config(run_dir)
    predictor = LanguageModelPredictor.from_run(Path(run_dir), config)
    run_cfg = from_dict(LMRunConfig, config["config"])
    if data is None:
        text = load_text(run_cfg.data)
        part, which = (text.test, "test") if text.test else (text.validation, "validation")
        described = f"{run_cfg.data.data} ({which} part, last {_share(run_cfg.data, which)})"
    else:
        dataset = load_dataset(data)
        if isinstance(dataset, TextCorpus):
            part = dataset.text
        elif isinstance(dataset, TextClassificationDataset):
            part = "\n".join(dataset.data.texts)
        else:
            raise ConfigError(f"--data {data} is a {dataset.task} dataset; give text")
        described = data
    metrics = predictor.evaluate_text(part, run_cfg.data.bptt, run_cfg.data.eval_batch_size)
    return {"data": described, "tokens": len(encode_stream(predictor.encoder, part)), **metrics}


def _share(data: LMDataConfig, which: str) -> str:
    return f"{data.test:.0%}" if which == "test" else f"{data.validation:.0%}"


runs.register_task(
    TASK,
    load=LanguageModelPredictor.from_run,
    evaluate=evaluate_run,
    train=train_lm,
    config=LMRunConfig,
)
