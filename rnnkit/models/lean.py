"""A lean NumPy step through a trained encoder and forecaster head, for streaming one point.

Why not call the modules: one step through `nn.LSTM` (or `nn.LSTMCell`) plus the head costs as
much dispatch on a CPU as re-running a 50-step window through the fused kernel, while the
arithmetic of a 64-unit step is far smaller (timings in docs/benchmarks.md, "Forecasting"). So
the weights are copied once into float32 matrices laid out for as few NumPy calls as possible:

- each layer reads one contiguous vector ``[input (I), h (Hd), 1]``, so the gates are a single
  matrix-vector product with the bias folded in as the last column;
- LSTM gate rows are reordered to (i, f, o, g) with the sigmoid rows halved, so one `tanh`
  serves all four gates (sigmoid(x) = (1 + tanh(x / 2)) / 2);
- the head's exact GELU (NumPy has no `erf`) is tabulated at 1e-3 steps over [-8, 8] and
  interpolated linearly (error < 1e-7; linear beyond, where GELU is 0 or x). The first layer
  is prescaled so its outputs are grid coordinates: the table lookup is index arithmetic, not
  the branchy binary search of `np.interp`, which is slower on changing data.
- an output norm (`EncoderConfig.norm`) runs in eval form: batch norm as one per-feature scale
  and shift from its running statistics, layer norm on the step's features. The recurrent h
  stays in its layer's buffer; the normalised copy goes to the next layer's input slot (and,
  after the top layer, to the head's `tail`), which then no longer alias h.

State in, state out: `LeanState` holds the per-layer buffers; `LeanEncoder.step(state)` reads
the input the caller wrote into `state.x` and updates the state in place. Parity with the modules
is tested to 1e-5 (tests/models/test_lean.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rnnkit.models.encoder import RecurrentEncoder, State
from rnnkit.models.norm import GroupedLayerNorm, MaskedBatchNorm

_STEP, _LOW = 1e-3, -8.0  # the GELU table's spacing and start; Phi(-8) ~ 6e-16
_GELU = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in np.linspace(-8, 8, 16_001)])
_GELU_AT, _GELU_SLOPE = _GELU[:-1], np.diff(_GELU)  # value and rise of each grid segment


@dataclass
class LeanState:
    """Per-layer buffers of a lean encoder, for one stream.

    Attributes:
        vectors: per layer, float32 ``[input (I), h (Hd), 1]`` (views).
        cells: per layer, the LSTM work buffer ``[i, f, o, g, c]`` (5 Hd), or None.
        hidden_size: Hd.
        tail: ``[out (Hd), 1, extra]``: the top layer's output (its h, in place, when the
            encoder has no norm), a head can read it in place, the caller writing its own
            inputs into the `extra` slots.
    """

    vectors: list[np.ndarray]
    cells: list[np.ndarray | None]
    hidden_size: int
    tail: np.ndarray

    def __post_init__(self) -> None:
        # Views into the buffers, made once: slicing costs as much as a small NumPy op.
        hd = self.hidden_size
        self.hs = [v[v.size - 1 - hd : v.size - 1] for v in self.vectors]
        self.next_inputs = [v[:hd] for v in self.vectors[1:]]
        self.top = self.tail[:hd]  # the encoder's output: the top h, normalised if it has a norm
        self.lstm_views = [  # gates, their sigmoid part, [i, f], [g, c], c, o
            None
            if w is None
            else (
                w[: 4 * hd],
                w[: 3 * hd],
                w[: 2 * hd],
                w[3 * hd :],
                w[4 * hd :],
                w[2 * hd : 3 * hd],
            )
            for w in self.cells
        ]

    @property
    def x(self) -> np.ndarray:
        """(F,) layer 0's input slot, a view: write the step's features here before `step`."""
        v = self.vectors[0]
        return v[: v.size - 1 - self.hidden_size]

    def h(self, layer: int = -1) -> np.ndarray:
        """(Hd,) the hidden state (output) of `layer`, a view."""
        return self.hs[layer]


class LeanEncoder:
    """The step function of a unidirectional `RecurrentEncoder`, in float32 NumPy.

    Args:
        encoder: a trained encoder (any cell, any depth, not bidirectional).
    """

    def __init__(self, encoder: RecurrentEncoder) -> None:
        if encoder.num_directions != 1:
            raise ValueError("a lean step runs unidirectional encoders only")
        self.cell = encoder.config.cell
        self.hidden_size = hd = encoder.config.hidden_size
        self.input_sizes: list[int] = []
        self.weights: list[np.ndarray] = []  # per layer; see _layer_weights
        for (module,) in encoder.layers:
            w_ih = module.weight_ih_l0.detach().double().cpu().numpy()
            w_hh = module.weight_hh_l0.detach().double().cpu().numpy()
            b_ih = module.bias_ih_l0.detach().double().cpu().numpy()
            b_hh = module.bias_hh_l0.detach().double().cpu().numpy()
            self.input_sizes.append(w_ih.shape[1])
            self.weights.append(_layer_weights(self.cell, hd, w_ih, w_hh, b_ih, b_hh))
        # per layer: (h, out) -> writes the norm of h into out; None without a norm
        self.norms = (
            None
            if encoder.config.norm == "none"
            else [_lean_norm(module) for module in encoder.norms]
        )
        self._single_lstm = self.cell == "lstm" and len(self.weights) == 1 and self.norms is None

    def zero_state(self, extra: int = 0) -> LeanState:
        """Fresh buffers: zero hidden (and cell) state, the constant 1 in place.

        Args:
            extra: slots after the top layer's ``[h, 1]`` (see `LeanState.tail`).
        """
        hd = self.hidden_size
        vectors = []
        for layer, size in enumerate(self.input_sizes):
            top = layer == len(self.input_sizes) - 1 and self.norms is None
            full = np.zeros(size + hd + 1 + (extra if top else 0), dtype=np.float32)
            full[size + hd] = 1.0
            vectors.append(full[: size + hd + 1])
        if self.norms is None:
            tail = full[self.input_sizes[-1] :]  # the head reads the top h in place
        else:
            tail = np.zeros(hd + 1 + extra, dtype=np.float32)  # the normalised top output
            tail[hd] = 1.0
        lstm = self.cell == "lstm"
        cells = [np.zeros(5 * hd, dtype=np.float32) if lstm else None for _ in vectors]
        return LeanState(vectors, cells, hd, tail)

    def step(self, state: LeanState) -> np.ndarray:
        """Advance every layer one step from the input in `state.x`.

        Returns:
            (Hd,) the encoder's output at this step (a view: the top h, or its norm).
        """
        hd = self.hidden_size
        if self._single_lstm:  # the default forecaster: no loop, no branches
            gates, sig, ifo, gc, c, o = state.lstm_views[0]  # type: ignore[misc]
            np.dot(self.weights[0], state.vectors[0], out=gates)
            np.tanh(gates, out=gates)
            sig *= 0.5
            sig += 0.5
            both = ifo * gc
            h = state.hs[0]
            np.add(both[:hd], both[hd:], out=c)
            np.tanh(c, out=h)
            h *= o
            return h
        for layer, w in enumerate(self.weights):
            v, h = state.vectors[layer], state.hs[layer]
            if self.cell == "lstm":
                gates, sig, ifo, gc, c, o = state.lstm_views[layer]  # type: ignore[misc]
                np.dot(w, v, out=gates)
                np.tanh(gates, out=gates)
                sig *= 0.5
                sig += 0.5  # sigmoid of i, f, o
                both = ifo * gc  # [i * g, f * c]
                np.add(both[:hd], both[hd:], out=c)
                np.tanh(c, out=h)
                h *= o
            elif self.cell == "gru":
                w_i, b_i, w_h = w
                size = v.size - 1 - hd
                gi = np.dot(w_i, v[:size])
                gi += b_i
                gh = np.dot(w_h, v[size:])  # [h, 1] @ [W_hh | b_hh]
                rz = gi[: 2 * hd] + gh[: 2 * hd]
                rz *= 0.5
                np.tanh(rz, out=rz)
                rz *= 0.5
                rz += 0.5
                n = np.tanh(gi[2 * hd :] + rz[:hd] * gh[2 * hd :])
                h -= n
                h *= rz[hd:]
                h += n  # (1 - z) * n + z * h
            else:
                np.tanh(np.dot(w, v), out=h)
            if self.norms is not None:
                up = state.next_inputs[layer] if layer < len(state.next_inputs) else state.top
                self.norms[layer](h, up)
            elif layer < len(state.next_inputs):
                state.next_inputs[layer][:] = h
        return state.top

    def to_torch(self, state: LeanState) -> State:
        """The state in PyTorch's layout: h (or (h, c)) of shape (num_layers, 1, Hd)."""
        hd = self.hidden_size
        h = torch.from_numpy(np.stack([v[v.size - 1 - hd : v.size - 1] for v in state.vectors]))
        h = h.unsqueeze(1).clone()
        if self.cell != "lstm":
            return h
        c = np.stack([work[4 * hd :] for work in state.cells if work is not None])
        return h, torch.from_numpy(c).unsqueeze(1).clone()

    def load_torch(self, state: LeanState, torch_state: State) -> None:
        """Copy a PyTorch-layout state (batch of one) into `state`'s buffers."""
        hd = self.hidden_size
        h, c = torch_state if isinstance(torch_state, tuple) else (torch_state, None)
        hs = h.detach().float().cpu().numpy().reshape(len(state.vectors), hd)
        for v, row in zip(state.vectors, hs, strict=True):
            v[v.size - 1 - hd : v.size - 1] = row
        for layer in range(1, len(state.vectors)):
            self._pass_up(layer - 1, hs[layer - 1], state.vectors[layer][:hd])
        if self.norms is not None:
            self.norms[-1](hs[-1], state.top)
        if c is not None:
            cs = c.detach().float().cpu().numpy().reshape(len(state.vectors), hd)
            for work, row in zip(state.cells, cs, strict=True):
                assert work is not None
                work[4 * hd :] = row

    def _pass_up(self, layer: int, h: np.ndarray, out: np.ndarray) -> None:
        """Write what the layer above reads from layer `layer`'s h into `out`."""
        if self.norms is None:
            out[:] = h
        else:
            self.norms[layer](h, out)


def _lean_norm(module: torch.nn.Module) -> Callable[[np.ndarray, np.ndarray], None]:
    """A NumPy function (h, out) writing `module`'s eval-mode output for one step into out."""
    w = module.weight.detach().double().cpu().numpy()
    b = module.bias.detach().double().cpu().numpy()
    if isinstance(module, MaskedBatchNorm):  # running statistics: one scale and shift
        mean = module.running_mean.detach().double().cpu().numpy()
        var = module.running_var.detach().double().cpu().numpy()
        scale = w / np.sqrt(var + module.eps)
        scale, shift = (np.asarray(a, np.float32) for a in (scale, b - mean * scale))

        def batch_norm(h: np.ndarray, out: np.ndarray) -> None:
            np.multiply(h, scale, out=out)
            out += shift

        return batch_norm
    assert isinstance(module, GroupedLayerNorm), type(module)
    groups, eps = module.groups, module.eps
    w, b = np.asarray(w, np.float32), np.asarray(b, np.float32)

    def layer_norm(h: np.ndarray, out: np.ndarray) -> None:
        blocks = h.reshape(groups, -1)  # (groups, Hd / groups)
        centred = blocks - blocks.mean(axis=1, keepdims=True)
        std = np.sqrt(np.square(centred).mean(axis=1, keepdims=True) + eps)
        np.multiply((centred / std).reshape(-1), w, out=out)
        out += b

    return layer_norm


def _layer_weights(cell, hd, w_ih, w_hh, b_ih, b_hh):
    """One layer's matrices over ``[input, h, 1]`` (GRU: separate input and hidden parts)."""
    if cell == "gru":  # n's hidden part is gated by r, so input and hidden stay apart
        w_h = np.concatenate([w_hh, b_hh[:, None]], axis=1)
        return tuple(np.ascontiguousarray(a, dtype=np.float32) for a in (w_ih, b_ih, w_h))
    w = np.concatenate([w_ih, w_hh, (b_ih + b_hh)[:, None]], axis=1)
    if cell == "lstm":
        i, f, g, o = np.split(w, 4)  # PyTorch's gate order
        w = np.concatenate([0.5 * i, 0.5 * f, 0.5 * o, g])
    return np.ascontiguousarray(w, dtype=np.float32)


class LeanHead:
    """The forecaster head (Linear -> GELU -> Linear) on ``[h, 1, future]``, in NumPy.

    Args:
        linear1, linear2: the head's two `nn.Linear` layers (dropout is off at inference).
        hidden_size: Hd, the encoder output size the first layer reads first.
        out_scale, out_shift: (out,) an affine map folded into the last layer, so outputs come
            out as `raw * out_scale + out_shift` (e.g. in the data's units) at no cost.
    """

    def __init__(
        self,
        linear1: torch.nn.Linear,
        linear2: torch.nn.Linear,
        hidden_size: int,
        out_scale: np.ndarray | None = None,
        out_shift: np.ndarray | None = None,
    ) -> None:
        w1 = linear1.weight.detach().double().cpu().numpy()
        b1 = linear1.bias.detach().double().cpu().numpy()
        w2 = linear2.weight.detach().double().cpu().numpy()
        b2 = linear2.bias.detach().double().cpu().numpy()
        if out_scale is not None:
            w2, b2 = w2 * out_scale[:, None], b2 * out_scale
        if out_shift is not None:
            b2 = b2 + out_shift
        hd = hidden_size
        # Prescaled to grid coordinates of the GELU table: u = (w1 . v + b1 - _LOW) / _STEP.
        w1 = np.concatenate([w1[:, :hd], (b1 - _LOW)[:, None], w1[:, hd:]], axis=1) / _STEP
        self.w1 = np.ascontiguousarray(w1, dtype=np.float32)
        self.w2 = np.ascontiguousarray(np.concatenate([w2, b2[:, None]], axis=1), dtype=np.float32)
        self.hidden_size = hd
        self.num_future = w1.shape[1] - hd - 1
        self._inner = np.empty(w1.shape[0], dtype=np.float32)
        self._act = np.ones(w1.shape[0] + 1, dtype=np.float32)  # [gelu(inner), 1]
        self._gelu = self._act[:-1]

    def new_input(self) -> np.ndarray:
        """A float32 input buffer ``[h (Hd), 1, future (H * Ff)]``."""
        v = np.zeros(self.hidden_size + 1 + self.num_future, dtype=np.float32)
        v[self.hidden_size] = 1.0
        return v

    def __call__(self, v: np.ndarray) -> np.ndarray:
        """(out,) raw head outputs from an input buffer from `new_input` (a fresh array)."""
        u = np.dot(self.w1, v, out=self._inner)  # (head,) GELU table coordinates
        segment = u.astype(np.intp)
        np.minimum(segment, len(_GELU_AT) - 1, out=segment)  # beyond the table: extrapolate
        np.maximum(segment, 0, out=segment)  # (ufuncs: `np.clip` has microseconds of overhead)
        rise = u - segment
        rise *= _GELU_SLOPE.take(segment)
        np.add(_GELU_AT.take(segment), rise, out=self._gelu)
        return np.dot(self.w2, self._act)


class LeanLanguageModel:
    """One token through a trained `LanguageModel`'s embedding, encoder and decoder, in NumPy.

    Generating one sample calls the model once per token; through the modules a step of a small
    character model is mostly dispatch (docs/benchmarks.md, "Generation speed"). Here the step
    is a row copy, the encoder's matrix-vector products and one more for the decoder (its bias
    folded in against the constant 1 that follows the top output in `LeanState.tail`).

    Args:
        model: a trained `rnnkit.models.language_model.LanguageModel` (eval-mode arithmetic:
            dropout is not applied).
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.encoder = LeanEncoder(model.encoder)
        self.embedding = model.embedding.weight.detach().float().cpu().numpy().copy()
        weight = model.decoder.weight.detach().double().cpu().numpy()
        bias = model.decoder.bias.detach().double().cpu().numpy()
        self.head = np.ascontiguousarray(np.concatenate([weight, bias[:, None]], 1), np.float32)
        self._logits = np.empty(self.head.shape[0], dtype=np.float32)

    def state(self, torch_state: State) -> LeanState:
        """Buffers holding a PyTorch-layout state of one sample ((layers, 1, H) tensors)."""
        state = self.encoder.zero_state()
        self.encoder.load_torch(state, torch_state)
        return state

    def step(self, state: LeanState, token: int) -> np.ndarray:
        """(V,) next-token logits after `token`; `state` advances in place.

        The array is reused by the next call: copy it to keep it.
        """
        state.x[:] = self.embedding[token]
        self.encoder.step(state)
        return np.dot(self.head, state.tail[: self.encoder.hidden_size + 1], out=self._logits)
