"""Tokenizers by name through one registry: `get_tokenizer("basic_english" | "char" | "bpe")`.

Every tokenizer works on whole batches in native code, because tokenising a dataset one text at
a time in Python is what made old torchtext pipelines slow. Each kind uses the backend measured
fastest for it (`benchmarks/bench_text.py` on the 2-vCPU reference machine):

- `basic_english` (torchtext's word tokenizer): Apache Arrow string kernels (literal replacements,
  a whitespace split, a hash lookup for ids). HuggingFace `tokenizers` with a `WordLevel` model was
  measured too and was no faster than the plain-Python baseline: it builds an offset-tracked
  `NormalizedString`, a `Token` and an `Encoding` entry per word (figures: docs/benchmarks.md).
- `char`: NumPy over the UTF-32 code points of the batch.
- `bpe`: HuggingFace `tokenizers` (byte-level BPE, merges learned and applied in Rust).

Each tokenizer turns into a JSON-able dict and back (`to_dict()` / `tokenizer_from_dict()`); no
pickle. Numericalisation returns the ragged pair `(ids, offsets)`: text i's ids are
`ids[offsets[i]:offsets[i + 1]]`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import chain, pairwise
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rnnkit.errors import ConfigError, DataError
from rnnkit.text.vocab import SPECIALS, UNK_ID, Vocab

log = logging.getLogger(__name__)

# (ids int64 (total_tokens,), offsets int64 (num_texts + 1,)); text i: ids[offsets[i]:offsets[i+1]]
Ragged = tuple[np.ndarray, np.ndarray]

Numericalizer = Callable[[list[str]], Ragged]


def as_texts(texts: Iterable[str]) -> list[str]:
    """`texts` as a list of str, or an error naming the first entry that is not a str."""
    if isinstance(texts, str):
        raise ConfigError("expected a list of texts, got a single str; use encode() for one text")
    texts = texts if isinstance(texts, list) else list(texts)
    if set(map(type, texts)) - {str}:  # C-speed check first; the loop below only runs on failure
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"text {i} is {type(text).__name__} {text!r}, expected str", row=i)
    return texts


@contextmanager
def located_unicode_errors(texts: Sequence[str]) -> Iterator[None]:
    """Turn a native backend's failure on a lone surrogate into a `DataError` naming the text.

    Python strings may hold lone surrogates (e.g. from `errors="surrogateescape"`); Arrow, NumPy's
    UTF-32 and Rust refuse them. Looking for the culprit only after a failure keeps the common
    path free of a per-text check.
    """
    try:
        yield
    except (ConfigError, DataError):
        raise
    except Exception:
        for i, text in enumerate(texts):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as e:
                raise DataError(
                    f"text {i} is not valid Unicode: {e.reason} at character {e.start}", row=i
                ) from e
        raise


def _ragged_from_lengths(flat: np.ndarray, lengths: np.ndarray) -> Ragged:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return flat.astype(np.int64, copy=False), offsets


def _concat_ragged(parts: Sequence[Ragged]) -> Ragged:
    if len(parts) == 1:
        return parts[0]
    ids = np.concatenate([p[0] for p in parts])
    lengths = np.concatenate([np.diff(p[1]) for p in parts])
    return _ragged_from_lengths(ids, lengths)


# Arrow's string kernels release the GIL, so chunks of one batch run in parallel threads.
_MIN_CHUNK = 2048
# Below this many texts, basic_english looks ids up in a dict rather than Arrow's hash (measured
# crossover: ~150 clothing reviews with a 19k-token vocabulary).
_SMALL_BATCH = 128


def _usable_cores() -> int:
    # The cores this process may run on (a container's limit), not all the machine has.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _in_chunks(fn: Callable[[list[str]], Ragged], texts: list[str]) -> Ragged:
    workers = min(_usable_cores(), len(texts) // _MIN_CHUNK)
    if workers <= 1:
        return fn(texts)
    # Twice as many chunks as threads evens out chunks that hold longer texts.
    n_chunks = 2 * workers
    bounds = [len(texts) * k // n_chunks for k in range(n_chunks + 1)]
    chunks = [texts[a:b] for a, b in pairwise(bounds)]
    with ThreadPoolExecutor(workers) as pool:
        return _concat_ragged(list(pool.map(fn, chunks)))


class Tokenizer(ABC):
    """Splits text into tokens and, given a `Vocab`, into ids; one subclass per registry name.

    Subclasses set `name` and `OPTIONS` (the keyword options `get_tokenizer` accepts).
    """

    name: ClassVar[str]
    OPTIONS: ClassVar[tuple[str, ...]] = ()

    def tokenize(self, text: str) -> list[str]:
        """The tokens of one text."""
        return self.tokenize_batch([text])[0]

    @abstractmethod
    def tokenize_batch(self, texts: Sequence[str]) -> list[list[str]]:
        """The tokens of each text, computed for the whole batch at once."""

    @abstractmethod
    def detokenize(self, tokens: Sequence[str]) -> str:
        """Text from tokens: exact for `char` and `bpe`, space-joined words for `basic_english`."""

    @abstractmethod
    def fit(
        self, texts: Sequence[str], min_freq: int = 1, max_size: int | None = None
    ) -> tuple[Tokenizer, Vocab]:
        """The tokenizer to use with its vocabulary learned from `texts`.

        Word-level tokenizers return themselves with the counted vocabulary; `bpe` returns a newly
        trained tokenizer and the vocabulary of its merges.
        """

    def fit_stream(
        self, chunks: Iterable[str], min_freq: int = 1, max_size: int | None = None
    ) -> tuple[Tokenizer, Vocab]:
        """As `fit`, over a text read in pieces (a corpus larger than memory), one pass.

        Each chunk must end where a token may end (e.g. after a line break between two
        non-blank characters, as `rnnkit.text.token_file` cuts them), so the counts are those of
        the whole text. Only one chunk is held at a time.
        """
        return self.fit(list(chunks), min_freq=min_freq, max_size=max_size)

    @abstractmethod
    def numericalizer(self, vocab: Vocab) -> Numericalizer:
        """A function from a list of texts to their ragged ids `(ids, offsets)` under `vocab`.

        Precomputes the lookup tables once, so each batch pays only for its own text.
        """

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description; `tokenizer_from_dict` turns it back into a tokenizer."""
        return {"name": self.name}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _WordLevel(Tokenizer):
    """A tokenizer whose vocabulary is counted from its tokens (any token may be `<unk>`)."""

    def fit(
        self, texts: Sequence[str], min_freq: int = 1, max_size: int | None = None
    ) -> tuple[Tokenizer, Vocab]:
        texts = as_texts(texts)
        with located_unicode_errors(texts):
            counts = self.count_tokens(texts)
        return self, Vocab.from_counts(counts, min_freq=min_freq, max_size=max_size)

    def fit_stream(
        self, chunks: Iterable[str], min_freq: int = 1, max_size: int | None = None
    ) -> tuple[Tokenizer, Vocab]:
        counts: Counter[str] = Counter()
        for chunk in chunks:
            texts = as_texts([chunk])
            with located_unicode_errors(texts):
                counts.update(self.count_tokens(texts))
        return self, Vocab.from_counts(counts, min_freq=min_freq, max_size=max_size)

    @abstractmethod
    def count_tokens(self, texts: list[str]) -> Counter[str]:
        """How often each token occurs over `texts`, counted in native code."""


# -- basic_english -------------------------------------------------------------------------------

# torchtext's rules, in torchtext's order (after lower-casing):
#   '->" '  "  "->""  .->" . "  <br />->" "  ,->" , "  (->" ( "  )->" ) "  !->" ! "  ?->" ? "
#   ;->" "  :->" "  whitespace runs->" "  then str.split()
# Below they are applied as: delete ", replace <br /> by a space, surround each of '.,()!?
# with spaces, turn ; and : into spaces, split on whitespace. Same tokens, because (1) the rules for
# " and ' touch disjoint characters, so their order does not matter; (2) moving "<br />" before the
# ' and . rules cannot change its matches: "<br />" contains neither character, and a space inserted
# around one is always next to that character, never between "<br" and "/>"; (3) extra spaces
# vanish in the split. tests/text/test_tokenizers.py checks this against the regex list on random
# text.
_ISOLATE = "'.,()!?"
# Every character str.split() splits on besides " " (CPython's whitespace, which includes \x1c-\x1f
# unlike Unicode's), plus ; and :, as one RE2 class: they all become " ".
_TO_SPACE = "[{}]".format(
    "".join(f"\\x{{{c:x}}}" for c in range(0x110000) if chr(c).isspace() and c != 0x20) + ";:"
)


# The same class for Python's `re`, for the few-texts path below.
_TO_SPACE_RE = re.compile(
    "[{}]".format(
        "".join(re.escape(chr(c)) for c in range(0x110000) if chr(c).isspace() and c != 0x20) + ";:"
    )
)
#: below this many texts, tokenizing in Python beats Arrow's per-call cost (13 compute calls of
#: ~17 µs each: two thirds of a one-text request's tokenizing).
_PYTHON_BATCH = 8


def _basic_english_small(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """`_drop_empty(_basic_english_lists(texts))` in plain Python, for a few texts at a time.

    The same operations in the same order (tests hold the two paths equal on random text). A lone
    surrogate raises `UnicodeEncodeError`, as Arrow's conversion does, for
    `located_unicode_errors` to name.
    """
    flat: list[str] = []
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    for i, text in enumerate(texts):
        text.encode("utf-8")
        text = text.lower().replace('"', "").replace("<br />", " ")
        for char in _ISOLATE:
            text = text.replace(char, f" {char} ")
        flat.extend(word for word in _TO_SPACE_RE.sub(" ", text).split(" ") if word)
        offsets[i + 1] = len(flat)
    return flat, offsets


def _basic_english_lists(texts: list[str]) -> pa.Array:
    """Arrow list array of tokens per text; may hold empty strings (see `_drop_empty`)."""
    # Python's str.lower, not Arrow's utf8_lower: Arrow (utf8proc) and Rust follow a newer Unicode
    # than CPython and lower a final capital sigma to "σ" where Python writes "ς", so they would not
    # give torchtext's tokens. It costs ~1% of the pipeline.
    arr = pa.array([text.lower() for text in texts], type=pa.large_string())
    arr = pc.replace_substring(arr, '"', "")
    arr = pc.replace_substring(arr, "<br />", " ")
    for char in _ISOLATE:
        arr = pc.replace_substring(arr, char, f" {char} ")
    arr = pc.replace_substring_regex(arr, _TO_SPACE, " ")
    # A literal split at every " ": runs of spaces leave empty strings, dropped by _drop_empty.
    # Not pc.utf8_split_whitespace: in pyarrow 26 it sometimes keeps a trailing space inside the
    # last token of a non-ASCII string, differently from run to run (a read past the string).
    return pc.split_pattern(arr, " ")


def _drop_empty(lists: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Flat non-empty tokens and the (num_texts + 1,) offsets that slice them per text."""
    flat = lists.flatten()
    keep = pc.greater(pc.binary_length(flat), 0)
    parents = pc.list_parent_indices(lists).to_numpy()
    lengths = np.bincount(parents[keep.to_numpy(zero_copy_only=False)], minlength=len(lists))
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return flat.filter(keep), offsets


class BasicEnglishTokenizer(_WordLevel):
    """torchtext's `get_tokenizer("basic_english")`: lower-case, split off punctuation and spaces.

    Gives exactly torchtext's tokens for every string of valid Unicode, including its quirks:
    double quotes vanish and join their neighbours (`a"b` -> `ab`), `;` and `:` vanish, every `.` is
    its own token (`...` -> `. . .`, `3.5` -> `3 . 5`), `'` is its own token (`don't` ->
    `don ' t`), and `<br />` (HTML line breaks in IMDB reviews) becomes a space. Lower-casing is
    Python's `str.lower`, as in torchtext. `detokenize` joins tokens with spaces, so it does not
    give back the original text.

    The one difference: a string holding a lone surrogate (not valid Unicode, e.g. "\\ud800" from
    `errors="surrogateescape"`) raises a `DataError` naming it, where torchtext's regexes would
    tokenize it.
    """

    name = "basic_english"

    def tokenize_batch(self, texts: Sequence[str]) -> list[list[str]]:
        texts = as_texts(texts)
        with located_unicode_errors(texts):
            tokens, offsets = _drop_empty(_basic_english_lists(texts))
        flat = tokens.to_pylist()
        bounds = offsets.tolist()
        return [flat[a:b] for a, b in pairwise(bounds)]

    def detokenize(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)

    def count_tokens(self, texts: list[str]) -> Counter[str]:
        tokens, _ = _drop_empty(_basic_english_lists(texts))
        counts = pc.value_counts(tokens)
        values = counts.field("values").to_pylist()
        return Counter(dict(zip(values, counts.field("counts").to_pylist(), strict=True)))

    def numericalizer(self, vocab: Vocab) -> Numericalizer:
        # index_in finds each token's position in `value_set`, which is its id.
        value_set = pa.array(vocab.tokens, type=pa.large_string())

        def numericalize(texts: list[str]) -> Ragged:
            if len(texts) < _PYTHON_BATCH:
                words, offsets = _basic_english_small(texts)
                return np.array(vocab.encode(words), dtype=np.int64), offsets
            tokens, offsets = _drop_empty(_basic_english_lists(texts))
            if len(texts) < _SMALL_BATCH:
                # index_in hashes the whole vocabulary on every call; the
                # tokens of a few texts (a served request) are cheaper to look up in the dict.
                return np.array(vocab.encode(tokens.to_pylist()), dtype=np.int64), offsets
            ids = pc.fill_null(pc.index_in(tokens, value_set=value_set), UNK_ID)
            return ids.to_numpy().astype(np.int64), offsets

        return lambda texts: _in_chunks(numericalize, texts)


# -- char ----------------------------------------------------------------------------------------


def _code_points(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All code points of the batch (total_chars,), and each text's length (num_texts,).

    uint8 for ASCII text (one byte per character: a quarter of the memory traffic), else uint32.
    """
    joined = "".join(texts)
    if joined.isascii():  # a flag CPython keeps on every str: no scan
        points = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    else:
        # UTF-32 has one unit per code point, as Python's str does; lone surrogates raise here.
        points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    return points, lengths


# Code points below this are counted in a dense table (2 MB of int64 at most); text with rarer
# characters (emoji, CJK extension planes) falls back to sorting.
_BINCOUNT_LIMIT = 1 << 18


class CharTokenizer(_WordLevel):
    """Every Unicode code point is a token, spaces and newlines included (character LMs).

    No normalisation: "é" written as `e` + a combining accent is two tokens, as in `list(text)`.
    """

    name = "char"

    def tokenize_batch(self, texts: Sequence[str]) -> list[list[str]]:
        return [list(text) for text in as_texts(texts)]

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)

    def count_tokens(self, texts: list[str]) -> Counter[str]:
        points, _ = _code_points(texts)
        if len(points) and int(points.max()) < _BINCOUNT_LIMIT:
            # one linear pass; np.unique sorts, ~20x slower on a 512k-character chunk
            tally = np.bincount(points, minlength=0)
            values = np.flatnonzero(tally)
            counts = tally[values]
        else:
            values, counts = np.unique(points, return_counts=True)
        return Counter(dict(zip(map(chr, values.tolist()), counts.tolist(), strict=True)))

    def numericalizer(self, vocab: Vocab) -> Numericalizer:
        # A dense code point -> id table (at most 0x110000 int64, 8.9 MB; a few KB for Latin text):
        # one gather instead of a sorted search per character. Its last slot, <unk>, takes every
        # code point above the largest in the vocabulary (`take`'s clip mode). int64, the ids'
        # type, so the gather writes them directly. Specials are longer than one character, so
        # text never produces them.
        chars = {ord(t): i for i, t in enumerate(vocab.tokens) if len(t) == 1}
        table = np.full(max(chars, default=-1) + 2, UNK_ID, dtype=np.int64)
        table[list(chars)] = list(chars.values())

        def numericalize(texts: list[str]) -> Ragged:
            points, lengths = _code_points(texts)
            return _ragged_from_lengths(np.take(table, points, mode="clip"), lengths)

        return numericalize


# -- bpe -----------------------------------------------------------------------------------------

_BYTE_ALPHABET = 256
MIN_BPE_VOCAB_SIZE = len(SPECIALS) + _BYTE_ALPHABET


def _check_bpe_options(min_freq: int, max_size: int | None) -> None:
    if max_size is not None:
        raise ConfigError("max_size does not apply to bpe; its size is set by vocab_size")
    if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
        raise ConfigError(f"min_freq must be an integer >= 1, got {min_freq!r}")


class BPETokenizer(Tokenizer):
    """Byte-level BPE (GPT-2's scheme, Sennrich et al. 2016 / Radford et al. 2019), trained here.

    Byte-level rather than whitespace pre-tokenisation because text must come back exactly for
    language models: every byte has a symbol, so there is never an `<unk>`, and spaces, tabs and
    newlines survive `decode` as they were (a whitespace pre-tokenizer would drop them).

    Ids 0-3 are the specials. They are not registered as HuggingFace "added tokens", so text that
    literally contains "<eos>" is encoded as ordinary text rather than as the end-of-sequence id.

    Args:
        vocab_size: the most tokens to learn, specials and the 256 byte symbols included.
        hf_json: a trained HuggingFace `tokenizers` JSON string (from `to_dict()`); None for an
            untrained tokenizer, which only `fit()` accepts.
    """

    name = "bpe"
    OPTIONS = ("vocab_size",)

    def __init__(self, vocab_size: int = 8000, hf_json: str | None = None) -> None:
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise ConfigError(f"bpe vocab_size must be an integer, got {vocab_size!r}")
        if vocab_size < MIN_BPE_VOCAB_SIZE:
            raise ConfigError(
                f"bpe vocab_size must be at least {MIN_BPE_VOCAB_SIZE} (4 specials + 256 byte "
                f"symbols), got {vocab_size}"
            )
        self.vocab_size = vocab_size
        self._hf = None
        if hf_json is not None:
            from tokenizers import Tokenizer as HFTokenizer

            self._hf = HFTokenizer.from_str(hf_json)
            vocab = self._hf.get_vocab()
            if any(vocab.get(token) != i for i, token in enumerate(SPECIALS)):
                raise ConfigError(f"a bpe tokenizer must map {list(SPECIALS)} to ids 0-3")

    @property
    def trained(self) -> bool:
        return self._hf is not None

    def _trained_hf(self) -> Any:
        if self._hf is None:
            raise ConfigError(
                "this bpe tokenizer is not trained yet: build it with "
                "TextEncoder.build(texts, tokenizer='bpe') or call fit(texts)"
            )
        return self._hf

    def vocab(self) -> Vocab:
        """The trained vocabulary, in id order."""
        itos = self._trained_hf().get_vocab()
        return Vocab(sorted(itos, key=itos.__getitem__))

    def fit(
        self, texts: Sequence[str], min_freq: int = 1, max_size: int | None = None
    ) -> tuple[Tokenizer, Vocab]:
        """Learn merges from `texts`; `min_freq`: the fewest occurrences of a pair worth merging."""
        _check_bpe_options(min_freq, max_size)
        texts = as_texts(texts)
        log.info("training byte-level BPE (vocab_size=%d) on %d texts", self.vocab_size, len(texts))
        with located_unicode_errors(texts):
            return self._train(texts, min_freq, length=len(texts))

    def fit_stream(
        self, chunks: Iterable[str], min_freq: int = 1, max_size: int | None = None
    ) -> tuple[Tokenizer, Vocab]:
        """Learn merges from text read in pieces; the Rust trainer counts words as they come."""
        _check_bpe_options(min_freq, max_size)
        log.info("training byte-level BPE (vocab_size=%d) on a text stream", self.vocab_size)
        return self._train(chunks, min_freq, length=None)

    def _train(
        self, texts: Iterable[str], min_freq: int, length: int | None
    ) -> tuple[Tokenizer, Vocab]:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        hf = HFTokenizer(models.BPE())  # no unk_token: the byte alphabet covers every input
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=self.vocab_size,
            min_frequency=min_freq,
            special_tokens=list(SPECIALS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        hf.train_from_iterator(texts, trainer, length=length)
        # Training registers the specials as "added tokens", which would be matched inside raw text;
        # drop them so only our code emits ids 0-3 (see the class docstring).
        spec = json.loads(hf.to_str())
        spec["added_tokens"] = []
        trained = BPETokenizer(self.vocab_size, hf_json=json.dumps(spec, ensure_ascii=False))
        return trained, trained.vocab()

    def tokenize_batch(self, texts: Sequence[str]) -> list[list[str]]:
        # Not encode_batch_fast: it leaves Encoding.tokens empty (tokenizers 0.23).
        hf, texts = self._trained_hf(), as_texts(texts)
        with located_unicode_errors(texts):
            encodings = hf.encode_batch(texts, add_special_tokens=False)
        return [e.tokens for e in encodings]

    def detokenize(self, tokens: Sequence[str]) -> str:
        return self._trained_hf().decoder.decode(list(tokens))

    def numericalizer(self, vocab: Vocab) -> Numericalizer:
        if vocab != self.vocab():
            raise ConfigError("a bpe tokenizer only works with its own vocabulary (from fit())")
        hf = self._trained_hf()

        def numericalize(texts: list[str]) -> Ragged:
            # encode_batch_fast skips character offsets we do not need; batches run on all cores.
            lists = [e.ids for e in hf.encode_batch_fast(texts, add_special_tokens=False)]
            lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
            flat = np.fromiter(chain.from_iterable(lists), dtype=np.int64, count=int(lengths.sum()))
            return _ragged_from_lengths(flat, lengths)

        return numericalize

    def to_dict(self) -> dict[str, Any]:
        hf_json = None if self._hf is None else self._hf.to_str()
        return {"name": self.name, "vocab_size": self.vocab_size, "hf_json": hf_json}

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, trained={self.trained})"


# -- registry ------------------------------------------------------------------------------------

_REGISTRY: dict[str, type[Tokenizer]] = {
    cls.name: cls for cls in (BasicEnglishTokenizer, CharTokenizer, BPETokenizer)
}
TOKENIZERS: tuple[str, ...] = tuple(sorted(_REGISTRY))
"""The names `get_tokenizer` accepts."""


def get_tokenizer(name: str, **options: Any) -> Tokenizer:
    """The tokenizer registered as `name`, e.g. `get_tokenizer("bpe", vocab_size=8000)`.

    Raises:
        ConfigError: `name` is not one of `TOKENIZERS`, or an option is not one it accepts.
    """
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConfigError(f"unknown tokenizer {name!r}; valid names: {', '.join(TOKENIZERS)}")
    unknown = sorted(set(options) - set(cls.OPTIONS))
    if unknown:
        accepted = ", ".join(cls.OPTIONS) or "none"
        raise ConfigError(
            f"tokenizer {name!r} takes no option {unknown[0]!r}; options it accepts: {accepted}"
        )
    return cls(**options)


def tokenizer_from_dict(
    data: Any, source: str | Path | None = None, key: str = "tokenizer"
) -> Tokenizer:
    """The tokenizer described by `data` (from `Tokenizer.to_dict()`).

    Raises:
        DataError: naming `source` and the key that is missing or wrong.
    """
    if not isinstance(data, dict):
        raise DataError(
            f"expected a JSON object describing a tokenizer, got {type(data).__name__}",
            path=source,
            column=key,
        )
    name = data.get("name")
    if name not in _REGISTRY:
        raise DataError(
            f"unknown tokenizer {name!r}; valid names: {', '.join(TOKENIZERS)}",
            path=source,
            column=f"{key}.name",
        )
    if name != BPETokenizer.name:
        return _REGISTRY[name]()
    for field, kinds in (("vocab_size", (int,)), ("hf_json", (str, type(None)))):
        if not isinstance(data.get(field), kinds):
            raise DataError(
                f"expected {kinds[0].__name__}, got {type(data.get(field)).__name__}",
                path=source,
                column=f"{key}.{field}",
            )
    try:
        return BPETokenizer(data["vocab_size"], hf_json=data["hf_json"])
    except Exception as e:  # tokenizers raises a bare Exception for malformed JSON
        raise DataError(
            f"not a valid trained bpe tokenizer: {e}", path=source, column=f"{key}.hf_json"
        ) from e
