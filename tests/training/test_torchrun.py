"""Real `torchrun` processes: data-parallel equivalence, two "nodes" on loopback, kill -9, restarts.

Every run here is tiny (a few thousand parameters, fixture data from tests/fixtures/old_runs),
fp32, one thread per process, gloo over 127.0.0.1. Equivalence runs switch dropout off, since
each rank draws its own masks; the crash tests keep it on, since they check that every rank's
random state comes back exactly.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import rnnkit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "old_runs"
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
RNNKIT = [sys.executable, "-m", "rnnkit", "-q"]

# per task: (task, data flags, per-process batch flag for one process and for two)
TASKS = {
    "classification": [
        "classification",
        "--data",
        str(FIXTURES / "classification" / "reviews.csv"),
        "--embeddings",
        "none",
        "--hidden-size",
        "8",
        "--set",
        "model.embedding_dim=8",
    ],
    "forecasting": [
        "forecasting",
        "--data",
        str(FIXTURES / "forecasting" / "monthly.csv"),
        "--hidden-size",
        "8",
        "--ensemble",
        "1",
        "--horizon",
        "3",
        "--input-length",
        "12",
        "--no-backtest",
        # 49 training origins tiled to 784 = 49 steps of 16: no step is short
        "--set",
        "window.min_epoch_windows=784",
    ],
    "language-model": [
        "language-model",
        "--data",
        str(FIXTURES / "language_model" / "verse.txt"),
        "--tokenizer",
        "char",
        "--bptt",
        "16",
        "--hidden-size",
        "8",
        "--set",
        "model.embedding_dim=8",
    ],
}
NO_DROPOUT = {
    "classification": [
        "--dropout",
        "0",
        "--set",
        "model.embedding_dropout=0",
        "--set",
        "model.rnn_dropout=0",
    ],
    "forecasting": ["--dropout", "0"],
    "language-model": ["--dropout", "0", "--set", "model.rnn_dropout=0"],
}
BATCH = {"classification": 16, "forecasting": 16, "language-model": 8}
# the LM's default 10-minute budget would drive the schedule by the clock: no two runs alike
COMMON = ["--precision", "fp32", "--quiet", "--set", "train.patience=null"]
COMMON += ["--set", "train.max_minutes=null"]


def env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        # torchrun's own warnings (OMP_NUM_THREADS) would only add noise to failures
        "TORCHELASTIC_ERROR_FILE": "",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(nproc: int, *, max_restarts: int = 0, port: int | None = None) -> list[str]:
    return [
        TORCHRUN,
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(nproc),
        "--max-restarts",
        str(max_restarts),
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port or free_port()}",
        "-m",
        "rnnkit",
        "-q",
    ]


def run(cmd: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def weights(folder: Path, name: str = "checkpoints/last.safetensors") -> dict[str, torch.Tensor]:
    tensors = load_file(folder / name)
    return {k: v for k, v in tensors.items() if not k.startswith(("rank.", "optim."))}


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("task", list(TASKS))
def test_two_processes_at_half_the_batch_train_the_weights_of_one(tmp_path, task) -> None:
    flags = ["train", *TASKS[task], *NO_DROPOUT[task], *COMMON, "--epochs", "1"]
    run([*RNNKIT, *flags, "--batch-size", str(BATCH[task]), "--out", str(tmp_path / "one")])
    two = run(
        [
            *torchrun(2),
            *flags,
            "--batch-size",
            str(BATCH[task] // 2),
            "--out",
            str(tmp_path / "two"),
        ]
    )
    difference = max_difference(weights(tmp_path / "one"), weights(tmp_path / "two"))
    print(f"\n{task}: largest |1 process - 2 processes| weight difference {difference:.1e}")
    assert difference < 1e-5
    # rank 0 alone wrote and printed; the folder is a whole run
    assert two.stdout.count('"run": ') == 1, two.stdout
    run_ = rnnkit.open_run(tmp_path / "two")
    assert run_.records()[-1]["epoch"] == 1
    assert not list((tmp_path / "two").glob("**/*.tmp"))


@pytest.mark.slow
def test_two_nodes_on_loopback_complete_and_the_run_loads(tmp_path) -> None:
    """Two torchrun commands, `--nnodes 2`, one process each, meeting at one rendezvous."""
    port = free_port()
    out = tmp_path / "run"
    flags = ["train", *TASKS["classification"], *COMMON, "--epochs", "2", "--batch-size", "8"]
    nodes = []
    for node_rank in (0, 1):
        cmd = [
            TORCHRUN,
            "--nnodes",
            "2",
            "--node-rank",
            str(node_rank),
            "--nproc-per-node",
            "1",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            f"127.0.0.1:{port}",
            "--rdzv-id",
            "rnnkit-two-nodes",
            "-m",
            "rnnkit",
            "-q",
            *flags,
            "--out",
            str(out),
        ]
        nodes.append(
            subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
    try:
        outputs = [node.communicate(timeout=240) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    for node, (_stdout, stderr) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, stderr.decode()[-3000:]
    predictor = rnnkit.load(out)
    assert predictor.predict(["loved it", "awful acting"])
    assert len(rnnkit.open_run(out).records()) == 2


# --- crashes ---------------------------------------------------------------------------------

CRASH_FLAGS = [
    "train",
    *TASKS["language-model"],
    *COMMON,
    "--epochs",
    "4",
]
EVERY_STEP = ["--checkpoint-every", "1"]


def checkpoint_step(folder: Path) -> int:
    """The step of the run's latest checkpoint (-1 while there is none or it is being replaced)."""
    path = folder / "checkpoints" / "last.safetensors"
    try:
        with safe_open(str(path), framework="pt") as f:
            return int(json.loads(f.metadata()["info"])["step"])
    except Exception:  # not there yet, or renamed away for an instant
        return -1


def kill_at_step(cmd: list[str], folder: Path, step: int, *, which: str = "all") -> None:
    """Start `cmd`, and kill -9 it (its whole process group) once a checkpoint passes `step`."""
    proc = subprocess.Popen(
        cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 120
    try:
        while checkpoint_step(folder) < step:
            assert proc.poll() is None, f"finished before step {step}: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint came"
            time.sleep(0.002)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert checkpoint_step(folder) < 10_000  # the folder holds a readable checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("nproc", [1, 2])
def test_kill_9_at_random_steps_then_resume_ends_bitwise_equal(tmp_path, nproc) -> None:
    def launch() -> list[str]:
        return torchrun(2) if nproc == 2 else RNNKIT

    batch = ["--batch-size", str(BATCH["language-model"] // nproc)]
    batch += EVERY_STEP
    run([*launch(), *CRASH_FLAGS, *batch, "--out", str(tmp_path / "whole")])
    whole = weights(tmp_path / "whole")
    steps = json.loads((tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    rng = random.Random(nproc)
    for trial, kill_step in enumerate(sorted(rng.sample(range(3, steps - 3), 2))):
        folder = tmp_path / f"killed-{trial}"
        cmd = [*launch(), *CRASH_FLAGS, *batch, "--out", str(folder)]
        kill_at_step(cmd, folder, kill_step)
        stopped_at = checkpoint_step(folder)
        assert 0 <= stopped_at < steps, (kill_step, stopped_at)
        run([*cmd, "--resume"])
        assert max_difference(weights(folder), whole) == 0.0, f"killed after step {stopped_at}"
        assert (
            max_difference(
                weights(folder, "model.safetensors"),
                weights(tmp_path / "whole", "model.safetensors"),
            )
            == 0.0
        )


def worker_pids(launcher: int) -> dict[int, int]:
    """rank -> pid of the worker processes a torchrun agent started."""
    pids = {}
    for task in Path(f"/proc/{launcher}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            for item in environ:
                if item.startswith(b"RANK="):
                    pids[int(item[5:])] = int(child)
    return pids


@pytest.mark.slow
def test_max_restarts_recovers_from_a_killed_worker_without_a_human(tmp_path) -> None:
    batch = ["--batch-size", str(BATCH["language-model"] // 2), *EVERY_STEP]
    run([*torchrun(2), *CRASH_FLAGS, *batch, "--out", str(tmp_path / "whole")])
    folder = tmp_path / "restarted"
    cmd = [*torchrun(2, max_restarts=2), *CRASH_FLAGS, *batch, "--out", str(folder)]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while checkpoint_step(folder) < 20:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        pids = worker_pids(proc.pid)
        assert set(pids) == {0, 1}, pids
        os.kill(pids[1], signal.SIGKILL)  # one worker dies; torchrun restarts both
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr.decode()[-3000:]
    assert "resuming from" in stderr.decode() or '"run": ' in stdout.decode()
    assert max_difference(weights(folder), weights(tmp_path / "whole")) == 0.0


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_and_resume_finishes_the_run(tmp_path) -> None:
    folder = tmp_path / "run"
    cmd = [*RNNKIT, *CRASH_FLAGS, "--batch-size", "8", "--epochs", "40", "--out", str(folder)]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while checkpoint_step(folder) < 0:  # the first epoch's checkpoint
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        _stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    text = stderr.decode()
    assert proc.returncode == 2 and "stopped by SIGTERM" in text, text[-2000:]
    assert "Traceback" not in text
    run([*cmd, "--resume"])
    assert len(rnnkit.open_run(folder).records()) == 40
