"""Exportable graphs: their input/output specs and the pieces every task's graph is built from.

The eager models take Python options (`return_state`, `all_steps`), `None` states and a
per-step fast path (`LanguageModel._step` at T=1), and `RecurrentEncoder.forward` checks its
lengths with Python `int()`/`bool()` on tensor values. An exporter would freeze those values into
the graph (TorchScript tracing) or refuse them (`torch.export`). Each task therefore wraps its
model in a graph module (`rnnkit/tasks/<task>/export.py`, given to `rnnkit.export` through its
`ExportHooks`) that holds the *same* submodules and runs the same computation with every branch
fixed by the model's configuration, never by the data.

The state is an explicit input and output in PyTorch's layout, (num_layers, B, hidden_size), so a
consumer streams by feeding a chunk, keeping the state and feeding the next. An axis named "seq"
is the time axis: the parity check's streaming case cuts the inputs that have one into chunks and
joins the outputs that have one.

This module imports no task (the task folders import it); `rnnkit.export.task_graph` finds a
loaded run's graph through its task's hooks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnkit.models.encoder import RecurrentEncoder

#: The name of the time axis in `TensorSpec.shape`.
SEQ = "seq"


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

    @property
    def has_seq(self) -> bool:
        """Whether axis 1 is the time axis (cut into chunks when streaming)."""
        return len(self.shape) > 1 and self.shape[1] == SEQ


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


def state_specs(cell: str, layers: int, hidden: int) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The recurrent state as graph inputs (`h`[, `c`]) and outputs (`h_out`[, `c_out`]).

    Args:
        cell: "lstm" (hidden and cell state) or another cell (hidden state only).
        layers: num_layers; each tensor is (num_layers, batch, hidden_size).
        hidden: hidden_size.
    """
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
        outputs (B, T, hidden_size) through the last layer's norm if any, final h
        (num_layers, B, hidden_size) and final c (or None).
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
        out = encoder.normalize(layer, out)  # the output passed up; the state stays as it is
    return out, torch.cat(hs, 0), (torch.cat(cs, 0) if c is not None else None)


def state_list(state: Any) -> list[Tensor]:
    """An eager model's state, `h` or `(h, c)`, as the graph's state outputs in order."""
    return list(state) if isinstance(state, tuple) else [state]


def random_inputs(
    spec: GraphSpec,
    batch_size: int,
    seq_len: int,
    rng: np.random.Generator,
    *,
    ids: tuple[int, int] = (0, 1),
    pad_id: int | None = None,
) -> dict[str, np.ndarray]:
    """Random inputs for a graph, by the conventions of its input names.

    `ids`: token ids uniform in [ids[0], ids[1]); `lengths`: ragged lengths in [1, seq_len] (the
    first row full), with `pad_id` written into `ids` after each row's end; states (`spec.state`)
    uniform in [-0.5, 0.5] (a state from mid-stream, not only zeros); any other input standard
    normal.

    Args:
        spec: the graph's inputs.
        batch_size: B, the "batch" axis.
        seq_len: T, the "seq" axis.
        rng: draws, in the order of `spec.inputs`.
        ids: the range of token ids (exclude the padding id where rows are padded).
        pad_id: the id after each row's length, when the graph takes `lengths`.

    Returns:
        {input name: array} in the graph's input order, with the dtypes of its spec.
    """
    sizes = {"batch": batch_size, SEQ: seq_len}
    out: dict[str, np.ndarray] = {}
    for t in spec.inputs:
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in t.shape)
        if t.name == "ids":
            out[t.name] = rng.integers(ids[0], ids[1], size=shape, dtype=np.int64)
        elif t.name == "lengths":
            lengths = rng.integers(1, seq_len + 1, size=shape, dtype=np.int64)
            lengths[0] = seq_len
            out[t.name] = lengths
        elif t.name in spec.state:
            out[t.name] = rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)
        else:
            out[t.name] = rng.standard_normal(shape).astype(np.float32)
    if "lengths" in out and pad_id is not None:
        pad = np.arange(seq_len)[None, :] >= out["lengths"][:, None]
        out["ids"][pad] = pad_id
    return out
