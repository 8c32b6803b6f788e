"""Splits are deterministic, stratified for labels and contiguous for series and corpora."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.types import (
    LabeledTexts,
    TextClassificationDataset,
    TextCorpus,
    TimeSeriesDataset,
    stratified_split_indices,
)
from rnnkit.errors import ConfigError, DataError


def _dataset(counts: dict[str, int]) -> TextClassificationDataset:
    labels = [label for label, n in counts.items() for _ in range(n)]
    texts = [f"text {i}" for i in range(len(labels))]
    return TextClassificationDataset("toy", LabeledTexts(texts, labels))


def test_split_is_stratified_and_deterministic() -> None:
    ds = _dataset({"a": 700, "b": 300})
    one, again, other = ds.split(seed=1), ds.split(seed=1), ds.split(seed=2)
    assert one.train.texts == again.train.texts
    assert one.train.texts != other.train.texts
    assert one.test.label_counts() == {"a": 70, "b": 30}
    assert one.validation.label_counts() == {"a": 70, "b": 30}
    assert one.train.label_counts() == {"a": 560, "b": 240}


@settings(max_examples=50, deadline=None)
@given(
    labels=st.lists(st.sampled_from("xyz"), min_size=1, max_size=200),
    seed=st.integers(0, 2**31),
    validation=st.floats(0.0, 0.45),
    test=st.floats(0.0, 0.45),
)
def test_split_partitions_every_row_once(labels, seed, validation, test) -> None:
    parts = stratified_split_indices(labels, validation=validation, test=test, seed=seed)
    joined = sorted([*parts.train, *parts.validation, *parts.test])
    assert joined == list(range(len(labels)))


def test_predefined_test_set_is_kept_and_unseen_labels_are_refused() -> None:
    train = LabeledTexts(["a", "b", "c", "d"], ["pos", "neg", "pos", "neg"])
    test = LabeledTexts(["e"], ["pos"])
    ds = TextClassificationDataset("toy", train, test=test)
    assert ds.split(validation=0.5).test is test
    with pytest.raises(DataError, match=r"test/: label\(s\) \['meh'\] appear only in the test"):
        TextClassificationDataset("toy", train, LabeledTexts(["x"], ["meh"]), test_source="test/")


@pytest.mark.parametrize(("validation", "test"), [(-0.1, 0.1), (0.5, 0.5), (0.1, 1.0)])
def test_bad_fractions_are_config_errors(validation: float, test: float) -> None:
    with pytest.raises(ConfigError, match="fraction"):
        _dataset({"a": 10}).split(validation=validation, test=test)


def test_time_series_split_is_contiguous() -> None:
    index = pd.date_range("2020-01-01", periods=100, freq="D")
    frame = pd.DataFrame({"y": range(100)}, index=index, dtype=float)
    parts = TimeSeriesDataset("toy", {"y": frame}, "D", ["y"]).split(validation=0.1, test=0.2)
    train, val, test = (p.series["y"] for p in (parts.train, parts.validation, parts.test))
    assert (len(train), len(val), len(test)) == (70, 10, 20)
    assert train.index[-1] < val.index[0] and val.index[-1] < test.index[0]


def test_corpus_split_keeps_text_order() -> None:
    corpus = TextCorpus("toy", ["abcdefghij", "klmnopqrst"])
    parts = corpus.split(validation=0.25, test=0.0)
    assert parts.train + parts.validation == corpus.text
    assert parts.validation == corpus.text[-len(parts.validation) :]
