"""Dropout for recurrent text models: the AWD-LSTM tricks as small named modules.

Plain `nn.Dropout` draws a fresh mask for every element, so along a sequence it drops a different
part of the signal at every step and a word's embedding differently at each occurrence. Recurrent
networks regularise better when the mask is tied to what it is meant to drop:

- `EmbeddingDropout`: whole word *types*: a dropped word is zero wherever it occurs in the batch.
- `LockedDropout`: the same features at every time step of a sequence (variational dropout).

Both scale what they keep by 1/(1-p), so a unit's expected value is unchanged and evaluation
needs no rescaling, and both are the identity in eval mode or with p=0.
"""

from __future__ import annotations

import numbers

from torch import Tensor, nn

from rnnkit.errors import ConfigError


def check_probability(p: float, name: str = "p") -> float:
    """`p` as a float if it is a dropout probability in [0, 1); a `ConfigError` otherwise.

    1 is refused: it would drop everything and the 1/(1-p) rescaling would divide by zero.
    """
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
        raise ConfigError(f"{name} must be a dropout probability in [0, 1), got {p!r}")
    return float(p)


class EmbeddingDropout(nn.Module):
    """Drops whole word types from an embedding (Gal & Ghahramani, 2016; Merity et al., 2018).

    Wraps an `nn.Embedding`. In training, each forward pass draws one keep-or-drop decision per
    row of the vocabulary: a dropped word is all zeros at every position of the batch, a kept one
    is scaled by 1/(1-p). `padding_idx`, `max_norm` and sparse gradients behave as in the
    wrapped embedding (the pad row is zero and gets no gradient).

    Multiplying the looked-up vectors by the looked-up mask, rather than masking the whole weight
    matrix as fastai does, costs O(B * T * D) instead of O(V * D) per step (the difference is
    large with 400k-word GloVe vocabularies) and gives the same values and gradients.

    Args:
        embedding: the embedding to regularise; its weight stays the parameter (tie to it).
        p: the probability of dropping a word type; AWD-LSTM uses 0.1, ULMFiT 0.02.

    Raises:
        ConfigError: `p` outside [0, 1).
    """

    def __init__(self, embedding: nn.Embedding, p: float) -> None:
        super().__init__()
        self.embedding = embedding
        self.p = check_probability(p)

    def forward(self, ids: Tensor) -> Tensor:
        """Look up `ids`.

        Args:
            ids: (B, T) token ids (any shape works; (B, T) is the usual one).

        Returns:
            (B, T, D) embeddings, with dropped word types zeroed in training.
        """
        out = self.embedding(ids)  # (B, T, D)
        if not self.training or self.p == 0.0:
            return out
        weight = self.embedding.weight
        keep = weight.new_empty(weight.size(0)).bernoulli_(1.0 - self.p) / (1.0 - self.p)  # (V,)
        return out * keep[ids].unsqueeze(-1)  # (B, T, D) * (B, T, 1)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LockedDropout(nn.Module):
    """One dropout mask for every time step of a sequence (Gal & Ghahramani, 2016).

    Also known as variational dropout, or fastai's `RNNDropout`. Used on embeddings and between
    recurrent layers in AWD-LSTM (Merity et al., 2018). Each sequence of the batch draws its own
    (D,) mask; kept features are scaled by 1/(1-p).

    Args:
        p: the probability of dropping a feature; AWD-LSTM uses 0.4 on inputs, 0.25 between
            layers.

    Raises:
        ConfigError: `p` outside [0, 1).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = check_probability(p)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the mask.

        Args:
            x: (B, T, D) batch-first sequences.

        Returns:
            (B, T, D); in training the same features are zero at every step of a sequence.
        """
        if not self.training or self.p == 0.0:
            return x
        if x.dim() != 3:
            raise ValueError(f"LockedDropout expects (B, T, D) inputs, got shape {tuple(x.shape)}")
        keep = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1.0 - self.p)  # (B, 1, D)
        return x * keep.div_(1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
