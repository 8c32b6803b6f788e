"""Labelled texts -> ids -> length-bucketed batches; the run's held-out texts reopened."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from torch.utils.data import DataLoader

from rnnkit.config import from_dict
from rnnkit.data import TextClassificationDataset, load_dataset
from rnnkit.data.batching import BucketBatchSampler, PadCollate, SequenceDataset
from rnnkit.data.tables import reopens_config_data
from rnnkit.data.types import LabeledTexts, Splits
from rnnkit.errors import ConfigError, DataError
from rnnkit.io import atomic_open
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


def load_splits(config: TextDataConfig) -> Splits[LabeledTexts]:
    """The texts of `config` split as a run splits them (stratified by its split seed)."""
    dataset = load_texts(config)
    return dataset.split(seed=config.split_seed, validation=config.validation, test=config.test)


@reopens_config_data
def held_out(run_dir: Path, config: dict[str, Any]) -> HeldOut:
    """The run's test split (`LabeledTexts`), reopened from its data config and split seed."""
    cfg = from_dict(ClassificationRunConfig, config["config"]).data
    return HeldOut(load_splits(cfg).test, f"{cfg.data} (test split, seed {cfg.split_seed})")


#: the file `write_data` writes into a run's data folder
DATA_FILE = "texts.csv"


def write_data(data: Any, folder: Path, config: ClassificationRunConfig) -> ClassificationRunConfig:
    """Labelled texts in memory, written as `folder/texts.csv` for `rnnkit.train`.

    Args:
        data: a pandas DataFrame with a text and a label column, a pair `(texts, labels)`, or
            a dict `{"text": texts, "label": labels}`; `config.data.text_column` and
            `label_column` name the columns and keys (and the file's columns).
        folder: where the file goes (the run's `data/` folder).
        config: the run config.

    Returns:
        `config` with `data.data` the file's absolute path, so the run reopens its test split
        from the file, wherever it is evaluated from.

    Raises:
        ConfigError: data of another type.
        DataError: a missing column or key, texts and labels of different lengths, a text that
            is not a string.
    """
    text, label = config.data.text_column, config.data.label_column
    texts, labels = _texts_and_labels(data, text, label)
    path = Path(folder) / DATA_FILE
    with atomic_open(path, "w") as f:
        pd.DataFrame({text: texts, label: labels}).to_csv(f, index=False)
    return replace(config, data=replace(config.data, data=str(path.resolve())))


def _texts_and_labels(data: Any, text: str, label: str) -> tuple[list[Any], list[Any]]:
    if isinstance(data, pd.DataFrame):
        names = [str(c) for c in data.columns]
        missing = [c for c in (text, label) if c not in names]
        if missing:
            raise DataError(
                f"the DataFrame has no column {missing[0]!r} (its columns: {names}); "
                "name its text and label columns with text_column= and label_column="
            )
        texts, labels = data[text].tolist(), data[label].tolist()
    elif isinstance(data, Mapping):
        keys = [str(k) for k in data]
        missing = [c for c in (text, label) if c not in data]
        if missing:
            raise DataError(
                f"the dict has no key {missing[0]!r} (its keys: {keys}); expected "
                f"{{{text!r}: texts, {label!r}: labels}} (text_column= and label_column= name "
                "the keys)"
            )
        texts, labels = list(data[text]), list(data[label])
    elif isinstance(data, (tuple, list)) and len(data) == 2 and all(map(_is_column, data)):
        texts, labels = (list(part) for part in data)
    else:
        got = f"the text {data[:40]!r}" if isinstance(data, str) else type(data).__name__
        raise ConfigError(
            "classification data is a registry dataset name, a path, a pandas DataFrame with "
            f"{text!r} and {label!r} columns, a pair (texts, labels) or a dict "
            f"{{{text!r}: texts, {label!r}: labels}}; got {got}"
        )
    if len(texts) != len(labels):
        raise DataError(f"{len(texts)} texts but {len(labels)} labels; every text needs one label")
    for i, value in enumerate(texts):
        if not isinstance(value, str):
            raise DataError(f"text {i} is {type(value).__name__} {value!r}; expected a string")
    return texts, labels


def _is_column(value: Any) -> bool:
    """Whether `value` is list-like (a list, tuple, array, Series), not a string or a dict."""
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping))
