"""Sequence classification: labelled texts in, a trained classifier run folder out.

`train_classifier(config, run_dir)` is the whole pipeline the CLI and Python share:
load data -> stratified split -> build the TextEncoder on the training texts -> ids -> length-
bucketed loaders -> TextClassifier (optionally with pretrained vectors) -> `fit` -> test metrics,
plots and report. `ClassifierPredictor` is what `rnnkit.load()` returns for such a run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit import run_folder
from rnnkit.config import from_dict, to_dict
from rnnkit.errors import ConfigError, DataError
from rnnkit.models.classifier import TextClassifier
from rnnkit.run_folder import Files
from rnnkit.tasks.classification.config import (
    TASK,
    ClassificationRunConfig,
    EmbeddingsConfig,
    TextDataConfig,
)
from rnnkit.tasks.classification.data import encode, held_out, load_texts, make_loader
from rnnkit.tasks.classification.metrics import classification_metrics
from rnnkit.tasks.classification.objective import ClassificationObjective, UnfreezeEmbeddings
from rnnkit.tasks.classification.predictor import ClassifierPredictor
from rnnkit.tasks.classification.report import write_outputs as _write_outputs
from rnnkit.text import TextEncoder
from rnnkit.training import Callback, EvalContext, FitResult, fit
from rnnkit.training.distill import Teacher, require_live
from rnnkit.training.distributed import is_main_process
from rnnkit.training.precision import resolve_precision

logger = logging.getLogger(__name__)

__all__ = [
    "ClassificationRunConfig",
    "ClassifierPredictor",
    "ClassifierRun",
    "EmbeddingsConfig",
    "TextDataConfig",
    "encode",
    "evaluate_run",
    "held_out",
    "load_texts",
    "make_loader",
    "train_classifier",
]


@dataclass
class ClassifierRun:
    """What `train_classifier` returns."""

    run_dir: Path
    fit: FitResult
    test_metrics: dict[str, Any]
    seconds: float
    predictor: ClassifierPredictor


@run_folder.claims_run_dir
def train_classifier(
    config: ClassificationRunConfig,
    run_dir: str | Path,
    *,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
) -> ClassifierRun | None:
    """Train, evaluate and save a text classifier; see the module docstring for the steps.

    Under torchrun, every rank trains and rank 0 alone evaluates and writes; the other ranks
    return None.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    resume = run_folder.check_run_dir(run_dir, to_dict(config), resume)
    data_cfg = config.data
    dataset = load_texts(data_cfg)
    splits = dataset.split(
        seed=data_cfg.split_seed, validation=data_cfg.validation, test=data_cfg.test
    )
    classes = dataset.classes
    label_index = {label: i for i, label in enumerate(classes)}
    logger.info(
        "data: %d train, %d validation, %d test; classes %s",
        len(splits.train),
        len(splits.validation),
        len(splits.test),
        classes,
    )
    if len(splits.validation) == 0 or len(splits.test) == 0:
        raise ConfigError("validation and test splits must not be empty; raise their fractions")

    teacher = _teacher(config)
    if teacher is not None and teacher.classes != classes:
        raise ConfigError(
            f"the teacher {config.distill.teacher} knows the classes {teacher.classes}, "
            f"this data has {classes}: distil on the teacher's data (its config's data keys)"
        )
    lm_config = None
    if config.transfer.init_from:
        from rnnkit.tasks.classification.transfer import lm_run

        lm_config, lm_encoder = lm_run(config.transfer.init_from)
    if resume:
        text_encoder = TextEncoder.load(run_dir / Files.TOKENIZER)
    elif teacher is not None:
        text_encoder = teacher.encoder  # the student reads text exactly as its teacher did
    elif lm_config is not None:
        text_encoder = lm_encoder  # read text exactly as the language model did
    else:
        text_encoder = TextEncoder.build(
            splits.train.texts,
            tokenizer=data_cfg.tokenizer,
            min_freq=data_cfg.min_freq,
            max_size=data_cfg.max_size,
            vocab_size=data_cfg.vocab_size,
        )
    vectors = None
    model_cfg = replace(config.model, vocab_size=len(text_encoder.vocab), num_classes=len(classes))
    if lm_config is not None:
        from rnnkit.tasks.classification.transfer import classifier_shape

        model_cfg = classifier_shape(model_cfg, lm_config)
        if config.embeddings.vectors:
            logger.info("--init-from: the language model's embedding replaces word vectors")
    elif config.embeddings.vectors:
        from rnnkit.data.vectors import load_word_vectors

        vectors = load_word_vectors(config.embeddings.vectors)
        if vectors.dim != model_cfg.embedding_dim:
            logger.info("embedding_dim set to %d to match %s", vectors.dim, vectors.name)
            model_cfg = replace(model_cfg, embedding_dim=vectors.dim)

    torch.manual_seed(config.train.seed)
    model = TextClassifier(model_cfg)
    if lm_config is not None and not resume:
        from rnnkit.tasks.classification.transfer import load_lm_weights

        load_lm_weights(model, config.transfer.init_from)
    coverage = None
    if vectors is not None:
        from rnnkit.models.embeddings import align_vectors

        matrix, coverage = align_vectors(
            vectors,
            text_encoder.vocab.tokens,
            pad_index=text_encoder.pad_id,
            seed=config.train.seed,
        )
        model.load_embeddings(torch.from_numpy(matrix), freeze=config.embeddings.freeze)

    def ids_labels(part):
        return (
            encode(text_encoder, part.texts, data_cfg.max_length),
            [label_index[label] for label in part.labels],
        )

    train_ids, train_y = ids_labels(splits.train)
    val_ids, val_y = ids_labels(splits.validation)
    test_ids, test_y = ids_labels(splits.test)
    bs, seed, pad = config.train.batch_size, config.train.seed, text_encoder.pad_id
    train_loader = make_loader(train_ids, train_y, bs, shuffle=True, seed=seed, pad_id=pad)
    val_loader = make_loader(val_ids, val_y, bs, shuffle=False, seed=seed, pad_id=pad)
    test_loader = make_loader(test_ids, test_y, bs, shuffle=False, seed=seed, pad_id=pad)

    if not resume and is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        text_encoder.save(run_dir / Files.TOKENIZER)
        run_folder.write_config(
            run_dir,
            TASK,
            {
                "config": to_dict(config),
                "model": to_dict(model_cfg),
                "classes": classes,
                "split_seed": data_cfg.split_seed,
                "data_source": dataset.source or data_cfg.data,
                "embeddings_coverage": coverage.as_dict() if coverage is not None else None,
            },
        )
    task = ClassificationObjective(
        classes, config.monitor, Teacher(teacher.model, config.distill) if teacher else None
    )
    all_callbacks = list(callbacks)
    if lm_config is not None and config.transfer.gradual_unfreezing:
        from rnnkit.tasks.classification.transfer import GradualUnfreezing, layer_groups

        all_callbacks.append(GradualUnfreezing(layer_groups(model)))
    if config.embeddings.freeze and config.embeddings.unfreeze_after is not None:
        all_callbacks.append(
            UnfreezeEmbeddings(model.embedding.weight, config.embeddings.unfreeze_after)
        )
    result = fit(
        model,
        task,
        train_loader,
        val_loader,
        config.train,
        run_dir=run_dir,
        callbacks=all_callbacks,
        resume=resume,
    )
    if not is_main_process():
        return None  # rank 0 evaluates on the test split and writes the outputs
    device = torch.device(result.device)
    # Test metrics in fp32 whatever the training precision: the numbers `rnnkit evaluate` and a
    # served (fp32) model reproduce; under bf16 autocast the probabilities move in the 3rd digit.
    ctx = EvalContext(device, resolve_precision("fp32", device))
    probs, labels = task.predict(model, test_loader, ctx)
    test_metrics = classification_metrics(labels, probs.argmax(1), classes, probs=probs)
    seconds = time.perf_counter() - started
    _write_outputs(run_dir, config, model_cfg, result, test_metrics, seconds, coverage)
    predictor = ClassifierPredictor(
        model, text_encoder, classes, data_cfg.max_length, device=str(ctx.device)
    )
    return ClassifierRun(run_dir, result, test_metrics, seconds, predictor)


def _teacher(config: ClassificationRunConfig) -> ClassifierPredictor | None:
    """The classifier named by `distill.teacher`, loaded on the CPU (None when not distilling)."""
    if not config.distill.teacher:
        return None
    require_live(config.distill, "classifier")
    path = Path(config.distill.teacher)
    return ClassifierPredictor.from_run(path, run_folder.config_for_task(path, TASK, "distill"))


def evaluate_run(run_dir: str | Path, data: str | None = None, **columns: str) -> dict[str, Any]:
    """Metrics of a saved classifier on its own test split, or on all of `data`.

    Args:
        run_dir: the run folder.
        data: a registry name or path to evaluate on instead of the run's test split.
        **columns: `text_column` / `label_column` overrides for `data`.

    Returns:
        `classification_metrics(...)` plus `data` (what was evaluated) and `n`.
    """
    run_dir = Path(run_dir)
    config = run_folder.read_config_file(run_dir)
    predictor = ClassifierPredictor.from_run(run_dir, config)
    if data is None:
        part, described = held_out(run_dir, config)
        source: str | Path | None = run_dir
    else:
        run_cfg = from_dict(ClassificationRunConfig, config["config"])
        dataset = load_texts(replace(run_cfg.data, data=data, **columns))
        part = dataset.data if dataset.test is None else dataset.test
        described, source = data, dataset.source or data
    unknown = sorted(set(part.labels) - set(predictor.classes))
    if unknown:
        raise DataError(
            f"labels {unknown[:5]} were not seen in training; the model knows {predictor.classes}",
            path=source,
        )
    probs = predictor.predict_proba(part.texts)
    index = {c: i for i, c in enumerate(predictor.classes)}
    truth = np.array([index[label] for label in part.labels])
    metrics = classification_metrics(truth, probs.argmax(1), predictor.classes, probs=probs)
    return {"data": described, **metrics}
