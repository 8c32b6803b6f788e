"""Parsers that turn the verified files of each registry dataset into rnnkit's typed objects.

Each parser takes `{member path: cached file}` (see `registry.py`) and dataset options, and knows
the quirks of its file; nothing here downloads or imports the source package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from rnnkit.data.types import (
    LabeledTexts,
    TextClassificationDataset,
    TextCorpus,
    TimeSeriesDataset,
    WordVectors,
)
from rnnkit.errors import ConfigError

Files = Mapping[str, Path]


def _one(files: Files, suffix: str) -> Path:
    matches = [path for member, path in files.items() if member.endswith(suffix)]
    assert len(matches) == 1, f"expected one member ending in {suffix!r}, got {matches}"
    return matches[0]


def rotten_tomatoes(files: Files) -> TextClassificationDataset:
    """Critic snippets labelled fresh/rotten; the `plot` rows are film summaries, not reviews."""
    path = _one(files, "rotten_tomatoes_corpus_full.csv.bz2")
    frame = pd.read_csv(path, usecols=["category", "text"])
    frame = frame[frame["category"] != "plot"]
    texts = frame["text"].astype(str).str.strip().tolist()
    return TextClassificationDataset(
        "rotten-tomatoes", LabeledTexts(texts, frame["category"].tolist()), source=str(path)
    )


def clothing_reviews(files: Files, label: str = "recommended") -> TextClassificationDataset:
    """Women's clothing reviews; `label` is `recommended` (yes/no) or `rating` (1-5).

    Rows without review text (845 of 23,486) are dropped: there is nothing to classify.
    """
    columns = {"recommended": "Recommended IND", "rating": "Rating"}
    if label not in columns:
        raise ConfigError(f"clothing-reviews label must be one of {sorted(columns)}, got {label!r}")
    path = _one(files, "WomensClothingE-CommerceReviews.parquet.brotli")
    frame = pd.read_parquet(path, columns=["Review Text", columns[label]])
    frame = frame[frame["Review Text"].notna()]
    frame = frame[frame["Review Text"].str.strip() != ""]
    values = frame[columns[label]].astype(int)
    labels = values.map({1: "yes", 0: "no"}) if label == "recommended" else values.astype(str)
    texts = frame["Review Text"].str.strip().tolist()
    return TextClassificationDataset(
        "clothing-reviews", LabeledTexts(texts, labels.tolist()), source=str(path)
    )


def glove_6b_50d(files: Files) -> WordVectors:
    """GloVe 6B (Wikipedia + Gigaword), 400k lower-cased words x 50 dimensions."""
    vectors = np.load(_one(files, "glove_6B_50d_emb.npy"), allow_pickle=False)
    index = pd.read_parquet(_one(files, "glove_6B_index.parquet"))
    words = index["index"].astype(str).tolist()
    assert len(words) == vectors.shape[0], "GloVe index and matrix differ in length"
    return WordVectors("glove-6b-50d", words, np.asarray(vectors, dtype=np.float32))


_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_HEADING = re.compile(r"^#+\s*")
_ESCAPE = re.compile(r"\\([\[\]\*_\\#])")


def markdown_play_to_text(markdown: str) -> str:
    """Plain play text in the layout of the classic `tinyshakespeare` file.

    `**HAMLET**` becomes `HAMLET:`, headings lose their `#`, stage directions lose the `_..._`
    emphasis, markdown escapes (`\\[`) and hard-break spaces go.
    """
    out = []
    for raw in markdown.splitlines():
        line = raw.rstrip()
        speaker = _SPEAKER.match(line)
        if speaker:
            line = speaker.group(1).strip() + ":"
        else:
            line = _HEADING.sub("", line)
            line = line.replace("_", "")
        out.append(_ESCAPE.sub(r"\1", line))
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def shakespeare(files: Files) -> TextCorpus:
    """38 plays as plain text, one document per play, in sorted path order (genre, then title)."""
    documents = [
        markdown_play_to_text(Path(files[member]).read_text(encoding="utf-8"))
        for member in sorted(files)
    ]
    return TextCorpus("shakespeare", documents, source=str(Path(files[sorted(files)[0]]).parent))


def _single_series(name: str, frame: pd.DataFrame, target: str, freq: str, source: Path):
    frame = frame.sort_index()
    frame.index.name = "time"
    frame.index.freq = freq
    return TimeSeriesDataset(name, {target: frame[[target]]}, freq, [target], source=str(source))


def airline_passengers(files: Files) -> TimeSeriesDataset:
    """Monthly international airline passengers (thousands), 1949-1960: 144 points."""
    path = _one(files, "Airline.csv")
    frame = pd.read_csv(path)
    frame.index = pd.PeriodIndex(frame["Date"], freq="M").to_timestamp()
    frame = frame.rename(columns={"Passengers": "passengers"}).astype({"passengers": float})
    return _single_series("airline-passengers", frame, "passengers", "MS", path)


def sunspots(files: Files) -> TimeSeriesDataset:
    """Yearly mean sunspot number, 1700-2008: 309 points."""
    path = _one(files, "sunspots.csv")
    frame = pd.read_csv(path)
    frame.index = pd.to_datetime(frame["YEAR"].astype(int).astype(str), format="%Y")
    frame = frame.rename(columns={"SUNACTIVITY": "sunspots"}).astype({"sunspots": float})
    return _single_series("sunspots", frame, "sunspots", "YS", path)


def electricity(files: Files) -> TimeSeriesDataset:
    """Hourly electricity load, 2012-2014: 26,304 points."""
    path = _one(files, "hourly_electricity.csv")
    frame = pd.read_csv(path)
    frame.index = pd.to_datetime(frame["ts"], format="%Y-%m-%d %H:%M:%S")
    frame = frame.rename(columns={"y": "load"}).astype({"load": float})
    return _single_series("electricity", frame, "load", "h", path)


def retail(files: Files, top_countries: int = 5) -> TimeSeriesDataset:
    """Daily sales per country from UCI Online Retail II transactions (Dec 2009 - Dec 2011).

    One series per country, for the `top_countries` with the most transaction lines. Columns:
    `sales` (target: sum of quantity x price, returns included as negatives, as a shop books
    them), and covariates `quantity` (units) and `orders` (distinct invoices). Days without a
    transaction (the shop's closed days, e.g. Saturdays and Christmas) are real zeros.
    """
    if top_countries < 1:
        raise ConfigError(f"retail top_countries must be at least 1, got {top_countries}")
    path = _one(files, "online_retail.csv.xz")
    frame = pd.read_csv(
        path,
        usecols=["Invoice", "Quantity", "InvoiceDate", "Price", "Country"],
        dtype={"Invoice": str, "Country": str},
    )
    frame["day"] = pd.to_datetime(frame["InvoiceDate"], format="%m/%d/%Y %H:%M").dt.normalize()
    frame["sales"] = frame["Quantity"] * frame["Price"]
    countries = frame["Country"].value_counts().index[:top_countries].tolist()
    frame = frame[frame["Country"].isin(countries)]
    daily = frame.groupby(["Country", "day"]).agg(
        sales=("sales", "sum"), quantity=("Quantity", "sum"), orders=("Invoice", "nunique")
    )
    days = pd.date_range(frame["day"].min(), frame["day"].max(), freq="D", name="time")
    series = {}
    for country in countries:
        one = daily.loc[country].reindex(days, fill_value=0).astype(float)
        one.index.freq = "D"
        series[country] = one[["sales", "quantity", "orders"]]
    return TimeSeriesDataset(
        "retail", series, "D", ["sales"], covariates=["quantity", "orders"], source=str(path)
    )
