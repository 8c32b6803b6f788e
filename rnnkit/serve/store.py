"""`StateStore`: durable per-stream state for `rnnkit serve`, in one SQLite file.

One row per stream; a step is acknowledged only after the transaction that holds it is on disk,
so a server killed with `kill -9` (or a power cut) restarts with every acknowledged step:

    observe(seq=n) ──> MicroBatcher ──> StateStore.apply_steps(batch, step)
                                          │ 1. read the batch's rows: ONE SELECT
                                          │ 2. check seq: last + 1 -> apply; last -> the stored
                                          │    answer; anything else -> SequenceGap (HTTP 409)
                                          │ 3. step(states, requests), outside the lock
                                          │ 4. commit_steps: ONE transaction for the whole batch,
                                          │    fsynced (WAL, synchronous=FULL) before it returns
                                          v
                                        answers go back to the callers

Only the last step's answer is kept: a retry of the last applied seq gets that answer again, while
an older seq is a 409 like a gap (its answer is gone, and replaying it would move the stream back).

State blobs are safetensors (`encode_state`, `decode_state`): arrays bit for bit, meta as JSON in
the header's metadata. No pickle, so a state file cannot run code when read.

The connection is shared by the server's worker threads one at a time, under a lock; the methods
are synchronous and meant to be called from a thread, not from the event loop.
"""

from __future__ import annotations

import json
import math
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rnnkit.errors import DataError, RnnkitError
from rnnkit.serve.hooks import StreamState, decode_state, encode_state

# Bump when the table changes; an older server refuses a newer file instead of misreading it.
SCHEMA_VERSION = 1

__all__ = [
    "SCHEMA_VERSION",
    "SequenceGap",
    "StateStore",
    "StreamRecord",
    "StreamsFull",
    "UnknownStream",
    "decode_state",
    "encode_state",
]

# Ids per `WHERE id IN (...)`: well under SQLite's smallest bound on a statement's variables (999).
_IN_CHUNK = 500

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS streams (
        id      TEXT PRIMARY KEY,
        model   TEXT NOT NULL,
        seq     INTEGER NOT NULL,   -- last applied observation; 0 right after creation
        state   BLOB NOT NULL,      -- encode_state(StreamState): safetensors bytes
        answer  TEXT,               -- JSON of the last answer; NULL when there is none
        created REAL NOT NULL,      -- epoch seconds
        updated REAL NOT NULL       -- epoch seconds of the last step; idle time counts from here
    )""",
    # expiry deletes by idle time
    "CREATE INDEX IF NOT EXISTS streams_updated ON streams (updated)",
)


class StreamsFull(RnnkitError):
    """Every stream slot is taken (`--max-streams`) and none is idle long enough to expire.

    Attributes:
        max_streams: the limit.
        retry_after: whole seconds until the stream idle longest expires (>= 1): the
            `Retry-After` of the 503.
    """

    def __init__(self, max_streams: int, retry_after: int) -> None:
        self.max_streams = max_streams
        self.retry_after = retry_after
        super().__init__(
            f"{max_streams} streams are open, the most --max-streams allows; delete one or "
            f"retry in {retry_after} s, when the stream idle longest expires"
        )


class UnknownStream(RnnkitError, LookupError):
    """No such stream: never created, deleted, or idle past the TTL (HTTP 404)."""

    def __init__(self, stream: str, ttl_seconds: float) -> None:
        self.stream = stream
        super().__init__(
            f"unknown stream {stream!r}: never created, deleted, or idle for more than "
            f"{ttl_seconds:g} s"
        )


class SequenceGap(RnnkitError, ValueError):
    """An observation's `seq` is neither the next one nor a retry of the last one (HTTP 409).

    Attributes:
        stream: the stream id.
        seq: the seq the client sent.
        expected: the seq the stream accepts next (last applied + 1).
    """

    def __init__(self, stream: str, seq: int, expected: int) -> None:
        self.stream = stream
        self.seq = seq
        self.expected = expected
        super().__init__(
            f"stream {stream!r}: seq {seq} is out of order; expected {expected} "
            f"(or {expected - 1} to get the last answer again)"
        )


class StreamRecord:
    """One stream as committed.

    Attributes:
        id: url-safe random id.
        model: the served model's name.
        seq: last applied observation (0 right after creation).
        state: the recurrent state after step `seq`.
        answer: the answer of step `seq` (for seq 0, the creation answer, possibly None).
        created, updated: epoch seconds.

    A record read from the file decodes `state` and `answer` on first use, so a read that only
    needs the stream's model or seq (the observe route's) pays for neither.
    """

    __slots__ = ("_answer", "_answer_json", "_blob", "_state", "created", "id", "model", "seq",
                 "updated")  # fmt: skip

    def __init__(
        self,
        id: str,
        model: str,
        seq: int,
        state: StreamState,
        answer: dict[str, Any] | None,
        created: float,
        updated: float,
    ) -> None:
        self.id = id
        self.model = model
        self.seq = seq
        self._state: StreamState | None = state
        self._answer = answer
        self._blob: bytes | None = None
        self._answer_json: str | None = None
        self.created = created
        self.updated = updated

    @classmethod
    def _stored(cls, row: tuple[Any, ...]) -> StreamRecord:
        """A row `(id, model, seq, state blob, answer JSON, created, updated)`, decoded lazily."""
        stream, model, seq, blob, answer, created, updated = row
        record = cls(stream, model, int(seq), None, None, created, updated)  # type: ignore[arg-type]
        record._blob, record._answer_json = blob, answer
        return record

    @property
    def state(self) -> StreamState:
        if self._state is None:
            self._state = decode_state(self._blob)  # type: ignore[arg-type]
            self._blob = None
        return self._state

    @property
    def answer(self) -> dict[str, Any] | None:
        if self._answer_json is not None:
            self._answer = json.loads(self._answer_json)
            self._answer_json = None
        return self._answer

    def __repr__(self) -> str:
        return f"StreamRecord(id={self.id!r}, model={self.model!r}, seq={self.seq})"

    def check_seq(self, seq: int) -> bool:
        """Whether `seq` is a retry of the last applied step.

        Returns:
            False for `self.seq + 1` (apply it), True for `self.seq` (answer with `self.answer`).

        Raises:
            SequenceGap: any other seq (older ones too: only the last answer is kept).
        """
        if seq == self.seq + 1:
            return False
        if seq == self.seq:
            return True
        raise SequenceGap(self.id, seq, self.seq + 1)


# A step function: (states, requests) -> [(new state, answer)], e.g.
# `lambda states, requests: hooks.step_batch(predictor, states, requests)`.
StepFn = Callable[[list[StreamState], list[Any]], list[tuple[StreamState, dict[str, Any]]]]


class StateStore:
    """Streams in a SQLite file (WAL mode, synchronous=FULL).

    Args:
        path: the database file; created with its folder if missing.
        max_streams: most streams open at once, over all models.
        ttl_seconds: a stream idle (no step) for longer than this is gone.
        clock: epoch seconds; tests pass a fake one.

    Raises:
        ValueError: `max_streams` < 1 or `ttl_seconds` <= 0.
        DataError: `path` is not an rnnkit state file, or one of a newer schema.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_streams: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_streams < 1:
            raise ValueError(f"max_streams must be at least 1, got {max_streams}")
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self.path = Path(path)
        self.max_streams = max_streams
        self.ttl_seconds = float(ttl_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT below, so
        # one batch is exactly one transaction whatever Python's sqlite3 defaults are.
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise DataError(f"cannot open the stream state file ({e})", path=self.path) from e
        try:
            self._setup()
        except sqlite3.DatabaseError as e:
            self._conn.close()
            raise DataError(f"not an rnnkit stream state file ({e})", path=self.path) from e
        except BaseException:
            self._conn.close()
            raise

    def _setup(self) -> None:
        c = self._conn
        c.execute("PRAGMA busy_timeout = 10000")  # a second server on the same file waits
        mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise DataError(f"cannot use WAL mode here (SQLite chose {mode!r})", path=self.path)
        # FULL fsyncs the WAL at every commit: an acknowledged step survives a power cut, not
        # only a killed process (NORMAL, the WAL default, may lose the last commits).
        c.execute("PRAGMA synchronous = FULL")
        version = c.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DataError(
                f"stream state schema {version} is newer than this rnnkit's "
                f"{SCHEMA_VERSION}; upgrade rnnkit or pass another --state file",
                path=self.path,
            )
        with self._transaction():
            for statement in _SCHEMA:  # not executescript: it COMMITs first
                c.execute(statement)
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    # --- reads -------------------------------------------------------------------------------

    def get(self, stream: str) -> StreamRecord:
        """The committed stream `stream`.

        Raises:
            UnknownStream: no such stream, or it has been idle past the TTL.
        """
        with self._lock:
            row = self._conn.execute(
                "SELECT id, model, seq, state, answer, created, updated FROM streams WHERE id = ?",
                (stream,),
            ).fetchone()
        if row is None or row[6] + self.ttl_seconds <= self._clock():
            raise UnknownStream(stream, self.ttl_seconds)
        return StreamRecord._stored(row)

    def model_of(self, stream: str) -> str:
        """The model a stream belongs to (its row's state and answer are not read).

        Raises:
            UnknownStream: no such stream, or it has been idle past the TTL.
        """
        with self._lock:
            row = self._conn.execute(
                "SELECT model, updated FROM streams WHERE id = ?", (stream,)
            ).fetchone()
        if row is None or row[1] + self.ttl_seconds <= self._clock():
            raise UnknownStream(stream, self.ttl_seconds)
        return str(row[0])

    def get_many(self, streams: Sequence[str]) -> dict[str, StreamRecord]:
        """The committed streams among `streams`, by id, read in one SELECT per 500 ids.

        An id missing from the result is unknown or idle past the TTL (`UnknownStream` for
        `get`).
        """
        rows: list[tuple[Any, ...]] = []
        with self._lock:
            for i in range(0, len(streams), _IN_CHUNK):
                chunk = list(streams[i : i + _IN_CHUNK])
                rows += self._conn.execute(
                    "SELECT id, model, seq, state, answer, created, updated FROM streams "
                    f"WHERE id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
        now = self._clock()
        return {
            row[0]: StreamRecord._stored(row) for row in rows if row[6] + self.ttl_seconds > now
        }

    def count(self, model: str | None = None) -> int:
        """Streams not yet expired, of one model or of all."""
        cutoff = self._clock() - self.ttl_seconds
        query = "SELECT COUNT(*) FROM streams WHERE updated > ?"
        args: tuple[Any, ...] = (cutoff,)
        if model is not None:
            query += " AND model = ?"
            args += (model,)
        with self._lock:
            return int(self._conn.execute(query, args).fetchone()[0])

    # --- writes ------------------------------------------------------------------------------

    def create(self, model: str, state: StreamState, answer: dict[str, Any] | None) -> StreamRecord:
        """A new stream at seq 0, committed before return; idle streams are expired first.

        Raises:
            StreamsFull: `max_streams` streams are still open after expiring.
        """
        blob = encode_state(state)
        answer_json = _dump_answer(answer)
        stream = secrets.token_urlsafe(12)  # 96 random bits: unguessable, 16 url-safe chars
        with self._lock, self._transaction():
            now = self._clock()
            self._conn.execute("DELETE FROM streams WHERE updated <= ?", (now - self.ttl_seconds,))
            count, oldest = self._conn.execute(
                "SELECT COUNT(*), MIN(updated) FROM streams"
            ).fetchone()
            full = count >= self.max_streams
            if not full:
                self._conn.execute(
                    "INSERT INTO streams (id, model, seq, state, answer, created, updated) "
                    "VALUES (?, ?, 0, ?, ?, ?, ?)",
                    (stream, model, blob, answer_json, now, now),
                )
        if full:  # raised after COMMIT, so the expiry above stays done
            raise StreamsFull(self.max_streams, max(1, math.ceil(oldest + self.ttl_seconds - now)))
        return StreamRecord(stream, model, 0, state, answer, now, now)

    def commit_steps(
        self, steps: Sequence[tuple[str, int, StreamState, dict[str, Any] | None]]
    ) -> list[RnnkitError | None]:
        """Store `(id, seq, state, answer)` for several streams in ONE transaction, fsynced.

        A step applies only over its stream's `seq - 1`; a step whose stream has gone (deleted
        or expired meanwhile) or moved on (another server on the same file) is not written and
        gets its error in its slot, while the others commit.

        Returns:
            per step, None (committed) or an `UnknownStream` / `SequenceGap`.
        """
        return self._commit(steps, self._clock())

    def _commit(
        self, steps: Sequence[tuple[str, int, StreamState, dict[str, Any] | None]], now: float
    ) -> list[RnnkitError | None]:
        # Encode before taking the lock: the other threads need not wait for it.
        rows = [
            (stream, seq, encode_state(state), _dump_answer(answer))
            for stream, seq, state, answer in steps
        ]
        cutoff = now - self.ttl_seconds
        out: list[RnnkitError | None] = []
        with self._lock, self._transaction():
            for stream, seq, blob, answer_json in rows:
                changed = self._conn.execute(
                    "UPDATE streams SET seq = ?, state = ?, answer = ?, updated = ? "
                    "WHERE id = ? AND seq = ? AND updated > ?",
                    (seq, blob, answer_json, now, stream, seq - 1, cutoff),
                ).rowcount
                out.append(None if changed else self._why_not(stream, seq, cutoff))
        return out

    def _why_not(self, stream: str, seq: int, cutoff: float) -> RnnkitError:
        row = self._conn.execute(
            "SELECT seq, updated FROM streams WHERE id = ?", (stream,)
        ).fetchone()
        if row is None or row[1] <= cutoff:
            return UnknownStream(stream, self.ttl_seconds)
        return SequenceGap(stream, seq, row[0] + 1)

    def apply_steps(
        self, observations: Sequence[tuple[str, int, Any]], step: StepFn
    ) -> list[StreamRecord | RnnkitError]:
        """One micro-batch of observations `(id, seq, request)`, each for a different stream.

        Reads each stream as committed, checks its seq (`StreamRecord.check_seq`), runs `step`
        once on the streams to advance (outside the lock), and commits them in one transaction.
        A retry of the last seq gets the stored record back without running the model.

        Returns:
            per observation, the stream's record after it (`seq`, `answer`), or the error for
            that observation alone (`UnknownStream`, `SequenceGap`). An exception from `step`
            itself propagates.

        Raises:
            ValueError: two observations for one stream (the batcher never forms such a batch).
        """
        ids = [stream for stream, _, _ in observations]
        if len(set(ids)) != len(ids):
            raise ValueError(f"one stream twice in a batch: {sorted(ids)}")
        out: list[StreamRecord | RnnkitError] = []
        todo: list[tuple[int, StreamRecord, Any]] = []  # (slot, record, request) to advance
        records = self.get_many(ids)  # one read for the whole batch
        for slot, (stream, seq, request) in enumerate(observations):
            try:
                record = records.get(stream)
                if record is None:
                    raise UnknownStream(stream, self.ttl_seconds)
                retry = record.check_seq(seq)
            except (UnknownStream, SequenceGap) as e:
                out.append(e)
                continue
            out.append(record)  # a retry's answer is the stored one
            if not retry:
                todo.append((slot, record, request))
        if not todo:
            return out
        results = step([r.state for _, r, _ in todo], [q for _, _, q in todo])
        if len(results) != len(todo):
            raise RuntimeError(f"step returned {len(results)} results for {len(todo)} streams")
        now = self._clock()
        after = [
            StreamRecord(r.id, r.model, r.seq + 1, state, answer, r.created, now)
            for (_, r, _), (state, answer) in zip(todo, results, strict=True)
        ]
        errors = self._commit([(a.id, a.seq, a.state, a.answer) for a in after], now)
        for (slot, _, _), record, error in zip(todo, after, errors, strict=True):
            out[slot] = record if error is None else error
        return out

    def delete(self, stream: str) -> None:
        """Remove a stream.

        Raises:
            UnknownStream: no such stream (or already expired).
        """
        with self._lock, self._transaction():
            cutoff = self._clock() - self.ttl_seconds
            changed = self._conn.execute(
                "DELETE FROM streams WHERE id = ? AND updated > ?", (stream, cutoff)
            ).rowcount
        if not changed:
            raise UnknownStream(stream, self.ttl_seconds)

    def expire(self, now: float | None = None) -> int:
        """Delete streams idle for more than the TTL at `now` (default: the clock); how many."""
        now = self._clock() if now is None else now
        with self._lock, self._transaction():
            return self._conn.execute(
                "DELETE FROM streams WHERE updated <= ?", (now - self.ttl_seconds,)
            ).rowcount

    def close(self) -> None:
        """Close the database (checkpointing the WAL into the main file)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an exception.

    IMMEDIATE takes the write lock at BEGIN, so two servers on one file queue up (busy_timeout)
    instead of failing half-way through a batch.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _dump_answer(answer: dict[str, Any] | None) -> str | None:
    return None if answer is None else json.dumps(answer, ensure_ascii=False)
