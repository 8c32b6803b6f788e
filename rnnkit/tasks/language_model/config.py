"""What a language-model run is made of: text, tokenizer, model, training, sample."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rnnkit.config import MAX_TOKENS, check_range, check_seeds, check_text_data
from rnnkit.errors import ConfigError
from rnnkit.models.language_model import LanguageModelConfig
from rnnkit.tasks.language_model.generate import SamplingConfig
from rnnkit.training import TrainConfig
from rnnkit.training.distill import DistillConfig

TASK = "language-model"
#: one line for `--help` and listings.
SUMMARY = "a character or subword language model that writes text"


@dataclass(frozen=True)
class LMDataConfig:
    """Which text, how it becomes ids, and how the id stream is cut into windows.

    Attributes:
        data: a registry name or a path (.txt file or folder of them); several joined by `+`
            (e.g. "shakespeare+rotten-tomatoes"). A labelled dataset contributes the texts of
            its classification training split only, so a classifier's test texts never leak.
        tokenizer: "char" (a character model; the default for generation) or "bpe" (subwords;
            shorter sequences per text), or "basic_english" (lower-cased words, to pre-train a
            classifier that uses the same tokenizer).
        vocab_size: the BPE vocabulary size (bpe only).
        min_freq: keep tokens seen at least this often (word tokenizers); 1 keeps every char.
        max_size: cap on a word vocabulary; None keeps all.
        validation: the last share of the stream held out for validation (contiguous, so no
            sentence is on both sides).
        test: a share after the validation part for a final evaluation; 0 by default, in which
            case `rnnkit evaluate` reports on the validation part.
        bptt: steps per truncated-BPTT window. 32: on a fixed budget of characters, shorter
            windows give more optimizer steps at nearly the same chars/s, and on shakespeare
            each halving from 128 lowered the validation loss (docs/benchmarks.md, "Language
            models"); the carried state gives context beyond the window.
        carry_state: start each window from the state the previous one ended with (detached);
            False resets it to zeros every window (the tutorial way; measured worse).
        eval_batch_size: rows of the validation stream; few rows mean few cold starts (each
            row begins with no context), so the loss hardly depends on the layout.
        split_seed: the classification split of a labelled source (matches `rnnkit train
            classifier`'s default, so its test texts stay unseen).
        streaming: "on" tokenises the corpus (one .txt file or folder) once, streaming, into a
            token file in the cache and trains from it without loading the text; "off" reads
            the text into memory; "auto" streams a corpus path of at least 256 MB
            (`data.STREAMING_BYTES`: in memory, the text, its split copies and their int64 ids
            peak at ~15 bytes per byte of a character corpus, so 256 MB would need ~4 GB;
            smaller corpora, every registry dataset included, keep the in-memory path).
        max_eval_tokens: streamed corpora only: validation and test are each cut to their first
            this many tokens. 200,000 (tiny-shakespeare's whole validation part is 111,540
            characters): the default model evaluates ~9k tokens/s in bf16 and ~3.5k in fp32 on
            2 CPU cores, so ~25 s per epoch and ~1 minute for the final fp32 figure, where the
            10% of a 2 GB corpus (200 M tokens) would take hours.
    """

    data: str = "shakespeare"
    tokenizer: Literal["char", "bpe", "basic_english"] = "char"
    vocab_size: int = 8000
    min_freq: int = 1
    max_size: int | None = None
    validation: float = 0.1
    test: float = 0.0
    bptt: int = 32
    carry_state: bool = True
    eval_batch_size: int = 16
    split_seed: int = 0
    streaming: Literal["auto", "on", "off"] = "auto"
    max_eval_tokens: int = 200_000

    def __post_init__(self) -> None:
        if self.streaming not in ("auto", "on", "off"):
            raise ConfigError(f"data.streaming must be auto, on or off, got {self.streaming!r}")
        if self.max_eval_tokens < 2:
            raise ConfigError(
                f"data.max_eval_tokens must be at least 2, got {self.max_eval_tokens}"
            )
        if self.bptt < 1:
            raise ConfigError(f"data.bptt must be at least 1, got {self.bptt}")
        if self.eval_batch_size < 1:
            raise ConfigError(
                f"data.eval_batch_size must be at least 1, got {self.eval_batch_size}"
            )
        check_text_data(self, "data")
        check_range("data.bptt", self.bptt, 1, MAX_TOKENS, "tokens per window")
        check_range("data.eval_batch_size", self.eval_batch_size, 1, 2**20, "rows of a batch")


def _default_train() -> TrainConfig:
    return TrainConfig(
        epochs=100,  # an upper bound: the 10-minute budget ends training first
        # rows read in parallel: 32 x 32 characters per step. Twice the steps of 64 rows at
        # slightly lower chars/s, and a lower 10-minute loss (docs/benchmarks.md)
        batch_size=32,
        lr=5e-3,  # the best of the 10-minute runs at bptt 32 (docs/benchmarks.md)
        weight_decay=0.01,
        schedule="onecycle",  # warm-up, then cosine decay to ~0 right at the budget's end
        warmup_fraction=0.03,  # language models need little warm-up; decay time matters more
        clip_norm=1.0,
        # bf16 autocast where the CPU has AVX-512 BF16 (oneDNN's bf16 LSTM is faster than fp32:
        # docs/benchmarks.md), fp16 on CUDA, fp32 elsewhere.
        precision="auto",
        patience=None,  # the loss keeps falling for the whole budget; no early stop
        max_minutes=10.0,  # the product's quality bar is set for 10 minutes of CPU training
    )


@dataclass(frozen=True)
class LanguageModelRunConfig:
    """Everything `rnnkit train language-model` needs; config files and --set map onto this."""

    data: LMDataConfig = field(default_factory=LMDataConfig)
    model: LanguageModelConfig = field(default_factory=LanguageModelConfig)
    train: TrainConfig = field(default_factory=_default_train)
    distill: DistillConfig = field(default_factory=DistillConfig)
    sample: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(max_tokens=600, temperature=0.8, seed=0)
    )

    def __post_init__(self) -> None:
        check_seeds(self)


#: the name before the task packages (issue 13); kept for code that imports it.
LMRunConfig = LanguageModelRunConfig
