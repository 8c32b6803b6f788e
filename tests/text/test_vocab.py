"""Vocab: deterministic order, fixed specials, JSON round trips and located errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.errors import ConfigError, DataError
from rnnkit.text import SPECIALS, Vocab

TOKEN_LISTS = [["b", "a", "c"], ["a", "b"], ["a", "d"], ["<unk>", "e"]]


def test_specials_take_ids_0_to_3() -> None:
    vocab = Vocab.build([])
    assert vocab.tokens == ("<pad>", "<unk>", "<bos>", "<eos>")
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3)


def test_order_is_frequency_then_token() -> None:
    vocab = Vocab.build(TOKEN_LISTS)
    # a: 3, b: 2, then c, d, e once each in token order; the literal "<unk>" is not added twice.
    assert vocab.tokens == (*SPECIALS, "a", "b", "c", "d", "e")


def test_build_reads_a_stream_once() -> None:
    stream = (tokens for tokens in TOKEN_LISTS)
    assert Vocab.build(stream) == Vocab.build(TOKEN_LISTS)


def test_min_freq_and_max_size() -> None:
    assert Vocab.build(TOKEN_LISTS, min_freq=2).tokens == (*SPECIALS, "a", "b")
    # max_size counts the tokens besides the four specials.
    vocab = Vocab.build(TOKEN_LISTS, max_size=3)
    assert vocab.tokens == (*SPECIALS, "a", "b", "c")
    assert len(vocab) == 3 + 4
    assert Vocab.build(TOKEN_LISTS, max_size=0).tokens == SPECIALS


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=3), st.integers(1, 5)), st.integers(1, 3))
def test_from_counts_matches_a_sorted_reference(counts: dict[str, int], min_freq: int) -> None:
    vocab = Vocab.from_counts(counts, min_freq=min_freq)
    words = sorted(
        (t for t, n in counts.items() if n >= min_freq and t not in SPECIALS),
        key=lambda t: (-counts[t], t),
    )
    assert vocab.tokens == (*SPECIALS, *words)
    assert Vocab.from_counts(Counter(dict(reversed(list(counts.items())))), min_freq) == vocab


def test_encode_maps_unknown_tokens_to_unk() -> None:
    vocab = Vocab.build(TOKEN_LISTS)
    assert vocab.encode(["a", "zzz", "e", "<eos>"]) == [4, 1, 8, 3]
    assert vocab.encode([]) == []


def test_decode_and_membership() -> None:
    vocab = Vocab.build(TOKEN_LISTS)
    assert vocab.decode([4, 1, 0]) == ["a", "<unk>", "<pad>"]
    assert "a" in vocab and "zzz" not in vocab
    assert list(vocab)[:4] == list(SPECIALS)


@pytest.mark.parametrize("bad_id", [9, -1])
def test_decode_refuses_ids_outside_the_vocabulary(bad_id: int) -> None:
    with pytest.raises(ConfigError) as info:
        Vocab.build(TOKEN_LISTS).decode([4, bad_id])
    assert str(info.value) == f"token id {bad_id} is outside the vocabulary: ids run 0 to 8"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_freq": 0}, "min_freq must be an integer >= 1, got 0"),
        ({"min_freq": 1.5}, "min_freq must be an integer >= 1, got 1.5"),
        ({"max_size": -1}, "max_size must be None or an integer >= 0, got -1"),
    ],
)
def test_bad_build_options_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Vocab.build(TOKEN_LISTS, **kwargs)
    assert str(info.value) == message


def test_constructor_requires_specials_first() -> None:
    with pytest.raises(ConfigError) as info:
        Vocab(["a", "b"])
    assert str(info.value) == (
        "vocabulary tokens must start with the specials ['<pad>', '<unk>', '<bos>', '<eos>'], "
        "got ['a', 'b']"
    )


def test_save_load_round_trip(tmp_path: Path) -> None:
    vocab = Vocab.build([["café", "😀", "a"], ["a"]])
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert Vocab.load(path) == vocab
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {"format": "rnnkit.vocab", "version": 1, "tokens": list(vocab.tokens)}
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temporary file left


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "vocab.json"
    Vocab.build([["old"]]).save(path)
    Vocab.build([["new"]]).save(path)
    assert "new" in Vocab.load(path)


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "vocab.json"
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "where", "message"),
    [
        ('{"format": "rnnkit.vocab",\n "tokens": [', ":2", "not valid JSON: Expecting value"),
        ("[1, 2]", "", "expected a JSON object describing a vocabulary, got list"),
        ('{"tokens": []}', ", column 'format'", "expected 'rnnkit.vocab', got None"),
        ('{"format": "rnnkit.vocab", "version": 7}', ", column 'version'", "unsupported version 7"),
        (
            '{"format": "rnnkit.vocab", "version": 1}',
            ", column 'tokens'",
            "expected a list of token strings, got NoneType",
        ),
        (
            '{"format": "rnnkit.vocab", "version": 1, "tokens": ["<pad>"]}',
            ", column 'tokens'",
            "must start with the specials",
        ),
        (
            '{"format": "rnnkit.vocab", "version": 1,'
            ' "tokens": ["<pad>", "<unk>", "<bos>", "<eos>", "a", 5]}',
            ", column 'tokens'",
            "entry 5 must be a string, got int 5",
        ),
        (
            '{"format": "rnnkit.vocab", "version": 1,'
            ' "tokens": ["<pad>", "<unk>", "<bos>", "<eos>", "a", "a"]}',
            ", column 'tokens'",
            "token 'a' appears twice, at entries 4 and 5",
        ),
    ],
)
def test_malformed_file_names_file_and_key(
    tmp_path: Path, content: str, where: str, message: str
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(DataError) as info:
        Vocab.load(path)
    assert str(info.value).startswith(f"{path}{where}: {message}")


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(DataError) as info:
        Vocab.load(path)
    assert str(info.value) == f"{path}: cannot read the file: No such file or directory"
