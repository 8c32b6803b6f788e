"""Every registry dataset fetches, verifies and loads with the record counts PRODUCT.md gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnkit.data import DATASETS, TextClassificationDataset, get_spec, load_dataset
from rnnkit.data.cache import sha256_file
from rnnkit.data.registry import fetch
from rnnkit.errors import ConfigError, DataError

pytestmark = [pytest.mark.slow, pytest.mark.network]


@pytest.mark.parametrize("name", list(DATASETS))
def test_members_in_cache_match_their_checksums(name: str) -> None:
    spec = get_spec(name)
    paths = fetch(name)
    assert set(paths) == set(spec.members)
    for member, path in paths.items():
        assert sha256_file(path) == spec.members[member]
    assert sum(p.stat().st_size for p in paths.values()) == spec.size_bytes


def test_rotten_tomatoes_counts() -> None:
    ds = load_dataset("rotten-tomatoes")
    assert isinstance(ds, TextClassificationDataset)
    assert ds.data.label_counts() == {"fresh": 7403, "rotten": 5405}
    assert all(text.strip() for text in ds.data.texts)


def test_clothing_reviews_counts_and_rating_option() -> None:
    ds = load_dataset("clothing-reviews")
    assert ds.data.label_counts() == {"no": 4101, "yes": 18540}
    rated = load_dataset("clothing-reviews", label="rating")
    assert rated.data.label_counts() == {"1": 821, "2": 1549, "3": 2823, "4": 4908, "5": 12540}
    assert rated.data.texts == ds.data.texts


def test_glove_vectors() -> None:
    glove = load_dataset("glove-6b-50d")
    assert glove.vectors.shape == (400_000, 50)
    assert glove.vectors.dtype == np.float32
    assert glove.words[:5] == ["the", ",", ".", "of", "to"]
    # Neighbours in a real embedding space: "king" is closer to "queen" than to "banana".
    v = glove.vectors / np.linalg.norm(glove.vectors, axis=1, keepdims=True)
    king, queen, banana = (v[glove.index[w]] for w in ("king", "queen", "banana"))
    assert king @ queen > 0.7 > king @ banana


def test_shakespeare_is_plain_play_text() -> None:
    corpus = load_dataset("shakespeare")
    assert len(corpus.documents) == 38
    text = corpus.text
    assert "**" not in text and "\\[" not in text and "##" not in text
    assert "HAMLET:\n" in text and "ROMEO:\n" in text
    assert "To be, or not to be: that is the question:" in text
    assert 4_500_000 < len(text) < 5_500_000
    parts = corpus.split()
    assert parts.train + parts.validation == text
    assert len(parts.validation) == round(len(text) * 0.1)


@pytest.mark.parametrize(
    ("name", "freq", "points", "first", "last"),
    [
        ("airline-passengers", "MS", 144, "1949-01-01", "1960-12-01"),
        ("sunspots", "YS", 309, "1700-01-01", "2008-01-01"),
        ("electricity", "h", 26_304, "2012-01-01 00:00", "2014-12-31 23:00"),
    ],
)
def test_single_series(name: str, freq: str, points: int, first: str, last: str) -> None:
    ds = load_dataset(name)
    assert ds.freq == freq
    (frame,) = ds.series.values()
    assert len(frame) == points
    assert frame.index[0] == pd.Timestamp(first) and frame.index[-1] == pd.Timestamp(last)
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert frame.index.equals(pd.date_range(first, periods=points, freq=freq))
    assert np.isfinite(frame[ds.targets].to_numpy()).all()


def test_airline_values() -> None:
    (frame,) = load_dataset("airline-passengers").series.values()
    assert frame["passengers"].iloc[0] == 112 and frame["passengers"].iloc[-1] == 432


def test_retail_daily_sales_per_country() -> None:
    ds = load_dataset("retail")
    assert list(ds.series) == ["United Kingdom", "EIRE", "Germany", "France", "Netherlands"]
    assert ds.targets == ["sales"] and ds.covariates == ["quantity", "orders"]
    for frame in ds.series.values():
        assert len(frame) == 739
        assert frame.index.equals(pd.date_range("2009-12-01", "2011-12-09", freq="D"))
    uk = ds.series["United Kingdom"]
    assert uk["sales"].sum() > 10 * ds.series["Germany"]["sales"].sum()
    three = load_dataset("retail", top_countries=3)
    assert list(three.series) == ["United Kingdom", "EIRE", "Germany"]


def test_unknown_dataset_suggests_the_close_name() -> None:
    with pytest.raises(
        DataError,
        match=r"'rotten-tomatos' is neither a known dataset.*"
        r"Did you mean 'rotten-tomatoes'\?",
    ):
        load_dataset("rotten-tomatos")
    with pytest.raises(ConfigError, match=r"unknown dataset 'sunspot'\. Did you mean 'sunspots'"):
        get_spec("sunspot")


def test_unknown_option_lists_accepted_ones() -> None:
    with pytest.raises(ConfigError, match=r"dataset 'sunspots' has no option\(s\) \['label'\]"):
        load_dataset("sunspots", label="x")
    with pytest.raises(ConfigError, match="label must be one of"):
        load_dataset("clothing-reviews", label="stars")
