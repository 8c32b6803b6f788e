"""`MicroBatcher`: requests that arrive close together share one call of a batch function.

    submit(k1, a) ─┐                       ┌─> a's caller gets results[0]
    submit(k2, b) ─┼─> pending (arrival) ──┼─> fn([a, b, c]) in the executor ─┼─> b's ... [1]
    submit(k3, c) ─┘   │                   │                                   └─> c's ... [2]
    submit(k1, d) ───> │ waits: k1 is already in this batch; goes in the next one, after a
                       └ a batch leaves when it has `max_batch` items or when its oldest item
                         has waited `window_ms`

Rules:
- Items of one key (a stream id) never share a batch, and run in arrival order: a stream's
  steps are applied one after another even when its requests arrive concurrently.
- `fn(items) -> results` runs in `executor` (a thread), so the event loop keeps serving.
- A result slot that holds an `Exception` instance is raised in that item's caller only; an
  exception raised by `fn` reaches every caller of the batch.
- `enabled=False`, `window_ms=0` or `max_batch=1` is "micro-batching off": one call per request
  (what the benchmark compares against), still in order per key.
- At most `max_in_flight` batches run at once (default 1); a key in a running batch waits.

Bind one batcher to one event loop (the server's): it starts its worker task on first use.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Pending:
    key: Hashable
    item: Any
    future: asyncio.Future[Any]
    arrived: float  # loop.time()


@dataclass
class BatchStats:
    """What a batcher has done, for metrics and tests."""

    batches: int = 0
    items: int = 0
    sizes: deque[int] = field(default_factory=lambda: deque(maxlen=1000))  # the latest batches


class MicroBatcher:
    """Gather concurrent `submit` calls into calls of `fn`.

    Args:
        fn: `(items) -> results`, one result per item in order; a result may be an
            `Exception` instance, raised in that item's caller only. Runs in `executor`.
        window_ms: how long the oldest waiting item may wait for company; 0 turns batching off.
        max_batch: most items in one call; a full batch leaves without waiting.
        executor: where `fn` runs; None is the event loop's default thread pool.
        enabled: False turns batching off (one call per request) whatever the window.
        max_in_flight: most calls of `fn` running at once.

    Raises:
        ValueError: `window_ms` < 0, `max_batch` < 1 or `max_in_flight` < 1.
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], Sequence[Any]],
        *,
        window_ms: float,
        max_batch: int,
        executor: Executor | None = None,
        enabled: bool = True,
        max_in_flight: int = 1,
    ) -> None:
        if window_ms < 0:
            raise ValueError(f"window_ms must be >= 0, got {window_ms}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.fn = fn
        self.enabled = enabled and window_ms > 0 and max_batch > 1
        self.window = window_ms / 1000 if self.enabled else 0.0
        self.max_batch = max_batch if self.enabled else 1
        self.max_in_flight = max_in_flight
        self.executor = executor
        self.stats = BatchStats()
        self._pending: deque[_Pending] = deque()
        self._busy: set[Hashable] = set()  # keys in running batches
        self._in_flight = 0
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, key: Hashable, item: Any) -> Any:
        """`item`'s result, once a batch that holds it has run.

        Raises:
            whatever `fn` put in this item's slot or raised; RuntimeError after `aclose`.
        """
        loop = asyncio.get_running_loop()
        if self._closing:
            raise RuntimeError("the batcher is closed")
        if self._loop is None:
            self._loop = loop
            self._wake = asyncio.Event()
            self._worker = loop.create_task(self._run())
        elif self._loop is not loop:
            raise RuntimeError("a MicroBatcher serves one event loop; this is another")
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Pending(key, item, future, loop.time()))
        self._notify()
        return await future

    async def aclose(self) -> None:
        """Refuse new items, finish every submitted one, then stop the worker."""
        self._closing = True
        if self._worker is not None:
            self._notify()
            await self._worker

    # --- the worker ------------------------------------------------------------------------

    def _notify(self) -> None:
        assert self._wake is not None
        self._wake.set()

    async def _sleep(self, seconds: float | None) -> None:
        """Until `_notify`, or `seconds` have passed."""
        assert self._wake is not None and self._loop is not None
        self._wake.clear()
        timer = None if seconds is None else self._loop.call_later(seconds, self._wake.set)
        await self._wake.wait()
        if timer is not None:
            timer.cancel()

    def _next_batch(self) -> list[_Pending]:
        """The items the next batch would take: arrival order, one per key, no busy key."""
        batch: list[_Pending] = []
        keys: set[Hashable] = set()
        for p in self._pending:
            if p.future.done():  # its caller went away (cancelled); drop it when taken
                continue
            if p.key in keys or p.key in self._busy:
                keys.add(p.key)  # a later item of this key must not overtake this one
                continue
            keys.add(p.key)
            batch.append(p)
            if len(batch) == self.max_batch:
                break
        return batch

    async def _run(self) -> None:
        assert self._loop is not None
        while True:
            # Forget callers that gave up before their item was taken.
            while self._pending and self._pending[0].future.done():
                self._pending.popleft()
            if self._closing and not self._pending and self._in_flight == 0:
                return
            batch = self._next_batch() if self._in_flight < self.max_in_flight else []
            if not batch:
                await self._sleep(None)
                continue
            wait = batch[0].arrived + self.window - self._loop.time()
            if len(batch) < self.max_batch and wait > 0 and not self._closing:
                await self._sleep(wait)
                continue
            self._start(batch)

    def _start(self, batch: list[_Pending]) -> None:
        assert self._loop is not None
        taken = {id(p) for p in batch}
        self._pending = deque(p for p in self._pending if id(p) not in taken)
        self._busy.update(p.key for p in batch)
        self._in_flight += 1
        self.stats.batches += 1
        self.stats.items += len(batch)
        self.stats.sizes.append(len(batch))
        try:
            done = self._loop.run_in_executor(self.executor, self.fn, [p.item for p in batch])
        except Exception as e:  # e.g. the executor was shut down: fail this batch, not the worker
            self._finish(batch, None, e)
            return
        done.add_done_callback(lambda f: self._finish_future(batch, f))

    def _finish_future(self, batch: list[_Pending], done: asyncio.Future[Sequence[Any]]) -> None:
        if done.cancelled():
            self._finish(batch, None, asyncio.CancelledError())
        elif done.exception() is not None:
            self._finish(batch, None, done.exception())
        else:
            self._finish(batch, done.result(), None)

    def _finish(
        self,
        batch: list[_Pending],
        results: Sequence[Any] | None,
        error: BaseException | None,
    ) -> None:
        """Route each result (or exception) to its caller; free the batch's keys."""
        self._busy.difference_update(p.key for p in batch)
        self._in_flight -= 1
        self._notify()
        if results is not None and len(results) != len(batch):
            error = RuntimeError(
                f"batch function returned {len(results)} results for {len(batch)} items"
            )
        for i, p in enumerate(batch):
            if p.future.done():  # cancelled while running; its result is dropped
                continue
            if isinstance(error, asyncio.CancelledError):
                p.future.cancel()
            elif error is not None:
                p.future.set_exception(error)
            elif isinstance(results[i], Exception):  # this slot failed, not the batch
                p.future.set_exception(results[i])
            else:
                p.future.set_result(results[i])
