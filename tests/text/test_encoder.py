"""TextEncoder: batched ids equal the one-token-at-a-time path; save -> load; located errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.errors import ConfigError, DataError
from rnnkit.text import TOKENIZERS, TextEncoder, Vocab, get_tokenizer
from rnnkit.text import tokenizers as tokenizers_module

TRAIN = [
    "The dress fits well, and the fabric is soft.",
    "I love the colour! But the sizing runs small...",
    "Runs small; order a size up.<br />Love it.",
    "Café au lait colour — très chic 😀\nWould buy again.",
] * 3
UNSEEN = ["Zebra print? Never.", "", "the the the", "tabs\tand\nnewlines"]


@pytest.fixture(scope="module", params=TOKENIZERS)
def encoder(request: pytest.FixtureRequest) -> TextEncoder:
    return TextEncoder.build(TRAIN, tokenizer=request.param, vocab_size=300)


def test_build_gives_fixed_specials(encoder: TextEncoder) -> None:
    assert encoder.vocab.tokens[:4] == ("<pad>", "<unk>", "<bos>", "<eos>")
    assert (encoder.pad_id, encoder.unk_id, encoder.bos_id, encoder.eos_id) == (0, 1, 2, 3)


def test_batch_equals_tokenize_then_vocab_lookup(encoder: TextEncoder) -> None:
    texts = TRAIN + UNSEEN
    expected = [encoder.vocab.encode(encoder.tokenize(t)) for t in texts]
    assert encoder.encode_batch(texts) == expected
    assert [encoder.encode(t) for t in texts] == expected
    assert [len(ids) for ids in expected] == [len(encoder.tokenize(t)) for t in texts]


@pytest.mark.parametrize("small_batch", [0, 10**9])  # Arrow's hash lookup / the dict lookup
def test_threaded_chunks_give_the_same_ids(
    encoder: TextEncoder, monkeypatch: pytest.MonkeyPatch, small_batch: int
) -> None:
    texts = (TRAIN + UNSEEN) * 3
    expected = [encoder.vocab.encode(encoder.tokenize(t)) for t in texts]
    monkeypatch.setattr(tokenizers_module, "_SMALL_BATCH", small_batch)
    assert encoder.encode_batch(texts) == expected
    monkeypatch.setattr(tokenizers_module, "_MIN_CHUNK", 2)  # split even this small batch
    monkeypatch.setattr(tokenizers_module, "_usable_cores", lambda: 4)
    assert encoder.encode_batch(texts) == expected


def test_unknown_words_become_unk() -> None:
    encoder = TextEncoder.build(["the cat sat"])  # ties in token order: cat=4, sat=5, the=6
    assert encoder.encode("The zebra sat") == [6, 1, 5]
    assert encoder.decode(encoder.encode("The zebra sat")) == "the <unk> sat"


@pytest.mark.parametrize(
    "text",
    ["The dress fits well.", "tabs\tand\nnewlines\r\n", "emoji 😀 and 漢字 unseen", "  spaced  "],
)
def test_bpe_decode_round_trips_exactly(text: str) -> None:
    encoder = TextEncoder.build(TRAIN, tokenizer="bpe", vocab_size=300)
    assert encoder.decode(encoder.encode(text, add_bos=True, add_eos=True)) == text


def test_char_decode_round_trips_seen_characters() -> None:
    encoder = TextEncoder.build(TRAIN, tokenizer="char")
    assert encoder.decode(encoder.encode("Love it.\n")) == "Love it.\n"
    assert encoder.decode(encoder.encode("Q")) == "<unk>"


def test_decode_skips_pad_bos_eos_but_keeps_unk() -> None:
    encoder = TextEncoder.build(["a b"])
    assert encoder.decode([2, 4, 1, 5, 3, 0, 0]) == "a <unk> b"
    assert encoder.decode([2, 4, 3], skip_special=False) == "<bos> a <eos>"
    assert encoder.decode(np.array([4, 5])) == "a b"


def _frame_reference(ids: list[int], bos: bool, eos: bool, max_length: int | None) -> list[int]:
    out = [2] * bos + ids + [3] * eos
    return out if max_length is None else out[:max_length]


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(st.sampled_from(TRAIN + UNSEEN), max_size=6),
    add_bos=st.booleans(),
    add_eos=st.booleans(),
    max_length=st.none() | st.integers(1, 12),
)
def test_bos_eos_and_truncation_match_a_list_reference(
    texts: list[str], add_bos: bool, add_eos: bool, max_length: int | None
) -> None:
    encoder = TextEncoder.build(TRAIN)
    plain = encoder.encode_batch(texts)
    framed = encoder.encode_batch(texts, max_length=max_length, add_bos=add_bos, add_eos=add_eos)
    assert framed == [_frame_reference(ids, add_bos, add_eos, max_length) for ids in plain]


def test_truncation_keeps_the_first_ids_and_drops_eos() -> None:
    encoder = TextEncoder.build(["a b c d"])
    assert encoder.encode("a b c d", max_length=4, add_bos=True, add_eos=True) == [2, 4, 5, 6]
    assert encoder.encode("a b", max_length=4, add_bos=True, add_eos=True) == [2, 4, 5, 3]
    assert encoder.encode("a b c d", max_length=2) == [4, 5]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ab .'\n\tΣé", max_size=20), max_size=6))
def test_vocab_from_build_equals_vocab_built_from_tokens(texts: list[str]) -> None:
    for name in ("basic_english", "char"):
        tokenizer = get_tokenizer(name)
        encoder = TextEncoder.build(texts, tokenizer=name)
        assert encoder.vocab == Vocab.build(map(tokenizer.tokenize, texts))
        expected = [encoder.vocab.encode(tokenizer.tokenize(t)) for t in texts]
        assert encoder.encode_batch(texts) == expected


def test_ragged_arrays() -> None:
    encoder = TextEncoder.build(["a b c", "a"])
    ragged = encoder.encode_batch_arrays(["a b c", "", "a zz"], add_eos=True)
    assert ragged.ids.dtype == np.int64
    assert ragged.offsets.tolist() == [0, 4, 5, 8]
    assert len(ragged) == 3
    assert ragged.lengths.tolist() == [4, 1, 3]
    assert ragged[2].tolist() == [4, 1, 3]
    assert ragged.to_lists() == [[4, 5, 6, 3], [3], [4, 1, 3]]
    assert ragged.padded().tolist() == [[4, 5, 6, 3], [3, 0, 0, 0], [4, 1, 3, 0]]
    assert ragged.padded(length=2).tolist() == [[4, 5], [3, 0], [4, 1]]


def test_empty_batch(encoder: TextEncoder) -> None:
    assert encoder.encode_batch([]) == []
    assert encoder.encode_batch_arrays([]).padded().shape == (0, 0)


def test_save_load_round_trip(encoder: TextEncoder, tmp_path: Path) -> None:
    path = tmp_path / "encoder.json"
    encoder.save(path)
    loaded = TextEncoder.load(path)
    assert loaded == encoder
    assert loaded.encode_batch(TRAIN + UNSEEN) == encoder.encode_batch(TRAIN + UNSEEN)
    assert TextEncoder.from_dict(json.loads(path.read_text(encoding="utf-8"))) == encoder
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.json"]


def test_build_errors_are_exact() -> None:
    with pytest.raises(ConfigError) as info:
        TextEncoder.build(TRAIN, tokenizer="whitespace")
    assert str(info.value) == (
        "unknown tokenizer 'whitespace'; valid names: basic_english, bpe, char"
    )
    with pytest.raises(ConfigError) as info:
        TextEncoder.build(TRAIN, tokenizer="bpe", vocab_size=259)
    assert str(info.value) == (
        "bpe vocab_size must be at least 260 (4 specials + 256 byte symbols), got 259"
    )
    with pytest.raises(ConfigError) as info:
        TextEncoder.build(TRAIN, tokenizer="bpe", vocab_size=300, max_size=100)
    assert str(info.value) == "max_size does not apply to bpe; its size is set by vocab_size"


@pytest.mark.parametrize("name", TOKENIZERS)
def test_bad_texts_are_located(name: str) -> None:
    encoder = TextEncoder.build(TRAIN, tokenizer=name, vocab_size=300)
    with pytest.raises(DataError) as info:
        encoder.encode_batch(["fine", 3.5])
    assert str(info.value) == "row 1: text 1 is float 3.5, expected str"
    with pytest.raises(DataError) as info:
        encoder.encode_batch(["fine", "fine", "bad \ud800 surrogate"])
    assert str(info.value) == (
        "row 2: text 2 is not valid Unicode: surrogates not allowed at character 4"
    )
    with pytest.raises(ConfigError, match=r"^expected a list of texts, got a single str"):
        encoder.encode_batch("one text")


def test_bad_text_in_build_is_located() -> None:
    with pytest.raises(DataError) as info:
        TextEncoder.build(["ok", "\udfff"], tokenizer="bpe", vocab_size=300)
    assert str(info.value).startswith("row 1: text 1 is not valid Unicode")


@pytest.mark.parametrize("max_length", [0, -3, 2.5, True])
def test_bad_max_length(max_length: object) -> None:
    with pytest.raises(ConfigError) as info:
        TextEncoder.build(TRAIN).encode("a", max_length=max_length)  # type: ignore[arg-type]
    assert str(info.value) == f"max_length must be None or an integer >= 1, got {max_length!r}"


def _saved(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "encoder.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_corrupt_files_name_file_and_key(tmp_path: Path) -> None:
    good = TextEncoder.build(TRAIN).to_dict()
    cases = [
        ({**good, "format": "rnnkit.vocab"}, "column 'format': expected 'rnnkit.text_encoder'"),
        ({**good, "version": 2}, "column 'version': unsupported version 2"),
        ({k: v for k, v in good.items() if k != "tokenizer"}, "column 'tokenizer': expected a"),
        ({**good, "tokenizer": {"name": "nltk"}}, "column 'tokenizer.name': unknown tokenizer"),
        ({**good, "vocab": {**good["vocab"], "tokens": ["a"]}}, "column 'vocab.tokens': must"),
        ({**good, "vocab": []}, "column 'vocab': expected a JSON object describing a vocabulary"),
    ]
    for data, message in cases:
        path = _saved(tmp_path, data)
        with pytest.raises(DataError) as info:
            TextEncoder.load(path)
        assert str(info.value).startswith(f"{path}, {message}"), str(info.value)


def test_bpe_file_with_a_foreign_vocab_is_refused(tmp_path: Path) -> None:
    data = TextEncoder.build(TRAIN, tokenizer="bpe", vocab_size=300).to_dict()
    data["vocab"] = TextEncoder.build(TRAIN).vocab.to_dict()
    path = _saved(tmp_path, data)
    with pytest.raises(DataError) as info:
        TextEncoder.load(path)
    assert str(info.value) == (
        f"{path}, column 'vocab': a bpe tokenizer only works with its own vocabulary (from fit())"
    )


def test_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "encoder.json"
    path.write_text('{\n  "format": "rnnkit.text_encoder",\n  oops\n}', encoding="utf-8")
    with pytest.raises(DataError) as info:
        TextEncoder.load(path)
    assert str(info.value).startswith(f"{path}:3: not valid JSON: Expecting property name")
