"""`rnnkit serve RUN [RUN ...]`: trained runs over HTTP (the API: `rnnkit/serve/__init__.py`)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from rnnkit.errors import ConfigError

EXTRA = "pip install 'rnnkit[serve]'"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve trained runs over HTTP (JSON API, streams, web page, metrics)",
        description="Serve one or more run folders, each under its folder's name: stateless "
        "requests (classify, forecast, generate) micro-batched per model, stateful streams "
        "whose state survives a restart (kept in --state: an SQLite file, or a Redis database "
        "that several servers share), a web page at /, the OpenAPI "
        "schema at /docs and Prometheus metrics at /metrics. Needs the serve extra "
        f"({EXTRA}).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders to serve")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    p.add_argument(
        "--state",
        default="rnnkit-streams.sqlite",
        metavar="PATH|URL",
        help="where the streams live: an SQLite file, reused to keep them across restarts "
        "(default: ./rnnkit-streams.sqlite), or redis://HOST:PORT/DB (rediss:// for TLS), "
        "shared by every server given the same URL, so that replicas behind a load balancer "
        "serve the same streams",
    )
    p.add_argument(
        "--max-streams",
        type=int,
        default=10_000,
        metavar="N",
        help="most streams open at once, over all models (default: 10000)",
    )
    p.add_argument(
        "--stream-ttl",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="drop a stream idle this long (default: 3600)",
    )
    p.add_argument(
        "--token-file",
        metavar="FILE",
        help="require 'Authorization: Bearer <token>' on /v1/* and /metrics, the token read "
        "from FILE",
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow a non-loopback --host without --token-file (only behind a guarding proxy)",
    )
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=2.0,
        metavar="MS",
        help="how long a request waits for others to share a model call (default: 2)",
    )
    p.add_argument(
        "--max-batch", type=int, default=32, metavar="N", help="most requests per call (32)"
    )
    p.add_argument(
        "--no-batching", action="store_true", help="one model call per request (for comparisons)"
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=1 << 20,
        metavar="N",
        help="larger request bodies get a 413 (default: 1 MiB)",
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    missing = [m for m in ("fastapi", "uvicorn", "prometheus_client") if not _importable(m)]
    if missing:
        raise ConfigError(f"rnnkit serve needs {', '.join(missing)}: {EXTRA}")
    from rnnkit.serve.app import ServeSettings, create_app, model_names
    from rnnkit.serve.security import check_binding, read_token_file

    token = read_token_file(args.token_file) if args.token_file else None
    # Refuse an open address before loading anything.
    check_binding(args.host, token, args.insecure_no_auth)
    settings = ServeSettings(
        host=args.host,
        port=args.port,
        state=args.state,  # a path, or a redis:// URL (which Path would mangle)
        max_streams=args.max_streams,
        stream_ttl=args.stream_ttl,
        token=token,
        insecure_no_auth=args.insecure_no_auth,
        batch_window_ms=args.batch_window_ms,
        max_batch=args.max_batch,
        max_body_bytes=args.max_body_bytes,
        batching=not args.no_batching,
    )
    for path in args.runs:
        if not Path(path).is_dir():
            raise ConfigError(f"{path}: not a run folder")
    names = model_names(args.runs)
    app = create_app(names, settings)

    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        http="auto",  # httptools (the serve extra installs it) when importable, else h11
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    models = ", ".join(f"{name} ({path})" for name, path in names.items())
    print(f"serving {models}", flush=True)
    print(f"http://{host}:{settings.port}/  (API schema at /docs)", flush=True)
    uvicorn.Server(config).run()
    return 0


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
