"""How `rnnkit serve` serves a classifier: `POST .../classify` and running labels per stream.

    classify   {"texts": [str, ...]} -> {"results": [{"label", "probabilities": {label: p}}]}
    streams    create {} -> no answer yet
               observe {"text": chunk} -> {"label", "probabilities", "tokens"}: the label of
               all the text the stream has seen, equal to `predict([whole text so far])`

A stream carries the encoder state (h, and c for an LSTM) and what the pooling needs to go on
without the earlier tokens: `last` nothing more (the top layer's h is the last output), `mean`
the running sum of the outputs and their count, `max` the running maximum. So each chunk costs
its own tokens only, whatever the length of the text before it.

Chunks are tokenized one by one, so split the text where the tokenizer splits it anyway:
anywhere for `char`; at whitespace for `basic_english` (a word cut in two would be two words);
just before a space for `bpe` (byte-level BPE attaches a space to the word after it). A model
trained with `data.max_length` reads the first `max_length` tokens of a text; a stream likewise
ignores the tokens after them, as `predict` does.

Only unidirectional classifiers stream: a bidirectional one reads each text from its end too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from rnnkit.errors import ConfigError
from rnnkit.serve.hooks import ServingHooks, StreamState

#: texts in one classify request
MAX_TEXTS = 256
#: characters in one text (or one stream chunk)
MAX_CHARS = 10_000

Text = Annotated[str, Field(max_length=MAX_CHARS)]


class ClassifyRequest(BaseModel):
    """`POST /v1/models/{name}/classify`: the texts to label."""

    model_config = ConfigDict(extra="forbid")

    texts: list[Text] = Field(min_length=1, max_length=MAX_TEXTS)


class ClassifyStreamRequest(BaseModel):
    """`POST /v1/models/{name}/streams`: a classifier stream takes no parameters."""

    model_config = ConfigDict(extra="forbid")


class Observe(BaseModel):
    """`POST /v1/streams/{id}/observe`: the next chunk of the stream's text."""

    model_config = ConfigDict(extra="forbid")

    text: Text


def _parsed(model: type[BaseModel], request: Any) -> Any:
    return request if isinstance(request, model) else model.model_validate(request)


def run_batch(predictor: Any, requests: Sequence[Any]) -> list[dict[str, Any]]:
    """Every text of the micro-batch in one `predict` call, split back per request."""
    parsed = [_parsed(ClassifyRequest, r) for r in requests]
    results = predictor.predict([text for r in parsed for text in r.texts])
    out, start = [], 0
    for r in parsed:
        out.append({"results": results[start : start + len(r.texts)]})
        start += len(r.texts)
    return out


def limits(predictor: Any) -> dict[str, float]:
    found: dict[str, float] = {"texts_per_request": MAX_TEXTS, "text_chars": MAX_CHARS}
    if predictor.max_length:
        found["tokens_per_text"] = predictor.max_length
    return found


def can_stream(predictor: Any) -> str | None:
    if predictor.model.config.bidirectional:
        return (
            "a bidirectional classifier reads each text from its end too, so it cannot label "
            "text as it arrives; train one with --no-bidirectional to stream"
        )
    return None


# --- streams -------------------------------------------------------------------------------


def new_stream(predictor: Any, request: Any) -> tuple[StreamState, dict[str, Any] | None]:
    _parsed(ClassifyStreamRequest, request)
    reason = can_stream(predictor)
    if reason is not None:
        raise ConfigError(reason)
    return _fresh(predictor), None


def step_batch(
    predictor: Any, states: Sequence[StreamState], requests: Sequence[Any]
) -> list[tuple[StreamState, dict[str, Any]]]:
    # Each stream runs on its own (1, T) batch: batched kernels may add in another order when
    # the batch changes, and an answer must not depend on which streams shared the batch.
    return [
        _step(predictor, state, _parsed(Observe, request).text)
        for state, request in zip(states, requests, strict=True)
    ]


def _fresh(predictor: Any) -> StreamState:
    """Zero encoder state, nothing pooled, no tokens."""
    config = predictor.model.config
    shape = (config.num_layers, 1, config.hidden_size)  # PyTorch's state layout, batch of one
    arrays = {"h": np.zeros(shape, np.float32), "tokens": np.zeros(1, np.int64)}
    if config.cell == "lstm":
        arrays["c"] = np.zeros(shape, np.float32)
    if config.pooling == "mean":
        arrays["sum"] = np.zeros(config.hidden_size, np.float64)  # float64: long texts add up
    elif config.pooling == "max":
        arrays["max"] = np.full(config.hidden_size, -np.inf, np.float32)
    return StreamState(arrays, {})


def _step(predictor: Any, state: StreamState, text: str) -> tuple[StreamState, dict[str, Any]]:
    seen = int(state.arrays["tokens"][0])
    ids = predictor.encoder.encode(text)
    if predictor.max_length:
        ids = ids[: max(predictor.max_length - seen, 0)]
    arrays = _advance(predictor, state.arrays, ids)
    if seen + len(ids) == 0:
        # `predict` reads a text without tokens as one <unk>; so does the answer (not the state).
        pooled = _advance(predictor, arrays, [predictor.encoder.unk_id])
        return StreamState(arrays, dict(state.meta)), _answer(predictor, pooled, tokens=0)
    return StreamState(arrays, dict(state.meta)), _answer(predictor, arrays, seen + len(ids))


@torch.no_grad()
def _advance(predictor: Any, arrays: dict[str, np.ndarray], ids: list[int]) -> dict:
    """The stream's arrays after `ids` (new arrays; those given are not changed)."""
    out = {name: value.copy() for name, value in arrays.items()}
    if not ids:
        return out
    model, device = predictor.model, predictor.device
    h = torch.tensor(arrays["h"], device=device)  # a copy: stored arrays may be read-only
    initial = (h, torch.tensor(arrays["c"], device=device)) if "c" in arrays else h
    x = model.embed(torch.tensor([ids], device=device))  # (1, T, E); no dropout in eval mode
    outputs, final = model.encoder(x, None, initial)  # (1, T, H)
    if isinstance(final, tuple):
        out["h"], out["c"] = (t.float().cpu().numpy() for t in final)
    else:
        out["h"] = final.float().cpu().numpy()
    outputs = outputs[0].float().cpu()  # (T, H)
    if "sum" in out:
        out["sum"] = out["sum"] + outputs.double().sum(0).numpy()
    if "max" in out:
        out["max"] = np.maximum(out["max"], outputs.amax(0).numpy())
    out["tokens"] = out["tokens"] + len(ids)
    return out


@torch.no_grad()
def _answer(predictor: Any, arrays: dict[str, np.ndarray], tokens: int) -> dict[str, Any]:
    model = predictor.model
    if "sum" in arrays:
        pooled = arrays["sum"] / float(arrays["tokens"][0])
    elif "max" in arrays:
        pooled = arrays["max"]
    else:
        pooled = arrays["h"][-1, 0]  # the top layer's last output
    x = torch.tensor(np.asarray(pooled, np.float32), device=predictor.device).unsqueeze(0)
    probs = torch.softmax(model.head(model.dropout(x)).float(), -1)[0].cpu().numpy()
    classes = predictor.classes
    return {
        "label": classes[int(probs.argmax())],
        "probabilities": {c: float(p) for c, p in zip(classes, probs, strict=True)},
        "tokens": tokens,
    }


SERVING = ServingHooks(
    endpoint="classify",
    request_model=ClassifyRequest,
    run_batch=run_batch,
    limits=limits,
    create_model=ClassifyStreamRequest,
    observe_model=Observe,
    can_stream=can_stream,
    new_stream=new_stream,
    step_batch=step_batch,
)
