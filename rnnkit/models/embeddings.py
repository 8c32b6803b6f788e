"""Pretrained word vectors aligned to a model's vocabulary.

    vectors = load_word_vectors("glove-6b-50d")          # rnnkit.data.vectors: registry or .txt
    matrix, coverage = align_vectors(vectors, tokens)    # (len(tokens), D) float32, row 0 zero
    embedding = nn.Embedding.from_pretrained(torch.from_numpy(matrix), freeze=False, padding_idx=0)

Reading vectors is the data layer's job (`rnnkit.data.vectors`); this module only decides which
row each vocabulary token gets.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rnnkit.data.types import WordVectors
from rnnkit.errors import ConfigError

logger = logging.getLogger(__name__)

#: Tokens that are never looked up: they mean something to our model, not to GloVe.
SPECIAL_TOKENS: frozenset[str] = frozenset({"<pad>", "<unk>", "<bos>", "<eos>"})

#: How many missing tokens `EmbeddingCoverage` keeps as examples.
MAX_MISSING_EXAMPLES = 10


@dataclass(frozen=True)
class EmbeddingCoverage:
    """How much of a vocabulary the pretrained vectors cover.

    Specials (`SPECIAL_TOKENS` and the pad token) are not looked up and not counted: the
    percentage is about the words the data brought.

    Attributes:
        found: vocabulary tokens that got a pretrained vector (exact or lower-cased match).
        lowercased: of those, the ones found only through their lower-cased form.
        total: vocabulary tokens looked up (specials excluded).
        missing_examples: up to 10 tokens not found, in vocabulary (most frequent first) order.
        source: the vectors' name: a registry name or a path.
        dim: the vectors' dimension D.
    """

    found: int
    lowercased: int
    total: int
    missing_examples: list[str]
    source: str
    dim: int

    @property
    def missing(self) -> int:
        return self.total - self.found

    @property
    def fraction(self) -> float:
        """found / total, 0.0 for a vocabulary of specials only."""
        return self.found / self.total if self.total else 0.0

    def __str__(self) -> str:
        text = f"{self.source}: {self.found:,} of {self.total:,} vocabulary tokens found"
        if self.total:
            percent = f"{100 * self.fraction:.1f}%"
            if percent == "100.0%" and self.missing:  # never claim all when some are missing
                percent = ">99.9%"
            elif percent == "0.0%" and self.found:
                percent = "<0.1%"
            text += f" ({percent}, {self.lowercased:,} via lower-case)"
        if self.missing_examples:
            shown = self.missing_examples[:5]
            more = ", ..." if self.missing > len(shown) else ""
            text += "; missing e.g. " + ", ".join(map(repr, shown)) + more
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-able fields, plus `missing` and `fraction`, for a run's config or report."""
        return {**asdict(self), "missing": self.missing, "fraction": round(self.fraction, 4)}


def align_vectors(
    vectors: WordVectors,
    tokens: Sequence[str],
    *,
    pad_index: int | None = 0,
    seed: int = 0,
    specials: Collection[str] = SPECIAL_TOKENS,
) -> tuple[np.ndarray, EmbeddingCoverage]:
    """An embedding matrix for `tokens`, filled from pretrained vectors where they have the word.

    Row i is for `tokens[i]`:
    - the pad row is zeros (so padding adds nothing, as `nn.Embedding(padding_idx=...)` expects);
    - a token in `vectors` copies its vector; failing an exact match, its lower-cased form is
      tried (GloVe 6B is lower-cased, so "Film" finds "film");
    - everything else, specials included, is drawn from N(0, sigma), sigma being the standard
      deviation of the found vectors' values, so new rows start at the pretrained rows' scale.
      The draws come from `numpy.random.default_rng(seed)` in row order: same inputs, same matrix.

    Args:
        vectors: the pretrained vectors (see `rnnkit.data.vectors.load_word_vectors`).
        tokens: the vocabulary, `tokens[i]` being the entry with id i, specials included.
        pad_index: the padding id, or None for a vocabulary without one.
        seed: seed of the random rows.
        specials: tokens never looked up (always random); the pad token never is either.

    Returns:
        matrix: (len(tokens), D) float32.
        coverage: what was found, for the log and the run's report.

    Raises:
        ConfigError: `pad_index` outside the vocabulary.
    """
    n = len(tokens)
    if pad_index is not None and (
        isinstance(pad_index, bool) or not isinstance(pad_index, int) or not 0 <= pad_index < n
    ):
        raise ConfigError(
            f"pad_index must be None or an id in [0, {n}) for {n} tokens, got {pad_index!r}"
        )
    index = vectors.index
    rows = np.full(n, -1, dtype=np.int64)  # source row per token; -1: not found
    total = lowercased = 0
    missing_examples: list[str] = []
    for i, token in enumerate(tokens):
        if i == pad_index or token in specials:
            continue
        total += 1
        row = index.get(token)
        if row is None and (lower := token.lower()) != token:
            row = index.get(lower)
            lowercased += row is not None
        if row is None:
            if len(missing_examples) < MAX_MISSING_EXAMPLES:
                missing_examples.append(token)
        else:
            rows[i] = row

    found = rows >= 0
    matrix = np.zeros((n, vectors.dim), dtype=np.float32)
    matrix[found] = vectors.vectors[rows[found]]
    if found.any():
        sigma = float(matrix[found].std(dtype=np.float64))
    else:
        # Nothing to measure on; the whole source is the next best scale.
        sigma = float(vectors.vectors.std(dtype=np.float64))
    random = ~found
    if pad_index is not None:
        random[pad_index] = False
    rng = np.random.default_rng(seed)
    matrix[random] = rng.normal(0.0, sigma, size=(int(random.sum()), vectors.dim))

    coverage = EmbeddingCoverage(
        found=int(found.sum()),
        lowercased=lowercased,
        total=total,
        missing_examples=missing_examples,
        source=vectors.name,
        dim=vectors.dim,
    )
    logger.info("%s", coverage)
    if total and coverage.fraction < 0.5:
        logger.warning(
            "%s covers only %.0f%% of the vocabulary: check the tokenizer matches the vectors "
            "(lower-casing, punctuation split off)",
            vectors.name,
            100 * coverage.fraction,
        )
    return matrix, coverage
