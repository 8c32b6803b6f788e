"""Atomic writes: all or nothing, with the permissions a plain open() would give."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from rnnkit.io import atomic_open, atomic_write_json, atomic_write_text


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path) -> None:
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as f:
        f.write("half of the new")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.skipif(
    sys.platform == "win32",
    reason="Windows files have no POSIX mode bits; atomic_open skips fchmod there",
)
def test_written_files_follow_the_umask_not_mkstemps_private_mode(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "config.json", {"a": 1})
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "config.json").stat().st_mode)
    assert mode == 0o644
    plain = tmp_path / "plain.txt"
    old = os.umask(0o022)
    try:
        plain.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(plain.stat().st_mode) == mode
