"""Labelled texts -> ids -> length-bucketed batches; the run's held-out texts reopened."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from rnnkit.config import from_dict
from rnnkit.data import TextClassificationDataset, load_dataset
from rnnkit.data.batching import BucketBatchSampler, PadCollate, SequenceDataset
from rnnkit.errors import ConfigError, DataError
from rnnkit.tasks.classification.config import ClassificationRunConfig, TextDataConfig
from rnnkit.tasks.spec import HeldOut
from rnnkit.text import TextEncoder

logger = logging.getLogger(__name__)


def load_texts(config: TextDataConfig) -> TextClassificationDataset:
    """The labelled texts named by `config.data`, checked to be fit for classification."""
    is_path = Path(config.data).expanduser().exists()
    options: dict[str, Any] = {}
    if is_path:
        options = {"task": "classification", "text_column": config.text_column}
        options["label_column"] = config.label_column
    dataset = load_dataset(config.data, **options)
    if not isinstance(dataset, TextClassificationDataset):
        raise ConfigError(
            f"--data {config.data} is a {dataset.task} dataset; a classifier needs labelled texts"
        )
    classes = dataset.classes
    if len(classes) < 2:
        raise DataError(
            f"every label is {classes[0]!r}; a classifier needs at least two classes",
            path=dataset.source or config.data,
            column=config.label_column if is_path else None,
        )
    return dataset


def encode(encoder: TextEncoder, texts: Sequence[str], max_length: int | None) -> list[list[int]]:
    """Token ids per text; a text with no tokens becomes `[<unk>]` (an RNN needs one step)."""
    ids = encoder.encode_batch(list(texts), max_length=max_length)
    empty = [i for i, seq in enumerate(ids) if len(seq) == 0]
    if empty:
        logger.warning("%d text(s) have no tokens (e.g. #%d); using <unk>", len(empty), empty[0])
        for i in empty:
            ids[i] = [encoder.unk_id]
    return ids


def make_loader(
    ids: list[list[int]],
    labels: list[int] | None,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    pad_id: int,
) -> DataLoader:
    """Length-bucketed batches: shuffled for training, sorted by length for evaluation."""
    dataset = SequenceDataset(ids, labels)
    sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=PadCollate(pad_id=pad_id))


def held_out(run_dir: Path, config: dict[str, Any]) -> HeldOut:
    """The run's test split (`LabeledTexts`), reopened from its data config and split seed."""
    cfg = from_dict(ClassificationRunConfig, config["config"]).data
    parts = load_texts(cfg).split(seed=cfg.split_seed, validation=cfg.validation, test=cfg.test)
    return HeldOut(parts.test, f"{cfg.data} (test split, seed {cfg.split_seed})")
