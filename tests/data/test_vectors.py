"""GloVe reading: the text format, its accepted variants, and errors that name line and field."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.vectors import _read_exact, load_word_vectors, read_glove_text
from rnnkit.errors import ConfigError, DataError

GLOVE = """\
the 0.418 0.24968 -0.41242
, 0.013441 0.23682 -0.16899
film -0.16868 0.52002 1.0217
"""
VALUES = {
    "the": ["0.418", "0.24968", "-0.41242"],
    ",": ["0.013441", "0.23682", "-0.16899"],
    "film": ["-0.16868", "0.52002", "1.0217"],
}


def write(tmp_path: Path, text: str, name: str = "vectors.txt", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def expected(word: str) -> np.ndarray:
    return np.array([float(v) for v in VALUES[word]], dtype=np.float32)


# --- reading ----------------------------------------------------------------------------------


def test_reads_words_and_exact_values(tmp_path: Path) -> None:
    vectors = load_word_vectors(write(tmp_path, GLOVE))
    assert vectors.words == ["the", ",", "film"]
    assert vectors.dim == 3 and vectors.vectors.dtype == np.float32
    for i, word in enumerate(vectors.words):
        assert np.array_equal(vectors.vectors[i], expected(word))
    assert vectors.name == str(tmp_path / "vectors.txt")


VARIANTS = {
    "word2vec header": "3 3\n" + GLOVE,
    "trailing spaces": GLOVE.replace("\n", " \n"),
    "byte-order mark and blank lines": "\ufeff" + GLOVE.replace(",", "\n,") + "\n\n",
    "no final newline": GLOVE.rstrip("\n"),
}


@pytest.mark.parametrize("text", VARIANTS.values(), ids=VARIANTS.keys())
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_accepted_variants_read_alike_on_both_paths(tmp_path: Path, text: str, newline) -> None:
    path = write(tmp_path, text, newline=newline)
    vectors = read_glove_text(path)
    assert vectors.words == ["the", ",", "film"]
    assert np.array_equal(vectors.vectors, np.stack([expected(w) for w in vectors.words]))
    words, matrix, _ = _read_exact(path)  # the reference pass agrees with the fast one
    assert words == vectors.words and np.array_equal(matrix, vectors.vectors)


def test_words_that_look_like_syntax_stay_words(tmp_path: Path) -> None:
    text = '" 1 2\n# 3 4\nnan 5 6\nnull 7 8\n1e5 9 10\nw\rx 11 12\n'
    vectors = read_glove_text(write(tmp_path, text))
    assert vectors.words == ['"', "#", "nan", "null", "1e5", "w\rx"]
    assert vectors.vectors[:, 0].tolist() == [1, 3, 5, 7, 9, 11]


def test_header_count_that_disagrees_is_only_logged(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="rnnkit.data.vectors"):
        vectors = read_glove_text(write(tmp_path, "5 3\n" + GLOVE))
    assert len(vectors) == 3
    assert "header says 5 words, the file has 3" in caplog.text


def test_duplicate_words_first_wins(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="rnnkit.data.vectors"):
        vectors = read_glove_text(write(tmp_path, GLOVE + "the 9 9 9\n"))
    assert len(vectors) == 4  # rows are kept in file order ...
    assert vectors.index["the"] == 0  # ... and lookups use the first
    assert "1 duplicate words" in caplog.text


def test_reads_a_100k_line_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(0, 0.5, (100_000, 5)).round(5).astype(np.float32)
    lines = [f"w{i} " + " ".join(f"{v:.5f}" for v in row) for i, row in enumerate(matrix)]
    vectors = read_glove_text(write(tmp_path, "\n".join(lines) + "\n"))
    assert len(vectors) == 100_000 and vectors.words[-1] == "w99999"
    np.testing.assert_allclose(vectors.vectors, matrix, atol=6e-6)


# --- errors -----------------------------------------------------------------------------------

BAD_ROWS = [
    (GLOVE + "bad 1 2\n", 4, None, "expected 3 values after the word (as on line 1), got 2"),
    (GLOVE + "bad 1 2 3 4\n", 4, None, "expected 3 values after the word (as on line 1), got 4"),
    ("x 1 2\n\ny 1 2\nz 1\n", 4, None, "expected 2 values after the word (as on line 1), got 1"),
    (
        "2 3\nx 1 2\n",
        2,
        None,
        "the word2vec header '<count> <dim>' on line 1 says 3 dimensions, "
        "but the first vector has 2 values",
    ),
    (GLOVE + "bad 1 abc 3\n", 4, "3", "'abc' is not a number (value 2 of 3 after the word)"),
    (GLOVE + "bad 1 2 1,5\n", 4, "4", "'1,5' is not a number (value 3 of 3 after the word)"),
    ("x 1 2\ny nan 2\n", 2, "2", "'nan' is not a finite float32 (value 1 of 2 after the word)"),
    ("x 1 2\ny 1 -inf\n", 2, "3", "'-inf' is not a finite float32 (value 2 of 2 after the word)"),
    ("x 1 2\ny 1 1e39\n", 2, "3", "'1e39' is not a finite float32 (value 2 of 2 after the word)"),
    ("x\n", 1, None, "expected a word followed by its vector's values, got 'x'"),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), BAD_ROWS)
def test_bad_rows_name_file_line_and_field(tmp_path: Path, text, line, column, message) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        load_word_vectors(path)
    where = f"{path}:{line}" + (f", column {column!r}" if column else "")
    assert str(err.value) == f"{where}: {message}"
    assert (err.value.path, err.value.line, err.value.column) == (str(path), line, column)


def test_first_error_wins_across_chunks(tmp_path: Path) -> None:
    lines = [f"w{i} 1 2" for i in range(10_000)]
    lines[8999] = "w8999 1 x"  # line 9000, in the second chunk of the line-by-line pass
    lines[9499] = "w9499 1"  # a later short line must not be reported first
    with pytest.raises(DataError) as err:
        read_glove_text(write(tmp_path, "\n".join(lines)))
    assert (err.value.line, err.value.column) == (9000, "3")


@pytest.mark.parametrize(
    ("text", "what"),
    [("", "is empty"), ("\n  \n", "is empty"), ("400000 50\n", "holds only a word2vec header")],
)
def test_empty_file(tmp_path: Path, text: str, what: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        load_word_vectors(path)
    assert str(err.value) == (
        f"{path}: the file {what}, no word vectors; "
        "expected a GloVe-format text file ('word v1 v2 ... vD' per line)"
    )


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(GLOVE.encode() + "café 1 2 3\n".encode("latin-1"))
    with pytest.raises(DataError) as err:
        load_word_vectors(path)
    assert err.value.line == 4
    assert "not UTF-8 text (byte 0xe9" in str(err.value)


def test_missing_file_lists_registry_embeddings(tmp_path: Path) -> None:
    missing = tmp_path / "glove.6B.100d.txt"
    with pytest.raises(DataError) as err:
        load_word_vectors(missing)
    assert str(err.value) == (
        f"{missing}: no such file, and not a registry embedding either. Embeddings in the "
        "registry: glove-6b-50d; or give a GloVe-format text file ('word v1 v2 ... vD' per line)"
    )
    with pytest.raises(DataError, match=r"Did you mean 'glove-6b-50d'\?"):
        load_word_vectors("glove-6b-50")


def test_folder_and_non_embedding_dataset_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder; expected a GloVe-format text file"):
        load_word_vectors(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_word_vectors("rotten-tomatoes")
    assert str(err.value).startswith(
        "dataset 'rotten-tomatoes' holds classification data, not word vectors; "
        "embeddings in the registry: glove-6b-50d"
    )
