"""`rnnkit serve` over real HTTP: every endpoint on every task, answers held to the library's,
and the guards (401, 409, 413, 415, 422, 503, a refused open address)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'rnnkit[serve]'")

TOKEN = "s3cret-token"
ROW = [{"time": "2000-01-01", "value": 1.0}]


def rows(frame) -> list[dict]:
    return [{"time": t.isoformat(), "value": float(v)} for t, v in frame["value"].items()]


@pytest.fixture(scope="module")
def library(serve_runs) -> dict:
    """What `rnnkit.load()` gives, to hold the server's answers to."""
    return {name: rnnkit.load(path) for name, path in serve_runs.items()}


@pytest.fixture(scope="module")
def north(serve_runs):
    return rnnkit.open_run(serve_runs["air"]).held_out().data.series["north"]


@pytest.fixture(scope="module")
def guarded(serve_runs, launch, tmp_path_factory):
    """A server with a token, two stream slots, a 2 s TTL and a 50 ms batch window."""
    token = tmp_path_factory.mktemp("guarded") / "token"
    token.write_text(TOKEN + "\n")
    args = ("--token-file", str(token), "--max-streams", "2", "--stream-ttl", "2",
            "--batch-window-ms", "50")  # fmt: skip
    return launch([serve_runs["rt"]], *args, token=TOKEN)


def post(server, path: str, body: dict, **kwargs) -> httpx.Response:
    assert server.client is not None
    return server.client.post(path, json=body, **kwargs)


# --- the server's own endpoints ---------------------------------------------------------------


def test_health_ready_page_static_and_docs(server) -> None:
    c = server.client
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/readyz").json() == {"ready": True, "models": ["air", "bard", "rt", "rt-bi"]}
    page = c.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "rnnkit" in page.text
    for name in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert c.get(name).status_code == 200, name
    assert c.get("/static/no-such-file.js").status_code == 404
    assert c.get("/docs").status_code == 200


def test_openapi_shows_each_model_request_schema(server) -> None:
    schema = server.client.get("/openapi.json").json()
    components = schema["components"]["schemas"]

    def body(path: str) -> dict:
        ref = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        return components[ref["schema"]["$ref"].rsplit("/", 1)[-1]]

    assert body("/v1/models/rt/classify")["properties"]["texts"]["maxItems"] == 256
    assert "horizon" in body("/v1/models/air/forecast")["properties"]
    assert "temperature" in body("/v1/models/bard/generate")["properties"]
    assert "/v1/models/bard/streams" in schema["paths"]
    observe = schema["paths"]["/v1/streams/{stream}/observe"]["post"]["requestBody"]
    choices = observe["content"]["application/json"]["schema"]["oneOf"]
    for ref in choices:
        assert "seq" in components[ref["$ref"].rsplit("/", 1)[-1]]["properties"]
    assert len(choices) == 3  # one per task, shared by the two classifiers


def test_openapi_documents_the_errors_as_they_are_answered(server, guarded) -> None:
    schema = server.client.get("/openapi.json").json()
    errors = {
        ("post", "/v1/models/rt/classify"): {400, 413, 415, 422},
        ("post", "/v1/models/rt/streams"): {400, 413, 415, 422, 503},
        ("get", "/v1/models/{name}"): {404, 422},
        ("post", "/v1/streams/{stream}/observe"): {404, 409, 413, 415, 422},
        ("get", "/v1/streams/{stream}"): {404, 422},
        ("delete", "/v1/streams/{stream}"): {404, 422},
    }
    for (method, path), statuses in errors.items():
        responses = schema["paths"][path][method]["responses"]
        assert {int(s) for s in responses if s >= "400"} == statuses, (method, path)
        for status in statuses:
            body = responses[str(status)]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    assert (
        "Retry-After"
        in schema["paths"]["/v1/models/rt/streams"]["post"]["responses"]["503"]["headers"]
    )
    error = schema["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["detail"] and error["properties"]["detail"]["type"] == "string"
    assert {"field", "errors", "expected", "limit"} <= set(error["properties"])
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # FastAPI's default 422
    assert "401" not in schema["paths"]["/v1/models"]["get"]["responses"]  # no token set

    guarded_schema = guarded.client.get("/openapi.json").json()["paths"]
    for path, operations in guarded_schema.items():
        for operation in operations.values():
            assert ("401" in operation["responses"]) == path.startswith(("/v1/", "/metrics"))


def test_models_listing(server) -> None:
    listed = {m["name"]: m for m in server.client.get("/v1/models").json()}
    assert sorted(listed) == ["air", "bard", "rt", "rt-bi"]
    tasks = {name: m["task"] for name, m in listed.items()}
    assert tasks == {"air": "forecasting", "bard": "language-model", "rt": "classification",
                     "rt-bi": "classification"}  # fmt: skip
    for name, m in listed.items():
        assert m["endpoint"].startswith(f"/v1/models/{name}/")
        assert m["parameters"] > 0 and m["size_bytes"] > 0 and m["limits"]
        assert m["data"] and "/" not in m["data"]  # the file's name, not the server's path
        assert m["metrics"] and all(v is None or np.isfinite(v) for v in m["metrics"].values())
    assert 0 <= listed["rt"]["metrics"]["accuracy"] <= 1
    assert listed["air"]["limits"]["horizon"] == 6
    assert [listed[n]["streams"] for n in ("air", "bard", "rt", "rt-bi")] == [1, 1, 1, 0]
    assert server.client.get("/v1/models/rt").json() == listed["rt"]
    missing = server.client.get("/v1/models/nope")
    assert missing.status_code == 404 and "air, bard, rt, rt-bi" in missing.json()["detail"]


# --- stateless requests -----------------------------------------------------------------------


def test_classify_equals_predict(server, library) -> None:
    texts = ["a witty triumph", "a dull mess", "x"]
    got = post(server, "/v1/models/rt/classify", {"texts": texts})
    assert got.status_code == 200
    want = library["rt"].predict(texts)
    for g, w in zip(got.json()["results"], want, strict=True):
        assert g["label"] == w["label"]
        assert g["probabilities"] == pytest.approx(w["probabilities"], abs=1e-6)


def test_concurrent_requests_share_batches_and_get_their_own_answers(guarded, library) -> None:
    texts = [[f"{word} film"] for word in ("witty", "dull", "warm", "flat", "fine", "mess")]

    def classify(text: list[str]) -> dict:
        return post(guarded, "/v1/models/rt/classify", {"texts": text}).json()

    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(classify, texts))
    for text, answer in zip(texts, answers, strict=True):
        want = library["rt"].predict(text)[0]["probabilities"]
        assert answer["results"][0]["probabilities"] == pytest.approx(want, abs=1e-6)
    metrics = guarded.client.get("/metrics").text
    count = _sample(metrics, 'rnnkit_batch_size_count{kind="request",model="rt"}')
    total = _sample(metrics, 'rnnkit_batch_size_sum{kind="request",model="rt"}')
    assert total >= len(texts) and count < total  # at least one batch held several


def test_forecast_equals_predict(server, library, north) -> None:
    got = post(server, "/v1/models/air/forecast", {"history": rows(north), "horizon": 3})
    assert got.status_code == 200, got.text
    want = library["air"].predict(north, horizon=3)["series"]
    answer = got.json()["forecasts"]["series"]
    assert [a["time"][:10] for a in answer] == [str(t.date()) for t in want.index]
    for a, (_, w) in zip(answer, want.iterrows(), strict=True):
        for column in want.columns:
            assert a[column] == pytest.approx(w[column], rel=1e-6)
    several = post(server, "/v1/models/air/forecast", {"series": {"a": rows(north)[-30:]}})
    assert len(several.json()["forecasts"]["a"]) == 6  # the model's horizon by default


def test_generate_equals_library(server, library) -> None:
    body = {"prompt": "To be", "max_tokens": 30, "seed": 3, "num_samples": 2}
    got = post(server, "/v1/models/bard/generate", body)
    assert got.status_code == 200
    want = library["bard"].generate("To be", max_tokens=30, seed=3, num_samples=2)
    assert got.json() == {"samples": want}


def test_generate_streams_events_as_they_are_made(server, library) -> None:
    body = {"prompt": "To", "max_tokens": 2000, "seed": 5, "temperature": 1.0, "stream": True}
    pieces, start, first, events = [], time.perf_counter(), None, []
    with server.client.stream("POST", "/v1/models/bard/generate", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: ") and first is None:
                first = time.perf_counter() - start
            events.append(line)
    done = time.perf_counter() - start
    assert "event: done" in events
    for line in events:
        if line.startswith("data: ") and line != "data: {}":
            event = json.loads(line[6:])
            assert event["sample"] == 0
            pieces.append(event["text"])
    assert len(pieces) > 10
    assert first is not None and first < done / 2  # the first piece long before the last
    want = library["bard"].generate("To", max_tokens=2000, seed=5, temperature=1.0)[0]
    assert "".join(pieces) == want


def test_a_client_that_leaves_an_event_stream_does_not_hurt_the_server(server) -> None:
    body = {"prompt": "To", "max_tokens": 2000, "num_samples": 4, "stream": True}
    with server.client.stream("POST", "/v1/models/bard/generate", json=body) as response:
        next(response.iter_lines())
    answer = post(server, "/v1/models/bard/generate", {"prompt": "To", "max_tokens": 5})
    assert answer.status_code == 200 and server.client.get("/healthz").status_code == 200


# --- streams ---------------------------------------------------------------------------------


def test_classifier_stream_labels_the_text_so_far(server, library) -> None:
    created = post(server, "/v1/models/rt/streams", {})
    assert created.status_code == 201
    stream = created.json()
    assert stream["model"] == "rt" and stream["seq"] == 0 and stream["answer"] is None
    text = ""
    for seq, chunk in enumerate(["a gorgeous,", " witty", " film but", " dull"], start=1):
        text += chunk
        got = post(server, f"/v1/streams/{stream['stream']}/observe", {"seq": seq, "text": chunk})
        assert got.status_code == 200, got.text
        assert got.json()["seq"] == seq
        want = library["rt"].predict([text])[0]
        assert got.json()["answer"]["probabilities"] == pytest.approx(
            want["probabilities"], abs=1e-5
        )
    state = server.client.get(f"/v1/streams/{stream['stream']}").json()
    assert state["seq"] == 4 and state["model"] == "rt" and state["updated"] >= state["created"]
    assert server.client.delete(f"/v1/streams/{stream['stream']}").status_code == 204
    assert server.client.get(f"/v1/streams/{stream['stream']}").status_code == 404


def test_forecaster_stream_equals_the_library_stream_bit_for_bit(server, library, north) -> None:
    history, future = north.iloc[:60], north["value"].iloc[60:70]
    created = post(server, "/v1/models/air/streams", {"series": "north", "history": rows(history)})
    assert created.status_code == 201, created.text
    stream = created.json()["stream"]
    warm = created.json()["answer"]["forecast"]
    predicted = library["air"].predict(history)["series"]
    assert [w["value"] for w in warm] == pytest.approx(list(predicted["value"]), rel=1e-5)
    reference = library["air"].stream("north", history)
    for seq, value in enumerate(future, start=1):
        got = post(server, f"/v1/streams/{stream}/observe", {"seq": seq, "values": [value]})
        assert got.status_code == 200, got.text
        want = reference.update(float(value))
        answer = got.json()["answer"]
        assert answer["steps"] == len(history) + seq
        assert [r["value"] for r in answer["forecast"]] == want.point[:, 0].tolist()
        if want.lower is not None:
            assert [r["value_lower"] for r in answer["forecast"]] == want.lower[:, 0].tolist()
    several = post(server, f"/v1/streams/{stream}/observe", {"seq": 11, "values": [1.0, 2.0]})
    for value in (1.0, 2.0):
        want = reference.update(value)
    assert [r["value"] for r in several.json()["answer"]["forecast"]] == want.point[:, 0].tolist()


def test_language_model_stream_equals_a_whole_text_forward(server, library) -> None:
    stream = post(server, "/v1/models/bard/streams", {}).json()["stream"]
    predictor, text = library["bard"], ""
    for seq, chunk in enumerate(["To be, o", "r not", " to be, th"], start=1):
        text += chunk
        got = post(server, f"/v1/streams/{stream}/observe", {"seq": seq, "text": chunk})
        assert got.status_code == 200, got.text
        with torch.no_grad():
            ids = predictor.encoder.encode(text)
            logits, _ = predictor.model(torch.tensor([ids]), None)
            probs = torch.softmax(logits[0, -1].float(), -1)
        answer = got.json()["answer"]
        assert answer["tokens"] == len(ids)
        for item in answer["next"]:
            assert item["p"] == pytest.approx(float(probs[item["id"]]), abs=1e-5)
        assert answer["next"][0]["id"] == int(probs.argmax())
    got = post(server, f"/v1/streams/{stream}/observe",
               {"seq": 4, "text": "", "continue": 12, "seed": 1})  # fmt: skip
    want = predictor.generate(text, max_tokens=12, seed=1)[0]
    assert got.json()["answer"]["continuation"] == want


def test_sequence_numbers_retry_and_gap(server) -> None:
    stream = post(server, "/v1/models/rt/streams", {}).json()["stream"]
    path = f"/v1/streams/{stream}/observe"
    first = post(server, path, {"seq": 1, "text": "a triumph"})
    again = post(server, path, {"seq": 1, "text": "a triumph"})  # a retry: the stored answer
    assert again.status_code == 200 and again.json() == first.json()
    assert server.client.get(f"/v1/streams/{stream}").json()["seq"] == 1  # not applied twice
    gap = post(server, path, {"seq": 3, "text": "dull"})
    assert gap.status_code == 409 and gap.json()["expected"] == 2
    assert "expected 2" in gap.json()["detail"]
    assert post(server, path, {"seq": 2, "text": "dull"}).status_code == 200
    old = post(server, path, {"seq": 1, "text": "a triumph"})  # its answer is gone
    assert old.status_code == 409 and old.json()["expected"] == 3


def test_unknown_things_are_404s(server) -> None:
    c = server.client
    assert c.get("/v1/streams/nope").status_code == 404
    assert post(server, "/v1/streams/nope/observe", {"seq": 1, "text": "x"}).status_code == 404
    assert c.delete("/v1/streams/nope").status_code == 404
    assert post(server, "/v1/models/nope/classify", {"texts": ["x"]}).status_code == 404
    wrong = post(server, "/v1/models/rt/forecast", {})
    assert wrong.status_code == 404 and "/v1/models/rt/classify" in wrong.json()["detail"]
    assert c.get("/nowhere").json() == {"detail": "Not Found"}


def test_a_model_that_cannot_stream_says_why(server) -> None:
    got = post(server, "/v1/models/rt-bi/streams", {})
    assert got.status_code == 400 and "bidirectional" in got.json()["detail"]


# --- bad input: named, never a 500 ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/models/rt/classify", {"texts": ["x"] * 257}, "texts"),
        ("/v1/models/rt/classify", {"texts": ["x" * 10_001]}, "texts.0"),
        ("/v1/models/rt/classify", {"texts": ["x"], "label": 1}, "label"),
        ("/v1/models/rt/classify", {"texts": "x"}, "texts"),
        ("/v1/models/air/forecast", {"history": ROW, "horizon": 1001}, "horizon"),
        ("/v1/models/bard/generate", {"prompt": "x", "max_tokens": 5000}, "max_tokens"),
        ("/v1/models/bard/generate", {"prompt": "x", "temperature": -1}, "temperature"),
        ("/v1/models/bard/streams", {"text": 3}, "text"),
    ],
)
def test_input_over_its_limits_is_a_422_naming_the_field(server, path, body, field) -> None:
    got = post(server, path, body)
    assert got.status_code == 422, got.text
    assert got.json()["field"] == field and got.json()["detail"].startswith(field + ":")


def test_bad_input_inside_the_model_is_a_422_not_a_500(server, north) -> None:
    over = post(server, "/v1/models/air/forecast", {"history": rows(north), "horizon": 7})
    assert over.status_code == 422 and "horizon 7" in over.json()["detail"]
    short = post(server, "/v1/models/air/forecast", {"history": rows(north)[:3]})
    assert short.status_code == 422 and "at least 24" in short.json()["detail"]
    times = post(server, "/v1/models/air/forecast", {"history": [{"time": "soon", "value": 1}]})
    assert times.status_code == 422 and times.json()["field"] == "time"
    stream = post(server, "/v1/models/air/streams", {"series": "north", "history": rows(north)})
    stream_id = stream.json()["stream"]
    wide = post(server, f"/v1/streams/{stream_id}/observe", {"seq": 1, "values": [[1.0, 2.0]]})
    assert wide.status_code == 422 and "values[0]" in wide.json()["detail"]
    field = post(server, f"/v1/streams/{stream_id}/observe", {"seq": 1, "values": "x"})
    assert field.status_code == 422 and field.json()["field"].startswith("values")
    no_seq = post(server, f"/v1/streams/{stream_id}/observe", {"values": [1.0]})
    assert no_seq.status_code == 422 and no_seq.json()["field"] == "seq"


def test_bodies_that_are_not_json(server) -> None:
    c = server.client
    broken = c.post("/v1/models/rt/classify", content=b'{"texts": [', headers=_JSON)
    assert broken.status_code == 422 and broken.json()["detail"].startswith("body: not JSON")
    form = c.post("/v1/models/rt/classify", content=b"texts=x")  # no JSON content type
    assert form.status_code == 415 and "application/json" in form.json()["detail"]
    stream = post(server, "/v1/models/rt/streams", {}).json()["stream"]
    plain = c.post(f"/v1/streams/{stream}/observe", content=b'{"seq": 1, "text": "x"}')
    assert plain.status_code == 415
    listed = c.post(f"/v1/streams/{stream}/observe", content=b"[1]", headers=_JSON)
    assert listed.status_code == 422


def test_a_body_over_the_limit_is_a_413(server) -> None:
    got = post(server, "/v1/models/rt/classify", {"texts": ["x" * 9_000] * 12})
    assert got.status_code == 413 and got.json()["limit"] == 100_000

    def chunks():  # no Content-Length: the limit holds for a chunked body too
        for _ in range(30):
            yield b"x" * 5_000

    chunked = server.client.post("/v1/models/rt/classify", content=chunks(), headers=_JSON)
    assert chunked.status_code == 413
    metrics = server.client.get("/metrics").text  # counted under its route, refused or not
    labels = 'endpoint="/v1/models/rt/classify",method="POST",status="413"'
    assert _sample(metrics, f"rnnkit_requests_total{{{labels}}}") == 2


def test_metrics_count_requests_batches_streams_and_commits(server) -> None:
    stream = post(server, "/v1/models/rt/streams", {}).json()["stream"]
    post(server, f"/v1/streams/{stream}/observe", {"seq": 1, "text": "warm"})
    post(server, "/v1/models/rt/classify", {"texts": ["x"] * 300})
    text = server.client.get("/metrics").text
    classify = 'endpoint="/v1/models/rt/classify",method="POST",status="422"'
    assert _sample(text, f"rnnkit_requests_total{{{classify}}}") >= 1
    observe = 'endpoint="/v1/streams/{stream}/observe",method="POST",status="200"'
    assert _sample(text, f"rnnkit_request_seconds_count{{{observe}}}") >= 1
    assert _sample(text, 'rnnkit_batch_size_count{kind="step",model="rt"}') >= 1
    assert _sample(text, 'rnnkit_state_commit_seconds_count{op="step"}') >= 1
    assert _sample(text, 'rnnkit_state_commit_seconds_count{op="create"}') >= 1
    assert _sample(text, "rnnkit_active_streams") >= 1
    assert "/v1/streams/" + stream not in text  # ids never become labels


# --- the guarded server ------------------------------------------------------------------------


def test_a_token_is_required_where_one_is_set(guarded) -> None:
    bare = httpx.Client(base_url=guarded.url, timeout=10)
    with bare:
        for path in ("/v1/models", "/metrics"):
            refused = bare.get(path)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            assert "Bearer" in refused.json()["detail"]
        wrong = bare.get("/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert bare.get("/healthz").status_code == 200 and bare.get("/").status_code == 200
    assert guarded.client.get("/v1/models").status_code == 200
    metrics = guarded.client.get("/metrics").text
    assert (
        _sample(metrics, 'rnnkit_requests_total{endpoint="/v1/models",method="GET",status="401"}')
        == 2
    )


def test_full_is_a_503_with_retry_after_until_idle_streams_expire(guarded) -> None:
    first = [post(guarded, "/v1/models/rt/streams", {}) for _ in range(2)]
    assert [r.status_code for r in first] == [201, 201]
    full = post(guarded, "/v1/models/rt/streams", {})
    assert full.status_code == 503 and "--max-streams" in full.json()["detail"]
    wait = int(full.headers["retry-after"])
    assert 1 <= wait <= 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the TTL is 2 s; Retry-After says when to come back
        time.sleep(wait + 0.1)
        again = post(guarded, "/v1/models/rt/streams", {})
        if again.status_code == 201:
            break
        wait = 1
    assert again.status_code == 201
    gone = guarded.client.get(f"/v1/streams/{first[0].json()['stream']}")
    assert gone.status_code == 404 and "idle" in gone.json()["detail"]


# --- startup ----------------------------------------------------------------------------------


def test_an_open_address_without_a_token_is_refused_at_startup(serve_runs, tmp_path) -> None:
    command = [sys.executable, "-m", "rnnkit", "serve", str(serve_runs["rt"]), "--host",
               "0.0.0.0", "--port", "0", "--state", str(tmp_path / "s.sqlite")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refusing to serve on '0.0.0.0' without a token" in done.stderr
    assert "--token-file" in done.stderr and "--insecure-no-auth" in done.stderr
    assert not (tmp_path / "s.sqlite").exists()  # refused before anything was opened


def test_the_binding_check() -> None:
    from rnnkit.errors import ConfigError
    from rnnkit.serve.security import check_binding, is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.5", "example.org"]))
    check_binding("0.0.0.0", "token", False)
    check_binding("0.0.0.0", None, True)
    with pytest.raises(ConfigError, match="refusing to serve on '::'"):
        check_binding("::", None, False)


def test_without_the_extra_the_error_names_it(monkeypatch, capsys, serve_runs) -> None:
    from rnnkit.cli import main
    from rnnkit.cli import serve as serve_cli

    monkeypatch.setattr(serve_cli, "_importable", lambda module: module != "uvicorn")
    assert main(["serve", str(serve_runs["rt"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "rnnkit: error: rnnkit serve needs uvicorn: pip install 'rnnkit[serve]'"


def test_settings_and_names_are_checked(tmp_path: Path) -> None:
    from rnnkit.errors import ConfigError
    from rnnkit.serve.app import ServeSettings, model_names

    with pytest.raises(ConfigError, match="--max-streams 0: must be at least 1"):
        ServeSettings(max_streams=0)
    with pytest.raises(ConfigError, match="--stream-ttl"):
        ServeSettings(stream_ttl=0)
    named = model_names([tmp_path / "a" / "rt", tmp_path / "b" / "rt", tmp_path / "my run!"])
    assert list(named) == ["rt", "rt-2", "my-run"]


_JSON = {"Content-Type": "application/json"}


def _sample(text: str, name: str) -> float:
    """A sample's value in Prometheus text (labels in the order prometheus_client writes)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics:\n{text[:2000]}")
