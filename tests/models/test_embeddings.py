"""Alignment of pretrained vectors to a vocabulary, and the coverage report."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from rnnkit.data.types import WordVectors
from rnnkit.data.vectors import load_word_vectors
from rnnkit.errors import ConfigError
from rnnkit.models.embeddings import EmbeddingCoverage, align_vectors


def toy_vectors() -> WordVectors:
    words = ["the", "film", "apple", "Apple", "<unk>", "good"]
    vectors = np.arange(len(words) * 3, dtype=np.float32).reshape(-1, 3) - 7.5
    return WordVectors("toy", words, vectors)


def test_align_copies_found_vectors_and_zeroes_pad() -> None:
    vectors = toy_vectors()
    tokens = ["<pad>", "<unk>", "the", "Film", "Apple", "apple", "qwxzv"]
    matrix, coverage = align_vectors(vectors, tokens)
    assert matrix.shape == (7, 3) and matrix.dtype == np.float32
    assert not matrix[0].any()  # pad
    row = vectors.index
    assert np.array_equal(matrix[2], vectors.vectors[row["the"]])
    assert np.array_equal(matrix[3], vectors.vectors[row["film"]])  # via lower-case
    assert np.array_equal(matrix[4], vectors.vectors[row["Apple"]])  # exact match comes first
    assert np.array_equal(matrix[5], vectors.vectors[row["apple"]])
    # "<unk>" is in the vectors, but a special is never looked up
    assert not np.array_equal(matrix[1], vectors.vectors[row["<unk>"]])
    assert (coverage.found, coverage.lowercased, coverage.total) == (4, 1, 5)
    assert coverage.missing_examples == ["qwxzv"]
    assert (coverage.source, coverage.dim, coverage.missing) == ("toy", 3, 1)


def test_coverage_line_and_dict() -> None:
    _, coverage = align_vectors(toy_vectors(), ["<pad>", "<unk>", "the", "Film", "qwxzv", "good"])
    assert str(coverage) == (
        "toy: 3 of 4 vocabulary tokens found (75.0%, 1 via lower-case); missing e.g. 'qwxzv'"
    )
    as_dict = coverage.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict == {
        "found": 3,
        "lowercased": 1,
        "total": 4,
        "missing_examples": ["qwxzv"],
        "source": "toy",
        "dim": 3,
        "missing": 1,
        "fraction": 0.75,
    }


def test_coverage_line_shortens_and_never_rounds_to_all() -> None:
    missing = [f"m{i}" for i in range(12)]
    coverage = EmbeddingCoverage(18_231, 112, 19_004, missing[:10], "glove-6b-50d", 50)
    assert str(coverage) == (
        "glove-6b-50d: 18,231 of 19,004 vocabulary tokens found (95.9%, 112 via lower-case); "
        "missing e.g. 'm0', 'm1', 'm2', 'm3', 'm4', ..."
    )
    nearly = EmbeddingCoverage(19_999, 0, 20_000, ["x"], "v", 50)
    assert "(>99.9%, 0 via lower-case); missing e.g. 'x'" in str(nearly)
    assert str(EmbeddingCoverage(0, 0, 0, [], "v", 50)) == "v: 0 of 0 vocabulary tokens found"


def test_missing_examples_in_vocabulary_order_up_to_ten() -> None:
    tokens = ["<pad>"] + [f"zz{i}" for i in range(15)] + ["the"]
    _, coverage = align_vectors(toy_vectors(), tokens)
    assert coverage.missing_examples == [f"zz{i}" for i in range(10)]
    assert (coverage.found, coverage.total) == (1, 16)


def test_random_rows_are_seeded_and_at_the_found_scale() -> None:
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(500)]
    vectors = WordVectors("big", words, rng.normal(0, 2.0, (500, 50)).astype(np.float32))
    tokens = ["<pad>", "<unk>", *words, *[f"new{i}" for i in range(500)]]
    first, _ = align_vectors(vectors, tokens, seed=7)
    again, _ = align_vectors(vectors, tokens, seed=7)
    other, _ = align_vectors(vectors, tokens, seed=8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first[502:], other[502:])
    assert np.array_equal(first[2:502], other[2:502])  # found rows do not depend on the seed
    sigma = vectors.vectors.std()
    assert abs(first[502:].std() - sigma) < 0.05 * sigma
    assert abs(first[502:].mean()) < 0.05


def test_no_pad_row_and_bad_pad_index() -> None:
    matrix, coverage = align_vectors(toy_vectors(), ["the", "zz"], pad_index=None)
    assert matrix[1].any() and coverage.total == 2
    for bad in (2, -1, 1.0, True):
        with pytest.raises(ConfigError) as err:
            align_vectors(toy_vectors(), ["the", "zz"], pad_index=bad)
        assert (
            str(err.value) == f"pad_index must be None or an id in [0, 2) for 2 tokens, got {bad!r}"
        )


def test_nothing_found_uses_source_scale_and_warns(caplog) -> None:
    vectors = toy_vectors()
    with caplog.at_level(logging.WARNING, logger="rnnkit.models.embeddings"):
        matrix, coverage = align_vectors(vectors, ["<pad>"] + [f"zz{i}" for i in range(300)])
    assert coverage.found == 0 and "covers only 0% of the vocabulary" in caplog.text
    assert abs(matrix[1:].std() - vectors.vectors.std()) < 0.1 * vectors.vectors.std()


@pytest.mark.slow
@pytest.mark.network
def test_real_glove_6b_50d() -> None:
    glove = load_word_vectors("glove-6b-50d")
    assert (len(glove), glove.dim) == (400_000, 50)
    tokens = ["<pad>", "<unk>", "the", "movie", "Film", "qwxzv"]
    matrix, coverage = align_vectors(glove, tokens)
    assert (coverage.found, coverage.lowercased, coverage.total) == (3, 1, 4)
    assert coverage.missing_examples == ["qwxzv"]
    assert np.array_equal(matrix[2], glove.vectors[glove.index["the"]])
    assert np.array_equal(matrix[4], glove.vectors[glove.index["film"]])
    assert not matrix[0].any()
    assert str(coverage).startswith("glove-6b-50d: 3 of 4 vocabulary tokens found (75.0%")
