"""Token files: the same ids as encoding the whole text, cached once, refused input named."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest

import rnnkit.text.token_file as tf
from rnnkit.data.text_folders import load_corpus
from rnnkit.errors import ConfigError, DataError
from rnnkit.text import TextEncoder
from rnnkit.text.token_file import Corpus, SliceReader, TokenFile, ids_dtype, tokenize_corpus

WORDS = [
    *["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog's", "back,", "3.5", "don't"],
    *['"quoted"', "émigré", "日本", ";:", "(x)", "!?", "<br", "/>", "naïve"],
]


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks, chunks and pieces of a few hundred characters: every boundary case is hit."""
    monkeypatch.setattr(tf, "BLOCK_BYTES", 997)
    monkeypatch.setattr(tf, "CHUNK_CHARS", 2500)
    monkeypatch.setattr(tf, "PIECE_CHARS", 300)


def paragraph(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 8)):
        indent = rng.choice(["", "", "  ", "\t"])
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 15)))
        lines.append(indent + words + rng.choice(["", " ", "  "]))
    return "\n".join(lines)


def write_folder(root: Path) -> Path:
    """Every case `load_corpus` normalises: BOM, CRLF, lone CR, an empty file, gzip, sub-folders."""
    rng = random.Random(0)
    root.mkdir()
    text = "\r\n".join(paragraph(rng) for _ in range(120))
    (root / "a.txt").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (root / "b.txt").write_text("   \n\n  ")
    (root / "sub").mkdir()
    (root / "sub" / "c.txt").write_text("\n\n".join(paragraph(rng) for _ in range(200)) + "\n")
    (root / "d.txt").write_bytes("\r".join(paragraph(rng) for _ in range(80)).encode())
    gz = "\n".join(paragraph(rng) for _ in range(80)).encode()
    (root / "e.txt.gz").write_bytes(gzip.compress(gz))
    return root


@pytest.mark.usefixtures("small_chunks")
def test_chunks_join_to_the_text_load_corpus_reads(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "corpus")
    chunks = list(Corpus.open(root).chunks())
    assert len(chunks) > 10
    assert "".join(chunks) == load_corpus(root).text


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("tokenizer", ["char", "basic_english", "bpe"])
def test_streamed_ids_and_vocabulary_equal_the_whole_text_s(tmp_path: Path, tokenizer) -> None:
    root = write_folder(tmp_path / "corpus")
    text = load_corpus(root).text
    corpus = Corpus.open(root)
    whole = TextEncoder.build([text], tokenizer=tokenizer, vocab_size=400)
    streamed = TextEncoder.build_stream(corpus.chunks(), tokenizer=tokenizer, vocab_size=400)
    assert streamed == whole and streamed.sha256() == whole.sha256()
    token_file = tokenize_corpus(corpus, whole)
    ids = token_file.ids()
    assert isinstance(ids, np.memmap) and not ids.flags.writeable
    assert token_file.dtype == ids_dtype(len(whole.vocab))
    np.testing.assert_array_equal(ids, whole.encode_batch_arrays([text]).ids)
    assert token_file.chars == len(text)


def test_a_second_call_reuses_the_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hello world\nhello there\n" * 100)
    encoder = TextEncoder.build([path.read_text()], tokenizer="char")
    first = tokenize_corpus(path, encoder)
    assert first.meta["tokens"] == first.tokens == 2400
    assert sorted(p.suffix for p in first.path.parent.iterdir()) == [".bin", ".json", ".lock"]

    def fail(*args, **kwargs):
        raise AssertionError("tokenised again")

    monkeypatch.setattr(tf, "_encoded", fail)
    again = tokenize_corpus(str(path), encoder)
    assert again.path == first.path
    assert TokenFile.find(first.corpus_sha256, encoder.sha256()) is not None
    # another encoder, another file
    other = TextEncoder.build(["hello"], tokenizer="char")
    monkeypatch.undo()
    assert tokenize_corpus(path, other).path != first.path


def test_a_damaged_file_is_tokenised_again(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("abc\n" * 50)
    encoder = TextEncoder.build(["abc\n"], tokenizer="char")
    first = tokenize_corpus(path, encoder)
    with open(first.path, "r+b") as f:
        f.truncate(10)
    assert TokenFile.find(first.corpus_sha256, first.encoder_sha256) is None
    again = tokenize_corpus(path, encoder)
    assert again.tokens == 200 and again.path.stat().st_size == 200


def test_a_failure_leaves_no_file(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"good line\n" * 100 + b"bad \xff byte\n")
    encoder = TextEncoder.build(["good line\n"], tokenizer="char")
    with pytest.raises(DataError, match=r"byte 0xff at byte offset 1004") as err:
        tokenize_corpus(path, encoder)
    assert err.value.path == str(path) and err.value.line == 101
    leftovers = [p.name for p in (cache / "tokens").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_bad_input_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        Corpus.open(tmp_path / "missing.txt")
    (tmp_path / "table.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"expected a \.txt file"):
        Corpus.open(tmp_path / "table.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no \.txt files"):
        Corpus.open(tmp_path / "empty")
    (tmp_path / "blank.txt").write_text(" \n\n ")
    with pytest.raises(DataError, match="the corpus is empty") as err:
        list(Corpus.open(tmp_path / "blank.txt").chunks())
    assert err.value.path == str(tmp_path / "blank.txt")
    (tmp_path / "broken.txt.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"could not decompress the \.gz file"):
        list(Corpus.open(tmp_path / "broken.txt.gz").chunks())


def test_a_bad_byte_after_many_blocks_has_its_offset(tmp_path: Path, small_chunks) -> None:
    path = tmp_path / "a.txt"
    good = "ligne numéro\n".encode() * 500
    path.write_bytes(good + b"caf\xe9\n")
    with pytest.raises(DataError, match=f"byte 0xe9 at byte offset {len(good) + 3}") as err:
        list(Corpus.open(path).chunks())
    assert err.value.line == 501


def test_ids_take_the_smallest_type() -> None:
    assert ids_dtype(256) == np.uint8 and ids_dtype(257) == np.uint16
    assert ids_dtype(65_536) == np.uint16 and ids_dtype(65_537) == np.uint32
    with pytest.raises(ConfigError, match="32-bit"):
        ids_dtype(2**33)


def test_max_bytes_reads_only_the_start(tmp_path: Path, small_chunks) -> None:
    path = tmp_path / "a.txt"
    path.write_text("abcdefghij\n" * 10_000)
    read = "".join(Corpus.open(path).chunks(max_bytes=5_000))
    assert 5_000 <= len(read) < 10_000


def test_folder_hash_follows_names_and_contents(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    (root / "a.txt").write_text("one")
    (root / "b.txt").write_text("two")
    first = Corpus.open(root).sha256()
    (root / "b.txt").write_text("twO")
    assert Corpus.open(root).sha256() != first
    single = tmp_path / "s.txt"
    single.write_text("one")
    assert Corpus.open(single).sha256() == tf._file_sha256(single)


def test_slice_reader_reads_memmap_slices_with_pread(tmp_path: Path) -> None:
    values = np.random.default_rng(0).integers(0, 60_000, 5_000).astype(np.uint16)
    path = tmp_path / "ids.bin"
    values.tofile(path)
    mm = np.memmap(path, dtype=np.uint16, mode="r", shape=(5_000,))
    starts = np.array([0, 7, 100, 3_000])
    for view, ref in ((mm, values), (mm[123:4_000], values[123:4_000])):
        reader = SliceReader(view)
        assert reader._file is not None and len(reader) == len(ref)
        block = reader.read(starts, 9)
        assert block.dtype == np.int64
        np.testing.assert_array_equal(block, ref[starts[:, None] + np.arange(9)])
    memory = SliceReader(values.astype(np.int64))
    assert memory._file is None
    np.testing.assert_array_equal(memory.read(starts, 9), SliceReader(mm).read(starts, 9))
    with pytest.raises(IndexError):
        memory.read(np.array([4_995]), 9)


def test_the_sidecar_says_what_the_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("xyz\n" * 10)
    token_file = tokenize_corpus(path, TextEncoder.build(["xyz\n"], tokenizer="char"))
    meta = json.loads(token_file.path.with_suffix(".json").read_text())
    assert meta["format"] == "rnnkit.token_file" and meta["dtype"] == "uint8"
    assert meta["tokens"] == 40 and meta["corpus"]["bytes"] == 40
    assert meta["corpus"]["sha256"] == token_file.corpus_sha256
