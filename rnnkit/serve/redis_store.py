"""`RedisStore`: stream state in one Redis database, shared by every `rnnkit serve` process given
the same `--state redis://HOST:PORT/DB`, so a load balancer may send any request of a stream to
any of them. It behaves as `StateStore` (`store.py`): same records, seq rules, TTL and limits.

    replica A ─┐                          Redis (one database; "rnnkit:" is the key prefix)
    replica B ─┼── observe(S, seq=n) ──>  rnnkit:stream:S   hash: model, seq, state (safetensors
               │                                            bytes), answer (JSON), created, updated
               │                          rnnkit:updated    sorted set: stream -> updated
               │                          rnnkit:model:M    the same, for model M's streams only
               │                          rnnkit:lock:S     the stream's lock: a token, with expiry
               │                          rnnkit:schema     the layout's version
    apply_steps(batch), in the replica's model thread:
      1. lock: `SET rnnkit:lock:S token NX PX lock_ms` for each stream, in one script; the
         streams another replica holds are done after the others, once their lock is free
      2. read the locked streams (one round trip) and check each seq, as StateStore does
      3. step(states, requests): the model, outside Redis
      4. commit: ONE Lua script for the batch, atomic in Redis: each step is written only if its
         stream still holds seq n - 1 (compare-and-set); the answer leaves after it returns
      5. unlock: delete each lock only if it still holds this call's token (a script)

Why both a lock and a compare-and-set: the compare-and-set alone makes a step apply at most once
(two replicas stepping S from seq n - 1 cannot both write seq n), but the loser would have run
the model for nothing; the lock makes the second replica wait and then find seq n applied, which
it answers as a retry, with the stored answer, without running the model. The lock expires
(`lock_seconds`) so that a replica killed while holding it blocks its streams only that long,
and since a lock can expire under a replica that is merely slow, the compare-and-set is what
correctness rests on.

A refused compare-and-set is not recomputed on the fresh state: a seq names one observation,
so if the stream holds seq n now, another replica (or this one's earlier try of the same call)
applied this very observation, and the stored answer is the answer: it is returned, as for a
retry. Stepping the fresh state with it would apply observation n twice, as n + 1. Any other
refusal is the `SequenceGap` or `UnknownStream` that `StateStore` gives.

Durability: a step is acknowledged once Redis has executed the commit script. A replica killed
with `kill -9` loses nothing acknowledged (the state is in Redis); a Redis crash loses nothing
acknowledged only when Redis runs with `appendonly yes` and `appendfsync always` (its default,
`everysec`, may lose the last second); the store logs a warning at start when it can see that
Redis runs otherwise. Redis Cluster is not supported (the scripts touch keys of many slots).

Times (`updated`, the TTL) are the replicas' clocks: keep the hosts' clocks in sync (NTP); a few
seconds of skew only move a stream's expiry by as much.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from rnnkit.errors import ConfigError, DataError, RnnkitError
from rnnkit.serve.hooks import StreamState, encode_state
from rnnkit.serve.streams import (
    SequenceGap,
    Step,
    StepFn,
    StoreUnavailable,
    StreamBusy,
    StreamRecord,
    StreamsFull,
    StreamStore,
    UnknownStream,
)

__all__ = ["SCHEMA_VERSION", "RedisStore", "redact"]

log = logging.getLogger(__name__)

# Bump when the keys' layout changes; an older server refuses a newer database.
SCHEMA_VERSION = 1

#: what "cannot reach Redis" looks like (BusyLoadingError, a Redis still loading its file, is a
#: ConnectionError; a read-only replica is not where streams can be written)
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)

#: the client's settings: give up on a dead address in seconds, not minutes (`/readyz` waits on
#: it), and retry a dropped connection twice (every write below is safe to repeat, see _COMMIT)
_CLIENT: dict[str, Any] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 10.0,
    "health_check_interval": 30,
    "client_name": "rnnkit-serve",
}

#: streams deleted per call of the expiry script, so one call never blocks Redis for long
_EXPIRE_CHUNK = 1000

# --- the scripts (Lua, atomic in Redis). ARGV[1] is always the key prefix. ---------------------

# Deletes the streams in `gone` (ids) from the hash, the sorted sets; shared by two scripts.
_DROP = """
local function drop(p, gone)
  for _, id in ipairs(gone) do
    local key = p .. 'stream:' .. id
    local model = redis.call('HGET', key, 'model')
    redis.call('DEL', key)
    redis.call('ZREM', p .. 'updated', id)
    if model then redis.call('ZREM', p .. 'model:' .. model, id) end
  end
end
"""

# ARGV: prefix, id, model, state, answer ('' for none), now, cutoff, max_streams
# -> {1} created, {-1} the id is taken, {0, oldest updated} full
_CREATE = (
    _DROP
    + """
local p, id, model, now = ARGV[1], ARGV[2], ARGV[3], ARGV[6]
drop(p, redis.call('ZRANGEBYSCORE', p .. 'updated', '-inf', ARGV[7]))
local key = p .. 'stream:' .. id
if redis.call('EXISTS', key) == 1 then
  -- this very create again (the client retried a call whose reply was lost): done already
  local row = redis.call('HMGET', key, 'model', 'created')
  if row[1] == model and row[2] == now then return {1} end
  return {-1}
end
if redis.call('ZCARD', p .. 'updated') >= tonumber(ARGV[8]) then
  return {0, redis.call('ZRANGE', p .. 'updated', 0, 0, 'WITHSCORES')[2]}
end
redis.call('HSET', key, 'model', model, 'seq', '0', 'state', ARGV[4], 'created', now,
           'updated', now)
if ARGV[5] ~= '' then redis.call('HSET', key, 'answer', ARGV[5]) end
redis.call('ZADD', p .. 'updated', now, id)
redis.call('ZADD', p .. 'model:' .. model, now, id)
return {1}
"""
)

# ARGV: prefix, now, cutoff, then (id, seq, state, answer ('' for none)) per step
# -> per step: -2 committed, -1 unknown or expired, else the seq the stream holds (a conflict).
# Safe to repeat: a second run of the same script finds seq already n and reports it, which
# `_lost` answers with the stored record (the one the first run wrote).
_COMMIT = """
local p, now, cutoff = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV, 4 do
  local id, seq = ARGV[i], tonumber(ARGV[i + 1])
  local key = p .. 'stream:' .. id
  local row = redis.call('HMGET', key, 'seq', 'updated', 'model')
  if not row[1] or tonumber(row[2]) <= cutoff then
    out[#out + 1] = -1
  elseif tonumber(row[1]) ~= seq - 1 then
    out[#out + 1] = tonumber(row[1])
  else
    redis.call('HSET', key, 'seq', ARGV[i + 1], 'state', ARGV[i + 2], 'updated', now)
    if ARGV[i + 3] == '' then
      redis.call('HDEL', key, 'answer')
    else
      redis.call('HSET', key, 'answer', ARGV[i + 3])
    end
    redis.call('ZADD', p .. 'updated', now, id)
    redis.call('ZADD', p .. 'model:' .. row[3], now, id)
    out[#out + 1] = -2
  end
end
return out
"""

# ARGV: prefix, id, cutoff -> 1 deleted, 0 unknown or expired
_DELETE = """
local p, id = ARGV[1], ARGV[2]
local key = p .. 'stream:' .. id
local row = redis.call('HMGET', key, 'updated', 'model')
if not row[1] or tonumber(row[1]) <= tonumber(ARGV[3]) then return 0 end
redis.call('DEL', key)
redis.call('ZREM', p .. 'updated', id)
redis.call('ZREM', p .. 'model:' .. row[2], id)
return 1
"""

# ARGV: prefix, cutoff, most to delete -> how many were deleted
_EXPIRE = (
    _DROP
    + """
local gone = redis.call('ZRANGEBYSCORE', ARGV[1] .. 'updated', '-inf', ARGV[2], 'LIMIT', 0,
                        ARGV[3])
drop(ARGV[1], gone)
return #gone
"""
)

# ARGV: prefix, token, milliseconds, ids... -> per id 1 (locked by this token) or 0 (by another).
# A lock that already holds this token (a repeated call) is this call's: its expiry is renewed.
_LOCK = """
local out = {}
for i = 4, #ARGV do
  local key = ARGV[1] .. 'lock:' .. ARGV[i]
  if redis.call('SET', key, ARGV[2], 'NX', 'PX', ARGV[3]) then
    out[#out + 1] = 1
  elseif redis.call('GET', key) == ARGV[2] then
    redis.call('PEXPIRE', key, ARGV[3])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""

# ARGV: prefix, token, ids... : delete each lock that still holds the token (compare-and-delete:
# a lock that expired and was taken by another replica is that replica's, and stays)
_UNLOCK = """
for i = 3, #ARGV do
  local key = ARGV[1] .. 'lock:' .. ARGV[i]
  if redis.call('GET', key) == ARGV[2] then redis.call('DEL', key) end
end
return 0
"""

_FIELDS = ("model", "seq", "state", "answer", "created", "updated")


def redact(url: str) -> str:
    """`url` without its password (`redis://user:***@host:6379/0`), for messages and logs."""
    return re.sub(r"(//[^/@]*?:)[^/@]*@", r"\1***@", url)


class RedisStore(StreamStore):
    """Streams in a Redis database, shared by several server processes.

    Args:
        url: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`, or `rediss://` for TLS.
        max_streams: most streams open at once, over all models and all replicas.
        ttl_seconds: a stream idle (no step) for longer than this is gone.
        clock: epoch seconds; tests pass a fake one.
        prefix: the start of every key, so that other data may share the database.
        lock_seconds: a stream's lock expires this long after it was taken: longer than a
            micro-batch's step, short enough that a killed replica's streams are not held up
            for long.
        lock_wait: how long a step waits for a stream another replica holds before it is
            refused with `StreamBusy` (HTTP 503); default `lock_seconds` + 1, so that a lock
            left by a killed replica always expires within one wait.

    Raises:
        ValueError: `max_streams` < 1, `ttl_seconds` <= 0, `lock_seconds` <= 0.
        ConfigError: `url` is not a Redis URL.
        StoreUnavailable: Redis does not answer (or refuses the password).
        DataError: the database holds rnnkit streams of a newer layout, or other data under
            `prefix`.
    """

    def __init__(
        self,
        url: str,
        *,
        max_streams: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.time,
        prefix: str = "rnnkit:",
        lock_seconds: float = 5.0,
        lock_wait: float | None = None,
    ) -> None:
        super().__init__(max_streams=max_streams, ttl_seconds=ttl_seconds, clock=clock)
        if not lock_seconds > 0:
            raise ValueError(f"lock_seconds must be positive, got {lock_seconds}")
        self.url = redact(url)
        self.prefix = prefix
        self.lock_seconds = float(lock_seconds)
        self.lock_wait = self.lock_seconds + 1.0 if lock_wait is None else float(lock_wait)
        try:
            database = urlsplit(url).path.strip("/")
            if database and not database.isdigit():  # redis-py would quietly take database 0
                raise ValueError(f"the database {database!r} is not a number")
            retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)
            self._redis = redis.Redis.from_url(url, retry=retry, **_CLIENT)
        except (ValueError, TypeError) as e:
            raise ConfigError(
                f"--state {self.url}: not a Redis URL ({e}); expected redis://HOST:PORT/DB "
                "or rediss://HOST:PORT/DB"
            ) from e
        self._create = self._redis.register_script(_CREATE)
        self._commit_script = self._redis.register_script(_COMMIT)
        self._delete = self._redis.register_script(_DELETE)
        self._expire = self._redis.register_script(_EXPIRE)
        self._lock = self._redis.register_script(_LOCK)
        self._unlock = self._redis.register_script(_UNLOCK)
        try:
            self._setup()
        except BaseException:
            self._redis.close()
            raise

    def _setup(self) -> None:
        with self._reach():
            self._redis.ping()
            key = self.prefix + "schema"
            self._redis.set(key, SCHEMA_VERSION, nx=True)
            found = self._redis.get(key)
        try:
            version = int(found or b"")
        except (TypeError, ValueError):
            raise DataError(
                f"{key} holds {found!r}, not an rnnkit schema version: this database holds "
                "other data under the prefix; pass another database number in --state",
                path=self.url,
            ) from None
        if version > SCHEMA_VERSION:
            raise DataError(
                f"stream state schema {version} is newer than this rnnkit's {SCHEMA_VERSION}; "
                "upgrade rnnkit or pass another --state database",
                path=self.url,
            )
        self._check_persistence()

    def _check_persistence(self) -> None:
        """Warn when Redis would lose acknowledged steps in a crash of its own."""
        try:
            config = self._redis.config_get("append*")
        except RedisError as e:  # CONFIG is often disabled on managed Redis
            log.info("cannot read %s's persistence settings (%s)", self.url, e)
            return
        settings = {_text(k): _text(v) for k, v in config.items()}
        if settings.get("appendonly") != "yes" or settings.get("appendfsync") != "always":
            log.warning(
                "%s runs with appendonly %s, appendfsync %s: a replica's death loses no "
                "acknowledged step, but a crash of Redis itself may; run Redis with "
                "'appendonly yes' and 'appendfsync always' (docs/deploy.md)",
                self.url,
                settings.get("appendonly", "?"),
                settings.get("appendfsync", "?"),
            )

    @contextmanager
    def _reach(self) -> Iterator[None]:
        """Redis out of reach -> `StoreUnavailable` (HTTP 503, or one line at startup)."""
        try:
            yield
        except _UNREACHABLE as e:
            raise StoreUnavailable(self.url, str(e) or type(e).__name__) from e

    def _key(self, stream: str) -> str:
        return f"{self.prefix}stream:{stream}"

    # --- reads -------------------------------------------------------------------------------

    def _record(self, stream: str, values: Sequence[Any], now: float) -> StreamRecord | None:
        """A hash's `_FIELDS` as a record; None when missing or idle past the TTL."""
        model, seq, blob, answer, created, updated = values
        if model is None or float(updated) + self.ttl_seconds <= now:
            return None
        answer = None if answer is None else answer.decode("utf-8")
        row = (
            stream,
            model.decode("utf-8"),
            int(seq),
            blob,
            answer,
            float(created),
            float(updated),
        )
        return StreamRecord._stored(row)

    def get(self, stream: str) -> StreamRecord:
        """The committed stream `stream`.

        Raises:
            UnknownStream: no such stream, or it has been idle past the TTL.
        """
        with self._reach():
            values = self._redis.hmget(self._key(stream), _FIELDS)
        record = self._record(stream, values, self._clock())
        if record is None:
            raise UnknownStream(stream, self.ttl_seconds)
        return record

    def model_of(self, stream: str) -> str:
        """The model a stream belongs to (its state and answer are not read).

        Raises:
            UnknownStream: no such stream, or it has been idle past the TTL.
        """
        with self._reach():
            model, updated = self._redis.hmget(self._key(stream), ("model", "updated"))
        if model is None or float(updated) + self.ttl_seconds <= self._clock():
            raise UnknownStream(stream, self.ttl_seconds)
        return _text(model)

    def get_many(self, streams: Sequence[str]) -> dict[str, StreamRecord]:
        """The committed streams among `streams`, by id, read in one round trip.

        An id missing from the result is unknown or idle past the TTL.
        """
        if not streams:
            return {}
        with self._reach():
            pipe = self._redis.pipeline(transaction=False)
            for stream in streams:
                pipe.hmget(self._key(stream), _FIELDS)
            rows = pipe.execute()
        now = self._clock()
        records = (self._record(s, values, now) for s, values in zip(streams, rows, strict=True))
        return {r.id: r for r in records if r is not None}

    def count(self, model: str | None = None) -> int:
        """Streams not yet expired, of one model or of all."""
        key = self.prefix + ("updated" if model is None else f"model:{model}")
        cutoff = self._clock() - self.ttl_seconds
        with self._reach():
            return int(self._redis.zcount(key, f"({cutoff!r}", "+inf"))

    def ping(self) -> None:
        """Return when Redis answers.

        Raises:
            StoreUnavailable: it does not.
        """
        with self._reach():
            self._redis.ping()

    # --- writes ------------------------------------------------------------------------------

    def create(self, model: str, state: StreamState, answer: dict[str, Any] | None) -> StreamRecord:
        """A new stream at seq 0, in Redis before return; idle streams are expired first.

        Raises:
            StreamsFull: `max_streams` streams are still open after expiring.
        """
        blob = encode_state(state)
        answer_json = _dump_answer(answer)
        now = self._clock()
        cutoff = now - self.ttl_seconds
        for _ in range(3):  # an id already taken: 96 random bits, so never in practice
            stream = secrets.token_urlsafe(12)  # unguessable, 16 url-safe chars
            args = [self.prefix, stream, model, blob, answer_json, repr(now), repr(cutoff)]
            with self._reach():
                done = self._create(keys=[], args=[*args, self.max_streams])
            if done[0] == 0:
                oldest = float(done[1])
                raise StreamsFull(
                    self.max_streams, max(1, math.ceil(oldest + self.ttl_seconds - now))
                )
            if done[0] == 1:
                return StreamRecord(stream, model, 0, state, answer, now, now)
        raise RuntimeError("three random stream ids were all taken")

    def _commit(self, steps: Sequence[Step], now: float) -> list[RnnkitError | None]:
        if not steps:
            return []
        args: list[Any] = [self.prefix, repr(now), repr(now - self.ttl_seconds)]
        for stream, seq, state, answer in steps:  # encoded before the round trip
            args += [stream, seq, encode_state(state), _dump_answer(answer)]
        with self._reach():
            codes = self._commit_script(keys=[], args=args)
        out: list[RnnkitError | None] = []
        for (stream, seq, _, _), code in zip(steps, codes, strict=True):
            if code == -2:
                out.append(None)
            elif code == -1:
                out.append(UnknownStream(stream, self.ttl_seconds))
            else:
                out.append(SequenceGap(stream, seq, int(code) + 1))
        return out

    def _lost(self, record: StreamRecord, error: RnnkitError) -> StreamRecord | RnnkitError:
        """A refused step whose stream now holds its very seq was applied by another writer
        (a replica whose lock outlived ours, or this call's own first try): answer as a retry,
        with the stored record, rather than step the fresh state (module docstring)."""
        if isinstance(error, SequenceGap) and error.expected == record.seq + 1:
            try:
                return self.get(record.id)
            except UnknownStream as gone:  # deleted or expired since
                return gone
        return error

    def apply_steps(
        self, observations: Sequence[tuple[str, int, Any]], step: StepFn
    ) -> list[StreamRecord | RnnkitError]:
        """`StreamStore.apply_steps` with each stream locked against the other replicas from
        its read to its commit (the module docstring). Streams another replica holds wait for
        its lock, after this batch's other streams are done, at most `lock_wait` seconds.

        Returns:
            per observation, its record or its error: `UnknownStream`, `SequenceGap`, or
            `StreamBusy` when the wait ran out.

        Raises:
            ValueError: two observations for one stream.
            StoreUnavailable: Redis does not answer.
        """
        ids = [stream for stream, _, _ in observations]
        if len(set(ids)) != len(ids):
            raise ValueError(f"one stream twice in a batch: {sorted(ids)}")
        out: list[StreamRecord | RnnkitError | None] = [None] * len(observations)
        waiting = list(range(len(observations)))
        token = secrets.token_hex(16)
        lock_ms = max(1, round(self.lock_seconds * 1000))
        deadline = time.monotonic() + self.lock_wait
        pause = 0.002
        while waiting:
            args = [self.prefix, token, lock_ms, *(ids[i] for i in waiting)]
            with self._reach():
                locked = self._lock(keys=[], args=args)
            mine = [i for i, ok in zip(waiting, locked, strict=True) if ok]
            waiting = [i for i, ok in zip(waiting, locked, strict=True) if not ok]
            if mine:
                try:
                    with self._reach():
                        done = self._apply([observations[i] for i in mine], step)
                finally:
                    self._release(token, [ids[i] for i in mine])
                for i, result in zip(mine, done, strict=True):
                    out[i] = result
            if not waiting:
                break
            if time.monotonic() >= deadline:
                retry_after = max(1, math.ceil(self.lock_seconds))
                for i in waiting:
                    out[i] = StreamBusy(ids[i], self.lock_wait, retry_after)
                break
            time.sleep(pause)  # no lock is held here, so two waiting replicas cannot deadlock
            pause = min(2 * pause, 0.05)
        return out  # type: ignore[return-value]  # every slot is filled above

    def _release(self, token: str, streams: list[str]) -> None:
        """Unlock; a failure only logs, since the locks expire anyway."""
        try:
            self._unlock(keys=[], args=[self.prefix, token, *streams])
        except RedisError as e:
            log.warning(
                "releasing the locks of %d streams failed (%s); they expire", len(streams), e
            )

    def delete(self, stream: str) -> None:
        """Remove a stream.

        Raises:
            UnknownStream: no such stream (or already expired).
        """
        cutoff = self._clock() - self.ttl_seconds
        with self._reach():
            done = self._delete(keys=[], args=[self.prefix, stream, repr(cutoff)])
        if not done:
            raise UnknownStream(stream, self.ttl_seconds)

    def expire(self, now: float | None = None) -> int:
        """Delete streams idle for more than the TTL at `now` (default: the clock); how many."""
        now = self._clock() if now is None else now
        cutoff = repr(now - self.ttl_seconds)
        total = 0
        while True:
            with self._reach():
                gone = int(self._expire(keys=[], args=[self.prefix, cutoff, _EXPIRE_CHUNK]))
            total += gone
            if gone < _EXPIRE_CHUNK:
                return total

    def close(self) -> None:
        """Close the connections."""
        with suppress(RedisError):  # nothing is pending: each write returned before its answer
            self._redis.close()

    def __enter__(self) -> RedisStore:
        return self


def _dump_answer(answer: dict[str, Any] | None) -> str:
    """The answer as JSON, '' for none (no JSON text is empty)."""
    return "" if answer is None else json.dumps(answer, ensure_ascii=False)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
