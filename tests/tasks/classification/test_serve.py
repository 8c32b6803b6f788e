"""Serving a classifier: classify batches, running labels per stream equal to `predict`, limits."""

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
from rnnkit.models.classifier import TextClassifier
from rnnkit.serve.hooks import StreamState
from rnnkit.tasks import get_task
from rnnkit.tasks.classification.predictor import ClassifierPredictor
from rnnkit.tasks.classification.serve import MAX_CHARS, MAX_TEXTS, SERVING

# Chunks end at whitespace: basic_english splits words there anyway (see serve.py).
CHUNKS = ["a wonderful ", "film and ", "a dull, boring story ", "", "loved it"]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> ClassifierPredictor:
    """A tiny unidirectional LSTM with mean pooling, trained for one epoch."""
    root = tmp_path_factory.mktemp("clf-serve")
    good, bad = "a wonderful film and loved it", "a dull, boring story"
    texts, labels = [good, bad] * 10, ["pos", "neg"] * 10
    run = rnnkit.train(
        "classification", (texts, labels), root / "run",
        {"model.bidirectional": False, "model.pooling": "mean", "data.min_freq": 1,
         "model.embedding_dim": 8},
        hidden_size=8, epochs=1, device="cpu", embeddings=None,
    )  # fmt: skip
    return rnnkit.load(run.path)


def variant(predictor: ClassifierPredictor, **changes) -> ClassifierPredictor:
    """The same run with another pooling (same weights) or cell and depth (fresh weights)."""
    config = replace(predictor.model.config, **changes)
    model = TextClassifier(config)
    if "cell" not in changes and "num_layers" not in changes:
        model.load_state_dict(predictor.model.state_dict())
    return ClassifierPredictor(model, predictor.encoder, predictor.classes, predictor.max_length)


def stream(predictor, chunks, state=None):
    """Answers of one stream fed `chunks`, one observation each, and its last state."""
    if state is None:
        state, answer = SERVING.new_stream(predictor, {})
        assert answer is None
    answers = []
    for chunk in chunks:
        [(state, answer)] = SERVING.step_batch(predictor, [state], [{"text": chunk}])
        answers.append(answer)
    return answers, state


def stored(state: StreamState) -> StreamState:
    """The state as the store keeps it: a safetensors blob and JSON, read back."""
    blob = save_arrays(state.arrays, metadata={"meta": json.dumps(state.meta)})
    return StreamState(load_arrays(blob), json.loads(json.dumps(state.meta)))


def test_the_spec_loads_these_hooks() -> None:
    assert get_task("classification").serving() is SERVING
    assert SERVING.endpoint == "classify" and SERVING.stream_events is None


def test_run_batch_answers_each_request_as_predict_does(predictor) -> None:
    requests = [{"texts": ["a wonderful film", "a dull film"]}, {"texts": ["loved it"]}]
    got = SERVING.run_batch(predictor, [SERVING.request_model.model_validate(requests[0]),
                                        requests[1]])  # fmt: skip
    assert [len(r["results"]) for r in got] == [2, 1]
    want = predictor.predict(["a wonderful film", "a dull film", "loved it"])
    flat = [result for r in got for result in r["results"]]
    for a, b in zip(flat, want, strict=True):
        assert a["label"] == b["label"]
        for label, p in b["probabilities"].items():
            assert a["probabilities"][label] == pytest.approx(p, abs=1e-6)
    assert SERVING.limits(predictor) == {"texts_per_request": 256, "text_chars": 10_000}


@pytest.mark.parametrize(
    "changes",
    [{"pooling": "mean"}, {"pooling": "last"}, {"pooling": "max"},
     {"cell": "gru", "num_layers": 2, "pooling": "max"}, {"cell": "rnn", "pooling": "last"}],
)  # fmt: skip
def test_a_stream_labels_all_its_text_as_predict_does(predictor, changes) -> None:
    torch.manual_seed(0)
    model = variant(predictor, **changes)
    assert SERVING.can_stream(model) is None
    answers, _ = stream(model, CHUNKS)
    for i, answer in enumerate(answers):
        so_far = "".join(CHUNKS[: i + 1])
        [want] = model.predict([so_far])
        assert answer["tokens"] == len(model.encoder.encode(so_far))
        assert answer["label"] == want["label"]
        for label, p in want["probabilities"].items():
            assert answer["probabilities"][label] == pytest.approx(p, abs=1e-5)


def test_a_stream_without_tokens_is_labelled_as_an_empty_text(predictor) -> None:
    [answer], state = stream(predictor, [" "])
    [want] = predictor.predict([""])
    assert answer["tokens"] == 0 and answer["label"] == want["label"]
    assert int(state.arrays["tokens"][0]) == 0 and not state.arrays["h"].any()
    for label, p in want["probabilities"].items():
        assert answer["probabilities"][label] == pytest.approx(p, abs=1e-6)


def test_a_stream_reads_the_first_max_length_tokens_as_predict_does(predictor) -> None:
    short = ClassifierPredictor(predictor.model, predictor.encoder, predictor.classes, 4)
    answers, _ = stream(short, CHUNKS)
    assert [a["tokens"] for a in answers] == [2, 4, 4, 4, 4]
    [want] = short.predict(["".join(CHUNKS)])
    for label, p in want["probabilities"].items():
        assert answers[-1]["probabilities"][label] == pytest.approx(p, abs=1e-5)
    assert SERVING.limits(short)["tokens_per_text"] == 4


def test_a_stored_state_gives_the_same_next_answers_bit_for_bit(predictor) -> None:
    for changes in ({"pooling": "mean"}, {"pooling": "max"}, {"pooling": "last"}):
        model = variant(predictor, **changes)
        _, state = stream(model, CHUNKS[:2])
        kept = StreamState({k: v.copy() for k, v in state.arrays.items()}, dict(state.meta))
        straight, _ = stream(model, CHUNKS[2:], state)
        resumed, _ = stream(model, CHUNKS[2:], stored(kept))
        assert resumed == straight
        assert all(np.array_equal(state.arrays[k], kept.arrays[k]) for k in kept.arrays)


def test_answers_do_not_depend_on_the_streams_sharing_the_batch(predictor) -> None:
    a, _ = SERVING.new_stream(predictor, {})
    b, _ = SERVING.new_stream(predictor, {})
    together = SERVING.step_batch(predictor, [a, b], [{"text": "loved it"}, {"text": "dull"}])
    alone = SERVING.step_batch(predictor, [a], [{"text": "loved it"}])
    assert together[0][1] == alone[0][1]
    assert all(np.array_equal(together[0][0].arrays[k], v) for k, v in alone[0][0].arrays.items())


def test_a_bidirectional_classifier_says_why_it_cannot_stream(predictor) -> None:
    model = variant(predictor, bidirectional=True, cell="lstm", num_layers=1)
    assert "bidirectional" in SERVING.can_stream(model)
    with pytest.raises(ValueError, match="bidirectional"):
        SERVING.new_stream(model, {})


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        ("request_model", {"texts": ["ok"] * (MAX_TEXTS + 1)}, ("texts",)),
        ("request_model", {"texts": []}, ("texts",)),
        ("request_model", {"texts": ["ok", "x" * (MAX_CHARS + 1)]}, ("texts", 1)),
        ("request_model", {"texts": ["ok"], "labels": ["a"]}, ("labels",)),
        ("request_model", {"text": "ok"}, ("texts",)),
        ("create_model", {"text": "ok"}, ("text",)),
        ("observe_model", {"text": "x" * (MAX_CHARS + 1)}, ("text",)),
        ("observe_model", {}, ("text",)),
    ],
)
def test_over_limit_input_is_refused_naming_the_field(model, body, field) -> None:
    with pytest.raises(ValidationError) as caught:
        getattr(SERVING, model).model_validate(body)
    assert field in [error["loc"] for error in caught.value.errors()]
