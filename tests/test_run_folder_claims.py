"""Run folders under concurrent, interrupted and failing writers (issue 17's findings).

Each test runs real `rnnkit train` processes on a tiny language model: two trainings started on
one `--out`, a training killed with `kill -9` before its first checkpoint, and `--out` on
folders that cannot hold a run (a file, a path under a file, a read-only and a full file system).
Every refusal must be rnnkit's own one line on stderr, never a traceback, and what was in the
folder before must still be there afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from safetensors.torch import load_file

import rnnkit
from rnnkit.layout import Files

VERSE = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet "
    "is the sun.\n\nJULIET:\nO Romeo, Romeo, wherefore art thou Romeo?\n\n"
)


def corpus(path: Path, copies: int = 4) -> Path:
    path.write_text(VERSE * copies, encoding="utf-8")
    return path


def command(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rnnkit",
        "train",
        "language-model",
        "--data",
        str(data),
        "--tokenizer",
        "char",
        "--bptt",
        "8",
        "--hidden-size",
        "8",
        "--set",
        "model.embedding_dim=8",
        "--precision",
        "fp32",
        "--quiet",
        # epochs, not the default 10-minute budget: a schedule on the clock is never repeated
        "--set",
        "train.max_minutes=null",
        "--out",
        str(out),
        *extra,
    ]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=240)


def one_line_error(done: subprocess.CompletedProcess, *expected: str) -> str:
    """The refusal's text, after checking it is rnnkit's own (exit 2, no traceback)."""
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert any(text in done.stderr for text in expected), done.stderr[-3000:]
    return done.stderr


def weights(folder: Path) -> dict:
    return load_file(folder / Files.WEIGHTS)


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)


# --- two trainings on one --out ---------------------------------------------------------------


def test_two_concurrent_trainings_on_one_out_one_is_refused_the_other_intact(tmp_path) -> None:
    data = corpus(tmp_path / "verse.txt")
    out = tmp_path / "run"
    # the first trains until told to stop (SIGTERM: a checkpoint, then exit 2)
    first = command(data, out, "--epochs", "100000", "--seed", "1")
    second = command(data, out, "--epochs", "3", "--seed", "2")
    holder = subprocess.Popen(first, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        lock = out / Files.LOCK
        while not (lock.is_file() and lock.read_text().strip() == str(holder.pid)):
            assert holder.poll() is None and time.monotonic() < deadline, "no lock taken"
            time.sleep(0.005)
        refused = run(second)
        assert holder.poll() is None, "the first run must still hold the folder"
        holder.send_signal(signal.SIGTERM)
        _stdout, stderr = holder.communicate(timeout=120)
    finally:
        holder.kill()
    text = one_line_error(refused, "in use by another rnnkit process")
    assert f"pid {holder.pid}" in text
    assert holder.returncode == 2 and "stopped by SIGTERM" in stderr.decode(), stderr.decode()
    # the folder is the first run's alone: its seed and records, weights that load, resumable
    run_ = rnnkit.open_run(out)
    assert run_.config.train.seed == 1 and run_.config.train.epochs == 100000
    assert len(run_.records()) >= 1
    assert rnnkit.load(out).generate("RO", max_tokens=4, seed=0)


def test_two_trainings_started_at_once_never_mix_their_files(tmp_path) -> None:
    data = corpus(tmp_path / "verse.txt")
    out = tmp_path / "run"
    cmds = [command(data, out, "--epochs", str(2 + i), "--seed", str(i)) for i in range(2)]
    procs = [
        subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for cmd in cmds
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], [err.decode()[-2000:] for _, err in outputs]
    winner = next(i for i, p in enumerate(procs) if p.returncode == 0)
    loser_err = outputs[1 - winner][1].decode()
    assert "Traceback" not in loser_err
    # the loser met the lock, or (if the winner was already done) the finished run
    assert "in use by another rnnkit process" in loser_err or "already holds a run" in loser_err
    run_ = rnnkit.open_run(out)
    assert run_.config.train.seed == winner and len(run_.records()) == 2 + winner


# --- killed before the first checkpoint -------------------------------------------------------


def test_a_run_killed_before_its_first_checkpoint_restarts_with_resume(tmp_path) -> None:
    # a long first epoch (batch 1, many windows), so the kill lands before its checkpoint
    data = corpus(tmp_path / "verse.txt", copies=400)
    out = tmp_path / "killed"
    args = ["--epochs", "1", "--batch-size", "1", "--seed", "3"]
    proc = subprocess.Popen(
        command(data, out, *args),
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / Files.CONFIG).is_file():
            assert proc.poll() is None and time.monotonic() < deadline, "config.json never came"
            time.sleep(0.002)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    checkpoints = out / "checkpoints"
    assert not (checkpoints.is_dir() and any(checkpoints.iterdir())), "killed too late"
    assert not (out / Files.WEIGHTS).exists()

    # retraining in place is refused, and the message says how to start over
    hint = one_line_error(run(command(data, out, *args)), "already holds a run")
    assert "stopped before its first checkpoint (pass --resume to start it over)" in hint

    # --resume starts it over, and it ends where an uninterrupted run ends
    resumed = run(command(data, out, *args, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "has no checkpoint yet" in resumed.stderr and "training starts over" in resumed.stderr
    whole = tmp_path / "whole"
    assert run(command(data, whole, *args)).returncode == 0
    assert same_weights(out, whole)


def test_the_checkpoint_cadence_is_printed_when_training_starts(tmp_path) -> None:
    data = corpus(tmp_path / "verse.txt")
    cmd = command(data, tmp_path / "r", "--epochs", "1", "--checkpoint-every", "5")
    done = run([x for x in cmd if x != "--quiet"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checkpoints every 5 steps and every 30 s" in done.stderr
    assert "a crash loses the work since the last one" in done.stderr


# --- --out where no run can be written --------------------------------------------------------


def test_out_naming_an_existing_file_is_refused_and_the_file_kept(tmp_path) -> None:
    data = corpus(tmp_path / "verse.txt")
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    text = one_line_error(run(command(data, target, "--epochs", "1")), "--out names a file")
    assert text.count("\n") == 1  # one line
    assert target.read_text() == "mine\n"


def test_out_under_a_file_is_refused(tmp_path) -> None:
    data = corpus(tmp_path / "verse.txt")
    (tmp_path / "notes.txt").write_text("mine\n")
    one_line_error(
        run(command(data, tmp_path / "notes.txt" / "run", "--epochs", "1")),
        f"{tmp_path / 'notes.txt'} is a file, not a folder",
    )
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


@contextlib.contextmanager
def small_file_system(tmp_path: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted with `options` (root only: the test is skipped elsewhere, saying why)."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs these as root)")
    point = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
    point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"this container cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_out_on_a_read_only_file_system_is_refused(tmp_path) -> None:
    data = corpus(tmp_path / "verse.txt")
    with small_file_system(tmp_path, "size=1m,ro") as ro:
        one_line_error(
            run(command(data, ro / "run", "--epochs", "1")),
            "cannot create the run folder",
        )


def test_out_on_a_full_disk_fails_in_one_line_and_resume_goes_on_after_space_is_freed(
    tmp_path,
) -> None:
    data = corpus(tmp_path / "verse.txt")
    with small_file_system(tmp_path, "size=4m") as fs:
        out = fs / "run"
        filler = fs / "filler"
        # leaves ~100 KB: room for config.json and the tokenizer, not for 220 KB of weights
        filler.write_bytes(b"\0" * (4 * 2**20 - 100_000))
        args = ["--epochs", "2", "--hidden-size", "64"]
        text = one_line_error(run(command(data, out, *args)), "No space left on device")
        errors = [line for line in text.splitlines() if line.startswith("rnnkit: error")]
        assert errors == [text.strip().splitlines()[-1]], text  # one line, the last
        assert f"cannot write {out}" in errors[0]  # names the file it could not write
        assert (out / Files.CONFIG).is_file()
        leftovers = [p.name for p in out.rglob("*") if ".tmp" in p.name]
        assert not leftovers, leftovers  # no half-written temp files left behind
        filler.unlink()
        resumed = run(command(data, out, *args, "--resume"))
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert len(rnnkit.open_run(out).records()) == 2
