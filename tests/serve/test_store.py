"""StateStore: exact state round trip, one transaction per batch, durability past kill -9, TTL."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rnnkit.errors import DataError, RnnkitError
from rnnkit.serve.hooks import StreamState
from rnnkit.serve.store import (
    SequenceGap,
    StateStore,
    StreamsFull,
    UnknownStream,
    decode_state,
    encode_state,
)


class Clock:
    """A settable clock (epoch seconds)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def odd_state() -> StreamState:
    """Arrays whose bits a careless codec would change: NaN payloads, -0.0, subnormals, int64s."""
    f32 = np.array([np.nan, -0.0, 1e-45, np.inf, 3.1415927], dtype=np.float32)
    f32.view(np.uint32)[0] = 0x7FC0_1234  # a NaN with a payload
    return StreamState(
        arrays={
            "h": np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32),
            "c": np.array([[np.pi, -0.0, 5e-324]], dtype=np.float64),
            "odd": f32,
            "count": np.array([2**62 + 1, -(2**63)], dtype=np.int64),
            "scalar": np.array(7, dtype=np.int64),
            "empty": np.zeros((0, 5), dtype=np.float32),
            "transposed": np.arange(12, dtype=np.float64).reshape(3, 4).T,
            "big_endian": np.array([1.5, -2.25], dtype=">f4"),
        },
        meta={"series": "é/1", "start": "2024-01-01T00:00:00", "horizon": 3, "opts": [1, None]},
    )


def assert_same_state(a: StreamState, b: StreamState) -> None:
    assert a.meta == b.meta
    assert list(a.arrays) == list(b.arrays)
    for name in a.arrays:
        x, y = a.arrays[name], b.arrays[name]
        assert x.shape == y.shape and x.dtype.newbyteorder("<") == y.dtype, name
        assert x.astype(y.dtype).tobytes() == y.tobytes(), name  # bit for bit, C order


def test_encode_decode_is_bit_exact() -> None:
    state = odd_state()
    back = decode_state(encode_state(state))
    assert_same_state(state, back)
    assert all(a.flags.writeable for a in back.arrays.values())
    assert_same_state(StreamState(), decode_state(encode_state(StreamState())))


def test_encode_is_safetensors_not_pickle() -> None:
    blob = encode_state(odd_state())
    (size,) = np.frombuffer(blob[:8], dtype="<u8")
    header = json.loads(blob[8 : 8 + int(size)])
    assert json.loads(header["__metadata__"]["meta"])["series"] == "é/1"
    assert header["h"]["dtype"] == "F32" and header["h"]["shape"] == [2, 3, 4]


def test_encode_names_a_bad_array() -> None:
    with pytest.raises(
        TypeError, match=r"StreamState.arrays\['h'\] must be a numpy array, got list"
    ):
        encode_state(StreamState(arrays={"h": [1.0]}))  # type: ignore[dict-item]


def test_create_get_round_trip(tmp_path: Path) -> None:
    clock = Clock()
    with StateStore(tmp_path / "s.sqlite", max_streams=4, ttl_seconds=60, clock=clock) as store:
        made = store.create("lm", odd_state(), {"text": "hi"})
        assert made.seq == 0 and made.model == "lm" and made.created == made.updated == clock.now
        assert len(made.id) == 16 and made.id.replace("-", "").replace("_", "").isalnum()
        got = store.get(made.id)
        assert (got.id, got.model, got.seq, got.answer) == (made.id, "lm", 0, {"text": "hi"})
        assert_same_state(odd_state(), got.state)
        assert store.create("lm", StreamState(), None).answer is None
        assert store.count() == 2 and store.count("lm") == 2 and store.count("other") == 0


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "s.sqlite"  # the folder is created
    with StateStore(path, max_streams=4, ttl_seconds=60) as store:
        made = store.create("lm", odd_state(), {"p": [0.25, 0.75]})
        store.commit_steps([(made.id, 1, odd_state(), {"p": [1.0]})])
    with StateStore(path, max_streams=4, ttl_seconds=60) as store:
        got = store.get(made.id)
    assert got.seq == 1 and got.answer == {"p": [1.0]}
    assert_same_state(odd_state(), got.state)


def test_wal_and_full_sync(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite", max_streams=1, ttl_seconds=1) as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_commit_steps_is_one_transaction(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite", max_streams=10, ttl_seconds=60) as store:
        ids = [store.create("m", StreamState(), None).id for _ in range(5)]
        statements: list[str] = []
        store._conn.set_trace_callback(statements.append)
        errors = store.commit_steps(
            [
                (i, 1, StreamState({"x": np.array([n], np.float32)}), {"n": n})
                for n, i in enumerate(ids)
            ]
        )
        store._conn.set_trace_callback(None)
        assert errors == [None] * 5
        assert [s for s in statements if s.startswith(("BEGIN", "COMMIT", "ROLLBACK"))] == [
            "BEGIN IMMEDIATE",
            "COMMIT",
        ]
        assert [store.get(i).answer for i in ids] == [{"n": n} for n in range(5)]


def test_commit_steps_reports_a_stale_step_in_its_slot(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite", max_streams=10, ttl_seconds=60) as store:
        a, b, c = (store.create("m", StreamState(), None).id for _ in range(3))
        store.delete(c)
        errors = store.commit_steps(
            [(a, 1, StreamState(), {"ok": 1}), (b, 2, StreamState(), {}), (c, 1, StreamState(), {})]
        )
        assert errors[0] is None
        assert isinstance(errors[1], SequenceGap) and errors[1].expected == 1
        assert isinstance(errors[2], UnknownStream)
        assert store.get(a).seq == 1 and store.get(b).seq == 0


def test_check_seq(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite", max_streams=2, ttl_seconds=60) as store:
        made = store.create("m", StreamState(), None)
        store.commit_steps([(made.id, 1, StreamState(), {"a": 1})])
        record = store.get(made.id)
    assert record.check_seq(2) is False  # next: apply
    assert record.check_seq(1) is True  # retry of the last: stored answer
    for seq in (0, 3, 7):  # older ones are gone, later ones skip steps
        with pytest.raises(SequenceGap) as info:
            record.check_seq(seq)
        assert info.value.expected == 2 and info.value.seq == seq
        assert str(info.value) == (
            f"stream {made.id!r}: seq {seq} is out of order; expected 2 "
            "(or 1 to get the last answer again)"
        )


def step_add_one(states, requests):
    """A toy model: x += request; answer is the new x."""
    out = []
    for state, add in zip(states, requests, strict=True):
        x = state.arrays["x"] + np.float32(add)
        out.append((StreamState({"x": x}, state.meta), {"x": float(x[0])}))
    return out


def test_apply_steps(tmp_path: Path) -> None:
    clock = Clock()
    calls: list[int] = []

    def step(states, requests):
        calls.append(len(states))
        return step_add_one(states, requests)

    with StateStore(tmp_path / "s.sqlite", max_streams=10, ttl_seconds=60, clock=clock) as store:
        a, b = (
            store.create("m", StreamState({"x": np.zeros(1, np.float32)}), None).id
            for _ in range(2)
        )
        clock.now += 5
        out = store.apply_steps([(a, 1, 1.5), (b, 1, 2.0), ("nope", 1, 0.0), (a + "x", 3, 0)], step)
        assert [(r.seq, r.answer, r.updated) for r in out[:2]] == [
            (1, {"x": 1.5}, clock.now),
            (1, {"x": 2.0}, clock.now),
        ]
        assert isinstance(out[2], UnknownStream) and isinstance(out[3], UnknownStream)
        # a retry of seq 1 returns the stored answer without running the model; a gap is a 409
        out = store.apply_steps([(a, 1, 100.0), (b, 3, 1.0)], step)
        assert out[0].seq == 1 and out[0].answer == {"x": 1.5}
        assert isinstance(out[1], SequenceGap) and out[1].expected == 2
        assert calls == [2]
        out = store.apply_steps([(a, 2, 1.0)], step)
        assert out[0].answer == {"x": 2.5} and store.get(a).state.arrays["x"][0] == 2.5
        with pytest.raises(ValueError, match="one stream twice in a batch"):
            store.apply_steps([(a, 3, 1.0), (a, 4, 1.0)], step)


def test_ttl_expiry(tmp_path: Path) -> None:
    clock = Clock()
    with StateStore(tmp_path / "s.sqlite", max_streams=10, ttl_seconds=60, clock=clock) as store:
        old = store.create("m", StreamState(), None).id
        clock.now += 30
        kept = store.create("m", StreamState(), None).id
        clock.now += 30  # `old` is idle for exactly the TTL: gone
        with pytest.raises(UnknownStream, match=f"unknown stream '{old}': never created"):
            store.get(old)
        assert store.count() == 1
        store.commit_steps([(kept, 1, StreamState(), None)])  # a step keeps a stream alive
        clock.now += 59
        assert store.get(kept).seq == 1
        assert store.expire() == 1  # `old`, still a row until expired
        assert store.expire(clock.now + 1) == 1
        assert store.count() == 0


def test_max_streams_is_full_with_retry_after(tmp_path: Path) -> None:
    clock = Clock()
    with StateStore(tmp_path / "s.sqlite", max_streams=2, ttl_seconds=60, clock=clock) as store:
        first = store.create("m", StreamState(), None).id
        clock.now += 10.5
        store.create("m", StreamState(), None)
        with pytest.raises(StreamsFull) as info:
            store.create("m", StreamState(), None)
        assert info.value.retry_after == 50  # ceil(60 - 10.5): when `first` expires
        assert info.value.max_streams == 2 and isinstance(info.value, RnnkitError)
        assert "2 streams are open, the most --max-streams allows" in str(info.value)
        store.delete(first)
        clock.now += 20  # t = 30.5
        third = store.create("m", StreamState(), None).id
        clock.now += 40  # t = 70.5: the second has been idle for the TTL and expires
        store.create("m", StreamState(), None)
        with pytest.raises(StreamsFull) as info:
            store.create("m", StreamState(), None)
        assert info.value.retry_after == 20  # the third expires at 90.5
        clock.now += 19.9
        with pytest.raises(StreamsFull) as info:
            store.create("m", StreamState(), None)
        assert info.value.retry_after == 1  # 0.1 s, rounded up to whole seconds
        assert store.get(third).seq == 0


def test_unknown_stream(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite", max_streams=2, ttl_seconds=600) as store:
        with pytest.raises(UnknownStream) as info:
            store.get("nope")
        assert str(info.value) == (
            "unknown stream 'nope': never created, deleted, or idle for more than 600 s"
        )
        assert info.value.stream == "nope"
        with pytest.raises(UnknownStream):
            store.delete("nope")
        with pytest.raises(UnknownStream):
            store.model_of("nope")
        made = store.create("m", StreamState(), None)
        assert store.model_of(made.id) == "m"
        store.delete(made.id)
        with pytest.raises(UnknownStream):
            store.get(made.id)
        with pytest.raises(UnknownStream):
            store.model_of(made.id)


def test_bad_arguments_and_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_streams must be at least 1, got 0"):
        StateStore(tmp_path / "a", max_streams=0, ttl_seconds=1)
    with pytest.raises(ValueError, match="ttl_seconds must be positive, got 0"):
        StateStore(tmp_path / "a", max_streams=1, ttl_seconds=0)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database, just bytes" * 100)
    with pytest.raises(DataError, match=r"junk\.sqlite: not an rnnkit stream state file"):
        StateStore(junk, max_streams=1, ttl_seconds=1)
    newer = tmp_path / "newer.sqlite"
    StateStore(newer, max_streams=1, ttl_seconds=1).close()

    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(DataError, match="schema 99 is newer than this rnnkit's 1"):
        StateStore(newer, max_streams=1, ttl_seconds=1)


CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from rnnkit.serve.hooks import StreamState
    from rnnkit.serve.store import StateStore
    store = StateStore(sys.argv[1], max_streams=4, ttl_seconds=3600)
    made = store.create("m", StreamState({"h": np.zeros(3, np.float32)}), None)
    h = np.array([0.1, np.nan, -0.0], np.float32)
    store.commit_steps([(made.id, 1, StreamState({"h": h}, {"k": 1}), {"y": 0.5})])
    print(made.id, flush=True)  # acknowledged: from here the step must survive kill -9
    time.sleep(120)
    """
)


def test_acknowledged_step_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        stream = child.stdout.readline().strip()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL and stream
    assert Path(str(path) + "-wal").exists()  # killed before any checkpoint or clean close
    with StateStore(path, max_streams=4, ttl_seconds=3600) as store:
        got = store.get(stream)
    assert got.seq == 1 and got.answer == {"y": 0.5} and got.state.meta == {"k": 1}
    assert got.state.arrays["h"].tobytes() == np.array([0.1, np.nan, -0.0], np.float32).tobytes()
