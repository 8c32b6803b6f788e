"""`Vocab`: the token <-> id table, with four specials at fixed ids.

    id:     0       1       2       3       4 ...
    token:  <pad>   <unk>   <bos>   <eos>   most frequent token, next, ... (ties by token)

The specials sit at the same ids in every vocabulary so that padding, masking and generation code
can use constants instead of looking them up. The order after them is deterministic (frequency
descending, then token ascending by code point) so that the same corpus always gives the same ids,
and so the same embedding rows.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

from rnnkit.errors import ConfigError, DataError
from rnnkit.io import atomic_write_json

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

_FORMAT = "rnnkit.vocab"
_VERSION = 1


def _tokens_problem(tokens: Sequence[Any]) -> str | None:
    """What is wrong with a full token list (specials included), or None when it is valid."""
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            return f"entry {i} must be a string, got {type(token).__name__} {token!r}"
    if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
        return f"must start with the specials {list(SPECIALS)}, got {list(tokens[: len(SPECIALS)])}"
    seen: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token in seen:
            return f"token {token!r} appears twice, at entries {seen[token]} and {i}"
        seen[token] = i
    return None


class Vocab:
    """A token <-> id table whose first four ids are `<pad>`, `<unk>`, `<bos>`, `<eos>`.

    Tokens missing from the table encode to `<unk>` (id 1). A token in the text that happens to
    spell a special (the literal string "<pad>") maps to that special's id, as in torchtext.

    Args:
        tokens: every token in id order, starting with `SPECIALS`. Usually built with `build()` or
            `from_counts()` rather than by hand.

    Raises:
        ConfigError: `tokens` does not start with the specials, repeats a token or holds a
            non-string.
    """

    pad_id = PAD_ID
    unk_id = UNK_ID
    bos_id = BOS_ID
    eos_id = EOS_ID

    def __init__(self, tokens: Iterable[str]) -> None:
        itos = list(tokens)
        problem = _tokens_problem(itos)
        if problem is not None:
            raise ConfigError(f"vocabulary tokens {problem}")
        self._itos: tuple[str, ...] = tuple(itos)
        self._stoi: dict[str, int] = {token: i for i, token in enumerate(itos)}

    # -- building ---------------------------------------------------------------------------------

    @classmethod
    def build(
        cls, token_lists: Iterable[Iterable[str]], min_freq: int = 1, max_size: int | None = None
    ) -> Vocab:
        """Count tokens over a stream of token lists (one per text) and keep the frequent ones.

        The stream is read once, so a generator over a large corpus never sits in memory.

        Args:
            token_lists: e.g. `map(tokenizer.tokenize, texts)`.
            min_freq: keep tokens seen at least this many times.
            max_size: keep at most this many tokens *besides* the four specials (so
                `len(vocab) <= max_size + 4`): "the 20,000 most frequent words" then means 20,000
                words. None keeps every token that passes `min_freq`.
        """
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        return cls.from_counts(counts, min_freq=min_freq, max_size=max_size)

    @classmethod
    def from_counts(
        cls, counts: Mapping[str, int], min_freq: int = 1, max_size: int | None = None
    ) -> Vocab:
        """The vocabulary of already counted tokens; `min_freq` and `max_size` as in `build()`.

        Order: specials, then frequency descending, then token ascending (code point order), so
        equal counts never depend on the order the corpus was read in.
        """
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ConfigError(f"min_freq must be an integer >= 1, got {min_freq!r}")
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0
        ):
            raise ConfigError(f"max_size must be None or an integer >= 0, got {max_size!r}")
        # A literal "<unk>" in the text is counted like any token but must not get a second id.
        kept = [(t, n) for t, n in counts.items() if n >= min_freq and t not in SPECIALS]
        kept.sort(key=lambda item: (-item[1], item[0]))
        if max_size is not None:
            kept = kept[:max_size]
        return cls([*SPECIALS, *(t for t, _ in kept)])

    # -- lookups ----------------------------------------------------------------------------------

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every token in id order: `tokens[i]` has id `i` (e.g. to build an embedding matrix)."""
        return self._itos

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __iter__(self) -> Iterator[str]:
        return iter(self._itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._itos == other._itos

    def __hash__(self) -> int:
        return hash(self._itos)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {list(self._itos[:8])}{' ...' if len(self) > 8 else ''})"

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids, `<unk>`'s id for tokens not in the table. Shape: (len(tokens),)."""
        # map() with a default keeps the per-token work in C.
        return list(map(self._stoi.get, tokens, repeat(UNK_ID)))

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of `ids` (ints or NumPy integers).

        Raises:
            ConfigError: an id is outside `[0, len(self))`. Negative ids are refused rather than
                counted from the end as Python indexing would.
        """
        ids = [int(i) for i in ids]
        n = len(self._itos)
        for i in ids:
            if not 0 <= i < n:
                raise ConfigError(f"token id {i} is outside the vocabulary: ids run 0 to {n - 1}")
        return [self._itos[i] for i in ids]

    # -- serialisation ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description: `{"format", "version", "tokens"}`."""
        return {"format": _FORMAT, "version": _VERSION, "tokens": list(self._itos)}

    @classmethod
    def from_dict(cls, data: Any, source: str | Path | None = None, key: str = "") -> Vocab:
        """The vocabulary described by `data` (as written by `to_dict()`).

        Args:
            data: the parsed JSON.
            source: the file it came from, named in errors.
            key: the dotted key `data` sits under inside a larger JSON document, named in errors.

        Raises:
            DataError: naming `source` and the key that is missing or wrong.
        """
        prefix = f"{key}." if key else ""
        if not isinstance(data, dict):
            raise DataError(
                f"expected a JSON object describing a vocabulary, got {type(data).__name__}",
                path=source,
                column=key or None,
            )
        if data.get("format") != _FORMAT:
            raise DataError(
                f"expected {_FORMAT!r}, got {data.get('format')!r}: not an rnnkit vocabulary",
                path=source,
                column=f"{prefix}format",
            )
        if data.get("version") != _VERSION:
            raise DataError(
                f"unsupported version {data.get('version')!r}; this rnnkit reads {_VERSION}",
                path=source,
                column=f"{prefix}version",
            )
        tokens = data.get("tokens")
        if not isinstance(tokens, list):
            raise DataError(
                f"expected a list of token strings, got {type(tokens).__name__}",
                path=source,
                column=f"{prefix}tokens",
            )
        problem = _tokens_problem(tokens)
        if problem is not None:
            raise DataError(problem, path=source, column=f"{prefix}tokens")
        return cls(tokens)

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON, atomically: an interrupted save leaves the old file."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by `save()`.

        Raises:
            DataError: the file cannot be read, is not JSON, or a key is missing or malformed.
        """
        return cls.from_dict(read_json(path), source=path)


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; an unreadable or malformed one raises a `DataError` naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise DataError(f"cannot read the file: {reason}", path=path) from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        reason = f"not valid JSON: {e.msg} (column {e.colno})"
        raise DataError(reason, path=path, line=e.lineno) from e
