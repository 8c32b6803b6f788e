"""Loaders for users' own files: every format gives the same dataset, every bad input says where."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit.data.files import (
    KINDS,
    OLDER_WORDS,
    load_corpus,
    load_path,
    load_text_classification,
    load_text_folder,
    load_time_series,
)
from rnnkit.data.types import LabeledTexts, TextClassificationDataset, TextCorpus
from rnnkit.errors import ConfigError, DataError

RECORDS = [
    {"text": "a fine film", "label": 1},
    {"text": 'quotes "inside", and a comma', "label": 2},
    {"text": "two\nlines", "label": 1},
    {"text": "NA", "label": 2},
]
EXPECTED = LabeledTexts([r["text"] for r in RECORDS], ["1", "2", "1", "2"])
TABLE_SUFFIXES = [
    ".csv",
    ".tsv",
    ".jsonl",
    ".ndjson",
    ".parquet",
    ".pq",
    ".csv.gz",
    ".tsv.bz2",
    ".jsonl.xz",
]
_COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


def write_table(path: Path, records: list[dict]) -> Path:
    """Write `records` in the format `path`'s suffixes name, as other tools would."""
    suffixes = path.suffixes
    compress = _COMPRESS.get(suffixes[-1]) if suffixes else None
    kind = suffixes[-2] if compress else suffixes[-1]
    frame = pd.DataFrame.from_records(records)
    if kind in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
        return path
    if kind in (".jsonl", ".ndjson"):
        text = "".join(json.dumps(r) + "\n" for r in records)
    else:
        text = frame.to_csv(index=False, sep="\t" if kind == ".tsv" else ",")
    data = text.encode()
    path.write_bytes(compress(data) if compress else data)
    return path


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def error_text(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


# --- labelled tables ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", TABLE_SUFFIXES)
def test_every_table_format_gives_the_same_dataset(tmp_path: Path, suffix: str) -> None:
    path = write_table(tmp_path / f"reviews{suffix}", RECORDS)
    dataset = load_text_classification(path)
    assert isinstance(dataset, TextClassificationDataset)
    assert dataset.data == EXPECTED
    assert dataset.test is None
    assert dataset.source == str(path)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_whole_float_labels_become_integer_strings(tmp_path: Path, suffix: str) -> None:
    records = [{"review": "good", "stars": 5.0}, {"review": "bad", "stars": 1.0}]
    path = write_table(tmp_path / f"r{suffix}", records)
    dataset = load_text_classification(path, text_column="review", label_column="stars")
    assert dataset.data.labels == ["5", "1"]


def test_string_labels_are_kept_and_stripped(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "text,label\ngood, pos\nbad,neg\nmeh,1.5\n")
    assert load_text_classification(path).data.labels == ["pos", "neg", "1.5"]


def test_test_path_gives_the_predefined_test_set(tmp_path: Path) -> None:
    train = write_table(tmp_path / "train.csv", RECORDS)
    test = write_table(tmp_path / "test.jsonl", RECORDS[:2])
    dataset = load_text_classification(train, test_path=test)
    assert dataset.test == LabeledTexts(EXPECTED.texts[:2], EXPECTED.labels[:2])
    assert dataset.test_source == str(test)
    assert dataset.split(seed=0).test == dataset.test


TABLE_ERRORS = [
    # (file name, content, expected substrings)
    pytest.param(
        "d.csv",
        "txt,label\nhi,pos\n",
        ["d.csv: no column 'text'; did you mean 'txt'?", "The file has columns: 'txt', 'label'"],
        id="missing-column",
    ),
    pytest.param(
        "d.csv",
        "text,Label\nhi,pos\n",
        ["no column 'label'; did you mean 'Label'?"],
        id="missing-column-case",
    ),
    pytest.param(
        "d.jsonl",
        '{"text": "hi", "lbl": 1}\n',
        ["d.jsonl: no key 'label'; did you mean 'lbl'? The file has keys: 'text', 'lbl'"],
        id="missing-key-jsonl",
    ),
    pytest.param(
        "d.csv",
        "text,label\nhi,pos\n   ,neg\n",
        ["d.csv:3, column 'text': empty text"],
        id="whitespace-text",
    ),
    pytest.param(
        "d.csv",
        'text,label\n"multi\nline\ntext",pos\nok,neg\n,pos\n',
        ["d.csv:6, column 'text': empty text"],
        id="empty-text-after-multiline-field",
    ),
    pytest.param(
        "d.tsv",
        "text\tlabel\nhi\tpos\n\n\nthere\t\n",
        ["d.tsv:5, column 'label': missing label"],
        id="missing-label-after-blank-lines",
    ),
    pytest.param(
        "d.csv",
        "\ufefftext,label\r\nhi,pos\r\n\r\n,neg\r\n",
        ["d.csv:4, column 'text': empty text"],
        id="bom-and-crlf",
    ),
    pytest.param(
        "d.csv",
        "text,label\nhi\n",
        ["d.csv:2, column 'label': missing label"],
        id="missing-label-short-row",
    ),
    pytest.param(
        "d.jsonl",
        '{"text": "a", "label": 1}\n\n{"text": "b"}\n',
        ["d.jsonl:3, column 'label': missing label"],
        id="missing-label-jsonl",
    ),
    pytest.param(
        "d.jsonl",
        '{"text": "a", "label": 1}\n{"text": 5, "label": 1}\n',
        ["d.jsonl:2, column 'text': expected text (a string), got int 5"],
        id="text-not-a-string",
    ),
    pytest.param(
        "d.csv",
        b"text,label\nhi,pos\ncaf\xe9,neg\n",
        ["d.csv:3: not valid UTF-8: byte 0xe9 at byte offset 21", "iconv"],
        id="bad-encoding",
    ),
    pytest.param(
        "d.csv.gz",
        gzip.compress(b"text,label\n\xff,pos\n"),
        ["d.csv.gz:2: not valid UTF-8: byte 0xff at byte offset 11 (after decompression)"],
        id="bad-encoding-gzip",
    ),
    pytest.param(
        "d.csv",
        "text,label\n",
        ["d.csv: the file has no data rows (only a header, or nothing at all)"],
        id="header-only",
    ),
    pytest.param(
        "d.csv",
        "",
        ["d.csv: the file is empty; expected a header line and at least one row"],
        id="empty-file",
    ),
    pytest.param("d.jsonl", "\n\n", ["d.jsonl: the file has no data rows"], id="empty-jsonl"),
    pytest.param(
        "d.jsonl",
        '{"text": "a", "label": 1}\n{"text": "b" "label": 2}\n',
        ["d.jsonl:2: malformed JSON: Expecting ',' delimiter at character 14"],
        id="malformed-jsonl",
    ),
    pytest.param(
        "d.jsonl",
        '["a", 1]\n',
        ["d.jsonl:1: expected a JSON object {...} on each line, got list"],
        id="jsonl-not-an-object",
    ),
    pytest.param(
        "d.csv",
        'text,label\na,pos\n"never closed,neg\nb,pos\n',
        ["d.csv:3: a quoted field opened here is never closed"],
        id="unclosed-quote",
    ),
    pytest.param(
        "d.csv",
        'text,label\n"a\nb",pos\nc,neg,extra\n',
        ["d.csv:4: 3 fields where the header has 2; quote fields that contain a comma"],
        id="too-many-fields",
    ),
    pytest.param(
        "d.xlsx",
        "x",
        ["d.xlsx: unknown table format '.xlsx'; accepted: .csv, .tsv, .jsonl"],
        id="unknown-extension",
    ),
    pytest.param(
        "d.parquet",
        "not parquet",
        ["d.parquet: not a readable Parquet file"],
        id="bad-parquet",
    ),
    pytest.param(
        "d.csv.gz",
        "not gzip",
        ["d.csv.gz: could not decompress the .gz file"],
        id="bad-gzip",
    ),
]


@pytest.mark.parametrize(("name", "content", "expected"), TABLE_ERRORS)
def test_bad_tables_say_where(tmp_path: Path, name: str, content, expected: list[str]) -> None:
    with pytest.raises(DataError) as excinfo:
        load_text_classification(write(tmp_path / name, content))
    for part in expected:
        assert part in error_text(excinfo)


def test_parquet_errors_name_the_row(tmp_path: Path) -> None:
    path = write_table(tmp_path / "d.parquet", [{"text": "a", "label": "x"}, {"text": None}])
    with pytest.raises(DataError, match=r"d\.parquet, row 1, column 'text': missing text"):
        load_text_classification(path)


def test_rows_are_counted_when_lines_cannot_be_matched(tmp_path: Path) -> None:
    # The csv module reads a quoted whitespace field as a blank line, pandas as a row; rather
    # than guess, the error falls back to the 0-based row index.
    path = write(tmp_path / "d.csv", 'text,label\n"  "\nok,pos\n')
    with pytest.raises(DataError, match=r"d\.csv, row 0, column 'text': empty text"):
        load_text_classification(path)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: no such file or folder"):
        load_text_classification(tmp_path / "nope.csv")


def test_label_only_in_test_file_is_named_with_its_line(tmp_path: Path) -> None:
    train = write(tmp_path / "train.csv", "text,label\na,pos\nb,neg\n")
    test = write(tmp_path / "test.csv", "text,label\nc,pos\nd,meh\n")
    with pytest.raises(DataError) as excinfo:
        load_text_classification(train, test_path=test)
    assert "test.csv:3, column 'label': label 'meh' appears only in the test file" in error_text(
        excinfo
    )
    assert "training labels are ['neg', 'pos']" in error_text(excinfo)
    assert excinfo.value.line == 3


# --- aclImdb-style folders -----------------------------------------------------------------------


def make_imdb(root: Path, split: bool) -> None:
    base = root / "train" if split else root
    write(base / "pos" / "0_9.txt", "great\n")
    write(base / "pos" / "1_8.txt", "loved it")
    write(base / "neg" / "0_2.txt", "awful<br />really")
    write(base / "unsup" / "0_0.txt", "no label")
    write(base / ".cache" / "x.txt", "hidden")
    write(root / "imdbEr.txt", "0.1\n")
    write(root / "README", "readme")
    if split:
        write(root / "train" / "urls_pos.txt", "http://x")
        write(root / "test" / "pos" / "0_10.txt", "superb")
        write(root / "test" / "neg" / "0_1.txt", "bad")
        write(root / "test" / "unsup" / "x.txt", "skip me")


@pytest.mark.parametrize("split", [False, True], ids=["flat", "train-test"])
def test_text_folder(tmp_path: Path, split: bool) -> None:
    make_imdb(tmp_path, split)
    dataset = load_text_folder(tmp_path)
    # Sorted: neg before pos, files by name; unsup, hidden folders and loose files are skipped.
    assert dataset.data == LabeledTexts(
        ["awful<br />really", "great", "loved it"], ["neg", "pos", "pos"]
    )
    if split:
        assert dataset.test == LabeledTexts(["bad", "superb"], ["neg", "pos"])
    else:
        assert dataset.test is None


def test_text_folder_train_without_test(tmp_path: Path) -> None:
    write(tmp_path / "train" / "a" / "1.txt", "x")
    write(tmp_path / "train" / "b" / "1.txt", "y")
    dataset = load_text_folder(tmp_path)
    assert dataset.data.labels == ["a", "b"] and dataset.test is None


FOLDER_ERRORS = [
    pytest.param(
        {"pos/1.txt": "ok", "neg/2.txt": "  \n"},
        ["neg/2.txt: empty file; each .txt file must hold the text of one example"],
        id="empty-file",
    ),
    pytest.param(
        {"pos/1.txt": "ok", "neg/2.txt": b"line one\nna\xefve"},
        ["neg/2.txt:2: not valid UTF-8: byte 0xef at byte offset 11"],
        id="bad-encoding",
    ),
    pytest.param(
        {"train/pos/1.txt": "a", "train/neg/1.txt": "b", "test/meh/1.txt": "c"},
        ["test/meh: class folder(s) ['meh'] appear only in the test folder"],
        id="test-only-class",
    ),
    pytest.param(
        {"test/pos/1.txt": "a", "test/neg/1.txt": "b"},
        ["test: found test/<class> folders but no train/<class> folders"],
        id="test-without-train",
    ),
    pytest.param(
        {"notes.txt": "x", "unsup/1.txt": "y"},
        ["no class folders with .txt files; expected root/<class>/*.txt"],
        id="no-classes",
    ),
]


@pytest.mark.parametrize(("files", "expected"), FOLDER_ERRORS)
def test_bad_text_folders_name_the_file(tmp_path: Path, files: dict, expected: list[str]) -> None:
    for name, content in files.items():
        write(tmp_path / name, content)
    with pytest.raises(DataError) as excinfo:
        load_text_folder(tmp_path)
    for part in expected:
        assert part in error_text(excinfo)


# --- plain-text corpora --------------------------------------------------------------------------


def test_corpus_from_one_file(tmp_path: Path) -> None:
    path = write(tmp_path / "play.txt", "ROMEO:\r\nHello.\r\n")
    corpus = load_corpus(path)
    assert isinstance(corpus, TextCorpus)
    assert corpus.documents == ["ROMEO:\nHello.\n"]


def test_corpus_from_a_folder_is_sorted_and_recursive(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "second")
    write(tmp_path / "a" / "z.txt", "first")
    write(tmp_path / "c.txt", "   ")
    write(tmp_path / ".git" / "x.txt", "hidden")
    write(tmp_path / "notes.md", "not text")
    write(tmp_path / "d.txt.gz", gzip.compress(b"third"))
    assert load_corpus(tmp_path).documents == ["first", "second", "third"]


CORPUS_ERRORS = [
    pytest.param({"a.txt": " \n", "b.txt": ""}, "the corpus is empty", id="all-empty"),
    pytest.param({"a.md": "x"}, "no .txt files in this folder", id="no-txt"),
    pytest.param(
        {"a.txt": b"ok\nok\n\x80"},
        "a.txt:3: not valid UTF-8: byte 0x80 at byte offset 6",
        id="bad-encoding",
    ),
]


@pytest.mark.parametrize(("files", "expected"), CORPUS_ERRORS)
def test_bad_corpora(tmp_path: Path, files: dict, expected: str) -> None:
    for name, content in files.items():
        write(tmp_path / name, content)
    with pytest.raises(DataError) as excinfo:
        load_corpus(tmp_path)
    assert expected in error_text(excinfo)


def test_corpus_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"expected a \.txt file"):
        load_corpus(write(tmp_path / "a.csv", "x"))


# --- time series ----------------------------------------------------------------------------------


DAILY = [
    {"time": f"2020-01-0{d}", "value": float(d), "temp": 10.0 + d, "shop": "A"} for d in range(1, 6)
]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_single_series(tmp_path: Path, suffix: str) -> None:
    path = write_table(tmp_path / f"s{suffix}", DAILY)
    dataset = load_time_series(path, covariate_columns=["temp"])
    assert dataset.freq == "D"
    assert list(dataset.series) == ["value"]
    frame = dataset.series["value"]
    assert list(frame.columns) == ["value", "temp"]
    assert frame.index.equals(pd.date_range("2020-01-01", periods=5, freq="D", name="time"))
    np.testing.assert_array_equal(frame["value"].to_numpy(), [1.0, 2.0, 3.0, 4.0, 5.0])
    assert dataset.targets == ["value"] and dataset.covariates == ["temp"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_multi_series(tmp_path: Path, suffix: str) -> None:
    rows = [dict(r, shop=1) for r in DAILY] + [dict(r, shop=2, value=-r["value"]) for r in DAILY]
    rows = [rows[i] for i in (0, 5, 1, 6, 2, 7, 3, 8, 4, 9)]  # interleaved by shop
    path = write_table(tmp_path / f"m{suffix}", rows)
    dataset = load_time_series(path, series_column="shop")
    assert list(dataset.series) == ["1", "2"]
    np.testing.assert_array_equal(dataset.series["2"]["value"].to_numpy(), [-1, -2, -3, -4, -5])
    assert len(dataset) == 10 and dataset.freq == "D"


@pytest.mark.parametrize(
    ("times", "freq"),
    [
        (["1949-01", "1949-02", "1949-03", "1949-04"], "MS"),
        (["1949", "1950", "1951"], "YS"),
        (["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 02:00"], "h"),
    ],
)
def test_frequency_is_inferred(tmp_path: Path, times: list[str], freq: str) -> None:
    path = write_table(tmp_path / "f.csv", [{"time": t, "value": 1} for t in times])
    assert load_time_series(path).freq == freq


SERIES_ERRORS = [
    # (csv text, options, expected substrings)
    pytest.param(
        "time,value\n2020-01-01,1\n2020-01-02,1\nnot a date,1\n",
        {},
        ["s.csv:4, column 'time': could not parse 'not a date' as a date/time"],
        id="bad-time",
    ),
    pytest.param(
        "time,value\n2020-03-28T00:00+01:00,1\n2020-03-29T00:00+01:00,1\n"
        "2020-03-30T00:00+02:00,1\n",
        {},
        ["s.csv:4, column 'time': time '2020-03-30T00:00+02:00' has UTC offset 2:00:00"],
        id="mixed-offsets",
    ),
    pytest.param(
        "time,value\n2020-01-01,1\n,1\n",
        {},
        ["s.csv:3, column 'time': missing time"],
        id="missing-time",
    ),
    pytest.param(
        "time,value\n2020-01-01,1\n2020-01-02,1\n2020-01-03,1 000\n",
        {},
        ["s.csv:4, column 'value': expected a number, got '1 000'"],
        id="bad-number",
    ),
    pytest.param(
        "time,value,temp\n2020-01-01,1,1\n2020-01-02,1,x\n",
        {"covariate_columns": ["temp"]},
        ["s.csv:3, column 'temp': expected a number, got 'x'"],
        id="bad-covariate",
    ),
    pytest.param(
        "time,value\n2020-01-01,1\n2020-01-02,\n",
        {},
        ["s.csv:3, column 'value': missing value (an empty cell)"],
        id="empty-value",
    ),
    pytest.param(
        "time,value\n2020-01-01,1\n2020-01-02,NaN\n",
        {},
        ["s.csv:3, column 'value': missing value ('NaN')"],
        id="nan-value",
    ),
    pytest.param(
        "time,value\n2020-01-01,1\n2020-01-02,inf\n",
        {},
        ["s.csv:3, column 'value': infinite value 'inf'"],
        id="inf-value",
    ),
    pytest.param(
        "time,value\n2020-01-01,1\n2020-01-02,1\n2020-01-01,1\n",
        {},
        ["s.csv:4, column 'time': duplicate time 2020-01-01: also at line 2"],
        id="duplicate-time",
    ),
    pytest.param(
        "time,value\n2020-01-01,1\n2020-01-03,1\n2020-01-02,1\n",
        {},
        ["s.csv:4, column 'time': time 2020-01-02 comes after 2020-01-03 at line 3"],
        id="not-sorted",
    ),
    pytest.param(
        "time,value\n" + "".join(f"2020-01-0{d},1\n" for d in (1, 2, 3, 4, 6, 7)),
        {},
        [
            "s.csv:6, column 'time': gap: 1 step(s) of 'D' missing between 2020-01-04 (line 5) "
            "and 2020-01-06",
            "--fill-missing interpolate|ffill",
        ],
        id="gap",
    ),
    pytest.param(
        "time,value\n2020-01-01,1\n2020-01-02,1\n2020-01-05,1\n",
        {},
        ["s.csv:4, column 'time': could not infer a regular frequency: the first steps differ"],
        id="irregular-start",
    ),
    pytest.param(
        "time,value\n2020-01-01,1\n2020-01-02,1\n",
        {},
        ["s.csv, column 'time': need at least 3 time steps"],
        id="too-short",
    ),
    pytest.param(
        "time,id,value\n2020-01-01,a,1\n2020-01-02,a,1\n2020-01-03,a,1\n2020-01-01,b,1\n"
        "2020-01-03,b,1\n",
        {"series_column": "id"},
        [
            "s.csv:6, column 'time': gap in series 'b': 1 step(s) of 'D' missing between "
            "2020-01-01 (line 5) and 2020-01-03"
        ],
        id="series-off-grid",
    ),
    pytest.param(
        "time,id,value\n"
        + "".join(f"2020-01-0{d},a,1\n" for d in range(1, 5))
        + "".join(f"2020-01-{d:02},b,1\n" for d in (1, 8, 15)),
        {"series_column": "id"},
        ["s.csv:7, column 'time': series 'b' does not step by 'D' like series 'a'"],
        id="series-other-freq",
    ),
    pytest.param(
        "time,id,value\n2020-01-01,a,1\n2020-01-02,,1\n",
        {"series_column": "id"},
        ["s.csv:3, column 'id': missing series id"],
        id="missing-series-id",
    ),
    pytest.param(
        "time,id,value\n2020-01-01,a,1\n2020-01-02,a,1\n2020-01-01,b,1\n2020-01-01,b,2\n",
        {"series_column": "id"},
        ["s.csv:5, column 'time': duplicate time 2020-01-01 in series 'b': also at line 4"],
        id="duplicate-in-series",
    ),
    pytest.param(
        "date,value\n2020-01-01,1\n",
        {},
        ["s.csv: no column 'time'", "The file has columns: 'date', 'value'"],
        id="missing-time-column",
    ),
    pytest.param(
        "time,values\n2020-01-01,1\n",
        {},
        ["s.csv: no column 'value'; did you mean 'values'?"],
        id="missing-target-column",
    ),
]


@pytest.mark.parametrize(("content", "options", "expected"), SERIES_ERRORS)
def test_bad_series_say_where(tmp_path: Path, content: str, options: dict, expected) -> None:
    with pytest.raises(DataError) as excinfo:
        load_time_series(write(tmp_path / "s.csv", content), **options)
    for part in expected:
        assert part in error_text(excinfo)


@pytest.mark.parametrize(
    "options",
    [{"target_columns": []}, {"covariate_columns": ["value"]}, {"series_column": "time"}],
)
def test_series_options_are_checked(tmp_path: Path, options: dict) -> None:
    path = write_table(tmp_path / "s.csv", DAILY)
    with pytest.raises(ConfigError):
        load_time_series(path, **options)


# --- load_path -----------------------------------------------------------------------------------


def test_load_path_dispatch(tmp_path: Path) -> None:
    reviews = write_table(tmp_path / "reviews.csv", RECORDS)
    series = write_table(tmp_path / "series.parquet", DAILY)
    other = write_table(tmp_path / "other.csv", [{"review": "x", "stars": 1}])
    make_imdb(tmp_path / "imdb", split=True)
    write(tmp_path / "plays" / "a.txt", "To be")

    assert load_path(reviews).data == EXPECTED
    assert load_path(series).freq == "D"
    assert load_path(other, text_column="review", label_column="stars").data.labels == ["1"]
    assert load_path(tmp_path / "imdb").test is not None
    assert load_path(tmp_path / "plays").documents == ["To be"]
    assert load_path(tmp_path / "plays" / "a.txt").documents == ["To be"]
    # A corpus keeps files exactly (with their final newline); class folders drop it.
    assert load_path(tmp_path / "imdb" / "train" / "pos", task="lm").documents == [
        "great\n",
        "loved it",
    ]
    assert load_path(series, task="forecaster", covariate_columns="temp").covariates == ["temp"]


def test_load_path_kinds_and_their_older_words(tmp_path: Path) -> None:
    reviews = write_table(tmp_path / "reviews.csv", RECORDS)
    series = write_table(tmp_path / "series.csv", DAILY)
    write(tmp_path / "a.txt", "To be")
    for word in ("labeled-texts", "classification", "classifier"):
        assert load_path(reviews, kind=word).data == EXPECTED
        assert load_path(reviews, task=word).data == EXPECTED
    for word in ("time-series", "forecasting", "forecaster"):
        assert load_path(series, kind=word).freq == "D"
    for word in ("corpus", "language-model", "language-modeling", "lm"):
        assert load_path(tmp_path / "a.txt", task=word).documents == ["To be"]
    # the dataset types' own `task` words are among the older words
    assert {TextClassificationDataset.task, TextCorpus.task} <= set(OLDER_WORDS)
    assert set(OLDER_WORDS.values()) == set(KINDS)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            {"task": "translation"},
            re.escape(
                "unknown task 'translation'; accepted: labeled-texts, time-series, corpus "
                "(or the older words classification, classifier, forecasting, forecaster, "
                "language-model, language-modeling, lm)"
            ),
        ),
        ({"kind": "translation"}, "unknown kind 'translation'; accepted: labeled-texts"),
        (
            {"kind": "corpus", "task": "lm"},
            "pass kind= or its older name task=, not both",
        ),
        ({"task": "classification", "time_column": "t"}, r"option\(s\) \['time_column'\]"),
        (
            {"kind": "labeled-texts", "time_column": "t"},
            r"do not apply to labeled-texts; accepted: text_column, label_column, test_path",
        ),
        ({}, "cannot tell what .* holds from its columns"),
    ],
)
def test_load_path_config_errors(tmp_path: Path, options: dict, match: str) -> None:
    path = write_table(tmp_path / "other.csv", [{"review": "x", "stars": 1}])
    with pytest.raises(ConfigError, match=match):
        load_path(path, **options)


def test_load_path_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_path(tmp_path / "missing")
