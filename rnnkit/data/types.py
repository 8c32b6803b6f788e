"""The typed objects every dataset comes back as, from the registry or from a user's files.

- `TextClassificationDataset`: texts with one label each (sentiment, ratings).
- `TimeSeriesDataset`: one or many time-indexed frames with target and covariate columns.
- `TextCorpus`: documents of running text for language models.
- `WordVectors`: pretrained embeddings (GloVe), a word list and a matrix.

Each has a deterministic `split()`: stratified by seed for labelled texts, contiguous in time or
text order for series and corpora (shuffling those would leak the future into training).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Generic, TypeVar

import numpy as np
import pandas as pd

from rnnkit.errors import ConfigError, DataError

T = TypeVar("T")


@dataclass(frozen=True)
class Splits(Generic[T]):
    """Train, validation and test parts of one dataset."""

    train: T
    validation: T
    test: T


@dataclass(frozen=True)
class LabeledTexts:
    """Texts with one string label each; `texts[i]` has label `labels[i]`."""

    texts: list[str]
    labels: list[str]

    def __post_init__(self) -> None:
        assert len(self.texts) == len(self.labels), "texts and labels differ in length"

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted(set(self.labels))

    def label_counts(self) -> dict[str, int]:
        """How many texts carry each label, by label in sorted order."""
        counts = Counter(self.labels)
        return {label: counts[label] for label in sorted(counts)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> LabeledTexts:
        """The texts at `indices`, in that order."""
        return LabeledTexts([self.texts[i] for i in indices], [self.labels[i] for i in indices])


def _check_fractions(validation: float, test: float) -> None:
    for name, value in (("validation", validation), ("test", test)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name} fraction must be in [0, 1), got {value}")
    if validation + test >= 1.0:
        raise ConfigError(
            f"validation + test fractions must leave data to train on, got {validation} + {test}"
        )


def stratified_split_indices(
    labels: Sequence[str], *, validation: float, test: float, seed: int
) -> Splits[np.ndarray]:
    """Index arrays for a split that keeps each label's share in every part.

    Within each label the rows are shuffled by `seed` and cut by the fractions (rounded to the
    nearest row), so the same labels, fractions and seed always give the same split.
    """
    _check_fractions(validation, test)
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels, dtype=object)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for label in sorted(set(labels)):
        idx = np.flatnonzero(labels_arr == label)
        idx = idx[rng.permutation(len(idx))]
        n_test = round(len(idx) * test)
        n_val = round(len(idx) * validation)
        parts["test"].append(idx[:n_test])
        parts["validation"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    # Shuffle across labels too, so no consumer sees one class after another.
    out = {}
    for key, chunks in parts.items():
        joined = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
        out[key] = joined[rng.permutation(len(joined))]
    return Splits(out["train"], out["validation"], out["test"])


@dataclass(frozen=True)
class TextClassificationDataset:
    """Labelled texts, optionally with a predefined test set (e.g. aclImdb's `test/` folder).

    Attributes:
        name: registry name or the path the data came from.
        data: every labelled text available for training (and for carving out a test set).
        test: a predefined test set, or None to carve one out of `data` in `split()`.
        source: where `data` came from, for error messages.
        test_source: where `test` came from.
    """

    name: str
    data: LabeledTexts
    test: LabeledTexts | None = None
    source: str = ""
    test_source: str = ""
    task: str = field(default="classification", init=False)

    def __post_init__(self) -> None:
        if self.test is not None:
            unseen = sorted(set(self.test.labels) - set(self.data.labels))
            if unseen:
                raise DataError(
                    f"label(s) {unseen} appear only in the test set; training labels are "
                    f"{self.data.classes}",
                    path=self.test_source or None,
                )

    def __len__(self) -> int:
        return len(self.data) + (len(self.test) if self.test is not None else 0)

    @property
    def classes(self) -> list[str]:
        return self.data.classes

    def split(
        self, seed: int = 0, validation: float = 0.1, test: float = 0.1
    ) -> Splits[LabeledTexts]:
        """Stratified train/validation/test parts, deterministic for a given `seed`.

        With a predefined test set, `test` is ignored: validation is carved from `data` and the
        predefined test set is returned as is.
        """
        if self.test is not None:
            idx = stratified_split_indices(
                self.data.labels, validation=validation, test=0.0, seed=seed
            )
            return Splits(self.data.subset(idx.train), self.data.subset(idx.validation), self.test)
        idx = stratified_split_indices(
            self.data.labels, validation=validation, test=test, seed=seed
        )
        return Splits(
            self.data.subset(idx.train),
            self.data.subset(idx.validation),
            self.data.subset(idx.test),
        )


def contiguous_sizes(
    n: int, validation: float, test: float | None = None, test_steps: int | None = None
) -> tuple[int, int, int]:
    """(train, validation, test) lengths of an `n`-step sequence split in time order.

    The one place split shares are rounded (to the nearest step): series, text streams and the
    forecaster's backtest span all cut here. `test_steps`, when given, replaces the test share.
    """
    n_test = test_steps if test_steps is not None else round(n * (test or 0.0))
    n_val = round(n * validation)
    return n - n_val - n_test, n_val, n_test


@dataclass(frozen=True)
class TimeSeriesDataset:
    """One or many regularly spaced series sharing their columns.

    Attributes:
        name: registry name or the path the data came from.
        series: series id -> frame indexed by a `DatetimeIndex` (sorted, unique, no gaps) whose
            columns include `targets` and `covariates`. A single series has the id of its target.
        freq: the pandas frequency alias of the index ("MS", "YS", "h", "D", ...).
        targets: columns to forecast.
        covariates: other numeric columns known at each step.
    """

    name: str
    series: dict[str, pd.DataFrame]
    freq: str
    targets: list[str]
    covariates: list[str] = field(default_factory=list)
    source: str = ""
    task: str = field(default="forecasting", init=False)

    def __len__(self) -> int:
        """The number of time steps over all series."""
        return sum(len(frame) for frame in self.series.values())

    def split(
        self, seed: int = 0, validation: float = 0.1, test: float = 0.2
    ) -> Splits[TimeSeriesDataset]:
        """Contiguous parts of every series: the first steps train, the last `test` share test.

        `seed` is accepted for a uniform interface and ignored: time order is the split.
        """
        del seed
        _check_fractions(validation, test)
        parts: dict[str, dict[str, pd.DataFrame]] = {"train": {}, "validation": {}, "test": {}}
        for key, frame in self.series.items():
            n_train, n_val, _ = contiguous_sizes(len(frame), validation, test)
            parts["train"][key] = frame.iloc[:n_train]
            parts["validation"][key] = frame.iloc[n_train : n_train + n_val]
            parts["test"][key] = frame.iloc[n_train + n_val :]
        return Splits(
            *(
                TimeSeriesDataset(
                    self.name, parts[k], self.freq, self.targets, self.covariates, self.source
                )
                for k in ("train", "validation", "test")
            )
        )


@dataclass(frozen=True)
class TextCorpus:
    """Running text for language models: documents joined by a blank line form one stream."""

    name: str
    documents: list[str]
    source: str = ""
    task: str = field(default="language-model", init=False)

    @cached_property
    def text(self) -> str:
        """All documents as one string."""
        return "\n\n".join(self.documents)

    def __len__(self) -> int:
        """The number of characters in `text`."""
        return len(self.text)

    def split(self, seed: int = 0, validation: float = 0.1, test: float = 0.0) -> Splits[str]:
        """Contiguous parts of the text stream: train first, then validation, then test.

        The default holds out the last 10% of characters as validation and keeps no test part.
        `seed` is accepted for a uniform interface and ignored.
        """
        del seed
        _check_fractions(validation, test)
        text = self.text
        n_train, n_val, _ = contiguous_sizes(len(text), validation, test)
        return Splits(text[:n_train], text[n_train : n_train + n_val], text[n_train + n_val :])


@dataclass(frozen=True)
class WordVectors:
    """Pretrained word vectors: `vectors[i]` embeds `words[i]`.

    Attributes:
        name: registry name or the path the vectors came from.
        words: the vocabulary, in file order.
        vectors: float32 array, shape (len(words), dim).
    """

    name: str
    words: list[str]
    vectors: np.ndarray
    source: str = ""
    task: str = field(default="embeddings", init=False)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @cached_property
    def index(self) -> dict[str, int]:
        """word -> row of `vectors` (first occurrence wins)."""
        out: dict[str, int] = {}
        for i, word in enumerate(self.words):
            out.setdefault(word, i)
        return out


Dataset = TextClassificationDataset | TimeSeriesDataset | TextCorpus | WordVectors
