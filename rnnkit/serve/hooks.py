"""`ServingHooks`: what the HTTP server needs from one task.

Each task builds one in `rnnkit/tasks/<task>/serve.py` (imported only when serving, since it needs
pydantic from the `serve` extra) and its spec points at it with `TaskSpec.serving`, a
zero-argument loader. This module imports no task, no pydantic and no web framework.

Stream state is a `StreamState`: named float/int arrays plus a small JSON-able dict. The state
store keeps it as a safetensors blob (no pickle), so a restarted server continues a stream from
exactly the bytes it acknowledged.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from safetensors.numpy import load as _st_load
from safetensors.numpy import save as _st_save


@dataclass
class StreamState:
    """One stream's recurrent state between requests.

    Attributes:
        arrays: named arrays (hidden/cell states, buffers, counters), saved bit for bit.
        meta: small JSON-able facts (series id, start time, options fixed at creation).
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServingHooks:
    """How the server serves one task.

    Attributes:
        endpoint: the stateless verb: "classify", "forecast" or "generate" (the URL's last part).
        request_model: pydantic model of the stateless request body (limits as field
            constraints, so a violation is a 422 naming the field).
        run_batch: `(predictor, [request]) -> [response dict]`: several stateless requests of
            one model answered in one call (the micro-batch), in order.
        limits: `(predictor) -> {name: number}`: the input limits `/v1/models` shows (texts per
            request, text length, history length, horizon, generated tokens...).
        stream_events: `(predictor, request) -> iterator of JSON-able dicts`, for a stateless
            request that asks to stream (`"stream": true`): each dict is one server-sent event,
            produced as the model makes it; None where the task has no such mode.
        create_model: pydantic model of the stream-creation body (may be empty).
        observe_model: pydantic model of one observation (`seq` is added by the server).
        can_stream: `(predictor) -> None` if the model can carry a stream, else the reason
            (e.g. a bidirectional classifier reads the whole text first).
        new_stream: `(predictor, create request) -> (StreamState, answer dict | None)`.
        step_batch: `(predictor, [StreamState], [observe request]) -> [(StreamState, answer)]`:
            one step of several different streams in one call. Answers must not depend on which
            other streams share the batch (bitwise, on CPU), so that a restarted server that
            batches differently gives the same answers.
    """

    endpoint: str
    request_model: type
    run_batch: Callable[[Any, Sequence[Any]], list[dict[str, Any]]]
    limits: Callable[[Any], Mapping[str, float]]
    create_model: type
    observe_model: type
    can_stream: Callable[[Any], str | None]
    new_stream: Callable[[Any, Any], tuple[StreamState, dict[str, Any] | None]]
    step_batch: Callable[
        [Any, Sequence[StreamState], Sequence[Any]], list[tuple[StreamState, dict[str, Any]]]
    ]
    stream_events: Callable[[Any, Any], Iterator[dict[str, Any]]] | None = None


# --- StreamState <-> bytes -------------------------------------------------------------------


def encode_state(state: StreamState) -> bytes:
    """`state` as safetensors bytes: arrays bit for bit, `meta` as JSON in the header metadata.

    Raises:
        TypeError: an array that is not a numpy array, or meta that is not JSON-able.
    """
    for name, array in state.arrays.items():
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"StreamState.arrays[{name!r}] must be a numpy array, got {type(array).__name__}"
            )
    metadata = {
        "meta": json.dumps(state.meta, ensure_ascii=False),
        # safetensors sorts its tensors; keep the hooks' order so a state reads back the same
        "order": json.dumps(list(state.arrays), ensure_ascii=False),
    }
    # safetensors.numpy.save writes a non-contiguous array's buffer as if it were contiguous
    # (a transposed array comes back untransposed), so hand it C-ordered little-endian copies.
    arrays = {name: _c_little_endian(a) for name, a in state.arrays.items()}
    return _st_save(arrays, metadata=metadata)


def _c_little_endian(array: np.ndarray) -> np.ndarray:
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    # not np.ascontiguousarray: it turns a 0-d array into a 1-d one
    return array if array.flags.c_contiguous else array.copy(order="C")


def decode_state(blob: bytes) -> StreamState:
    """The `StreamState` that `encode_state` wrote (arrays are writable copies)."""
    loaded = _st_load(blob)
    # safetensors.numpy.load drops the header's metadata; the format is an 8-byte little-endian
    # header length, then the JSON header.
    (size,) = struct.unpack("<Q", blob[:8])
    metadata = json.loads(blob[8 : 8 + size]).get("__metadata__", {})
    order = json.loads(metadata.get("order", "[]"))
    arrays = {name: np.array(loaded[name]) for name in order}  # np.array: a writable copy
    return StreamState(arrays=arrays, meta=json.loads(metadata.get("meta", "{}")))
