"""`TextEncoder`: a tokenizer and its vocabulary together, the one object that turns text into ids.

    texts --tokenizer--> tokens --vocab--> ids      (one batched pass in native code)
    ids   --vocab--> tokens --tokenizer--> text

Models, data loaders, the CLI and the server all hold a `TextEncoder`; it saves to one JSON file
(`save` / `load`), so a model's vocabulary travels with its weights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import ConfigError, DataError
from rnnkit.io import atomic_write_json
from rnnkit.text.tokenizers import (
    TOKENIZERS,
    BPETokenizer,
    Tokenizer,
    as_texts,
    get_tokenizer,
    located_unicode_errors,
    tokenizer_from_dict,
)
from rnnkit.text.vocab import BOS_ID, EOS_ID, PAD_ID, Vocab, read_json

_FORMAT = "rnnkit.text_encoder"
_VERSION = 1


@dataclass(frozen=True)
class RaggedIds:
    """The token ids of many texts in one flat array, without padding.

    Text i's ids are `ids[offsets[i]:offsets[i + 1]]` (also `ragged[i]`).

    Attributes:
        ids: int64, shape (total_tokens,).
        offsets: int64, shape (num_texts + 1,); `offsets[0] == 0`, `offsets[-1] == total_tokens`.
    """

    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per text, int64 (num_texts,)."""
        return np.diff(self.offsets)

    def to_lists(self) -> list[list[int]]:
        """One list of ids per text."""
        # Slicing the array then tolist() beat one big tolist() sliced per text (fewer refcounts).
        return [self.ids[a:b].tolist() for a, b in pairwise(self.offsets.tolist())]

    def padded(self, length: int | None = None, pad_id: int = PAD_ID) -> np.ndarray:
        """A (num_texts, length) int64 matrix, each row's ids followed by `pad_id`.

        Args:
            length: columns; None for the longest text. Longer texts are cut to `length`.
            pad_id: the filler id.
        """
        lengths = self.lengths
        if length is None:
            length = int(lengths.max()) if len(lengths) else 0
        out = np.full((len(lengths), length), pad_id, dtype=np.int64)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        cols = np.arange(len(self.ids)) - np.repeat(self.offsets[:-1], lengths)
        keep = cols < length
        out[rows[keep], cols[keep]] = self.ids[keep]
        return out


def _frame(
    ids: np.ndarray, offsets: np.ndarray, bos: bool, eos: bool, max_length: int | None
) -> RaggedIds:
    """Put `<bos>` / `<eos>` around each text, then keep each text's first `max_length` ids.

    Truncation comes last, so a cut text loses its `<eos>`: the marker means "the text ended here",
    which is not true of a cut text. Vectorised over the whole batch.
    """
    lengths = np.diff(offsets)
    framed_lengths = lengths + int(bos) + int(eos)
    framed_offsets = np.zeros_like(offsets)
    np.cumsum(framed_lengths, out=framed_offsets[1:])
    if bos or eos:
        out = np.empty(int(framed_offsets[-1]), dtype=np.int64)
        shift = np.repeat(framed_offsets[:-1] - offsets[:-1] + int(bos), lengths)
        out[np.arange(len(ids)) + shift] = ids
        if bos:
            out[framed_offsets[:-1]] = BOS_ID
        if eos:
            out[framed_offsets[1:] - 1] = EOS_ID
        ids = out
    if max_length is not None and len(ids):
        position = np.arange(len(ids)) - np.repeat(framed_offsets[:-1], framed_lengths)
        ids = ids[position < max_length]
        np.cumsum(np.minimum(framed_lengths, max_length), out=framed_offsets[1:])
    return RaggedIds(ids, framed_offsets)


def _tokenizer(tokenizer: str | Tokenizer, vocab_size: int) -> Tokenizer:
    """The tokenizer named `tokenizer` (`vocab_size` for bpe), or `tokenizer` itself."""
    if isinstance(tokenizer, str):
        options = {"vocab_size": vocab_size} if tokenizer == BPETokenizer.name else {}
        return get_tokenizer(tokenizer, **options)
    if not isinstance(tokenizer, Tokenizer):
        raise ConfigError(
            f"tokenizer must be a name ({', '.join(TOKENIZERS)}) or a Tokenizer, "
            f"got {type(tokenizer).__name__}"
        )
    return tokenizer


class TextEncoder:
    """Text <-> ids with one tokenizer and its vocabulary.

    Build it from training texts with `TextEncoder.build`, or load a saved one. A batch is encoded
    in native code as a whole (Arrow for `basic_english`, NumPy for `char`, Rust for `bpe`), several
    times faster than a Python loop per text; see `benchmarks/bench_text.py`.

    Args:
        tokenizer: how text splits into tokens.
        vocab: the ids of those tokens. For `bpe`, the tokenizer's own vocabulary.

    Raises:
        ConfigError: a `bpe` tokenizer with a vocabulary other than its own.
    """

    def __init__(self, tokenizer: Tokenizer, vocab: Vocab) -> None:
        self._tokenizer = tokenizer
        self._vocab = vocab
        self._numericalize = tokenizer.numericalizer(vocab)

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        tokenizer: str | Tokenizer = "basic_english",
        min_freq: int = 1,
        max_size: int | None = None,
        vocab_size: int = 8000,
    ) -> TextEncoder:
        """Learn the vocabulary of `texts`.

        Args:
            texts: the training texts (not validation or test: that would leak their words).
            tokenizer: a name from `TOKENIZERS`, or a tokenizer object (a `bpe` one is trained
                afresh; to reuse a trained one, use `TextEncoder(tokenizer, tokenizer.vocab())`).
            min_freq: word-level tokenizers keep tokens seen at least this often; `bpe` merges
                only pairs seen at least this often.
            max_size: word-level tokenizers keep at most this many tokens besides the 4 specials;
                must be None for `bpe`.
            vocab_size: `bpe` only (ignored otherwise): the most tokens, specials and 256 byte
                symbols included.

        Raises:
            ConfigError: an unknown tokenizer name, or an option out of range.
            DataError: a text that is not a str or not valid Unicode.
        """
        fitted, vocab = _tokenizer(tokenizer, vocab_size).fit(
            as_texts(texts), min_freq=min_freq, max_size=max_size
        )
        return cls(fitted, vocab)

    @classmethod
    def build_stream(
        cls,
        chunks: Iterable[str],
        tokenizer: str | Tokenizer = "basic_english",
        min_freq: int = 1,
        max_size: int | None = None,
        vocab_size: int = 8000,
    ) -> TextEncoder:
        """As `build`, over one text read in chunks, holding one chunk at a time.

        For corpora larger than memory: `char` and word tokenizers count tokens chunk by chunk,
        `bpe` trains through `tokenizers`' `train_from_iterator`. Each chunk must end where a
        token may end (`rnnkit.text.token_file.Corpus.chunks` cuts them so), so the vocabulary
        is the one `build([whole_text])` learns.

        Args:
            chunks: consecutive pieces of the training text.
            tokenizer, min_freq, max_size, vocab_size: as in `build`.

        Raises:
            ConfigError: an unknown tokenizer name, or an option out of range.
            DataError: a chunk that is not a str or not valid Unicode.
        """
        return cls(*_tokenizer(tokenizer, vocab_size).fit_stream(chunks, min_freq, max_size))

    # -- properties -------------------------------------------------------------------------------

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    @property
    def vocab(self) -> Vocab:
        return self._vocab

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def unk_id(self) -> int:
        return self._vocab.unk_id

    @property
    def bos_id(self) -> int:
        return BOS_ID

    @property
    def eos_id(self) -> int:
        return EOS_ID

    # -- text -> ids ------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """The tokens of `text`; `len(tokenize(t)) == len(encode(t))`."""
        return self._tokenizer.tokenize(text)

    def encode_batch_arrays(
        self,
        texts: Iterable[str],
        max_length: int | None = None,
        add_bos: bool = False,
        add_eos: bool = False,
    ) -> RaggedIds:
        """The ids of every text, as one flat int64 array plus offsets (no Python list per text).

        The fastest form, and the one to keep a whole dataset in: (total_tokens,) + (n + 1,).

        Args:
            texts: the texts to encode.
            max_length: keep each text's first `max_length` ids (after adding `<bos>`/`<eos>`, so a
                cut text has no `<eos>`); None keeps all.
            add_bos: start every text with `<bos>` (id 2).
            add_eos: end every text with `<eos>` (id 3).

        Raises:
            ConfigError: `texts` is a single str, or `max_length` is not a positive integer.
            DataError: a text that is not a str or not valid Unicode, naming its index.
        """
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
        ):
            raise ConfigError(f"max_length must be None or an integer >= 1, got {max_length!r}")
        texts = as_texts(texts)
        with located_unicode_errors(texts):
            ids, offsets = self._numericalize(texts)
        return _frame(ids, offsets, add_bos, add_eos, max_length)

    def encode_batch(
        self,
        texts: Iterable[str],
        max_length: int | None = None,
        add_bos: bool = False,
        add_eos: bool = False,
    ) -> list[list[int]]:
        """The ids of every text, one list per text; arguments as `encode_batch_arrays`."""
        return self.encode_batch_arrays(texts, max_length, add_bos, add_eos).to_lists()

    def encode(
        self,
        text: str,
        max_length: int | None = None,
        add_bos: bool = False,
        add_eos: bool = False,
    ) -> list[int]:
        """The ids of one text; arguments as `encode_batch_arrays`."""
        if not isinstance(text, str):
            raise ConfigError(f"encode() takes one str, got {type(text).__name__}")
        return self.encode_batch([text], max_length, add_bos, add_eos)[0]

    # -- ids -> text ------------------------------------------------------------------------------

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Text from ids: exact for `char` and `bpe`, space-joined words for `basic_english`.

        Args:
            ids: token ids (ints, NumPy integers or a 1-D tensor).
            skip_special: leave out `<pad>`, `<bos>` and `<eos>`. `<unk>` is always written out,
                since dropping it would hide that a word was unknown.

        Raises:
            ConfigError: an id outside the vocabulary.
        """
        ids = [int(i) for i in ids]
        if skip_special:
            ids = [i for i in ids if i not in (PAD_ID, BOS_ID, EOS_ID)]
        return self._tokenizer.detokenize(self._vocab.decode(ids))

    # -- serialisation ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: `{"format", "version", "tokenizer": {...}, "vocab": {...}}`."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "tokenizer": self._tokenizer.to_dict(),
            "vocab": self._vocab.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str | Path | None = None) -> TextEncoder:
        """The encoder described by `data` (from `to_dict()`).

        Raises:
            DataError: naming `source` and the key that is missing or wrong.
        """
        if not isinstance(data, dict):
            raise DataError(
                f"expected a JSON object describing a text encoder, got {type(data).__name__}",
                path=source,
            )
        if data.get("format") != _FORMAT:
            raise DataError(
                f"expected {_FORMAT!r}, got {data.get('format')!r}: not an rnnkit text encoder",
                path=source,
                column="format",
            )
        if data.get("version") != _VERSION:
            raise DataError(
                f"unsupported version {data.get('version')!r}; this rnnkit reads {_VERSION}",
                path=source,
                column="version",
            )
        tokenizer = tokenizer_from_dict(data.get("tokenizer"), source=source, key="tokenizer")
        vocab = Vocab.from_dict(data.get("vocab"), source=source, key="vocab")
        try:
            encoder = cls(tokenizer, vocab)
        except ConfigError as e:
            raise DataError(str(e), path=source, column="vocab") from e
        # `save` records the content's sha256: an edited token would otherwise load as a valid
        # vocabulary and silently change every answer. Files written before it load unchecked.
        stored = data.get("sha256")
        if stored is not None and stored != encoder.sha256():
            raise DataError(
                "the tokenizer does not match its sha256: the file was edited or damaged "
                "after training; restore it from the run it came from",
                path=source,
                column="sha256",
            )
        return encoder

    def save(self, path: str | Path) -> None:
        """Write one JSON file, atomically: an interrupted save leaves the previous file intact.

        The file carries the content's `sha256()`, checked by `load`.
        """
        atomic_write_json(path, {**self.to_dict(), "sha256": self.sha256()})

    @classmethod
    def load(cls, path: str | Path) -> TextEncoder:
        """Read an encoder written by `save()`.

        Raises:
            DataError: the file cannot be read, is not JSON, or a key is missing or malformed.
        """
        return cls.from_dict(read_json(path), source=path)

    def sha256(self) -> str:
        """Hex sha256 of the encoder's JSON (keys sorted): equal encoders, equal hashes."""
        text = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TextEncoder)
            and self._tokenizer == other._tokenizer
            and self._vocab == other._vocab
        )

    __hash__ = None  # type: ignore[assignment]  # equality by content; not meant as a dict key

    def __repr__(self) -> str:
        return f"TextEncoder({self._tokenizer!r}, vocab of {len(self._vocab)} tokens)"
