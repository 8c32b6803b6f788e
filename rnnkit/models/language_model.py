"""Recurrent language model: embedding -> RecurrentEncoder -> linear decoder over the vocabulary.

    ids (B, T) ─► Embedding (+ word dropout) ─► locked dropout ─► RecurrentEncoder ─►
        locked dropout ─► Linear (tied to the embedding, optional) ─► logits (B, T, V)

State in, state out: `forward(ids, state)` returns the logits and the final state, and nothing is
kept on the module, so training carries the state across truncated-BPTT windows and generation
steps one token at a time with the state held by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rnnkit.errors import ConfigError
from rnnkit.models.dropout import EmbeddingDropout, LockedDropout, check_probability
from rnnkit.models.encoder import (
    MAX_VOCAB,
    MAX_WIDTH,
    EncoderConfig,
    RecurrentEncoder,
    State,
    check_parameters,
    check_size,
)


@dataclass(frozen=True)
class LanguageModelConfig:
    """Shape of a recurrent language model.

    Attributes:
        vocab_size: rows of the embedding and outputs of the decoder; set from the vocabulary.
        embedding_dim: 64 is plenty for ~100 characters; use hidden_size with `tie_weights`.
        cell: "lstm", "gru" or "rnn".
        hidden_size: 256 per layer: with two layers, the size a 2-core CPU trains fast enough to
            read shakespeare several times in 10 minutes (see docs/benchmarks.md).
        num_layers: 2; the second layer models words and verse structure on top of letters,
            and on this CPU 2x256 trains faster than 1x512.
        dropout: locked (variational) dropout on the encoder's output (Gal & Ghahramani,
            2016). 0.1: the few passes over shakespeare a 10-minute budget allows already
            memorise without it, and 0.1 here plus 0.1 between layers lowered the 10-minute
            loss (figures in docs/benchmarks.md, "The 10-minute bar"). Raise it (0.2-0.4) for
            small corpora or long training.
        input_dropout: locked dropout on the embedded inputs.
        embedding_dropout: drops whole token types (Gal & Ghahramani, 2016); 0 for characters,
            where dropping a letter everywhere is too harsh.
        rnn_dropout: locked dropout between stacked layers; 0.1 with `dropout` (see there).
        tie_weights: share the embedding matrix with the decoder (Press & Wolf, 2017; Inan et
            al., 2017): fewer parameters and better perplexity for word/subword models. Needs
            embedding_dim == hidden_size.
        norm: "none", "layer" or "batch" on each layer's output (`EncoderConfig.norm`); none by
            default, as in AWD-LSTM, whose dropouts already regularise it.
    """

    vocab_size: int = 0
    embedding_dim: int = 64
    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.1
    input_dropout: float = 0.0
    embedding_dropout: float = 0.0
    rnn_dropout: float = 0.1
    tie_weights: bool = False
    norm: str = "none"

    def __post_init__(self) -> None:
        for name in ("dropout", "input_dropout", "embedding_dropout", "rnn_dropout"):
            check_probability(getattr(self, name), name)
        if self.tie_weights and self.embedding_dim != self.hidden_size:
            raise ConfigError(
                f"tie_weights needs embedding_dim == hidden_size, got {self.embedding_dim} and "
                f"{self.hidden_size}; set model.embedding_dim={self.hidden_size}"
            )
        check_size("vocab_size", self.vocab_size, 0, MAX_VOCAB, "the largest word vocabularies")
        check_size("embedding_dim", self.embedding_dim, 1, MAX_WIDTH, "wider is not a small RNN")
        encoder = self.encoder_config()  # validates cell and sizes
        decoder = 0 if self.tie_weights else self.vocab_size * self.hidden_size
        embedding = self.vocab_size * self.embedding_dim
        check_parameters(embedding + encoder.num_parameters + decoder + self.vocab_size)

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(
            cell=self.cell,
            input_size=self.embedding_dim,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=False,  # a language model must not read ahead
            dropout=self.rnn_dropout if self.num_layers > 1 else 0.0,
            locked_dropout=True,  # AWD-LSTM's between-layer dropout; see EncoderConfig
            norm=self.norm,
        )


class LanguageModel(nn.Module):
    """Next-token logits from token ids, with the recurrent state passed in and out.

    Attribute names match `TextClassifier` (`embedding`, `embed`, `encoder`), so a classifier can
    start from a language model's weights (ULMFiT; see `rnnkit.tasks.classification.pipeline`).
    """

    def __init__(self, config: LanguageModelConfig) -> None:
        super().__init__()
        if config.vocab_size < 1:
            raise ConfigError("vocab_size must be set (at least 1) before building the model")
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.embed = EmbeddingDropout(self.embedding, config.embedding_dropout)
        self.input_dropout = LockedDropout(config.input_dropout)
        self.encoder = RecurrentEncoder(config.encoder_config())
        self.output_dropout = LockedDropout(config.dropout)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        if config.tie_weights:
            # Press & Wolf (2017); Inan et al. (2017): one matrix embeds and predicts tokens.
            self.decoder.weight = self.embedding.weight

    def forward(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Logits for the next token at every step.

        Args:
            ids: (B, T) token ids.
            state: the encoder state to start from (PyTorch's layout, (layers, B, H) tensors),
                or None for zeros.

        Returns:
            logits: (B, T, vocab_size).
            state: the state after the last step, to pass to the next call.
        """
        if ids.size(1) == 1 and state is not None and not self.training:
            return self._step(ids, state)
        x = self.input_dropout(self.embed(ids))  # (B, T, E)
        out, state = self.encoder(x, None, state)  # (B, T, H)
        assert state is not None
        return self.decoder(self.output_dropout(out)), state  # (B, T, V)

    def _step(self, ids: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step in eval mode through the cell functions: (B, 1) ids -> (B, 1, V).

        Generation calls the model once per token; for a single step, `torch.lstm_cell` and
        friends cost a fraction of a fused `nn.LSTM` call (oneDNN's per-call set-up dominates
        at T=1; see docs/benchmarks.md). Same weights and results as `forward`.
        """
        x = self.embedding(ids[:, 0])  # (B, E); dropout is off in eval mode
        lstm = self.encoder.is_lstm
        hs, cs = (state[0], state[1]) if lstm else (state, None)
        new_h, new_c = [], []
        for layer, (module,) in enumerate(self.encoder.layers):
            weights = module.all_weights[0]  # w_ih, w_hh, b_ih, b_hh
            if lstm:
                h, c = torch.lstm_cell(x, (hs[layer], cs[layer]), *weights)  # type: ignore[index]
                new_c.append(c)
            elif self.config.cell == "gru":
                h = torch.gru_cell(x, hs[layer], *weights)
            else:
                h = torch.rnn_tanh_cell(x, hs[layer], *weights)
            new_h.append(h)
            x = self.encoder.normalize(layer, h)  # (B, H); the state stays unnormalised
        out: State = (torch.stack(new_h), torch.stack(new_c)) if lstm else torch.stack(new_h)
        return self.decoder(x).unsqueeze(1), out  # (B, 1, V)
