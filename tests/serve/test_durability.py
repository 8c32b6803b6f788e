"""`kill -9` at random points loses no acknowledged step, and a restarted server answers bit for
bit as a server that never stopped.

Two servers get the same streams and the same observations: the reference, never stopped and
without micro-batching, and the victim, which batches and is killed with SIGKILL between rounds
of requests and while a round is in flight, then restarted on the same `--state`. A client
that got no answer does what a client should: it retries the same `seq` (a step that was
committed before the kill answers with its stored answer, one that was not is applied now).
"""

from __future__ import annotations

import random
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import rnnkit

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'rnnkit[serve]'")

ROUNDS = 12
#: (round, how): killed before the round's requests go out, or a few ms after they do
KILLS = [(3, "during"), (6, "between"), (9, "during"), (11, "during")]


def rows(frame) -> list[dict]:
    return [{"time": t.isoformat(), "value": float(v)} for t, v in frame["value"].items()]


def plan(north) -> list[tuple[str, dict, list[dict]]]:
    """(model, creation body, observations by round) for two streams of each task."""
    words = ["a", "gorgeous", "witty", "film", "but", "the", "plot", "is", "a", "mess"]
    values = [float(v) for v in north["value"].iloc[40 : 40 + ROUNDS]]
    verse = "To be, or not to be, that is the question: whether 'tis nobler"
    streams = []
    for k in range(2):
        streams.append(("rt", {}, [{"text": (" " if r else "") + words[(r + k) % len(words)]}
                                   for r in range(ROUNDS)]))  # fmt: skip
        streams.append(("air", {"series": ["north", "south"][k], "history": rows(north[:40])},
                        [{"values": [v + k]} for v in values]))  # fmt: skip
        bard = [{"text": verse[5 * r : 5 * r + 5]} for r in range(ROUNDS)]
        for r in range(k, ROUNDS, 4):  # sampled continuations, seeded, now and then
            bard[r] |= {"continue": 6, "seed": r, "temperature": 1.0}
        streams.append(("bard", {"text": "To"}, bard))
    return streams


def observe(client: httpx.Client, stream: str, seq: int, body: dict) -> dict | None:
    """The answer, or None when the server died before answering."""
    try:
        got = client.post(f"/v1/streams/{stream}/observe", json={"seq": seq, **body})
    except (httpx.TransportError, RuntimeError):
        return None
    assert got.status_code == 200, got.text
    return got.json()["answer"]


def test_kill_9_loses_no_acknowledged_step_and_changes_no_answer(serve_runs, launch) -> None:
    runs = [serve_runs[name] for name in ("rt", "air", "bard")]
    north = rnnkit.open_run(serve_runs["air"]).held_out().data.series["north"]
    streams = plan(north)
    reference = launch(runs, "--no-batching", wait=False)
    victim = launch(runs, "--batch-window-ms", "5", wait=False)
    reference.wait()
    victim.wait()

    def create(server, model: str, body: dict) -> tuple[str, dict | None]:
        got = server.client.post(f"/v1/models/{model}/streams", json=body)
        assert got.status_code == 201, got.text
        return got.json()["stream"], got.json()["answer"]

    ref_ids, ids = [], []
    for model, body, _ in streams:
        ref_id, ref_answer = create(reference, model, body)
        stream, answer = create(victim, model, body)
        assert answer == ref_answer
        ref_ids.append(ref_id)
        ids.append(stream)
    want = [
        [observe(reference.client, ref_id, r + 1, steps[r]) for r in range(ROUNDS)]
        for ref_id, (_, _, steps) in zip(ref_ids, streams, strict=True)
    ]

    acked = [0] * len(streams)  # the last seq each stream got an answer for
    got: list[list[dict | None]] = [[None] * ROUNDS for _ in streams]
    kills = dict(KILLS)
    rng = random.Random(14)
    unanswered = 0

    def send(i: int, r: int) -> None:
        answer = observe(victim.client, ids[i], r + 1, streams[i][2][r])
        if answer is not None:
            got[i][r] = answer
            acked[i] = r + 1

    with ThreadPoolExecutor(len(streams)) as pool:
        for r in range(ROUNDS):
            how = kills.get(r)
            if how == "between":
                victim.kill()
            timer = None
            if how == "during":
                process = victim.process
                timer = threading.Timer(rng.uniform(0.0, 0.015), process.send_signal,
                                        (signal.SIGKILL,))  # fmt: skip
                timer.start()
            if victim.client is not None:
                list(pool.map(lambda i, r=r: send(i, r), range(len(streams))))
            if timer is not None:
                timer.join()
            if how is None:
                continue
            unanswered += sum(a is None for a in (got[i][r] for i in range(len(streams))))
            victim.restart()
            for i, stream in enumerate(ids):
                seq = victim.client.get(f"/v1/streams/{stream}").json()["seq"]
                # Every acknowledged step is there; an unacknowledged one may be too.
                assert acked[i] <= seq <= r + 1, (i, acked[i], seq)
            # Clients retry what got no answer, with the same seq.
            missing = [i for i in range(len(streams)) if got[i][r] is None]
            list(pool.map(lambda i, r=r: send(i, r), missing))
            assert all(got[i][r] is not None for i in range(len(streams)))

    assert got == want  # bit for bit: floats through JSON compare exactly
    assert unanswered > 0  # some kill landed while requests were in flight
    victim.restart()  # once more between requests: the last answers are kept
    for i, stream in enumerate(ids):
        state = victim.client.get(f"/v1/streams/{stream}").json()
        assert state["seq"] == ROUNDS and state["answer"] == want[i][-1]
