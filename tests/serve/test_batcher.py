"""MicroBatcher: concurrent submits share calls, one key per batch in order, errors per slot."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rnnkit.serve.batcher import MicroBatcher


class Recorder:
    """A batch function that records each call's items and returns item * 10."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[list[tuple[str, int]]] = []
        self.threads: set[int] = set()
        self.delay = delay

    def __call__(self, items: list[tuple[str, int]]) -> list[object]:
        self.threads.add(threading.get_ident())
        self.calls.append(list(items))
        time.sleep(self.delay)
        return [n * 10 for _, n in items]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_submits_share_a_batch() -> None:
    fn = Recorder()

    async def main():
        batcher = MicroBatcher(fn, window_ms=50, max_batch=64)
        out = await asyncio.gather(*(batcher.submit(f"k{i}", (f"k{i}", i)) for i in range(20)))
        await batcher.aclose()
        return batcher, out

    batcher, out = run(main())
    assert out == [i * 10 for i in range(20)]
    assert [len(c) for c in fn.calls] == [20]  # all arrived within the window
    assert batcher.stats.batches == 1 and batcher.stats.items == 20
    assert threading.get_ident() not in fn.threads  # fn ran off the event loop's thread


def test_max_batch_splits_and_does_not_wait() -> None:
    fn = Recorder()

    async def main():
        batcher = MicroBatcher(fn, window_ms=10_000, max_batch=4)  # a full batch leaves at once
        start = time.perf_counter()
        out = await asyncio.gather(*(batcher.submit(i, ("k", i)) for i in range(8)))
        return out, time.perf_counter() - start

    out, seconds = run(main())
    assert out == [i * 10 for i in range(8)]
    assert [[n for _, n in c] for c in fn.calls] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert seconds < 5


def test_window_bounds_the_wait_of_a_lone_request() -> None:
    fn = Recorder()

    async def main():
        batcher = MicroBatcher(fn, window_ms=30, max_batch=64)
        start = time.perf_counter()
        result = await batcher.submit("a", ("a", 1))
        return result, time.perf_counter() - start

    result, seconds = run(main())
    assert result == 10 and 0.025 <= seconds < 2


def test_same_key_never_shares_a_batch_and_keeps_order() -> None:
    fn = Recorder(delay=0.005)

    async def main():
        batcher = MicroBatcher(fn, window_ms=20, max_batch=64)
        # three streams, each with five steps submitted concurrently, interleaved
        jobs = [batcher.submit(key, (key, n)) for n in range(5) for key in ("a", "b", "c")]
        return await asyncio.gather(*jobs)

    out = run(main())
    assert out == [n * 10 for n in range(5) for _ in range(3)]
    for call in fn.calls:
        keys = [k for k, _ in call]
        assert len(keys) == len(set(keys)), call
    for key in "abc":
        steps = [n for call in fn.calls for k, n in call if k == key]
        assert steps == [0, 1, 2, 3, 4]
    assert max(len(c) for c in fn.calls) == 3  # the three streams still batch together


def test_a_busy_key_waits_for_the_running_batch() -> None:
    running = threading.Event()
    release = threading.Event()
    seen: list[list[tuple[str, int]]] = []

    def fn(items):
        seen.append(list(items))
        if items[0] == ("a", 0):
            running.set()
            release.wait(5)
        return [n for _, n in items]

    async def main():
        batcher = MicroBatcher(fn, window_ms=1, max_batch=8, max_in_flight=2)
        first = asyncio.ensure_future(batcher.submit("a", ("a", 0)))
        await asyncio.get_running_loop().run_in_executor(None, running.wait, 5)
        # "a" is in a running batch: its next step must wait; "b" may run in the meantime
        second = asyncio.ensure_future(batcher.submit("a", ("a", 1)))
        assert await batcher.submit("b", ("b", 7)) == 7
        assert not second.done()
        release.set()
        return await first, await second

    assert run(main()) == (0, 1)
    assert seen == [[("a", 0)], [("b", 7)], [("a", 1)]]


def test_off_mode_is_one_call_per_request() -> None:
    for kwargs in (
        {"window_ms": 0, "max_batch": 64},
        {"window_ms": 50, "max_batch": 64, "enabled": False},
    ):
        fn = Recorder()

        async def main(kwargs=kwargs, fn=fn):
            batcher = MicroBatcher(fn, **kwargs)
            assert batcher.enabled is False
            return await asyncio.gather(*(batcher.submit(i, ("k", i)) for i in range(10)))

        assert run(main()) == [i * 10 for i in range(10)]
        assert [len(c) for c in fn.calls] == [1] * 10
        assert [c[0][1] for c in fn.calls] == list(range(10))  # arrival order


def test_an_exception_in_one_slot_reaches_only_its_caller() -> None:
    def fn(items):
        return [ValueError(f"bad {n}") if n == 2 else n for n in items]

    async def main():
        batcher = MicroBatcher(fn, window_ms=20, max_batch=8)
        return await asyncio.gather(
            *(batcher.submit(n, n) for n in range(4)), return_exceptions=True
        )

    out = run(main())
    assert out[:2] == [0, 1] and out[3] == 3
    assert isinstance(out[2], ValueError) and str(out[2]) == "bad 2"


def test_an_exception_from_fn_reaches_every_caller_and_the_batcher_goes_on() -> None:
    def fn(items):
        if 0 in items:
            raise RuntimeError("model failed")
        return items

    async def main():
        batcher = MicroBatcher(fn, window_ms=20, max_batch=8)
        failed = await asyncio.gather(
            *(batcher.submit(n, n) for n in range(3)), return_exceptions=True
        )
        return failed, await batcher.submit("x", 5)

    failed, later = run(main())
    assert all(isinstance(e, RuntimeError) and str(e) == "model failed" for e in failed)
    assert later == 5


def test_wrong_number_of_results_is_an_error_for_the_batch() -> None:
    async def main():
        batcher = MicroBatcher(lambda items: items[:-1], window_ms=20, max_batch=8)
        return await asyncio.gather(
            *(batcher.submit(n, n) for n in range(2)), return_exceptions=True
        )

    for error in run(main()):
        assert isinstance(error, RuntimeError)
        assert str(error) == "batch function returned 1 results for 2 items"


def test_a_cancelled_caller_does_not_block_the_others() -> None:
    fn = Recorder()

    async def main():
        batcher = MicroBatcher(fn, window_ms=30, max_batch=8)
        gone = asyncio.ensure_future(batcher.submit("a", ("a", 1)))
        stay = asyncio.ensure_future(batcher.submit("b", ("b", 2)))
        await asyncio.sleep(0)
        gone.cancel()
        return await stay

    assert run(main()) == 20
    assert fn.calls == [[("b", 2)]]


def test_custom_executor_and_aclose() -> None:
    fn = Recorder()
    with ThreadPoolExecutor(1, thread_name_prefix="model") as pool:

        async def main():
            batcher = MicroBatcher(fn, window_ms=5, max_batch=8, executor=pool)
            jobs = [asyncio.ensure_future(batcher.submit(i, ("k", i))) for i in range(5)]
            await asyncio.sleep(0)
            await batcher.aclose()  # finishes what was submitted
            assert all(j.done() for j in jobs)
            with pytest.raises(RuntimeError, match="the batcher is closed"):
                await batcher.submit(9, ("k", 9))
            return [j.result() for j in jobs]

        assert run(main()) == [0, 10, 20, 30, 40]
    assert sum(len(c) for c in fn.calls) == 5


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="window_ms must be >= 0, got -1"):
        MicroBatcher(len, window_ms=-1, max_batch=1)
    with pytest.raises(ValueError, match="max_batch must be >= 1, got 0"):
        MicroBatcher(len, window_ms=1, max_batch=0)
    with pytest.raises(ValueError, match="max_in_flight must be >= 1, got 0"):
        MicroBatcher(len, window_ms=1, max_batch=1, max_in_flight=0)
