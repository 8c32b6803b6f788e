"""Serving a language model: generate batches and events, streams equal to the whole text."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

import rnnkit
from rnnkit.models.language_model import LanguageModel
from rnnkit.serve.hooks import StreamState
from rnnkit.tasks import get_task
from rnnkit.tasks.language_model.generate import prompt_ids
from rnnkit.tasks.language_model.predictor import LanguageModelPredictor
from rnnkit.tasks.language_model.serve import (
    MAX_CHARS,
    MAX_SAMPLES,
    MAX_STOPS,
    MAX_TOKENS,
    SERVING,
    TOP_NEXT,
)

VERSE = "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east.\n\n"
# a character model: chunks may end anywhere
CHUNKS = ["ROM", "EO:\nBut s", "", "o", "ft, what light through yon", "der window"]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> LanguageModelPredictor:
    root = tmp_path_factory.mktemp("lm-serve")
    run = rnnkit.train(
        "lm", VERSE * 20, root / "bard", {"data.bptt": 16, "model.embedding_dim": 8},
        batch_size=4, hidden_size=16, epochs=1, device="cpu",
    )  # fmt: skip
    return rnnkit.load(run.path)


def variant(predictor: LanguageModelPredictor, **changes) -> LanguageModelPredictor:
    """Another cell and depth with fresh weights, on the same vocabulary."""
    torch.manual_seed(0)
    model = LanguageModel(replace(predictor.model.config, **changes))
    return LanguageModelPredictor(model, predictor.encoder)


def stored(state: StreamState) -> StreamState:
    """The state as the store keeps it: a safetensors blob and JSON, read back."""
    blob = save_arrays(state.arrays, metadata={"meta": json.dumps(state.meta)})
    return StreamState(load_arrays(blob), json.loads(json.dumps(state.meta)))


def observe(predictor, state, body):
    [(state, answer)] = SERVING.step_batch(predictor, [state], [body])
    return state, answer


def whole_text_distribution(predictor, text: str) -> np.ndarray:
    ids = prompt_ids(predictor.encoder, text)
    with torch.no_grad():
        logits, _ = predictor.model(torch.tensor([ids]), None)
    return torch.softmax(logits[0, -1].float(), -1).numpy()


def assert_next_matches(predictor, answer, want: np.ndarray) -> None:
    """`answer["next"]` is the top of the distribution `want`, most likely first."""
    assert len(answer["next"]) == TOP_NEXT
    probs = [entry["p"] for entry in answer["next"]]
    assert probs == sorted(probs, reverse=True)
    assert probs[0] == pytest.approx(want.max(), abs=1e-5)
    for entry in answer["next"]:
        assert entry["p"] == pytest.approx(want[entry["id"]], abs=1e-5)
        assert entry["token"] == predictor.encoder.decode([entry["id"]], skip_special=False)


def test_the_spec_loads_these_hooks() -> None:
    assert get_task("language-model").serving() is SERVING
    assert SERVING.endpoint == "generate" and SERVING.can_stream(None) is None


def test_run_batch_generates_as_generate_does(predictor) -> None:
    requests = [
        {"prompt": "ROMEO:", "max_tokens": 30, "temperature": 1.0, "top_k": 5, "seed": 3,
         "num_samples": 2, "stop": "\n"},
        {"prompt": "", "max_tokens": 12, "temperature": 0, "repetition_penalty": 1.5},
    ]  # fmt: skip
    got = SERVING.run_batch(predictor, requests)
    assert got[0]["samples"] == predictor.generate(
        "ROMEO:", max_tokens=30, temperature=1.0, top_k=5, seed=3, num_samples=2, stop="\n"
    )
    assert got[1]["samples"] == predictor.generate(
        "", max_tokens=12, temperature=0, repetition_penalty=1.5
    )
    assert len(got[0]["samples"]) == 2 and all("\n" not in s for s in got[0]["samples"])
    assert SERVING.limits(predictor)["max_tokens"] == MAX_TOKENS


def test_stream_events_are_the_predictors_pieces(predictor) -> None:
    body = {"prompt": "But ", "max_tokens": 25, "top_p": 0.9, "seed": 1, "num_samples": 2,
            "stream": True}  # fmt: skip
    events = list(SERVING.stream_events(predictor, body))
    assert events and all(set(e) == {"sample", "text"} for e in events)
    joined = ["".join(e["text"] for e in events if e["sample"] == i) for i in (0, 1)]
    assert joined == predictor.generate("But ", max_tokens=25, top_p=0.9, seed=1, num_samples=2)


@pytest.mark.parametrize("changes", [{}, {"cell": "gru", "num_layers": 2}, {"cell": "rnn"}])
def test_a_stream_answers_as_the_whole_text_at_once(predictor, changes) -> None:
    model = variant(predictor, **changes) if changes else predictor
    state, answer = SERVING.new_stream(model, {})
    assert answer is None
    for i, chunk in enumerate(CHUNKS):
        state, answer = observe(model, state, {"text": chunk})
        so_far = "".join(CHUNKS[: i + 1])
        assert answer["tokens"] == len(model.encoder.encode(so_far))
        assert_next_matches(model, answer, whole_text_distribution(model, so_far))
    assert "continuation" not in answer


@pytest.mark.parametrize(
    "options",
    [{"temperature": 0},
     {"temperature": 1.0, "top_k": 8, "top_p": 0.95, "repetition_penalty": 1.3, "seed": 5,
      "stop": ["\n\n", "window"]}],
)  # fmt: skip
def test_a_continuation_is_what_generate_writes_after_the_text(predictor, options) -> None:
    state, _ = SERVING.new_stream(predictor, {"text": CHUNKS[0]})
    for chunk in CHUNKS[1:-1]:
        state, _ = observe(predictor, state, {"text": chunk})
    body = {"text": CHUNKS[-1], "continue": 40, **options}
    after, answer = observe(predictor, state, body)
    want = predictor.generate("".join(CHUNKS), max_tokens=40, **options)[0]
    assert answer["continuation"] == want
    # the continuation did not move the state past the text
    plain, _ = observe(predictor, state, {"text": CHUNKS[-1]})
    assert all(np.array_equal(after.arrays[k], v) for k, v in plain.arrays.items())


def test_an_empty_stream_answers_as_an_empty_prompt(predictor) -> None:
    state, answer = SERVING.new_stream(predictor, {"text": ""})
    assert answer is None and int(state.arrays["tokens"][0]) == 0
    state, answer = observe(predictor, state, {"text": "", "continue": 20, "temperature": 0})
    assert answer["tokens"] == 0 and not state.arrays["h"].any()
    assert_next_matches(predictor, answer, whole_text_distribution(predictor, ""))
    assert answer["continuation"] == predictor.generate("", max_tokens=20, temperature=0)[0]


def test_creating_with_text_answers_as_observing_it(predictor) -> None:
    primed, answer = SERVING.new_stream(predictor, {"text": VERSE})
    fresh, _ = SERVING.new_stream(predictor, {})
    observed, want = observe(predictor, fresh, {"text": VERSE})
    assert answer == want
    assert all(np.array_equal(primed.arrays[k], v) for k, v in observed.arrays.items())


def test_a_stored_state_gives_the_same_next_answers_bit_for_bit(predictor) -> None:
    a, _ = SERVING.new_stream(predictor, {"text": VERSE[:20]})
    b, _ = SERVING.new_stream(predictor, {"text": "It is"})
    kept = StreamState({k: v.copy() for k, v in a.arrays.items()}, dict(a.meta))
    body = {"text": VERSE[20:40], "continue": 15, "temperature": 0.7, "seed": 2,
            "repetition_penalty": 1.2}  # fmt: skip
    together = SERVING.step_batch(predictor, [a, b], [body, {"text": " the east"}])
    alone = SERVING.step_batch(predictor, [stored(kept)], [body])
    assert together[0][1] == alone[0][1]
    for name, value in alone[0][0].arrays.items():
        assert np.array_equal(together[0][0].arrays[name], value), name
    assert all(np.array_equal(a.arrays[k], kept.arrays[k]) for k in kept.arrays)  # untouched


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        ("request_model", {"max_tokens": MAX_TOKENS + 1}, ("max_tokens",)),
        ("request_model", {"num_samples": MAX_SAMPLES + 1}, ("num_samples",)),
        ("request_model", {"num_samples": 0}, ("num_samples",)),
        ("request_model", {"prompt": "x" * (MAX_CHARS + 1)}, ("prompt",)),
        ("request_model", {"temperature": float("nan")}, ("temperature",)),
        ("request_model", {"temperature": -1}, ("temperature",)),
        ("request_model", {"top_p": 0}, ("top_p",)),
        ("request_model", {"top_k": 0}, ("top_k",)),
        ("request_model", {"repetition_penalty": 0}, ("repetition_penalty",)),
        ("request_model", {"stop": ["a"] * (MAX_STOPS + 1)}, ("stop",)),
        ("request_model", {"stop": [""]}, ("stop",)),
        ("request_model", {"stop": "x" * 201}, ("stop",)),
        ("request_model", {"seed": -1}, ("seed",)),
        ("request_model", {"beam": 4}, ("beam",)),
        ("create_model", {"text": "x" * (MAX_CHARS + 1)}, ("text",)),
        ("observe_model", {"text": "a", "continue": MAX_TOKENS + 1}, ("continue",)),
        ("observe_model", {"text": "a", "continue_": 3}, ("continue_",)),
        ("observe_model", {"text": "a", "num_samples": 2}, ("num_samples",)),
    ],
)
def test_over_limit_input_is_refused_naming_the_field(model, body, field) -> None:
    with pytest.raises(ValidationError) as caught:
        getattr(SERVING, model).model_validate(body)
    # a union's errors name the field, then the branch
    assert field in [error["loc"][: len(field)] for error in caught.value.errors()]
