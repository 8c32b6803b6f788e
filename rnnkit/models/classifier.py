"""Text classifier: embedding -> recurrent encoder -> pooling -> dropout -> linear head.

    ids (B, T) ─► Embedding (+ word dropout) ─► RecurrentEncoder ─► pool ─► logits (B, C)

Pooling:
- `last`: the final hidden state of each direction at the sequence's true end (forward: step
  `length - 1`; backward: step 0), concatenated.
- `mean` / `max`: over the valid steps only; padding never enters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from rnnkit.errors import ConfigError
from rnnkit.models.dropout import EmbeddingDropout
from rnnkit.models.encoder import (
    MAX_VOCAB,
    MAX_WIDTH,
    EncoderConfig,
    RecurrentEncoder,
    check_parameters,
    check_size,
    gather_last,
)

POOLINGS = ("last", "mean", "max")
#: classes of one classifier: a label set past this is ids or free text, not classes.
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class ClassifierConfig:
    """Shape of a text classifier.

    Attributes:
        vocab_size: rows of the embedding; set from the vocabulary at training time.
        num_classes: outputs of the head; set from the training labels.
        embedding_dim: 50 matches the bundled GloVe 6B 50d vectors.
        cell: "lstm", "gru" or "rnn".
        hidden_size: 128 per direction: enough for sentences, quick on a CPU.
        num_layers: 1; a second layer rarely helps short texts.
        bidirectional: True; reading both ways helps classification (sentiment often turns late).
        pooling: "max" keeps the strongest evidence anywhere in the text; "last" and "mean" are
            the alternatives.
        dropout: before the head; 0.3 against over-fitting small labelled sets.
        rnn_dropout: between stacked layers (no effect with one layer).
        embedding_dropout: drops whole word types per batch (Gal & Ghahramani, 2016).
        padding_idx: the `<pad>` id, whose embedding stays zero.
        norm: "none", "layer" or "batch" on each layer's output (`EncoderConfig.norm`); none by
            default: one or two layers over sentences train well without it.
    """

    vocab_size: int = 0
    num_classes: int = 2
    embedding_dim: int = 50
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    pooling: Literal["last", "mean", "max"] = "max"
    dropout: float = 0.3
    rnn_dropout: float = 0.2
    embedding_dropout: float = 0.1
    padding_idx: int = 0
    norm: str = "none"

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.num_classes < 2 and self.vocab_size:
            raise ConfigError(f"a classifier needs at least 2 classes, got {self.num_classes}")
        for name in ("dropout", "embedding_dropout", "rnn_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        check_size("vocab_size", self.vocab_size, 0, MAX_VOCAB, "the largest word vocabularies")
        check_size("num_classes", self.num_classes, 0, MAX_CLASSES, "labels, not ids")
        check_size("embedding_dim", self.embedding_dim, 1, MAX_WIDTH, "wider is not a small RNN")
        if not 0 <= self.padding_idx < max(self.vocab_size, 1):
            raise ConfigError(
                f"padding_idx must be an id of the vocabulary (0 to {max(self.vocab_size, 1) - 1})"
                f", got {self.padding_idx}"
            )
        encoder = self.encoder_config()  # validates cell, sizes
        head = encoder.hidden_size * (2 if self.bidirectional else 1) * (self.num_classes + 1)
        check_parameters(self.vocab_size * self.embedding_dim + encoder.num_parameters + head)

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(
            cell=self.cell,
            input_size=self.embedding_dim,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.rnn_dropout if self.num_layers > 1 else 0.0,
            norm=self.norm,
        )


def valid_mask(lengths: Tensor, steps: int) -> Tensor:
    """(B,) lengths -> (B, T) bool, True at real steps."""
    return torch.arange(steps, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class TextClassifier(nn.Module):
    """Embedding, recurrent encoder, pooling and a linear head; returns logits."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(
            config.vocab_size, config.embedding_dim, padding_idx=config.padding_idx
        )
        self.embed = EmbeddingDropout(self.embedding, config.embedding_dropout)
        self.encoder = RecurrentEncoder(config.encoder_config())
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.encoder.output_size, config.num_classes)

    def load_embeddings(self, matrix: Tensor, freeze: bool) -> None:
        """Copy pretrained vectors (V, D) into the embedding; optionally freeze them."""
        if tuple(matrix.shape) != tuple(self.embedding.weight.shape):
            raise ConfigError(
                f"pretrained vectors have shape {tuple(matrix.shape)}, the embedding "
                f"{tuple(self.embedding.weight.shape)}; set embedding_dim={matrix.shape[1]}"
            )
        with torch.no_grad():
            self.embedding.weight.copy_(matrix)
        self.embedding.weight.requires_grad_(not freeze)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """Class logits.

        Args:
            ids: (B, T) token ids, right-padded.
            lengths: (B,) true lengths, each >= 1.

        Returns:
            (B, num_classes) logits.
        """
        x = self.embed(ids)  # (B, T, E)
        outputs, _ = self.encoder(x, lengths, return_state=False)  # (B, T, H * dirs)
        pooled = self.pool(outputs, lengths.to(outputs.device))  # (B, H * dirs)
        return self.head(self.dropout(pooled))

    def pool(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        pooling = self.config.pooling
        if pooling == "last":
            h = self.config.hidden_size
            forward_last = gather_last(outputs[..., :h], lengths)  # (B, H)
            if not self.config.bidirectional:
                return forward_last
            return torch.cat([forward_last, outputs[:, 0, h:]], dim=-1)  # backward ends at 0
        mask = valid_mask(lengths, outputs.size(1)).unsqueeze(-1)  # (B, T, 1)
        if pooling == "mean":
            return (outputs * mask).sum(1) / lengths.unsqueeze(1).to(outputs.dtype)
        return outputs.masked_fill(~mask, torch.finfo(outputs.dtype).min).amax(1)
