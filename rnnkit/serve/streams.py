"""What every stream store shares: the records, the errors the routes answer with, and
`StreamStore`, the interface of `StateStore` (SQLite, `store.py`) and `RedisStore` (Redis,
`redis_store.py`) with the part of `apply_steps` both run:

    observations (id, seq, request) of one micro-batch, one per stream
      1. get_many: the batch's streams as committed, in one read
      2. StreamRecord.check_seq: last + 1 -> step it; last -> the stored answer (a retry);
         anything else -> SequenceGap (HTTP 409)
      3. step(states, requests): the model, once for the batch, outside any lock of the store
      4. _commit: ONE atomic write for the batch, each step only over its stream's seq - 1,
         durable before it returns; a refused step gets `_lost` (its error, unless the store
         knows better)
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.serve.hooks import StreamState, decode_state

__all__ = [
    "SequenceGap",
    "Step",
    "StepFn",
    "StoreUnavailable",
    "StreamBusy",
    "StreamRecord",
    "StreamStore",
    "StreamsFull",
    "UnknownStream",
]


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


class StreamBusy(RnnkitError):
    """Another server process held the stream's lock for longer than this one would wait (HTTP
    503 with `Retry-After`); only a store shared by several processes (`RedisStore`) raises it.

    Attributes:
        stream: the stream id.
        retry_after: whole seconds to wait before retrying the same seq (>= 1).
    """

    def __init__(self, stream: str, waited: float, retry_after: int = 1) -> None:
        self.stream = stream
        self.retry_after = retry_after
        super().__init__(
            f"stream {stream!r} is being stepped by another server process (its lock was held "
            f"for the {waited:g} s this one waited); retry the same seq in {retry_after} s"
        )


class StoreUnavailable(RnnkitError):
    """The store cannot be reached (a Redis server down or out of reach; HTTP 503).

    Attributes:
        where: the store, without any password.
        retry_after: whole seconds to wait before retrying (>= 1).
    """

    def __init__(self, where: str, reason: str, retry_after: int = 1) -> None:
        self.where = where
        self.retry_after = retry_after
        super().__init__(f"the stream store {where} is unreachable ({reason})")


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

#: one step to commit: (stream id, its new seq, the state after it, its answer)
Step = tuple[str, int, StreamState, "dict[str, Any] | None"]


class StreamStore(abc.ABC):
    """Durable per-stream state, as the server uses it: `StateStore` (one SQLite file, one
    process) and `RedisStore` (one Redis database, several processes) behave alike.

    Subclasses supply the reads and writes; `apply_steps`, the seq check and the step between a
    batch's read and its commit, is shared.

    Args:
        max_streams: most streams open at once, over all models.
        ttl_seconds: a stream idle (no step) for longer than this is gone.
        clock: epoch seconds; tests pass a fake one.

    Raises:
        ValueError: `max_streams` < 1 or `ttl_seconds` <= 0.
    """

    def __init__(
        self, *, max_streams: int, ttl_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        if max_streams < 1:
            raise ValueError(f"max_streams must be at least 1, got {max_streams}")
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self.max_streams = max_streams
        self.ttl_seconds = float(ttl_seconds)
        self._clock = clock

    # --- what a store supplies ----------------------------------------------------------------

    @abc.abstractmethod
    def get(self, stream: str) -> StreamRecord:
        """The committed stream `stream`.

        Raises:
            UnknownStream: no such stream, or it has been idle past the TTL.
        """

    @abc.abstractmethod
    def model_of(self, stream: str) -> str:
        """The model a stream belongs to (its state and answer are not read).

        Raises:
            UnknownStream: no such stream, or it has been idle past the TTL.
        """

    @abc.abstractmethod
    def get_many(self, streams: Sequence[str]) -> dict[str, StreamRecord]:
        """The committed streams among `streams`, by id; a missing id is unknown or expired."""

    @abc.abstractmethod
    def count(self, model: str | None = None) -> int:
        """Streams not yet expired, of one model or of all."""

    @abc.abstractmethod
    def create(self, model: str, state: StreamState, answer: dict[str, Any] | None) -> StreamRecord:
        """A new stream at seq 0, committed before return; idle streams are expired first.

        Raises:
            StreamsFull: `max_streams` streams are still open after expiring.
        """

    @abc.abstractmethod
    def _commit(self, steps: Sequence[Step], now: float) -> list[RnnkitError | None]:
        """`commit_steps` at `now`: all of `steps` in one atomic write, durable on return."""

    @abc.abstractmethod
    def delete(self, stream: str) -> None:
        """Remove a stream.

        Raises:
            UnknownStream: no such stream (or already expired).
        """

    @abc.abstractmethod
    def expire(self, now: float | None = None) -> int:
        """Delete streams idle for more than the TTL at `now` (default: the clock); how many."""

    @abc.abstractmethod
    def close(self) -> None:
        """Let go of the file or the connections."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Return when the store answers (the server's `/readyz`).

        Raises:
            StoreUnavailable: it does not.
        """

    # --- shared --------------------------------------------------------------------------------

    def commit_steps(self, steps: Sequence[Step]) -> list[RnnkitError | None]:
        """Store `(id, seq, state, answer)` for several streams in ONE atomic write, durable
        before it returns.

        A step applies only over its stream's `seq - 1`; a step whose stream has gone (deleted
        or expired meanwhile) or moved on (another server on the same store) is not written and
        gets its error in its slot, while the others commit.

        Returns:
            per step, None (committed) or an `UnknownStream` / `SequenceGap`.
        """
        return self._commit(steps, self._clock())

    def apply_steps(
        self, observations: Sequence[tuple[str, int, Any]], step: StepFn
    ) -> list[StreamRecord | RnnkitError]:
        """One micro-batch of observations `(id, seq, request)`, each for a different stream.

        Reads each stream as committed, checks its seq (`StreamRecord.check_seq`), runs `step`
        once on the streams to advance (outside any lock of the store), and commits them in one
        atomic write. A retry of the last seq gets the stored record back without running the
        model.

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
        return self._apply(observations, step)

    def _apply(
        self, observations: Sequence[tuple[str, int, Any]], step: StepFn
    ) -> list[StreamRecord | RnnkitError]:
        """`apply_steps` once the ids are known to differ."""
        ids = [stream for stream, _, _ in observations]
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
            out[slot] = record if error is None else self._lost(record, error)
        return out

    def _lost(self, record: StreamRecord, error: RnnkitError) -> StreamRecord | RnnkitError:
        """What an observation whose commit was refused answers (`record`: the step as it would
        have been committed); the error itself, unless a store says better."""
        return error

    def __enter__(self) -> StreamStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
