"""Shared bits of the benchmark scripts: machine description and a markdown table printer."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence

import torch


def machine() -> str:
    """One line: CPU model, cores, torch version and CPU capability."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} vCPUs, torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of `repeats` timed calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """fp32 GFLOP/s of a large square matrix product: the machine's practical ceiling."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm up
    seconds = best_of(lambda: a @ b, repeats)
    return 2 * n**3 / seconds / 1e9
