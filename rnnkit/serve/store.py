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

The records, the errors and `StreamStore` (the interface, and the seq check and step of
`apply_steps`) are in `streams.py`, shared with `RedisStore` (`redis_store.py`); they are
importable from here too. `open_store` picks a store by `--state`: a file path is a `StateStore`,
`redis://` or `rediss://` a `RedisStore`, which several server processes share.
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

from rnnkit.errors import ConfigError, DataError, RnnkitError
from rnnkit.serve.hooks import StreamState, decode_state, encode_state
from rnnkit.serve.streams import (
    SequenceGap,
    Step,
    StoreUnavailable,
    StreamBusy,
    StreamRecord,
    StreamsFull,
    StreamStore,
    UnknownStream,
)

# Bump when the table changes; an older server refuses a newer file instead of misreading it.
SCHEMA_VERSION = 1

__all__ = [
    "SCHEMA_VERSION",
    "SequenceGap",
    "StateStore",
    "StoreUnavailable",
    "StreamBusy",
    "StreamRecord",
    "StreamStore",
    "StreamsFull",
    "UnknownStream",
    "decode_state",
    "encode_state",
    "open_store",
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


class StateStore(StreamStore):
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
        super().__init__(max_streams=max_streams, ttl_seconds=ttl_seconds, clock=clock)
        self.path = Path(path)
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

    def _commit(self, steps: Sequence[Step], now: float) -> list[RnnkitError | None]:
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

    def ping(self) -> None:
        """Return when the file answers a query."""
        with self._lock:
            self._conn.execute("SELECT 1").fetchone()

    def __enter__(self) -> StateStore:
        return self


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


#: `--state` values that name a Redis database rather than a file
REDIS_SCHEMES = ("redis", "rediss")


def open_store(
    state: str | Path,
    *,
    max_streams: int,
    ttl_seconds: float,
    clock: Callable[[], float] = time.time,
) -> StreamStore:
    """The store `--state` names: `redis://HOST:PORT/DB` or `rediss://...` (TLS) is a
    `RedisStore`, shared by every server given the same URL; anything else is the path of a
    `StateStore` file.

    Raises:
        ConfigError: another `scheme://`, a bad Redis URL, or the Redis client not installed.
        StoreUnavailable: Redis does not answer.
        DataError: the file or the database holds something else, or a newer schema.
    """
    text = str(state)
    scheme, sep, _ = text.partition("://")
    if not sep:
        return StateStore(state, max_streams=max_streams, ttl_seconds=ttl_seconds, clock=clock)
    if scheme.lower() not in REDIS_SCHEMES:
        # A path never holds "://"; a typo of the scheme must not become a folder named "redis:".
        raise ConfigError(
            f"--state {scheme}://...: unknown scheme {scheme!r}; expected a file path, "
            "redis://HOST:PORT/DB or rediss://HOST:PORT/DB"
        )
    try:
        from rnnkit.serve.redis_store import RedisStore
    except ImportError as e:
        raise ConfigError(
            f"--state {scheme}://... needs the redis client ({e}): pip install 'rnnkit[serve]'"
        ) from e
    return RedisStore(text, max_streams=max_streams, ttl_seconds=ttl_seconds, clock=clock)
