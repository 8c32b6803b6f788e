"""The recurrent encoder: RNN, LSTM or GRU layers, exact on padded variable-length batches.

Why not `pack_padded_sequence`: on CPU, packed input falls off oneDNN's fused kernel onto per-step
code, and packed *training* measured several times slower than padded input. So every layer runs
the fused kernel over the whole padded batch, and exactness comes from two facts:

- Padding sits *after* each sequence's last real step, so the outputs at real steps never saw it.
  A direction's final hidden state is gathered from the outputs at step `length - 1`.
- The backward direction of a bidirectional layer runs on each sequence reversed *within its own
  length* (``a b c _ _`` -> ``c b a _ _``), so it too meets real tokens first and padding last;
  its outputs are reversed back the same way.

Only an LSTM's final *cell* state is not among the outputs. When it is asked for
(`return_state=True`) and lengths differ, the layer runs the fused kernel over the steps every
sequence has, then steps through the ragged tail one step at a time, keeping each sequence's state
once it has ended. With length-bucketed batches the tail is a few steps.

A layer's two directions are separate unidirectional modules, so the same weights serve the padded
path, the packed path (`packed=True`, kept as the reference and an option) and export.

With `norm` ("layer" or "batch", `rnnkit.models.norm`), each layer's output is normalised before
it feeds the next layer and, after the last, before the model's head: between the fused calls,
never inside a cell, so the kernels stay fused. Batch statistics count real steps only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.errors import ConfigError
from rnnkit.models.dropout import LockedDropout
from rnnkit.models.norm import build_norm, get_norm

#: Recurrent cells by name; everything else asks this registry.
CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

State = Tensor | tuple[Tensor, Tensor]

# Upper bounds on sizes read from config.json or a flag. rnnkit trains small recurrent models
# on a CPU; a size past these is a typo or a hostile file, and without a bound it hangs (10^6
# layers) or dies in the allocator (a 10^6-wide layer) instead of giving a one-line error.
#: stacked recurrent layers: past a handful they do not train without residual connections.
MAX_LAYERS = 32
#: features per step (hidden, input, embedding, head): one 8192-wide LSTM layer already holds
#: 537M weights (2 GiB); wider is not a small RNN.
MAX_WIDTH = 8192
#: rows of an embedding: the largest word vocabularies in use (GloVe 840B: 2.2M) fit.
MAX_VOCAB = 2_500_000
#: weights of a whole model: 2^28 float32 weights is a 1 GiB model file, far past any model
#: this toolkit trains in minutes on a CPU, and small enough to allocate anywhere it runs.
MAX_PARAMETERS = 2**28
#: gate blocks per cell (weights per layer are gates x (input + hidden + 2) x hidden).
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def check_size(name: str, value: int, low: int, high: int, why: str) -> None:
    """Refuse `value` outside [low, high] with a `ConfigError` naming `name` and the range.

    `why` says where the upper bound comes from, so the message explains itself.
    """
    if not low <= value <= high:
        raise ConfigError(f"{name} must be from {low} to {high:,} ({why}), got {value:,}")


def check_parameters(count: int) -> None:
    """Refuse a model of more than `MAX_PARAMETERS` weights (estimated from its config)."""
    if count > MAX_PARAMETERS:
        raise ConfigError(
            f"these sizes make a model of about {count:,} weights ({count * 4 / 2**30:.1f} GiB); "
            f"rnnkit builds at most {MAX_PARAMETERS:,} (a 1 GiB model file): lower "
            "hidden_size, num_layers, embedding_dim or vocab_size"
        )


def state_tensors(state: State | None) -> dict[str, Tensor]:
    """A state as named tensors (`h`, and `c` for an LSTM), e.g. for a checkpoint."""
    if state is None:
        return {}
    if isinstance(state, tuple):
        return {"h": state[0], "c": state[1]}
    return {"h": state}


def state_from_tensors(tensors: dict[str, Tensor]) -> State | None:
    """The inverse of `state_tensors`."""
    if "h" not in tensors:
        return None
    return (tensors["h"], tensors["c"]) if "c" in tensors else tensors["h"]


def detach_state(state: State | None) -> State | None:
    """The same state cut from the graph (truncated BPTT: no gradient flows into past windows)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return (state[0].detach(), state[1].detach())
    return state.detach()


def get_cell(name: str) -> type[nn.RNNBase]:
    """The `torch.nn` class for cell `name`; unknown names list the valid ones."""
    try:
        return CELLS[name]
    except KeyError:
        raise ConfigError(f"unknown cell {name!r}; choose one of: {', '.join(CELLS)}") from None


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of a recurrent encoder.

    Attributes:
        cell: "lstm" (the safe default: gates keep gradients alive over long spans), "gru"
            (fewer weights, often as good) or "rnn" (tanh; a baseline, forgets fast).
        input_size: features per step fed in (the embedding size for text).
        hidden_size: features per direction per step; 128 is ample for sentences on CPU.
        num_layers: stacked layers; 1 trains fastest, 2 helps on longer texts.
        bidirectional: read each sequence both ways; helps classification, not for generation.
        dropout: between stacked layers (not after the last), as in `nn.LSTM`.
        locked_dropout: draw one dropout mask per sequence and reuse it at every step
            (`LockedDropout`, as AWD-LSTM does between layers) instead of a fresh mask per
            element. Besides regularising recurrent layers better, it draws B x H random
            numbers instead of B x T x H (the saving per training step is measured in
            docs/benchmarks.md, "Language models" > "Training speed").
        norm: normalise each layer's output (`rnnkit.models.norm.NORMS`): "none" (the default:
            the models trained so far have none, and their files load unchanged), "layer" (per
            step) or "batch" (per feature over the batch's real steps).
        norm_groups: layer norm in this many contiguous blocks of the output, each on its own;
            1, except in a merged seed ensemble (one block per member).
    """

    cell: str = "lstm"
    input_size: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    locked_dropout: bool = False
    norm: str = "none"
    norm_groups: int = 1

    def __post_init__(self) -> None:
        get_cell(self.cell)
        get_norm(self.norm)
        for name in ("input_size", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        check_size("num_layers", self.num_layers, 1, MAX_LAYERS, "deeper stacks do not train")
        for name in ("input_size", "hidden_size"):
            check_size(name, getattr(self, name), 1, MAX_WIDTH, "wider is not a small RNN")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        width = self.hidden_size * (2 if self.bidirectional else 1)
        if self.norm_groups < 1 or width % self.norm_groups:
            raise ConfigError(
                f"norm_groups must divide the {width} output features, got {self.norm_groups}"
            )
        check_parameters(self.num_parameters)

    @property
    def num_parameters(self) -> int:
        """The encoder's weight count (biases included), from the config alone."""
        directions = 2 if self.bidirectional else 1
        gates, hidden, total = GATES.get(self.cell, 4), self.hidden_size, 0
        for layer in range(self.num_layers):
            inputs = self.input_size if layer == 0 else hidden * directions
            total += directions * gates * hidden * (inputs + hidden + 2)
            if self.norm != "none":
                total += 2 * hidden * directions  # the norm's weight and bias
        return total


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence's first `lengths[b]` steps, leaving its padding in place.

    Args:
        x: (B, T, F) batch-first padded sequences.
        lengths: (B,) true lengths, each in [1, T].

    Returns:
        (B, T, F); applying it twice gives `x` back.
    """
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # (1, T)
    last = (lengths.to(x.device) - 1).unsqueeze(1)  # (B, 1)
    index = torch.where(steps <= last, last - steps, steps)  # (B, T)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


def gather_last(outputs: Tensor, lengths: Tensor) -> Tensor:
    """Outputs at each sequence's last real step: (B, T, H) -> (B, H)."""
    index = (lengths.to(outputs.device) - 1).view(-1, 1, 1).expand(-1, 1, outputs.size(-1))
    return outputs.gather(1, index).squeeze(1)


class RecurrentEncoder(nn.Module):
    """Stacked, optionally bidirectional RNN/LSTM/GRU over padded batch-first sequences.

    State in, state out: nothing is stored on the module between calls. The state has PyTorch's
    layout, `h` (or `(h, c)` for an LSTM) of shape (num_layers * num_directions, B, hidden_size),
    ordered layer by layer with the forward direction first.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        cls = get_cell(config.cell)
        self.num_directions = 2 if config.bidirectional else 1
        self.layers = nn.ModuleList()
        for layer in range(config.num_layers):
            size = config.input_size if layer == 0 else config.hidden_size * self.num_directions
            directions = nn.ModuleList(
                cls(size, config.hidden_size, batch_first=True) for _ in range(self.num_directions)
            )
            self.layers.append(directions)
        self.dropout = (
            LockedDropout(config.dropout) if config.locked_dropout else nn.Dropout(config.dropout)
        )
        if config.norm != "none":  # no module at all otherwise: older state dicts load as-is
            self.norms = nn.ModuleList(
                build_norm(config.norm, self.output_size, config.norm_groups)
                for _ in range(config.num_layers)
            )
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        """Features per step in the outputs: hidden_size x directions."""
        return self.config.hidden_size * self.num_directions

    @property
    def is_lstm(self) -> bool:
        return self.config.cell == "lstm"

    def normalize(self, layer: int, out: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Layer `layer`'s output as the next layer (or the head) reads it.

        Args:
            layer: 0-based layer index.
            out: (B, T, output_size) or (B, output_size) the layer's output.
            lengths: (B,) true lengths (batch norm's statistics count only those steps), or
                None when every step is real.

        Returns:
            `out` normalised by the layer's norm; `out` itself when `norm` is "none".
        """
        if self.config.norm == "none":
            return out
        return self.norms[layer](out, lengths)

    def layer_parameters(self, layer: int) -> list[nn.Parameter]:
        """Layer `layer`'s weights: its directions' and its output norm's, if any."""
        params = list(self.layers[layer].parameters())
        if self.config.norm != "none":
            params += list(self.norms[layer].parameters())
        return params

    def reset_parameters(self) -> None:
        """PyTorch's uniform init, with LSTM forget-gate biases at 1.

        A forget bias of 1 lets gradients flow through the cell from the first step
        (Gers et al., 2000; Jozefowicz et al., 2015).
        """
        for directions in self.layers:
            for module in directions:
                module.reset_parameters()
                if self.is_lstm:
                    h = self.config.hidden_size
                    for name, param in module.named_parameters():
                        if name.startswith("bias_ih"):
                            with torch.no_grad():
                                param[h : 2 * h].fill_(1.0)
                        elif name.startswith("bias_hh"):
                            with torch.no_grad():
                                param[h : 2 * h].zero_()

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        state: State | None = None,
        *,
        return_state: bool = True,
        packed: bool = False,
    ) -> tuple[Tensor, State | None]:
        """Encode a padded batch.

        Args:
            x: (B, T, input_size) batch-first inputs, padding after each sequence's end.
            lengths: (B,) true lengths in [1, T] (CPU or same device); None means all are T.
            state: initial state in PyTorch's layout (see class docstring), or None for zeros.
            return_state: compute the exact final state; False skips the LSTM ragged-tail steps
                when only the outputs are needed (e.g. classification), and returns None.
            packed: use `pack_padded_sequence` instead (slower on CPU; same results).

        Returns:
            outputs: (B, T, hidden_size * num_directions), through the last layer's norm if
                any; steps at or past a sequence's length hold unspecified values and must be
                masked by the caller.
            state: the final state at each sequence's true last step, or None.
        """
        batch, steps, _ = x.shape
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long)
        lengths = lengths.to(device="cpu", dtype=torch.long)
        if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > steps):
            raise ValueError(f"lengths must lie in [1, {steps}], got {lengths.tolist()}")
        initial = self._split_state(state)
        run = self._run_packed if packed else self._run_padded
        finals: list[State] = []
        out = x
        for layer, directions in enumerate(self.layers):
            if layer > 0:
                out = self.dropout(out)
            results = []
            for direction, module in enumerate(directions):
                inp = out if direction == 0 else reverse_within_length(out, lengths)
                y, final = run(module, inp, lengths, initial[layer][direction], return_state)
                results.append(y if direction == 0 else reverse_within_length(y, lengths))
                finals.append(final)
            out = results[0] if len(results) == 1 else torch.cat(results, dim=-1)
            out = self.normalize(layer, out, lengths)  # the state is never normalised
        return out, (self._join_state(finals) if return_state else None)

    # --- one direction of one layer -------------------------------------------------------

    def _run_padded(
        self, module: nn.RNNBase, x: Tensor, lengths: Tensor, h0: State | None, need_state: bool
    ) -> tuple[Tensor, State | None]:
        if self.is_lstm and _cpu_bf16_unsupported(x):
            # oneDNN on CPUs without AVX-512 BF16 has no bf16 LSTM primitive and would raise;
            # run this kernel in fp32 and let the rest of the model keep bf16 autocast.
            with torch.autocast("cpu", enabled=False):
                return self._run_padded(module, x.float(), lengths, _float_state(h0), need_state)
        ragged = bool((lengths != x.size(1)).any())
        if self.is_lstm and need_state and ragged:
            return self._run_lstm_ragged(module, x, lengths, h0)
        y, final = module(x, h0)
        if not need_state:
            return y, None
        if not ragged:
            return y, final
        return y, gather_last(y, lengths).unsqueeze(0)  # (1, B, H)

    def _run_lstm_ragged(
        self, module: nn.RNNBase, x: Tensor, lengths: Tensor, h0: State | None
    ) -> tuple[Tensor, State]:
        # Fused kernel over the steps every sequence has, then the ragged tail step by step,
        # freezing each sequence's (h, c) after its last real step.
        common = int(lengths.min())
        y, (h, c) = module(x[:, :common], h0)
        outputs = [y]
        alive_after = lengths.to(x.device).view(1, -1, 1)  # (1, B, 1)
        for t in range(common, x.size(1)):
            y_t, (h_t, c_t) = module(x[:, t : t + 1], (h, c))
            keep = t < alive_after
            h = torch.where(keep, h_t, h)
            c = torch.where(keep, c_t, c)
            outputs.append(y_t)
        return torch.cat(outputs, dim=1), (h, c)

    def _run_packed(
        self, module: nn.RNNBase, x: Tensor, lengths: Tensor, h0: State | None, need_state: bool
    ) -> tuple[Tensor, State | None]:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        y, final = module(packed, h0)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.size(1))
        return y, (final if need_state else None)

    # --- state layout ----------------------------------------------------------------------

    def _split_state(self, state: State | None) -> list[list[State | None]]:
        """PyTorch layout -> [layer][direction] -> (1, B, H) pieces."""
        layers, dirs = self.config.num_layers, self.num_directions
        if state is None:
            return [[None] * dirs for _ in range(layers)]
        expected = layers * dirs

        def pieces(t: Tensor, what: str) -> list[Tensor]:
            if t.dim() != 3 or t.size(0) != expected or t.size(2) != self.config.hidden_size:
                raise ValueError(
                    f"state {what} must have shape ({expected}, B, {self.config.hidden_size}), "
                    f"got {tuple(t.shape)}"
                )
            return list(t.split(1, dim=0))

        if self.is_lstm:
            if not isinstance(state, tuple) or len(state) != 2:
                raise ValueError("an LSTM state is a pair (h, c)")
            hs, cs = pieces(state[0], "h"), pieces(state[1], "c")
            flat: list[State] = [(h, c) for h, c in zip(hs, cs, strict=True)]
        else:
            if isinstance(state, tuple):
                raise ValueError(f"a {self.config.cell.upper()} state is one tensor h, not a pair")
            flat = list(pieces(state, "h"))
        return [flat[i * dirs : (i + 1) * dirs] for i in range(layers)]

    def _join_state(self, finals: list[State]) -> State:
        if self.is_lstm:
            return (
                torch.cat([f[0] for f in finals], dim=0),  # type: ignore[index]
                torch.cat([f[1] for f in finals], dim=0),  # type: ignore[index]
            )
        return torch.cat(finals, dim=0)  # type: ignore[arg-type]


def _cpu_bf16_unsupported(x: Tensor) -> bool:
    if x.device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
        return False
    if torch.get_autocast_dtype("cpu") != torch.bfloat16:
        return False
    from rnnkit.training.precision import cpu_supports_bf16_lstm

    return not cpu_supports_bf16_lstm()


def _float_state(state: State | None) -> State | None:
    if state is None:
        return None
    if isinstance(state, tuple):
        return (state[0].float(), state[1].float())
    return state.float()


def build_encoder(**kwargs: object) -> RecurrentEncoder:
    """`RecurrentEncoder(EncoderConfig(**kwargs))`, for one-line use."""
    return RecurrentEncoder(EncoderConfig(**kwargs))  # type: ignore[arg-type]
