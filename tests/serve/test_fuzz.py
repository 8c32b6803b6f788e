"""Property-based fuzzing of the OpenAPI schema against a real `rnnkit serve` (schemathesis).

Every operation the server documents at `/openapi.json`, on tiny runs of all three tasks (and a
bidirectional classifier, which cannot stream), gets `EXAMPLES` generated requests, each drawn
either to fit the schema or to break it (wrong types, missing fields, values out of limits).
Bad input must be a 4xx naming what is wrong, never a 5xx, and the server must stay up; every
answer, errors included, must have a documented status and fit its schema.

Purely random requests rarely get past validation, so `_aim` nudges some of them (drawn by
hypothesis too, so still reproducible): stream routes get a live stream of the model whose
observation the body looks like, and its next `seq`; `GET /v1/models/{name}` a served name;
histories enough rows, ISO dates in order and the target column. Those reach the models and
the state store.

Deterministic: hypothesis runs derandomized (a fixed seed per operation) with no example
database, so CI sends the same requests every time (~1,500 of them, 20-30 s on 2 cores).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the fuzz test needs schemathesis")
hypothesis = pytest.importorskip("hypothesis")
requests = pytest.importorskip("requests")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

#: generated requests per operation (those without inputs stop after one: there is no other)
EXAMPLES = 100
#: more for the observations: one route for every model, and the one that steps and commits
WEIGHTS = {"POST /v1/streams/{stream}/observe": 4}
#: the fewest requests the whole run must have sent
MIN_REQUESTS = 1_000
#: a generous bound per request: the slowest valid one (2,000 tokens x 16 samples of the tiny
#: language model) takes ~0.3 s, so a request this slow means a hung server
REQUEST_SECONDS = 30.0
#: name: (cap, the schema's maximum). Valid token counts above the cap are sent as the cap: the
#: longest generations would only add run time, up to ~0.3 s a request where hypothesis likes
#: the maximum (test_app.py sends max_tokens 2,000, and 5,000 for its 422). Out-of-range values
#: (negative, above the maximum, not integers) are sent unchanged.
CAPS = {"max_tokens": (64, 2_000), "continue": (64, 2_000)}
#: rows an aimed history is padded to: the tiny forecaster reads 24
HISTORY = 30


@dataclass
class Live:
    """What the fuzzing aims at: live streams and the served names."""

    models: list[str]
    streams: dict[str, str]  # id -> model
    seqs: dict[str, int]  # id -> last applied seq
    observe_keys: dict[str, set[str]]  # model -> the fields of its observation

    def streams_for(self, body: Any) -> list[str]:
        """The live streams whose model's observation has every field of `body` (all if none)."""
        keys = set(body) - {"seq"} if isinstance(body, dict) else set()
        models = {m for m, fields in self.observe_keys.items() if keys <= fields}
        return sorted(s for s, m in self.streams.items() if m in models) or sorted(self.streams)


@pytest.fixture(scope="module")
def fuzzed(serve_runs, launch) -> tuple[Any, Live]:
    """A server of its own (the fuzzing creates and deletes streams) and one live stream per
    model that can stream."""
    from rnnkit.tasks.classification.serve import Observe as ClassifyObserve
    from rnnkit.tasks.forecasting.serve import Observe as ForecastObserve
    from rnnkit.tasks.language_model.serve import Observe as GenerateObserve

    server = launch(list(serve_runs.values()), "--max-body-bytes", "100000")
    history = [{"time": _month(i), "value": 100.0 + i % 12} for i in range(36)]
    bodies = {"rt": {}, "air": {"series": "north", "history": history}, "bard": {"text": "To be"}}
    live = Live(sorted(serve_runs), {}, {}, {})
    for model, body in bodies.items():
        got = server.client.post(f"/v1/models/{model}/streams", json=body)
        assert got.status_code == 201, got.text
        live.streams[got.json()["stream"]] = model
        live.seqs[got.json()["stream"]] = 0
    for model, observe in (("rt", ClassifyObserve), ("air", ForecastObserve),
                           ("bard", GenerateObserve)):  # fmt: skip
        live.observe_keys[model] = {f.alias or n for n, f in observe.model_fields.items()}
    return server, live


def test_no_generated_request_gets_a_5xx(fuzzed) -> None:
    server, live = fuzzed
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()), key=lambda op: op.label
    )
    assert len(operations) >= 16, [op.label for op in operations]
    sent: dict[str, dict[int, int]] = {}  # operation -> status -> requests (0: no answer)
    failures: list[str] = []
    with requests.Session() as session:
        for operation in operations:
            _fuzzer(operation, server.url, session, live, sent, failures)()

    total = sum(n for statuses in sent.values() for n in statuses.values())
    counts = "\n".join(f"  {op}: {dict(sorted(s.items()))}" for op, s in sorted(sent.items()))
    assert not failures, f"{len(failures)} of {total} requests failed:\n" + "\n".join(failures)
    assert total >= MIN_REQUESTS, f"only {total} requests:\n{counts}"
    assert server.process.poll() is None, server.output()  # still up, and still answering
    assert server.client.get("/healthz").json() == {"status": "ok"}
    print(f"\n{total} generated requests over {len(sent)} operations, by status:\n{counts}")


def _fuzzer(operation, url, session, live, sent, failures):
    """One hypothesis test of `operation`: each example is aimed, sent, counted and checked.
    A failure is recorded, not raised (hence no shrinking), so every 5xx of the run is listed."""
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES * WEIGHTS.get(operation.label, 1),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @given(case=strategy, data=st.data())
    def fuzz_one(case, data) -> None:
        _aim(case, data, live)
        statuses = sent.setdefault(operation.label, {})
        try:
            response = case.call(base_url=url, session=session, timeout=REQUEST_SECONDS)
        except requests.RequestException as exc:  # a dead or hung server
            statuses[0] = statuses.get(0, 0) + 1
            failures.append(f"{operation.label}: {exc!r}\n    {_request(case)}")
            return
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {response.text[:300]}\n    {_request(case)}")
            return
        # Every answer, errors included, has a documented status and fits its schema.
        checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
        case.validate_response(response, checks=checks)
        _track(case, response, live)

    return fuzz_one


def _aim(case: Any, data: Any, live: Live) -> None:
    """Nudge a generated case toward inputs that get past validation (see the module doc)."""
    path = case.path_parameters or {}
    body = case.body
    # hypothesis draws the simplest value (0, False) most often: make that the aimed choice
    aim_stream = "stream" in path and case.method.upper() != "DELETE"  # DELETE: random ids
    if aim_stream and data.draw(st.integers(0, 3)) < 3:
        path["stream"] = data.draw(st.sampled_from(live.streams_for(body)))
    if "name" in path and data.draw(st.integers(0, 3)) < 3:
        path["name"] = data.draw(st.sampled_from(live.models))
    if not isinstance(body, dict):
        return
    stream = path.get("stream")
    if stream in live.seqs and "seq" in body and not data.draw(st.booleans()):
        body["seq"] = live.seqs[stream] + 1
    for key, (cap, maximum) in CAPS.items():
        if type(body.get(key)) is int and cap < body[key] <= maximum:
            body[key] = cap
    histories = [body.get("history")]
    if isinstance(body.get("series"), dict):
        histories += body["series"].values()
    for rows in histories:
        rowlike = isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)
        if rowlike and not data.draw(st.booleans()):
            rows += [dict(rows[-1]) for _ in range(HISTORY - len(rows))]  # enough to forecast
            for i, row in enumerate(rows):
                row["time"] = _month(i)
                row.setdefault("value", float(i % 12))


def _month(i: int) -> str:
    return f"{2000 + i // 12:04d}-{i % 12 + 1:02d}-01"


def _track(case: Any, response: Any, live: Live) -> None:
    """Remember a live stream's seq after a step it acknowledged."""
    stream = (case.path_parameters or {}).get("stream")
    if stream in live.seqs and response.status_code == 200:
        try:
            seq = response.json().get("seq")
        except ValueError:
            return
        if isinstance(seq, int):
            live.seqs[stream] = seq


def _request(case: Any) -> str:
    """The request, to reproduce it."""
    body = "" if case.body is None else json.dumps(case.body, default=repr)[:500]
    return f"{case.method.upper()} {case.formatted_path} {case.query or ''} {body}"
