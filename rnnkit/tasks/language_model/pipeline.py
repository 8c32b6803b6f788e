"""Language modelling: running text in, a trained next-token model (and a text generator) out.

`train_lm(config, run_dir)` is the pipeline the CLI and Python share: load the corpus (or several,
joined with `+`) -> contiguous split (the last 10% is validation) -> `TextEncoder` built on the
training text -> one id stream -> contiguous rows and truncated-BPTT windows
(`batches.py`) -> `LanguageModel` -> `fit`, with the hidden state carried from one
window to the next -> validation loss, perplexity, bits per character, a generated sample, plots
and report. The loss and metrics live in `objective.py`; `LanguageModelPredictor`
(`predictor.py`) is what `rnnkit.load()` returns for such a run.

Metrics: `loss` is the mean cross-entropy in nats per token, `perplexity` is exp(loss), and
`bits_per_char` is the total cross-entropy in bits divided by the characters of the evaluated text
(equal to loss / ln 2 for the `char` tokenizer; comparable across tokenizers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from rnnkit import run_folder
from rnnkit.config import from_dict, to_dict
from rnnkit.data import TextClassificationDataset, TextCorpus, load_dataset
from rnnkit.errors import ConfigError
from rnnkit.models.language_model import LanguageModel
from rnnkit.run_folder import Files
from rnnkit.tasks.language_model.batches import LMWindows
from rnnkit.tasks.language_model.config import TASK, LanguageModelRunConfig
from rnnkit.tasks.language_model.data import held_out, load_streams
from rnnkit.tasks.language_model.generate import generate
from rnnkit.tasks.language_model.objective import LanguageModelObjective, encode_stream
from rnnkit.tasks.language_model.predictor import LanguageModelPredictor
from rnnkit.tasks.language_model.report import write_outputs as _write_outputs
from rnnkit.tasks.language_model.soft_targets import store_teacher
from rnnkit.text import TextEncoder
from rnnkit.training import Callback, EvalContext, FitResult, fit
from rnnkit.training.distill import Teacher
from rnnkit.training.distributed import is_main_process
from rnnkit.training.precision import resolve_precision

logger = logging.getLogger(__name__)


@dataclass
class LMRun:
    """What `train_lm` returns."""

    run_dir: Path
    fit: FitResult
    metrics: dict[str, Any]
    sample: str
    seconds: float
    predictor: LanguageModelPredictor


@run_folder.claims_run_dir
def train_lm(
    config: LanguageModelRunConfig,
    run_dir: str | Path,
    *,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
) -> LMRun | None:
    """Train, evaluate and save a language model; see the module docstring for the steps.

    Under torchrun, every rank trains and rank 0 alone evaluates and writes; the other ranks
    return None.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    resume = run_folder.check_run_dir(run_dir, to_dict(config), resume)
    data_cfg = config.data
    # in memory, or a corpus larger than memory read from a token file (data.streaming)
    teacher = _teacher(config)
    if resume:
        known: TextEncoder | None = TextEncoder.load(run_dir / Files.TOKENIZER)
    else:  # a student reads text exactly as its teacher did: the soft targets need one vocabulary
        known = teacher.encoder if teacher is not None else None
    streams = load_streams(data_cfg, known)
    encoder, train_ids, val_ids = streams.encoder, streams.train, streams.validation
    chars_per_token = streams.chars_per_token
    logger.info(
        "data: %s; %s train / %s validation tokens (%s tokenizer, vocabulary %d, %.2f chars/token)",
        " + ".join(streams.sources),
        f"{len(train_ids):,}",
        f"{len(val_ids):,}",
        data_cfg.tokenizer,
        len(encoder.vocab),
        chars_per_token,
    )
    model_cfg = replace(config.model, vocab_size=len(encoder.vocab))
    torch.manual_seed(config.train.seed)
    model = LanguageModel(model_cfg)
    distill = config.distill
    stored = None
    if teacher is not None and distill.top_k and distill.alpha:
        stored = store_teacher(teacher.model, train_ids, distill.top_k, distill.temperature)
    task = LanguageModelObjective(
        data_cfg.carry_state,
        chars_per_token,
        data_cfg.bptt,
        data_cfg.eval_batch_size,
        Teacher(teacher.model, distill) if teacher is not None else None,
        stored,
    )
    train_loader = LMWindows(
        train_ids,
        config.train.batch_size,
        data_cfg.bptt,
        shift_per_epoch=True,
        seed=config.train.seed,
    )
    val_loader = task.windows(val_ids)
    if not resume and is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        encoder.save(run_dir / Files.TOKENIZER)
        run_folder.write_config(
            run_dir,
            TASK,
            {
                "config": to_dict(config),
                "model": to_dict(model_cfg),
                "data_sources": streams.sources,
                "chars_per_token": chars_per_token,
                **streams.record,  # a streamed corpus: its token ranges, for `held_out`
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
    if not is_main_process():
        return None  # rank 0 evaluates on the held-out text and writes the outputs
    device = torch.device(result.device)
    # Reported in fp32 whatever the training precision, so the figure is the one `rnnkit
    # evaluate` and a served fp32 model give (bf16 autocast moves the loss in the 3rd decimal).
    ctx = EvalContext(device, resolve_precision("fp32", device))
    final_ids = streams.test if len(streams.test) else val_ids
    metrics = task.evaluate(model, task.windows(final_ids), ctx)
    metrics["data"] = "test" if len(streams.test) else "validation"
    sample = generate(model, encoder, "", config.sample)[0]
    seconds = time.perf_counter() - started
    _write_outputs(run_dir, config, model_cfg, result, metrics, sample, seconds)
    predictor = LanguageModelPredictor(model, encoder, chars_per_token, device=result.device)
    return LMRun(run_dir, result, metrics, sample, seconds, predictor)


def _teacher(config: LanguageModelRunConfig) -> LanguageModelPredictor | None:
    """The language model named by `distill.teacher`, on the CPU (None when not distilling)."""
    if not config.distill.teacher:
        return None
    path = Path(config.distill.teacher)
    return LanguageModelPredictor.from_run(path, run_folder.config_for_task(path, TASK, "distill"))


def evaluate_run(run_dir: str | Path, data: str | None = None) -> dict[str, Any]:
    """Metrics of a saved language model on its own held-out text, or on all of `data`.

    Args:
        run_dir: the run folder.
        data: a registry name or path (.txt) to evaluate on instead.

    Returns:
        `loss` (nats/token), `perplexity`, `bits_per_char`, `tokens`, and `data` (what was
        evaluated).
    """
    config = run_folder.read_config_file(run_dir)
    predictor = LanguageModelPredictor.from_run(Path(run_dir), config)
    run_cfg = from_dict(LanguageModelRunConfig, config["config"])
    if data is None:
        part, described = held_out(Path(run_dir), config)
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
