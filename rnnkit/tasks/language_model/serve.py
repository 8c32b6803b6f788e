"""How `rnnkit serve` serves a language model: `POST .../generate` and a state per stream.

    generate   {"prompt", "max_tokens", "temperature", "top_k", "top_p", "repetition_penalty",
               "stop", "seed", "num_samples", "stream"} (the options of `rnnkit generate`)
               -> {"samples": [str, ...]}; with "stream": true, events {"sample": i, "text"}
    streams    create {"text"?: a prompt to prime the state} -> the answer below, or no answer
               without text
               observe {"text": chunk, "continue"?: n, and the sampling options above}
               -> {"tokens", "next": [{"token", "id", "p"}], "continuation"?: str}

`next` is the model's distribution over the token after all the text seen so far (its ten most
likely tokens), equal to feeding the whole text at once; `continuation` is `n` tokens sampled
from there as `generate(whole text)` would, without moving the stream's state past its text.
Before any text, both are those of an empty prompt, which generation starts from a line break.

Chunks are tokenized one by one, so split the text where the tokenizer splits it anyway:
anywhere for `char`; at whitespace for `basic_english`; just before a space for `bpe` (byte-level
BPE attaches a space to the word after it).

The state is the encoder's (h, and c for an LSTM; the next-token logits are the decoder of the
top layer's h) plus the ids seen, which the repetition penalty reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from rnnkit.serve.hooks import ServingHooks, StreamState
from rnnkit.tasks.language_model.generate import (
    SamplingConfig,
    _TextStream,
    continue_ids,
    prompt_ids,
)

#: characters in a prompt or a stream chunk
MAX_CHARS = 10_000
#: tokens generated per sample (and per stream continuation)
MAX_TOKENS = 2_000
#: samples in one request
MAX_SAMPLES = 16
#: stop strings in one request, and characters in each
MAX_STOPS, MAX_STOP_CHARS = 16, 200
#: the most likely next tokens a stream answers with
TOP_NEXT = 10

Text = Annotated[str, Field(max_length=MAX_CHARS)]
Stop = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]
Stops = Annotated[list[Stop], Field(max_length=MAX_STOPS)]


class Sampling(BaseModel):
    """The sampling options of `rnnkit generate`, with `SamplingConfig`'s defaults."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    temperature: float = Field(0.8, ge=0.0, le=100.0)
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, gt=0.0, le=100.0)
    stop: Stop | Stops = Field(default_factory=list)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)

    def config(self, max_tokens: int, num_samples: int = 1) -> SamplingConfig:
        return SamplingConfig(
            max_tokens=max_tokens,
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            repetition_penalty=self.repetition_penalty,
            stop=(self.stop,) if isinstance(self.stop, str) else tuple(self.stop),
            seed=self.seed,
            num_samples=num_samples,
        )


class GenerateRequest(Sampling):
    """`POST /v1/models/{name}/generate`."""

    prompt: Text = ""
    max_tokens: int = Field(SamplingConfig.max_tokens, ge=0, le=MAX_TOKENS)
    num_samples: int = Field(1, ge=1, le=MAX_SAMPLES)
    stream: bool = False


class GenerateStreamRequest(BaseModel):
    """`POST /v1/models/{name}/streams`: optionally, text to prime the state with."""

    model_config = ConfigDict(extra="forbid")

    text: Text | None = None


class Observe(Sampling):
    """`POST /v1/streams/{id}/observe`: the next chunk; `continue` samples that many tokens."""

    text: Text = ""
    continue_: int = Field(0, alias="continue", ge=0, le=MAX_TOKENS)


def _parsed(model: type[BaseModel], request: Any) -> Any:
    return request if isinstance(request, model) else model.model_validate(request)


# --- stateless generation --------------------------------------------------------------------


def run_batch(predictor: Any, requests: Sequence[Any]) -> list[dict[str, Any]]:
    """Each request on its own: prompts, options and seeds differ, and so do the samples' ends."""
    out = []
    for request in requests:
        r = _parsed(GenerateRequest, request)
        out.append({"samples": predictor.generate(r.prompt, r.config(r.max_tokens, r.num_samples))})
    return out


def stream_events(predictor: Any, request: Any) -> Iterator[dict[str, Any]]:
    """`{"sample": i, "text": piece}` as `LanguageModelPredictor.stream` makes each piece."""
    r = _parsed(GenerateRequest, request)
    for i, piece in predictor.stream(r.prompt, r.config(r.max_tokens, r.num_samples)):
        yield {"sample": i, "text": piece}


def limits(predictor: Any) -> dict[str, float]:
    del predictor  # the same for every model
    return {
        "prompt_chars": MAX_CHARS,
        "max_tokens": MAX_TOKENS,
        "num_samples": MAX_SAMPLES,
        "stop_strings": MAX_STOPS,
        "chunk_chars": MAX_CHARS,
    }


def can_stream(predictor: Any) -> str | None:
    del predictor  # a language model reads left to right by construction
    return None


# --- streams ---------------------------------------------------------------------------------


def new_stream(predictor: Any, request: Any) -> tuple[StreamState, dict[str, Any] | None]:
    request = _parsed(GenerateStreamRequest, request)
    state = _fresh(predictor)
    if not request.text:
        return state, None
    return _step(predictor, state, Observe(text=request.text))


def step_batch(
    predictor: Any, states: Sequence[StreamState], requests: Sequence[Any]
) -> list[tuple[StreamState, dict[str, Any]]]:
    # Each stream runs on its own (1, T) batch: batched kernels may add in another order when
    # the batch changes, and an answer must not depend on which streams shared the batch.
    return [
        _step(predictor, state, _parsed(Observe, request))
        for state, request in zip(states, requests, strict=True)
    ]


def _fresh(predictor: Any) -> StreamState:
    config = predictor.model.config
    shape = (config.num_layers, 1, config.hidden_size)  # PyTorch's state layout, batch of one
    arrays = {"h": np.zeros(shape, np.float32), "tokens": np.zeros(1, np.int64)}
    if config.cell == "lstm":
        arrays["c"] = np.zeros(shape, np.float32)
    arrays["seen"] = np.zeros(0, np.int64)  # sorted ids in the text (the repetition penalty's)
    return StreamState(arrays, {})


@torch.no_grad()
def _step(
    predictor: Any, state: StreamState, request: Observe
) -> tuple[StreamState, dict[str, Any]]:
    model, device = predictor.model, predictor.device
    arrays = {name: value.copy() for name, value in state.arrays.items()}
    ids = predictor.encoder.encode(request.text)
    seen = int(arrays["tokens"][0])
    torch_state = None if seen == 0 else _torch_state(arrays, device)
    if ids:
        # `forward` from None is exactly the whole-text pass; one token takes the cell step
        _, torch_state = model(torch.tensor([ids], device=device), torch_state)
        h, c = torch_state if isinstance(torch_state, tuple) else (torch_state, None)
        arrays["h"] = h.float().cpu().numpy()
        if c is not None:
            arrays["c"] = c.float().cpu().numpy()
        arrays["tokens"] = arrays["tokens"] + len(ids)
        arrays["seen"] = np.union1d(arrays["seen"], np.asarray(ids, np.int64))
    seen_ids = arrays["seen"]
    if torch_state is None:  # no text yet: an empty prompt's start, not kept in the state
        primer = prompt_ids(predictor.encoder, "")
        _, torch_state = model(torch.tensor([primer], device=device), None)
        seen_ids = np.unique(np.asarray(primer, np.int64))
    h_top = (torch_state[0] if isinstance(torch_state, tuple) else torch_state)[-1]  # (1, H)
    logits = model.decoder(h_top).float()  # (1, V): the last step's output is the top h
    probs = torch.softmax(logits[0], -1)
    top = probs.topk(min(TOP_NEXT, probs.numel()))
    answer: dict[str, Any] = {
        "tokens": int(arrays["tokens"][0]),
        "next": [
            {"token": predictor.encoder.decode([i], skip_special=False), "id": i, "p": p}
            for i, p in zip(top.indices.tolist(), top.values.tolist(), strict=True)
        ],
    }
    if request.continue_:
        config = request.config(request.continue_)
        answer["continuation"] = _continue(predictor, logits, torch_state, seen_ids, config)
    return StreamState(arrays, dict(state.meta)), answer


def _torch_state(arrays: dict[str, np.ndarray], device: torch.device) -> Any:
    h = torch.tensor(arrays["h"], device=device)  # a copy: stored arrays may be read-only
    return (h, torch.tensor(arrays["c"], device=device)) if "c" in arrays else h


def _continue(
    predictor: Any, logits: torch.Tensor, state: Any, seen_ids: np.ndarray, config: SamplingConfig
) -> str:
    """`config.max_tokens` tokens sampled from `state` as `generate_ids` samples one sample.

    `continue_ids` is what `generate_ids` runs after its prompt pass (which the stream has
    already made), with a generator seeded the same way; the text goes through the same
    stop-string handling.
    """
    text = _TextStream(predictor.encoder, config.stop)
    tokens = continue_ids(predictor.model, logits, state, config, seen=seen_ids.tolist())
    try:
        for ids in tokens:
            text.push(int(ids[0]))
            if text.done:
                break
    finally:
        tokens.close()
    text.finish()
    return text.text


SERVING = ServingHooks(
    endpoint="generate",
    request_model=GenerateRequest,
    run_batch=run_batch,
    limits=limits,
    create_model=GenerateStreamRequest,
    observe_model=Observe,
    can_stream=can_stream,
    new_stream=new_stream,
    step_batch=step_batch,
    stream_events=stream_events,
)
