"""Tiny trained runs of every task, and real `rnnkit serve` processes on free loopback ports.

The servers are subprocesses (`python -m rnnkit serve ...`), so what is tested is what a user
runs: the CLI, uvicorn, the middleware and the state file, killed with SIGKILL where a test
wants it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

GOOD = ["a gorgeous, witty film", "loved every minute", "a triumph", "funny and warm"]
BAD = ["the plot is a mess", "dull and far too long", "a waste of time", "the jokes fall flat"]
VERSE = "To be, or not to be, that is the question.\n" * 40
TINY = {"hidden_size": 8, "epochs": 2, "device": "cpu"}
#: how long a server may take to import torch, load its runs and answer /readyz
START_SECONDS = 60.0


def monthly(n: int = 96, scale: float = 1.0) -> pd.Series:
    months = pd.date_range("2000-01", periods=n, freq="MS")
    return pd.Series(scale * (100 + 10 * np.sin(np.arange(n) * np.pi / 6)), index=months)


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory) -> dict[str, Path]:
    """One tiny run per task (a unidirectional classifier, so it streams) and a bidirectional
    classifier, which cannot; a few seconds in all. Keys are the served names."""
    import rnnkit

    root = tmp_path_factory.mktemp("serve-runs")
    texts = pd.DataFrame({"text": (GOOD * 5 + BAD * 5), "label": ["fresh"] * 20 + ["rotten"] * 20})
    common = {"config": {"data.min_freq": 1}, "embeddings": None, **TINY}
    runs = {
        "rt": rnnkit.train("classification", texts, root / "rt", bidirectional=False, **common),
        "rt-bi": rnnkit.train("classification", texts, root / "rt-bi", epochs=1,
                              **{k: v for k, v in common.items() if k != "epochs"}),
        "air": rnnkit.train("forecasting", {"north": monthly(), "south": monthly(scale=2.0)},
                            root / "air", {"window.min_epoch_windows": 64}, horizon=6,
                            input_length=24, ensemble=1, **TINY),
        "bard": rnnkit.train("language-model", VERSE, root / "bard", {"data.bptt": 16},
                             batch_size=4, **TINY),
    }  # fmt: skip
    return {name: run.path for name, run in runs.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`rnnkit serve` in a subprocess on 127.0.0.1 and a free port.

    Args:
        runs: run folders (served under their folder names).
        state: the stream state file.
        args: more CLI flags.
        token: sent as the bearer token by `client`.
    """

    def __init__(
        self,
        runs: list[Path],
        state: Path,
        args: tuple[str, ...] = (),
        token: str | None = None,
        log: Path | None = None,
    ) -> None:
        self.runs, self.state, self.args, self.token = runs, state, args, token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or state.with_suffix(".log")
        self.process: subprocess.Popen | None = None
        self.client: Any = None  # an httpx.Client once the server answers

    def start(self) -> Server:
        """Start the process; `wait()` for it to answer."""
        command = [sys.executable, "-m", "rnnkit", "serve", *map(str, self.runs)]
        command += ["--port", str(self.port), "--state", str(self.state), *self.args]
        # One thread: steady timings on a shared 2-core machine, and the same kernels in every
        # server, whose answers the durability test compares bit for bit.
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def wait(self) -> Server:
        """Poll /readyz (bounded); fail with the server's log if it never answers."""
        import httpx

        assert self.process is not None
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"rnnkit serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
                    self.client = httpx.Client(base_url=self.url, headers=headers, timeout=30.0)
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"rnnkit serve did not answer /readyz in {START_SECONDS} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or an OOM kill."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it lingers."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> Server:
        self.kill()
        return self.start().wait()


@pytest.fixture(scope="session")
def launch(tmp_path_factory):
    """`launch(runs, *flags, token=None, state=None, wait=True) -> Server`; every server
    launched is stopped at the end of the session."""
    pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'rnnkit[serve]'")
    pytest.importorskip("uvicorn", reason="needs the serve extra: pip install 'rnnkit[serve]'")
    pytest.importorskip("httpx", reason="the serve tests' HTTP client")
    launched: list[Server] = []

    def launch(
        runs: list[Path],
        *args: str,
        token: str | None = None,
        state: Path | None = None,
        wait: bool = True,
    ) -> Server:
        state = state or tmp_path_factory.mktemp("serve") / "state.sqlite"
        server = Server(runs, state, args, token)
        launched.append(server)
        server.start()
        return server.wait() if wait else server

    yield launch
    for server in launched:
        server.stop()


@pytest.fixture(scope="session")
def server(serve_runs, launch):
    """One server for every run, default settings but a 100 kB body limit."""
    return launch(list(serve_runs.values()), "--max-body-bytes", "100000")
