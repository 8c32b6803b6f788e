"""Replicated serving: `RedisStore` behaves as `StateStore`, a stream's lock lets one replica at a
time step it, and two `rnnkit serve --state redis://...` processes answer a stream's requests,
alternately, as one server on SQLite does, through a `kill -9` of one of them.

Each test talks to a real `redis-server` that the `redis_server` fixture starts on a free
127.0.0.1 port with its files in a temporary folder (append-only file, fsync at every write),
and stops at the end. Without `redis-server` the tests fail and say to run `make redis`
(`make test` does).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit.errors import ConfigError, DataError
from rnnkit.serve.hooks import StreamState
from rnnkit.serve.store import (
    SequenceGap,
    StateStore,
    StoreUnavailable,
    StreamBusy,
    StreamsFull,
    UnknownStream,
    open_store,
)

from .conftest import Server, free_port
from .test_store import Clock, assert_same_state, odd_state, step_add_one

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'rnnkit[serve]'")

#: how long redis-server may take to answer PING
REDIS_START_SECONDS = 10.0


class RedisServer:
    """`redis-server` on 127.0.0.1 and a free port, its files (the append-only file) in `folder`;
    `start()` again after `kill()` reloads them, as a restarted Redis does."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run `make redis` (make test does)")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                   str(self.folder), "--save", "", "--appendonly", "yes", "--appendfsync",
                   "always", "--daemonize", "no", "--logfile", "redis.log"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + REDIS_START_SECONDS
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    log = (self.folder / "redis.log").read_text(errors="replace")
                    pytest.fail(f"redis-server exited with {self.process.returncode}:\n{log}")
                try:
                    if client.ping():
                        return self
                except redis.exceptions.RedisError:
                    time.sleep(0.02)
        finally:
            client.close()
        self.stop()
        pytest.fail(f"redis-server did not answer PING in {REDIS_START_SECONDS} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no last save."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server for the session's tests; each test keeps to its own keys or database."""
    try:
        import redis  # noqa: F401
    except ImportError:
        pytest.fail("the redis client is not installed: pip install -e '.[dev]' (make test does)")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test alone, to stop and restart."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test alone, in the shared Redis."""
    return f"test-{uuid.uuid4().hex[:12]}:"


def redis_store(url: str, prefix: str, **options):
    from rnnkit.serve.redis_store import RedisStore

    options.setdefault("max_streams", 10)
    options.setdefault("ttl_seconds", 60)
    return RedisStore(url, prefix=prefix, **options)


# --- the same behaviour as StateStore ---------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request, tmp_path, prefix):
    """`make_store(max_streams=, ttl_seconds=, clock=)`: a StateStore or a RedisStore; two made
    in one test share their streams (the same file, the same keys)."""
    made = []

    def make(**options):
        if request.param == "sqlite":
            store = StateStore(tmp_path / "s.sqlite", **options)
        else:
            store = redis_store(request.getfixturevalue("redis_server").url(), prefix, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def test_create_get_count(make_store) -> None:
    clock = Clock()
    store = make_store(max_streams=4, ttl_seconds=60, clock=clock)
    made = store.create("lm", odd_state(), {"text": "hi"})
    assert made.seq == 0 and made.model == "lm" and made.created == made.updated == clock.now
    assert len(made.id) == 16 and made.id.replace("-", "").replace("_", "").isalnum()
    got = store.get(made.id)
    assert (got.id, got.model, got.seq, got.answer) == (made.id, "lm", 0, {"text": "hi"})
    assert got.created == got.updated == clock.now
    assert_same_state(odd_state(), got.state)  # bit for bit through Redis too
    assert store.create("lm", StreamState(), None).answer is None
    store.create("other", StreamState(), None)
    assert store.count() == 3 and store.count("lm") == 2 and store.count("nope") == 0
    assert store.model_of(made.id) == "lm"
    assert set(store.get_many([made.id, "nope"])) == {made.id}
    store.ping()


def test_apply_steps_retry_and_gap(make_store) -> None:
    clock = Clock()
    calls: list[int] = []

    def step(states, requests):
        calls.append(len(states))
        return step_add_one(states, requests)

    store = make_store(max_streams=10, ttl_seconds=60, clock=clock)
    a, b = (store.create("m", StreamState({"x": np.zeros(1, np.float32)}), None).id for _ in "ab")
    clock.now += 5
    out = store.apply_steps([(a, 1, 1.5), (b, 1, 2.0), ("nope", 1, 0.0)], step)
    assert [(r.seq, r.answer, r.updated) for r in out[:2]] == [
        (1, {"x": 1.5}, clock.now),
        (1, {"x": 2.0}, clock.now),
    ]
    assert isinstance(out[2], UnknownStream)
    # a retry of seq 1 returns the stored answer without running the model; a gap is a 409
    out = store.apply_steps([(a, 1, 100.0), (b, 3, 1.0)], step)
    assert out[0].seq == 1 and out[0].answer == {"x": 1.5}
    assert isinstance(out[1], SequenceGap) and out[1].expected == 2
    assert calls == [2]
    out = store.apply_steps([(a, 2, 1.0)], step)
    assert out[0].answer == {"x": 2.5} and store.get(a).state.arrays["x"][0] == 2.5
    with pytest.raises(SequenceGap, match="seq 1 is out of order; expected 3"):
        raise store.apply_steps([(a, 1, 1.0)], step)[0]  # older answers are gone
    with pytest.raises(ValueError, match="one stream twice in a batch"):
        store.apply_steps([(a, 3, 1.0), (a, 4, 1.0)], step)


def test_commit_steps_reports_a_stale_step_in_its_slot(make_store) -> None:
    store = make_store(max_streams=10, ttl_seconds=60)
    a, b, c = (store.create("m", StreamState(), None).id for _ in range(3))
    store.delete(c)
    errors = store.commit_steps(
        [(a, 1, StreamState(), {"ok": 1}), (b, 2, StreamState(), {}), (c, 1, StreamState(), {})]
    )
    assert errors[0] is None
    assert isinstance(errors[1], SequenceGap) and errors[1].expected == 1
    assert isinstance(errors[2], UnknownStream)
    assert store.get(a).seq == 1 and store.get(a).answer == {"ok": 1} and store.get(b).seq == 0
    assert store.commit_steps([(a, 2, StreamState(), None)]) == [None]
    assert store.get(a).answer is None  # an answer of None replaces the last one


def test_ttl_expiry(make_store) -> None:
    clock = Clock()
    store = make_store(max_streams=10, ttl_seconds=60, clock=clock)
    old = store.create("m", StreamState(), None).id
    clock.now += 30
    kept = store.create("m", StreamState(), None).id
    clock.now += 30  # `old` is idle for exactly the TTL: gone
    with pytest.raises(UnknownStream, match=f"unknown stream '{old}': never created"):
        store.get(old)
    with pytest.raises(UnknownStream):
        store.model_of(old)
    with pytest.raises(UnknownStream):
        store.delete(old)
    assert store.commit_steps([(old, 1, StreamState(), None)])[0].__class__ is UnknownStream
    assert store.count() == 1 and store.count("m") == 1
    store.commit_steps([(kept, 1, StreamState(), None)])  # a step keeps a stream alive
    clock.now += 59
    assert store.get(kept).seq == 1
    assert store.expire() == 1  # `old`, still stored until expired
    assert store.expire(clock.now + 1) == 1
    assert store.count() == 0


def test_max_streams_is_full_with_retry_after(make_store) -> None:
    clock = Clock()
    store = make_store(max_streams=2, ttl_seconds=60, clock=clock)
    first = store.create("m", StreamState(), None).id
    clock.now += 10.5
    store.create("m", StreamState(), None)
    with pytest.raises(StreamsFull) as info:
        store.create("m", StreamState(), None)
    assert info.value.retry_after == 50  # ceil(60 - 10.5): when `first` expires
    store.delete(first)
    clock.now += 20  # t = 30.5
    third = store.create("m", StreamState(), None).id
    clock.now += 40  # t = 70.5: the second has been idle for the TTL and expires
    store.create("m", StreamState(), None)
    with pytest.raises(StreamsFull) as info:
        store.create("m", StreamState(), None)
    assert info.value.retry_after == 20  # the third expires at 90.5
    assert store.get(third).seq == 0


def test_two_stores_on_one_database_see_each_other(make_store) -> None:
    """Two servers on one file, or two replicas on one Redis: one's commit is the other's read,
    and a commit over a seq the other has moved past is refused."""
    one = make_store(max_streams=10, ttl_seconds=60)
    two = make_store(max_streams=10, ttl_seconds=60)
    made = one.create("m", StreamState({"x": np.zeros(1, np.float32)}), None)
    assert two.get(made.id).seq == 0
    assert two.commit_steps([(made.id, 1, StreamState(), {"by": 2})]) == [None]
    lost = one.commit_steps([(made.id, 1, StreamState(), {"by": 1})])[0]
    assert isinstance(lost, SequenceGap) and lost.expected == 2
    assert one.get(made.id).answer == {"by": 2}


# --- Redis alone: URLs, the lock, the compare-and-set, Redis away -----------------------------


def test_open_store_picks_the_store_by_the_state(tmp_path, redis_server, prefix) -> None:
    from rnnkit.serve.redis_store import RedisStore, redact

    with open_store(tmp_path / "s.sqlite", max_streams=1, ttl_seconds=1) as store:
        assert isinstance(store, StateStore)
    with open_store(redis_server.url(3), max_streams=1, ttl_seconds=1) as store:
        assert isinstance(store, RedisStore) and store.url == redis_server.url(3)
    bad = {
        "redis://127.0.0.1:port/0": "not a Redis URL (Port could not be cast",
        "redis://127.0.0.1:6379/zero": "not a Redis URL (the database 'zero' is not a number)",
        "redis://[::1:6379/0": "not a Redis URL",
        "rediss://:pw@[::1/0": "--state rediss://:***@",  # the password is never shown
        "reddis://127.0.0.1:6379/0": "unknown scheme 'reddis'; expected a file path, redis://",
    }
    for url, message in bad.items():
        with pytest.raises(ConfigError) as info:
            open_store(url, max_streams=1, ttl_seconds=1)
        assert message in str(info.value), url
        assert "pw" not in str(info.value)
    assert redact("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact("rediss://:s3cret@host/0") == "rediss://:***@host/0"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"


def test_unreachable_redis_is_one_clear_error(private_redis) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(StoreUnavailable, match=r"redis://:\*\*\*@127.0.0.1:\d+/0 is unreachable"):
        redis_store(url, "x:")
    store = redis_store(private_redis.url(), "x:")
    made = store.create("m", StreamState(), None)
    private_redis.kill()
    for call in (store.ping, lambda: store.get(made.id), lambda: store.model_of(made.id),
                 store.count, store.expire, lambda: store.delete(made.id),
                 lambda: store.create("m", StreamState(), None),
                 lambda: store.apply_steps([(made.id, 1, 1.0)], step_add_one)):  # fmt: skip
        with pytest.raises(StoreUnavailable, match="is unreachable"):
            call()
    store.close()


def test_an_acknowledged_step_survives_a_redis_kill_9(private_redis) -> None:
    """With appendonly yes, appendfsync always (as the fixture runs it): what a commit returned
    is on disk before the answer, and a killed Redis restarts with it."""
    store = redis_store(private_redis.url(), "x:")
    made = store.create("m", StreamState({"x": np.zeros(1, np.float32)}), None)
    out = store.apply_steps([(made.id, 1, 0.25)], step_add_one)
    assert out[0].answer == {"x": 0.25}
    private_redis.kill()
    private_redis.start()
    got = store.get(made.id)  # the client reconnects
    assert got.seq == 1 and got.answer == {"x": 0.25} and got.state.arrays["x"][0] == 0.25
    store.close()


def test_the_schema_version_and_other_data_are_checked(redis_server, prefix) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url())
    client.set(prefix + "schema", 99)
    with pytest.raises(DataError, match="schema 99 is newer than this rnnkit's 1"):
        redis_store(redis_server.url(), prefix)
    client.set(prefix + "schema", "hello")
    with pytest.raises(DataError, match="holds b'hello', not an rnnkit schema version"):
        redis_store(redis_server.url(), prefix)
    client.close()


def slow_add(seconds: float, calls: list[float]):
    """`step_add_one` that takes `seconds` and records each stream's request."""

    def step(states, requests):
        calls.extend(requests)
        time.sleep(seconds)
        return step_add_one(states, requests)

    return step


def test_two_replicas_racing_on_one_stream_apply_each_seq_once(redis_server, prefix) -> None:
    """Two stores (two replicas), each sent every seq of one stream at the same moment (a
    client retrying on the other replica): the lock makes one of them step it and the other
    answer with the stored answer, so each seq is applied exactly once."""
    one, two = redis_store(redis_server.url(), prefix), redis_store(redis_server.url(), prefix)
    stream = one.create("m", StreamState({"x": np.zeros(1, np.float32)}), None).id
    calls: list[float] = []
    step = slow_add(0.02, calls)
    start = threading.Barrier(2)
    results: dict[str, list] = {"one": [], "two": []}

    def replica(name: str, store) -> None:
        for seq in range(1, 11):
            start.wait(timeout=30)
            results[name].append(store.apply_steps([(stream, seq, float(seq))], step)[0])

    threads = [threading.Thread(target=replica, args=item) for item in [("one", one), ("two", two)]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(calls) == [float(seq) for seq in range(1, 11)]  # one model step per seq
    want = np.cumsum(np.arange(1, 11, dtype=np.float32))
    for name in ("one", "two"):
        assert [(r.seq, r.answer) for r in results[name]] == [
            (seq, {"x": float(want[seq - 1])}) for seq in range(1, 11)
        ], name
    assert one.get(stream).seq == 10 and one.get(stream).state.arrays["x"][0] == want[-1]
    one.close()
    two.close()


def test_a_lock_that_expired_mid_step_still_applies_the_step_once(redis_server, prefix) -> None:
    """A replica slower than its lock (`lock_seconds`): another takes the stream and applies the
    seq; the slow one's compare-and-set is refused, and it answers with the stored answer (the
    seq was applied, by the other) instead of stepping the fresh state a second time."""
    slow = redis_store(redis_server.url(), prefix, lock_seconds=0.05)
    fast = redis_store(redis_server.url(), prefix)
    stream = slow.create("m", StreamState({"x": np.zeros(1, np.float32)}), None).id
    calls: list[float] = []
    with ThreadPoolExecutor(1) as pool:
        late = pool.submit(slow.apply_steps, [(stream, 1, 1.0)], slow_add(0.5, calls))
        time.sleep(0.2)  # the slow one is stepping; its lock has expired
        first = fast.apply_steps([(stream, 1, 2.0)], slow_add(0.0, calls))[0]
        second = late.result(timeout=30)[0]
    assert calls == [1.0, 2.0]  # both ran the model ...
    assert first.answer == second.answer == {"x": 2.0}  # ... one step was applied
    got = fast.get(stream)
    assert got.seq == 1 and got.state.arrays["x"][0] == 2.0
    assert fast.apply_steps([(stream, 2, 1.0)], step_add_one)[0].answer == {"x": 3.0}
    slow.close()
    fast.close()


def test_a_stream_held_by_another_replica_waits_then_is_busy(redis_server, prefix) -> None:
    import redis

    store = redis_store(redis_server.url(), prefix, lock_seconds=1.0, lock_wait=1.0)
    one = store.create("m", StreamState({"x": np.zeros(1, np.float32)}), None).id
    two = store.create("m", StreamState({"x": np.zeros(1, np.float32)}), None).id
    client = redis.Redis.from_url(redis_server.url())
    # a replica that died holding `one`'s lock: it expires in 0.2 s, within the wait
    client.set(f"{prefix}lock:{one}", "dead-replica", px=200)
    began = time.monotonic()
    out = store.apply_steps([(one, 1, 1.0), (two, 1, 2.0)], step_add_one)
    assert [r.answer for r in out] == [{"x": 1.0}, {"x": 2.0}]
    assert 0.1 < time.monotonic() - began < 1.0  # waited for the expiry, not the whole wait
    # held longer than the wait: refused with a 503's Retry-After, the other stream unharmed
    client.set(f"{prefix}lock:{one}", "live-replica", px=5000)
    out = store.apply_steps([(one, 2, 1.0), (two, 2, 2.0)], step_add_one)
    assert isinstance(out[0], StreamBusy) and out[0].retry_after == 1
    assert "is being stepped by another server process" in str(out[0])
    assert out[1].answer == {"x": 4.0}
    assert client.get(f"{prefix}lock:{one}") == b"live-replica"  # not ours: left alone
    assert client.get(f"{prefix}lock:{two}") is None  # ours: released
    assert store.get(one).seq == 1
    client.close()
    store.close()


# --- replicas over HTTP -----------------------------------------------------------------------


@pytest.fixture
def replicas(tmp_path):
    """`replicas(runs, url, *flags) -> Server`: `rnnkit serve --state URL`, stopped at the end."""
    started: list[Server] = []

    def start(runs: list[Path], url: str, *args: str) -> Server:
        server = Server(runs, url, args, log=tmp_path / f"replica-{len(started)}.log")  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def rows(frame) -> list[dict]:
    return [{"time": t.isoformat(), "value": float(v)} for t, v in frame["value"].items()]


def plan(north, rounds: int) -> list[tuple[str, dict, list[dict]]]:
    """(model, creation body, observations) for a stream of each task."""
    words = ["a", "gorgeous", "witty", "film", "but", "the", "plot", "is", "a", "mess"]
    values = [float(v) for v in north["value"].iloc[40 : 40 + rounds]]
    verse = "To be, or not to be, that is the question: whether 'tis nobler in the mind"
    bard = [{"text": verse[5 * r : 5 * r + 5]} for r in range(rounds)]
    for r in range(1, rounds, 3):  # sampled continuations, seeded, now and then
        bard[r] |= {"continue": 4, "seed": r, "temperature": 1.0}
    return [
        ("rt", {}, [{"text": (" " if r else "") + words[r % len(words)]} for r in range(rounds)]),
        (
            "air",
            {"series": "north", "history": rows(north[:40])},
            [{"values": [v]} for v in values],
        ),
        ("bard", {"text": "To"}, bard),
    ]


def observe(server: Server, stream: str, seq: int, body: dict) -> dict | None:
    """The answer, or None when the server died before answering."""
    if server.client is None:
        return None
    try:
        got = server.client.post(f"/v1/streams/{stream}/observe", json={"seq": seq, **body})
    except (httpx.TransportError, RuntimeError):
        return None
    assert got.status_code == 200, got.text
    return got.json()["answer"]


def test_two_replicas_answer_as_one_server_through_a_kill_9(
    serve_runs, launch, replicas, redis_server
) -> None:
    """A stream's requests alternate between two replicas on one Redis; at one round both get
    the same seq at once; then one is killed with SIGKILL while a round is in flight and the
    client goes on with the other (retrying what got no answer) and later with a third, new
    replica. Every answer is the one a single server on SQLite gives, bit for bit, and no
    acknowledged step is lost."""
    rounds, both_at_once, kill_at, new_at = 12, 3, 6, 9
    runs = [serve_runs[name] for name in ("rt", "air", "bard")]
    north = rnnkit.open_run(serve_runs["air"]).held_out().data.series["north"]
    streams = plan(north, rounds)
    url = redis_server.url(1)
    reference = launch(runs, "--no-batching", wait=False)
    a = replicas(runs, url, "--batch-window-ms", "5")
    b = replicas(runs, url, "--batch-window-ms", "5")
    reference.wait()
    a.wait()
    b.wait()
    assert a.client.get("/readyz").json()["ready"] is True

    ids, want = [], []
    for i, (model, body, steps) in enumerate(streams):
        ref = reference.client.post(f"/v1/models/{model}/streams", json=body).json()
        made = (a, b)[i % 2].client.post(f"/v1/models/{model}/streams", json=body)
        assert made.status_code == 201 and made.json()["answer"] == ref["answer"]
        ids.append(made.json()["stream"])
        want.append([observe(reference, ref["stream"], r + 1, steps[r]) for r in range(rounds)])
        # the other replica sees the stream at once
        assert (b, a)[i % 2].client.get(f"/v1/streams/{ids[-1]}").json()["seq"] == 0

    got: list[list[dict | None]] = [[None] * rounds for _ in streams]
    acked = [0] * len(streams)
    live = [a, b]

    def send(server: Server, i: int, r: int) -> dict | None:
        answer = observe(server, ids[i], r + 1, streams[i][2][r])
        if answer is not None:
            got[i][r] = answer
            acked[i] = max(acked[i], r + 1)
        return answer

    with ThreadPoolExecutor(2 * len(streams)) as pool:
        for r in range(rounds):
            if r == new_at:
                live = [live[0], replicas(runs, url, "--batch-window-ms", "5").wait()]
            if r == both_at_once:  # each stream's seq sent to both replicas concurrently
                jobs = [(server, i) for i in range(len(streams)) for server in live]
                answers = list(pool.map(lambda job, r=r: send(*job, r), jobs))
                assert answers[0::2] == answers[1::2]  # one step, one answer, on both
                continue
            jobs = [(live[(r + i) % len(live)], i) for i in range(len(streams))]
            if r == kill_at:
                victim = live[0]
                timer = threading.Timer(0.005, victim.process.send_signal, (signal.SIGKILL,))
                timer.start()
                list(pool.map(lambda job, r=r: send(*job, r), jobs))
                timer.join()
                victim.process.wait(timeout=10)
                victim.kill()  # closes its client
                live = [live[1]]
                for i, stream in enumerate(ids):
                    seq = live[0].client.get(f"/v1/streams/{stream}").json()["seq"]
                    # every acknowledged step is there; an unacknowledged one may be too
                    assert acked[i] <= seq <= r + 1, (i, acked[i], seq)
                retry = [(live[0], i) for i in range(len(streams)) if got[i][r] is None]
                list(pool.map(lambda job, r=r: send(*job, r), retry))  # the same seq again
                continue
            list(pool.map(lambda job, r=r: send(*job, r), jobs))

    assert got == want  # bit for bit: floats through JSON compare exactly
    for server in live:
        for i, stream in enumerate(ids):
            state = server.client.get(f"/v1/streams/{stream}").json()
            assert state["seq"] == rounds and state["answer"] == want[i][-1]


def test_readyz_and_503s_while_redis_is_away(serve_runs, replicas, private_redis) -> None:
    server = replicas([serve_runs["rt"]], private_redis.url(), "--max-streams", "5").wait()
    c = server.client
    stream = c.post("/v1/models/rt/streams", json={}).json()["stream"]
    assert c.post(f"/v1/streams/{stream}/observe", json={"seq": 1, "text": "a"}).status_code == 200
    private_redis.kill()
    ready = c.get("/readyz")
    assert ready.status_code == 503 and ready.json()["ready"] is False
    assert "is unreachable" in ready.json()["detail"]
    for got in (
        c.post(f"/v1/streams/{stream}/observe", json={"seq": 2, "text": " b"}),
        c.get(f"/v1/streams/{stream}"),
        c.post("/v1/models/rt/streams", json={}),
    ):
        assert got.status_code == 503 and got.headers["retry-after"] == "1", got.text
        assert "the stream store redis://127.0.0.1:" in got.json()["detail"]
    assert c.get("/metrics").status_code == 200  # the gauge reads NaN, the scrape works
    assert c.post("/v1/models/rt/classify", json={"texts": ["a"]}).status_code == 200
    private_redis.start()  # its append-only file holds the stream
    assert c.get("/readyz").status_code == 200
    again = c.post(f"/v1/streams/{stream}/observe", json={"seq": 2, "text": " b"})
    assert again.status_code == 200 and again.json()["seq"] == 2


def test_the_cli_refuses_a_bad_url_or_an_unreachable_redis_in_one_line(serve_runs) -> None:
    for state, message in [
        ("redis://127.0.0.1:port/0", "not a Redis URL (Port could not be cast"),
        (f"redis://127.0.0.1:{free_port()}/0", "is unreachable (Error 111 connecting"),
    ]:
        command = [sys.executable, "-m", "rnnkit", "serve", str(serve_runs["rt"]), "--port",
                   str(free_port()), "--state", state]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
