"""Exportable graphs: the trained modules re-wired with tensors in and tensors out.

The eager models take Python options (`return_state`, `all_steps`), `None` states and a
per-step fast path (`LanguageModel._step` at T=1), and `RecurrentEncoder.forward` checks its
lengths with Python `int()`/`bool()` on tensor values. An exporter would freeze those values into
the graph (TorchScript tracing) or refuse them (`torch.export`). These wrappers hold the *same*
submodules (no copies of the weights) and run the same computation with every branch fixed by
the model's configuration, never by the data:

- classifier: (ids, lengths) -> logits. The backward direction reads each sequence reversed
  within its length (`reverse_within_length`) and pooling masks the padding, as in eager. Only
  the outputs are needed, so the LSTM ragged-tail stepping (an exact final *cell* state for
  ragged batches) never enters the graph.
- language model: (ids, h[, c]) -> (logits, h_out[, c_out]). Its rows are never padded, so the
  final state is the recurrent module's own.
- forecaster: (x[, future], base, h[, c]) -> (params, point[, lower, upper], h_out[, c_out]): the
  window as `ForecastPredictor` builds it, and the forecast the predictor reads from the params.

The state is an explicit input and output in PyTorch's layout, (num_layers, B, hidden_size), so a
consumer streams by feeding a chunk, keeping the state and feeding the next.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.errors import ConfigError
from rnnkit.models.classifier import TextClassifier
from rnnkit.models.encoder import RecurrentEncoder, reverse_within_length
from rnnkit.models.forecaster import Forecaster
from rnnkit.models.language_model import LanguageModel


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output.

    Attributes:
        name: the ONNX / manifest name.
        dtype: NumPy dtype name ("int64" or "float32").
        shape: sizes; strings name the dynamic axes ("batch", "seq").
        doc: what it holds, for `export.json`.
    """

    name: str
    dtype: str
    shape: tuple[int | str, ...]
    doc: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shape": list(self.shape)}


@dataclass(frozen=True)
class GraphSpec:
    """The inputs and outputs of an exported graph, in order.

    Attributes:
        task: the run's task name.
        inputs: in the order the graph takes them.
        outputs: in the order the graph returns them.
        state: input name -> output name of each recurrent-state pair (empty: stateless).
    """

    task: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    state: dict[str, str]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """{name: {axis: axis name}} for every tensor with a dynamic axis."""
        return {
            t.name: {i: d for i, d in enumerate(t.shape) if isinstance(d, str)}
            for t in (*self.inputs, *self.outputs)
            if any(isinstance(d, str) for d in t.shape)
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "state": dict(self.state),
        }


def run_unidirectional(
    encoder: RecurrentEncoder, x: Tensor, h: Tensor, c: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """A unidirectional encoder over full-length rows, state in and out.

    Args:
        encoder: a `RecurrentEncoder` with `bidirectional=False`.
        x: (B, T, input_size) inputs; every row has T real steps.
        h: (num_layers, B, hidden_size) initial hidden state.
        c: (num_layers, B, hidden_size) initial cell state for an LSTM, else None.

    Returns:
        outputs (B, T, hidden_size), final h (num_layers, B, hidden_size) and final c (or None).
    """
    assert encoder.num_directions == 1, "stateful graphs are unidirectional"
    hs, cs = [], []
    out = x
    for layer, (module,) in enumerate(encoder.layers):
        h0 = h[layer : layer + 1]  # (1, B, H)
        if c is not None:
            out, (h1, c1) = module(out, (h0, c[layer : layer + 1]))
            cs.append(c1)
        else:
            out, h1 = module(out, h0)
        hs.append(h1)
    return out, torch.cat(hs, 0), (torch.cat(cs, 0) if c is not None else None)


class ClassifierGraph(nn.Module):
    """`TextClassifier` as a graph: ids (B, T) int64, lengths (B,) int64 -> logits (B, C)."""

    def __init__(self, model: TextClassifier) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        model = self.model
        out = model.embedding(ids)  # (B, T, E); dropout is off for inference
        for directions in model.encoder.layers:
            results = []
            for direction, module in enumerate(directions):
                inp = out if direction == 0 else reverse_within_length(out, lengths)
                y, _ = module(inp)  # (B, T, H); padding comes after each row's real steps
                results.append(y if direction == 0 else reverse_within_length(y, lengths))
            out = results[0] if len(results) == 1 else torch.cat(results, dim=-1)
        return model.head(model.pool(out, lengths))  # (B, C)


class LanguageModelGraph(nn.Module):
    """`LanguageModel` as a graph: ids (B, T), h[, c] -> logits (B, T, V), h_out[, c_out]."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, ids: Tensor, h: Tensor, c: Tensor | None = None) -> tuple[Tensor, ...]:
        x = self.model.embedding(ids)  # (B, T, E)
        out, h, c = run_unidirectional(self.model.encoder, x, h, c)  # (B, T, H)
        logits = self.model.decoder(out)  # (B, T, V)
        return (logits, h) if c is None else (logits, h, c)


class ForecasterGraph(nn.Module):
    """`Forecaster` as a graph over one window per row; see `forecaster_spec` for the tensors."""

    def __init__(self, model: Forecaster) -> None:
        super().__init__()
        self.model = model.eval()
        self.has_future = model.config.num_future > 0
        self.is_lstm = model.encoder.is_lstm

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        model, cfg = self.model, self.model.config
        rest = list(inputs)
        x = rest.pop(0)  # (B, T, F)
        future = rest.pop(0) if self.has_future else None  # (B, H, Ff)
        base = rest.pop(0)  # (B, H, K)
        h = rest.pop(0)
        c = rest.pop(0) if self.is_lstm else None
        out, h, c = run_unidirectional(model.encoder, x, h, c)  # (B, T, Hd)
        hidden = out[:, -1]  # (B, Hd)
        if future is not None:
            hidden = torch.cat([hidden, future.flatten(1)], dim=-1)  # (B, Hd + H * Ff)
        raw = model.head(hidden).unflatten(-1, (cfg.horizon, cfg.num_targets, cfg.num_params))
        # The same parameterisation as `Forecaster.forward` (held to it by the parity check).
        if cfg.likelihood == "gaussian":
            mean = raw[..., 0] + base
            scale = torch.nn.functional.softplus(raw[..., 1]) + 1e-3
            params = torch.stack([mean, scale], dim=-1)  # (B, H, K, 2)
        else:
            params = raw + base.unsqueeze(-1)  # (B, H, K, P)
        fc = model.forecast(params)
        outputs = [params, fc.point]
        if fc.lower is not None and fc.upper is not None:
            outputs += [fc.lower, fc.upper]
        outputs.append(h)
        if c is not None:
            outputs.append(c)
        return tuple(outputs)


# --- specs ------------------------------------------------------------------------------------


def _state_specs(cell: str, layers: int, hidden: int) -> tuple[list[TensorSpec], list[TensorSpec]]:
    shape = (layers, "batch", hidden)
    names = ["h", "c"] if cell == "lstm" else ["h"]
    what = {"h": "hidden state", "c": "LSTM cell state"}
    ins = [
        TensorSpec(n, "float32", shape, f"{what[n]} to start from (zeros at first)") for n in names
    ]
    outs = [
        TensorSpec(f"{n}_out", "float32", shape, f"{what[n]} after the last step") for n in names
    ]
    return ins, outs


def build_graph(predictor: Any) -> tuple[nn.Module, GraphSpec]:
    """The exportable graph and its spec for a loaded predictor (`rnnkit.load(run)`).

    Raises:
        ConfigError: the predictor's task has no exportable graph.
    """
    model = predictor.model.eval()
    task = predictor.task
    if isinstance(model, TextClassifier):
        c = model.config
        inputs = (
            TensorSpec("ids", "int64", ("batch", "seq"), "token ids, right-padded with pad_id"),
            TensorSpec("lengths", "int64", ("batch",), "true lengths, each in [1, seq]"),
        )
        outputs = (TensorSpec("logits", "float32", ("batch", c.num_classes), "class logits"),)
        return ClassifierGraph(model), GraphSpec(task, inputs, outputs, {})
    if isinstance(model, LanguageModel):
        c = model.config
        s_in, s_out = _state_specs(c.cell, c.num_layers, c.hidden_size)
        inputs = (TensorSpec("ids", "int64", ("batch", "seq"), "token ids"), *s_in)
        logits = TensorSpec(
            "logits", "float32", ("batch", "seq", c.vocab_size), "next-token logits at every step"
        )
        state = {i.name: o.name for i, o in zip(s_in, s_out, strict=True)}
        return LanguageModelGraph(model), GraphSpec(task, inputs, (logits, *s_out), state)
    if isinstance(model, Forecaster):
        return ForecasterGraph(model), forecaster_spec(task, model)
    raise ConfigError(f"task {task!r} has no exportable graph; export supports {', '.join(TASKS)}")


#: the tasks `build_graph` knows.
TASKS = ("classification", "language-model", "forecasting")


def forecaster_spec(task: str, model: Forecaster) -> GraphSpec:
    """Inputs: x (B, T, F) scaled step features, future (B, H, Ff) known-future features (only
    when Ff > 0), base (B, H, K) the baseline in scaled units, h[, c]. Outputs: params
    (B, H, K, P) raw distribution parameters, point (B, H, K) and, with an 80% interval, lower
    and upper (B, H, K), all in scaled units and calibrated, then h_out[, c_out]."""
    c = model.config
    h, k = c.horizon, c.num_targets
    s_in, s_out = _state_specs(c.cell, c.num_layers, c.hidden_size)
    inputs = [TensorSpec("x", "float32", ("batch", "seq", c.num_features), "scaled step features")]
    if c.num_future:
        inputs.append(
            TensorSpec("future", "float32", ("batch", h, c.num_future), "known-future features")
        )
    inputs.append(TensorSpec("base", "float32", ("batch", h, k), "baseline, scaled units"))
    outputs = [
        TensorSpec("params", "float32", ("batch", h, k, c.num_params), f"{c.likelihood} params"),
        TensorSpec("point", "float32", ("batch", h, k), "point forecast, scaled units"),
    ]
    has_interval = c.likelihood == "gaussian" or (
        c.likelihood == "quantile" and c.quantiles[0] <= 0.1 and c.quantiles[-1] >= 0.9
    )
    if has_interval:
        for end in ("lower", "upper"):
            outputs.append(
                TensorSpec(end, "float32", ("batch", h, k), f"80% interval {end} end, scaled")
            )
    state = {i.name: o.name for i, o in zip(s_in, s_out, strict=True)}
    return GraphSpec(task, (*inputs, *s_in), (*outputs, *s_out), state)


# --- inputs -----------------------------------------------------------------------------------


def example_inputs(
    run_or_predictor: Any, batch_size: int = 1, seq_len: int = 16, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random inputs for a run's exported graph, the same for every backend.

    Token ids are drawn within the vocabulary (never the pad id inside a sequence); a classifier
    batch has ragged lengths in [1, seq_len] (the first row full) with `pad_id` after each end;
    states are uniform in [-0.5, 0.5] (a state from mid-stream, not only zeros); forecaster
    features are standard normal.

    Args:
        run_or_predictor: a run folder or a predictor from `rnnkit.load`.
        batch_size: B.
        seq_len: T, steps per row.
        seed: NumPy generator seed.

    Returns:
        {input name: array} in the graph's input order, with the dtypes of its spec.
    """
    predictor = _as_predictor(run_or_predictor)
    _, spec = build_graph(predictor)
    rng = np.random.default_rng(seed)
    sizes = {"batch": batch_size, "seq": seq_len}
    out: dict[str, np.ndarray] = {}
    for t in spec.inputs:
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in t.shape)
        if t.name == "ids":
            vocab = int(predictor.model.embedding.num_embeddings)
            low = 1 if spec.task == "classification" else 0
            out[t.name] = rng.integers(low, vocab, size=shape, dtype=np.int64)
        elif t.name == "lengths":
            lengths = rng.integers(1, seq_len + 1, size=shape, dtype=np.int64)
            lengths[0] = seq_len
            out[t.name] = lengths
        elif t.name in spec.state:
            out[t.name] = rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)
        else:
            out[t.name] = rng.standard_normal(shape).astype(np.float32)
    if "lengths" in out:
        pad = np.arange(seq_len)[None, :] >= out["lengths"][:, None]
        out["ids"][pad] = predictor.model.config.padding_idx
    return out


def _as_predictor(run_or_predictor: Any) -> Any:
    if hasattr(run_or_predictor, "model") and hasattr(run_or_predictor, "task"):
        return run_or_predictor
    import rnnkit

    return rnnkit.load(run_or_predictor)
