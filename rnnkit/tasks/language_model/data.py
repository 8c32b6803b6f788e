"""A run's text: sources joined, cut into contiguous parts; the held-out part reopened.

Two paths to the same id streams (`load_streams`):

- in memory (registry datasets, `+` joins, small files): the text is read, split by characters
  (the last `validation` share, then `test`), and each part encoded;
- streamed (a corpus path of at least `STREAMING_BYTES`, or `data.streaming: on`): the
  vocabulary is counted over the first (1 - validation - test) of the corpus's bytes, read in
  chunks; the corpus is tokenised once into a token file in the cache
  (`rnnkit.text.token_file`); and the parts are contiguous token ranges of its memory map (the
  last `validation` share of the tokens, then `test`), validation and test each cut to their
  first `max_eval_tokens`. The ranges, the corpus's sha256 and the encoder's go into
  `config.json` (`token_file`), so `held_out` reopens the same tokens without reading the text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.config import from_dict
from rnnkit.data import TextClassificationDataset, TextCorpus, load_dataset
from rnnkit.data.tables import reopens_config_data
from rnnkit.data.text_folders import folder_kind, is_text_file
from rnnkit.data.types import contiguous_sizes
from rnnkit.errors import ConfigError, DataError
from rnnkit.io import atomic_write_text
from rnnkit.run_folder import Files
from rnnkit.tasks.language_model.config import LanguageModelRunConfig, LMDataConfig
from rnnkit.tasks.language_model.objective import encode_stream
from rnnkit.tasks.spec import HeldOut
from rnnkit.text import TextEncoder
from rnnkit.text.token_file import Corpus, TokenFile, tokenize_corpus

logger = logging.getLogger(__name__)

#: `data.streaming: auto` streams a corpus path of at least this many bytes on disk. In memory,
#: the text (1 byte per ASCII character, up to 4 otherwise), its split copies and their int64
#: ids (8 bytes per character token) peak at ~15 bytes per byte of a character corpus (1.0 GB
#: above the interpreter's for 64 MB: docs/benchmarks.md, "Corpora larger than memory"), so
#: 256 MB would take ~4 GB. Below it, the in-memory path (and its exact old results) stays.
STREAMING_BYTES = 256 * 2**20
#: a streamed corpus's BPE merges are learned from at most this much of its training text:
#: BPE training holds every distinct word and costs time linear in the text, and merges learned
#: from a quarter GB hardly change with more. Byte-level BPE has no `<unk>`, so text beyond the
#: sample still encodes exactly. `char` and word vocabularies count the whole training part.
BPE_SAMPLE_BYTES = 256 * 2**20


@dataclass
class LMText:
    """The text of a run's sources, cut into contiguous parts."""

    train: str
    validation: str
    test: str
    sources: list[str]


def _sources(data: str) -> list[str]:
    if Path(data).expanduser().exists() or "+" not in data:
        return [data]
    return [part.strip() for part in data.split("+") if part.strip()]


def load_text(config: LMDataConfig) -> LMText:
    """The training, validation and test text of `config.data` (see `LMDataConfig.data`)."""
    parts: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    sources = []
    for name in _sources(config.data):
        is_path = Path(name).expanduser().exists()
        dataset = load_dataset(name)
        sources.append(dataset.source or name if is_path else name)
        if isinstance(dataset, TextCorpus):
            split = dataset.split(validation=config.validation, test=config.test)
            parts["train"].append(split.train)
            parts["validation"].append(split.validation)
            parts["test"].append(split.test)
        elif isinstance(dataset, TextClassificationDataset):
            split = dataset.split(seed=config.split_seed)  # the classifier's own split
            parts["train"].append("\n".join(split.train.texts))
            parts["validation"].append("\n".join(split.validation.texts))
        else:
            raise ConfigError(
                f"--data {name} is a {dataset.task} dataset; a language model needs text "
                "(a corpus, .txt files, or labelled texts)"
            )
    text = LMText(*("\n\n".join(p for p in parts[k] if p) for k in parts), sources=sources)
    if not text.train or not text.validation:
        raise DataError(
            f"too little text for a training and a validation part ({len(text.train)} and "
            f"{len(text.validation)} characters); give more text or change data.validation",
            path=config.data,
        )
    return text


@dataclass
class LMStreams:
    """A run's token id streams and what made them.

    Attributes:
        encoder: the tokenizer and vocabulary (built on the training part, or given).
        train, validation, test: (N,) ids; NumPy arrays in memory, or read-only slices of a
            token file's memory map (streamed). `test` is empty without a test share.
        chars_per_token: characters per token of the validation text (streamed: of the corpus).
        sources: what the text came from, for the log and `config.json`.
        record: what `config.json` keeps to reopen the held-out part (`{"token_file": ...}`
            when streamed; empty in memory).
    """

    encoder: TextEncoder
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    chars_per_token: float
    sources: list[str]
    record: dict[str, Any] = field(default_factory=dict)


def _is_corpus_path(path: Path) -> bool:
    """Whether `load_dataset(path)` reads `path` as a corpus."""
    return is_text_file(path) or (path.is_dir() and folder_kind(path) == "corpus")


def streamed_corpus(config: LMDataConfig) -> Corpus | None:
    """The corpus to stream through a token file, or None to read the text into memory.

    Raises:
        ConfigError: `data.streaming` "on" with data that is not one path.
        DataError: "on" with a path that is not a .txt file or a folder of them.
    """
    if config.streaming == "off":
        return None
    path = Path(config.data).expanduser()
    if config.streaming == "on":
        if not path.exists():
            raise ConfigError(
                f"data.streaming 'on' reads one .txt file or folder of them; {config.data!r} is "
                "not a path (registry datasets and `+` joins are read in memory: "
                "data.streaming=auto or off)"
            )
        return Corpus.open(path)
    if not path.exists() or not _is_corpus_path(path):
        return None
    corpus = Corpus.open(path)
    return corpus if corpus.nbytes >= STREAMING_BYTES else None


def load_streams(config: LMDataConfig, encoder: TextEncoder | None = None) -> LMStreams:
    """The training, validation and test ids of `config.data`, in memory or streamed.

    Args:
        config: the data section.
        encoder: the encoder to use (a resumed run's); None builds one on the training part.

    Raises:
        ConfigError, DataError: as `load_text`, `streamed_corpus` and `tokenize_corpus`.
    """
    corpus = streamed_corpus(config)
    if corpus is not None:
        return _streamed(corpus, config, encoder)
    text = load_text(config)
    if encoder is None:
        encoder = _build(config, [text.train])
    train = encode_stream(encoder, text.train)
    validation = encode_stream(encoder, text.validation)
    test = encode_stream(encoder, text.test) if text.test else np.zeros(0, dtype=np.int64)
    chars_per_token = len(text.validation) / max(len(validation), 1)
    return LMStreams(encoder, train, validation, test, chars_per_token, text.sources)


def _build(config: LMDataConfig, texts: Any, stream: bool = False) -> TextEncoder:
    build = TextEncoder.build_stream if stream else TextEncoder.build
    return build(
        texts,
        tokenizer=config.tokenizer,
        min_freq=config.min_freq,
        max_size=config.max_size,
        vocab_size=config.vocab_size,
    )


def _streamed(corpus: Corpus, config: LMDataConfig, encoder: TextEncoder | None) -> LMStreams:
    corpus_sha256 = corpus.sha256()
    if encoder is None:
        train_bytes = int(corpus.nbytes * (1.0 - config.validation - config.test))
        if config.tokenizer == "bpe":
            train_bytes = min(train_bytes, BPE_SAMPLE_BYTES)
        chunks = corpus.chunks(max_bytes=max(train_bytes, 1), desc="vocabulary")
        encoder = _build(config, chunks, stream=True)
    token_file = tokenize_corpus(corpus, encoder, corpus_sha256=corpus_sha256)
    ranges = token_ranges(token_file.tokens, config)
    ids = token_file.ids()
    train, validation, test = (ids[a:b] for a, b in ranges)
    if len(train) < 2 or len(validation) < 2:
        raise DataError(
            f"too little text for a training and a validation part ({len(train)} and "
            f"{len(validation)} tokens); give more text or change data.validation",
            path=corpus.root,
        )
    record = {
        "token_file": {
            "corpus": str(corpus.root.resolve()),
            "corpus_sha256": corpus_sha256,
            "encoder_sha256": token_file.encoder_sha256,
            "path": str(token_file.path),
            "tokens": token_file.tokens,
            "train": list(ranges[0]),
            "validation": list(ranges[1]),
            "test": list(ranges[2]),
            "max_eval_tokens": config.max_eval_tokens,
        }
    }
    chars_per_token = token_file.chars / token_file.tokens
    source = str(corpus.root)
    return LMStreams(encoder, train, validation, test, chars_per_token, [source], record)


def token_ranges(tokens: int, config: LMDataConfig) -> list[tuple[int, int]]:
    """[start, stop) of the training, validation and test tokens of a streamed corpus.

    Contiguous, in this order (the last `validation` share, then `test`, as the in-memory split
    cuts characters); validation and test keep their first `max_eval_tokens`.
    """
    n_train, n_val, n_test = contiguous_sizes(tokens, config.validation, config.test)
    cap = config.max_eval_tokens
    val_start, test_start = n_train, n_train + n_val
    return [
        (0, n_train),
        (val_start, val_start + min(n_val, cap)),
        (test_start, test_start + min(n_test, cap)),
    ]


def _held_out_tokens(
    run_dir: Path, path: str, corpus_sha256: str, encoder_sha256: str
) -> tuple[TextEncoder, TokenFile]:
    """The encoder of a streamed run and its token file: cached, or tokenised again."""
    encoder = TextEncoder.load(run_dir / Files.TOKENIZER)
    found = TokenFile.find(corpus_sha256, encoder_sha256)
    if found is not None:
        return encoder, found
    corpus = Corpus.open(path)
    actual = corpus.sha256()
    if actual != corpus_sha256:
        raise DataError(
            f"the corpus changed since training (sha256 {actual[:12]}..., the run read "
            f"{corpus_sha256[:12]}...); its held-out part is gone: evaluate with --data",
            path=corpus.root,
        )
    return encoder, tokenize_corpus(corpus, encoder, corpus_sha256=actual)


def share(data: LMDataConfig, which: str) -> str:
    return f"{data.test:.0%}" if which == "test" else f"{data.validation:.0%}"


@reopens_config_data
def held_out(run_dir: Path, config: dict[str, Any]) -> HeldOut:
    """The run's test text (its validation text when the test share is 0)."""
    cfg = from_dict(LanguageModelRunConfig, config["config"]).data
    record = config.get("token_file")
    if record is not None:  # a streamed corpus: decode the recorded token range
        try:
            test = record["test"]
            which = "test" if test[1] > test[0] else "validation"
            start, stop = (int(i) for i in record[which])
            keys = record["corpus"], record["corpus_sha256"], record["encoder_sha256"]
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise DataError(
                f"not a token-file record: {err!r}",
                path=Path(run_dir) / Files.CONFIG,
                column="token_file",
            ) from None
        encoder, token_file = _held_out_tokens(Path(run_dir), *keys)
        text = encoder.decode(token_file.ids()[start:stop].tolist())
        described = (
            f"{cfg.data} ({which} part, last {share(cfg, which)}, its first "
            f"{stop - start:,} tokens)"
        )
        return HeldOut(text, described)
    text = load_text(cfg)
    part, which = (text.test, "test") if text.test else (text.validation, "validation")
    return HeldOut(part, f"{cfg.data} ({which} part, last {share(cfg, which)})")


#: the file `write_data` writes into a run's data folder
DATA_FILE = "text.txt"


def write_data(data: Any, folder: Path, config: LanguageModelRunConfig) -> LanguageModelRunConfig:
    """Text in memory, written as `folder/text.txt` for `rnnkit.train`.

    Args:
        data: the text (a string), or documents (a list of strings), which are joined by a
            blank line as `TextCorpus` joins documents.
        folder: where the file goes (the run's `data/` folder).
        config: the run config.

    Returns:
        `config` with `data.data` the file's absolute path.

    Raises:
        ConfigError: data of another type.
        DataError: no text.
    """
    if isinstance(data, (list, tuple)) and all(isinstance(doc, str) for doc in data):
        data = "\n\n".join(data)
    if not isinstance(data, str):
        raise ConfigError(
            "language-model data is a registry dataset name, a path, a string of text or a "
            f"list of strings; got {type(data).__name__}"
        )
    if not data.strip():
        raise DataError("the text is empty; a language model needs text to learn from")
    path = Path(folder) / DATA_FILE
    atomic_write_text(path, data)
    return replace(config, data=replace(config.data, data=str(path.resolve())))
