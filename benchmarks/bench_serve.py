"""Serving speed: `rnnkit serve` under concurrent clients, micro-batching on and off, and what a
stream step costs inside.

    python benchmarks/bench_serve.py [--requests 2048] [--levels 1,8,64,256] [--runs DIR]

Two servers run at once as subprocesses on 127.0.0.1 (free ports, one OpenMP thread each, as
the serve tests run them), serving the same two runs of the default model sizes, trained for
one epoch on synthetic data (only their shapes matter here): a classifier (embedding 50,
bidirectional LSTM 2 x 128, max pooling) and a forecaster (LSTM 64, head 128, horizon 12,
quantiles, calendar features). One server has the defaults (a 2 ms batch window, batches of up
to 32), the other `--no-batching`. At each concurrency, on each server in turn (the order
alternating by level):

- classify: `--requests` requests of one short text each, from `concurrency` clients;
- stream steps: `concurrency` forecaster streams (warmed up on a 48-month history), each client
  observing its own stream, one value per request, `--requests` steps in all.

The client is one asyncio process with a keep-alive connection per concurrent client and a bare
HTTP/1.1 exchange (an HTTP library would take more of the two cores the server needs; its CPU
share is reported). Latency is per request, timed by the client. The mean batch size and the
state commit's time (one per batch: from the step's end until its transaction is on disk) come
from the servers' `/metrics` before and after each timed loop, the server's CPU time per request
from /proc.

In-process, one thread: the lean `StreamingForecaster.update` against one step of the same
`Forecaster` module (T = 1, carried state, head included) and of a bare `nn.LSTM` of its size;
the server's step function around the lean step (state restore, step, capture, answer), the
state's encoding, and one stream's commit (state, empty answer) to a `StateStore` with
`synchronous=FULL` (the server's) and `OFF` (the server has no switch for it, so the share of
the commit in a step's latency is read from `/metrics`).

The two targets, as ratios of one run: micro-batched stream steps/s at concurrency 64 over one
step per call (`--no-batching`, same concurrency), at least 5x; and the commit adding under 20%
to a step's latency (commit time / (latency - commit time)).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table

import rnnkit

LEVELS = (1, 8, 64, 256)
HISTORY = 48  # months a stream warms up on
TEXT = json.dumps({"texts": ["a gorgeous, witty film that never lets up"]}).encode()
START_SECONDS = 120.0


# --- the runs ---------------------------------------------------------------------------------


def monthly(n: int, scale: float) -> pd.Series:
    months = pd.date_range("2000-01", periods=n, freq="MS")
    t = np.arange(n)
    return pd.Series(scale * (100 + 10 * np.sin(t * np.pi / 6) + 0.2 * t), index=months)


def prepare_runs(root: Path) -> dict[str, Path]:
    """A classifier and a forecaster of the default sizes, trained once into `root`."""
    runs = {"classifier": root / "classifier", "forecaster": root / "forecaster"}
    if not (runs["classifier"] / "config.json").exists():
        good = ["a gorgeous, witty film", "loved every minute", "a triumph", "funny and warm"]
        bad = ["the plot is a mess", "dull and far too long", "a waste of time", "flat jokes"]
        texts = pd.DataFrame(
            {"text": (good + bad) * 25, "label": (["fresh"] * 4 + ["rotten"] * 4) * 25}
        )
        rnnkit.train(
            "classification",
            texts,
            runs["classifier"],
            {"data.min_freq": 1},
            embeddings=None,
            epochs=1,
            device="cpu",
        )
    if not (runs["forecaster"] / "config.json").exists():
        series = {"north": monthly(240, 1.0), "south": monthly(240, 2.0)}
        rnnkit.train("forecasting", series, runs["forecaster"], epochs=1, ensemble=1, device="cpu")
    return runs


def history_rows() -> list[dict[str, Any]]:
    frame = monthly(240, 1.0)[-HISTORY:]
    return [{"time": t.isoformat(), "value": float(v)} for t, v in frame.items()]


# --- in-process step costs ------------------------------------------------------------------


def per_call(fn: Callable[[], object], calls: int, rounds: int = 5) -> float:
    """Microseconds per call of `fn`: the best of `rounds` rounds of `calls` calls."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / calls


def step_costs(run: Path, calls: int, store_dir: Path) -> dict[str, float]:
    """Microseconds per step of each way to advance a forecaster by one value (one thread)."""
    from rnnkit.run import Run
    from rnnkit.serve.store import encode_state

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        served = Run(run)
        predictor = served.predictor()
        model = predictor.model.eval()
        c = model.config
        frame = monthly(240, 1.0)[-HISTORY:].to_frame("value")
        stream = predictor.stream("north", frame)
        values = iter(np.tile(frame["value"].to_numpy(), 10_000))
        out: dict[str, float] = {}
        out["lean"] = per_call(lambda: stream.update(float(next(values))), calls)

        x, state = torch.zeros(1, 1, c.num_features), None
        future = torch.zeros(1, c.horizon, c.num_future)
        base = torch.zeros(1, c.horizon, c.num_targets)
        with torch.inference_mode():
            _, state = model(x, future, base)

            def module_step() -> None:
                nonlocal state
                _, state = model(x, future, base, state)

            out["module"] = per_call(module_step, calls)
            lstm = nn.LSTM(c.num_features, c.hidden_size, c.num_layers, batch_first=True).eval()
            _, lstm_state = lstm(x)

            def lstm_step() -> None:
                nonlocal lstm_state
                _, lstm_state = lstm(x, lstm_state)

            out["lstm"] = per_call(lstm_step, calls)

        hooks = served.task.serving()
        stream_state, _ = hooks.new_stream(
            predictor, {"series": "north", "history": history_rows()}
        )
        observation = hooks.observe_model.model_validate({"values": [100.0]})

        def served_step() -> None:
            nonlocal stream_state
            [(stream_state, _)] = hooks.step_batch(predictor, [stream_state], [observation])

        out["served step"] = per_call(served_step, calls)
        out["encode"] = per_call(lambda: encode_state(stream_state), calls)

        for sync in ("FULL", "OFF"):
            out[f"commit {sync}"] = commit_cost(store_dir / f"{sync}.sqlite", sync, stream_state)
        return out
    finally:
        torch.set_num_threads(threads)


def commit_cost(path: Path, synchronous: str, state: Any, calls: int = 200) -> float:
    """Microseconds per commit of one stream's step (its state, an empty answer) to a
    `StateStore`, `synchronous` set after opening (the server always runs FULL)."""
    from rnnkit.serve.store import StateStore

    with StateStore(path, max_streams=10, ttl_seconds=3600) as store:
        store._conn.execute(f"PRAGMA synchronous = {synchronous}")
        stream = store.create("forecaster", state, None).id
        seq = iter(range(1, 10**9))
        return per_call(lambda: store.commit_steps([(stream, next(seq), state, {})]), calls)


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`rnnkit serve` in a subprocess on 127.0.0.1."""

    def __init__(self, runs: list[Path], state: Path, *flags: str) -> None:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "rnnkit",
            "serve",
            *map(str, runs),
            "--port",
            str(self.port),
            "--state",
            str(state),
            "--max-streams",
            "100000",
            *flags,
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.log = state.with_suffix(".log")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def wait(self) -> None:
        import httpx

        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rnnkit serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"rnnkit serve did not start:\n{self.log.read_text()}")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The `/metrics` samples: (name, sorted labels) -> value."""
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def cpu_seconds(self) -> float:
        """CPU time the server process has used, all its threads (Linux's /proc)."""
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


# --- the client -------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1, as bare as the exchange allows."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
        if not chunked:
            return status, await self.reader.readexactly(length)
        data = bytearray()
        while size := int((await self.reader.readline()).strip(), 16):
            data += await self.reader.readexactly(size)
            await self.reader.readline()
        await self.reader.readline()
        return status, bytes(data)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def drive(
    connections: list[Connection], total: int, request: Callable[[int], tuple[str, bytes]]
) -> tuple[float, list[float]]:
    """`total` requests, client w sending its share (`request(w)` gives each) on its own
    connection, all clients at once: (seconds, latencies in seconds)."""
    latencies: list[float] = []

    async def client(w: int) -> None:
        for _ in range(w, total, len(connections)):
            path, body = request(w)
            start = time.perf_counter()
            status, answer = await connections[w].post(path, body)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                raise RuntimeError(f"POST {path}: {status} {answer[:300]!r}")

    start = time.perf_counter()
    await asyncio.gather(*(client(w) for w in range(len(connections))))
    return time.perf_counter() - start, latencies


async def measure(server: Server, mode: str, concurrency: int, total: int) -> list[dict]:
    """Classify, then stream steps, at one concurrency on one server: a result row each."""
    connections = [Connection(server.port) for _ in range(concurrency)]
    try:
        classify = ("/v1/models/classifier/classify", TEXT)
        await drive(connections, concurrency, lambda w: classify)  # connect, warm up
        rows = [await timed(server, connections, total, lambda w: classify, "classifier")]
        rows[0].update(what="classify", mode=mode)

        # One stream per client, warmed up on a history; then one value per request.
        create = json.dumps({"series": "north", "history": history_rows()}).encode()
        streams = []
        for w in range(concurrency):
            status, answer = await connections[w].post("/v1/models/forecaster/streams", create)
            assert status == 201, answer
            streams.append(json.loads(answer)["stream"])
        seqs = [0] * concurrency

        def step(w: int) -> tuple[str, bytes]:
            seqs[w] += 1
            body = {"seq": seqs[w], "values": [100.0 + seqs[w] % 12]}
            return f"/v1/streams/{streams[w]}/observe", json.dumps(body).encode()

        await drive(connections, concurrency, step)  # one warm-up step per stream
        rows.append(await timed(server, connections, total, step, "forecaster", "step"))
        rows[1].update(what="stream step", mode=mode)
    finally:
        for connection in connections:
            connection.close()
    return rows


async def timed(
    server: Server,
    connections: list[Connection],
    total: int,
    request: Callable[[int], tuple[str, bytes]],
    model: str,
    kind: str = "request",
) -> dict:
    """One timed `drive`, with what the server's metrics and both processes' CPU time say."""
    before, server_cpu, client_cpu = server.metrics(), server.cpu_seconds(), time.process_time()
    seconds, latencies = await drive(connections, total, request)
    client_cpu = time.process_time() - client_cpu
    server_cpu = server.cpu_seconds() - server_cpu
    after = server.metrics()
    ms = 1000 * np.asarray(latencies)
    batches = delta(before, after, "rnnkit_batch_size_count", model=model, kind=kind)
    row = {
        "concurrency": len(connections),
        "per_s": len(latencies) / seconds,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "batch": len(latencies) / batches if batches else float("nan"),
        "server_cpu_ms": 1000 * server_cpu / len(latencies),
        "client_cpu": client_cpu / seconds,
    }
    if kind == "step":
        commits = delta(before, after, "rnnkit_state_commit_seconds_count", op="step")
        commit_s = delta(before, after, "rnnkit_state_commit_seconds_sum", op="step")
        row["commit_ms"] = 1000 * commit_s / commits if commits else float("nan")
    return row


# --- the report -------------------------------------------------------------------------------


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next(
                (line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []
            )
    except OSError:
        return "unknown"
    wanted = [f for f in flags if f.startswith("amx") or f in ("avx512f", "avx512_bf16", "avx2")]
    return " ".join(sorted(wanted)) or "none of amx/avx512"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2048, help="requests per level and mode")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="concurrencies")
    parser.add_argument("--runs", help="folder for the two runs (kept, reused); default: temporary")
    parser.add_argument("--steps", type=int, default=2000, help="in-process steps per round")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    load = os.getloadavg()[0]

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        runs = prepare_runs(Path(args.runs) if args.runs else work / "runs")
        costs = step_costs(runs["forecaster"], args.steps, work)
        servers = {
            "batched": Server(list(runs.values()), work / "batched.sqlite"),
            "one per call": Server(list(runs.values()), work / "unbatched.sqlite", "--no-batching"),
        }
        rows: list[dict] = []
        try:
            for server in servers.values():
                server.wait()
            for i, level in enumerate(levels):
                order = list(servers) if i % 2 == 0 else list(servers)[::-1]
                for mode in order:
                    rows += asyncio.run(measure(servers[mode], mode, level, args.requests))
        finally:
            for server in servers.values():
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"machine: {machine()}; CPU flags: {cpu_flags()}")
    print(f"load average: {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"{args.requests} requests per level and server; in-process: best of 5 x {args.steps}\n")
    report(rows, costs, levels)


def report(rows: list[dict], costs: dict[str, float], levels: list[int]) -> None:
    """The results table, the ratios table and the two targets."""
    rows = sorted(rows, key=lambda r: (r["what"], r["concurrency"], r["mode"]))
    header = [
        "endpoint",
        "server",
        "concurrency",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "mean batch",
        "commit ms/batch",
        "server CPU ms/request",
        "client CPU",
    ]
    print(
        table(
            header,
            [
                [
                    r["what"],
                    r["mode"],
                    r["concurrency"],
                    f"{r['per_s']:,.0f}",
                    f"{r['p50']:.2f}",
                    f"{r['p99']:.2f}",
                    f"{r['batch']:.1f}",
                    f"{r['commit_ms']:.2f}" if "commit_ms" in r else "",
                    f"{r['server_cpu_ms']:.2f}",
                    f"{100 * r['client_cpu']:.0f}%",
                ]
                for r in rows
            ],
        )
    )

    def find(what: str, mode: str, level: int) -> dict:
        return next(
            r for r in rows if (r["what"], r["mode"], r["concurrency"]) == (what, mode, level)
        )

    def commit_share(r: dict) -> float:
        """What the commit adds to a step's latency: commit / (latency - commit)."""
        return r["commit_ms"] / (r["mean_ms"] - r["commit_ms"])

    ratios = []
    for what in ("stream step", "classify"):
        for level in levels:
            on, off = find(what, "batched", level), find(what, "one per call", level)
            ratios.append(
                [
                    f"{what}s/s, batched / one per call, concurrency {level}",
                    f"{on['per_s'] / off['per_s']:.2f}x",
                ]
            )
    for mode in ("batched", "one per call"):
        for level in levels:
            r = find("stream step", mode, level)
            ratios.append(
                [
                    f"commit / rest of a step's latency, {mode}, concurrency {level}",
                    f"{100 * commit_share(r):.0f}% ({r['commit_ms']:.2f} of {r['mean_ms']:.2f} ms)",
                ]
            )
    lean = costs["lean"]
    ratios += [
        [
            "Forecaster module step / lean step (T = 1, carried state, head)",
            f"{costs['module'] / lean:.1f}x ({costs['module']:.0f} vs {lean:.1f} µs)",
        ],
        [
            "nn.LSTM step alone / lean step (encoder and head)",
            f"{costs['lstm'] / lean:.1f}x ({costs['lstm']:.0f} µs)",
        ],
        [
            "served step function / lean step (restore, step, capture, answer)",
            f"{costs['served step'] / lean:.1f}x ({costs['served step']:.0f} µs)",
        ],
        ["encoding a stream's state (safetensors)", f"{costs['encode']:.0f} µs"],
        [
            "one stream's commit, synchronous=FULL / OFF",
            f"{costs['commit FULL'] / costs['commit OFF']:.1f}x "
            f"({costs['commit FULL']:.0f} vs {costs['commit OFF']:.0f} µs)",
        ],
    ]
    print()
    print(table(["ratio", "value"], ratios))
    print()
    if 64 in levels:
        on, off = find("stream step", "batched", 64), find("stream step", "one per call", 64)
        speedup = on["per_s"] / off["per_s"]
        verdict = "met" if speedup >= 5 else "NOT met"
        print(
            f"target 1 (>= 5x): batched stream steps/s at concurrency 64 = {speedup:.2f}x "
            f"one step per call: {verdict}"
        )
    for level in levels:
        share = commit_share(find("stream step", "batched", level))
        verdict = "met" if share < 0.2 else "NOT met"
        print(
            f"target 2 (< 20%): the commit adds {100 * share:.0f}% to a batched step's "
            f"latency at concurrency {level}: {verdict}"
        )


if __name__ == "__main__":
    main()
