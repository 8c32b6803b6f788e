"""`rnnkit serve RUN [RUN ...]`: an HTTP server for trained runs, with durable per-stream state.

Needs the `serve` extra (`pip install 'rnnkit[serve]'`: fastapi, uvicorn, prometheus-client).

The HTTP API (JSON unless said otherwise; errors are `{"detail": ...}` naming the field):

    GET  /                                   the web page (static, no CDN)
    GET  /healthz                            {"status": "ok"}
    GET  /readyz                             {"ready": true, "models": [names]}; 503 with
                                             "ready": false while a Redis --state is away
    GET  /metrics                            Prometheus text format
    GET  /v1/models                          [{"name", "task", "data", "metrics", "parameters",
                                               "size_bytes", "endpoint", "streams", "limits"}]
    POST /v1/models/{name}/classify          {"texts": [..]}
                                             -> {"results": [{"label", "probabilities"}]}
    POST /v1/models/{name}/forecast          {"history": [{"time", <target>: v, ...}], "horizon"?}
                                             or {"series": {id: rows}} -> {"forecasts": {id: [
                                             {"time", <target>, <target>_lower, <target>_upper}]}}
    POST /v1/models/{name}/generate          {"prompt", "max_tokens", "temperature", "top_k",
                                             "top_p", "repetition_penalty", "stop", "seed",
                                             "num_samples", "stream"} -> {"samples": [..]}, or with
                                             "stream": true, server-sent events `data: {"sample": i,
                                             "text": piece}` ... then `event: done`
    POST /v1/models/{name}/streams           task-specific params
                                             -> 201 {"stream", "model", "seq": 0, "answer"}
    POST /v1/streams/{id}/observe            {"seq": n, ...task-specific input} -> {"stream", "seq",
                                             "answer"}; seq already applied -> its stored answer;
                                             a gap -> 409 {"detail", "expected"}
    GET  /v1/streams/{id}                    {"stream", "model", "seq", "answer", "created",
                                             "updated"}
    DELETE /v1/streams/{id}                  204

    404 unknown model or stream; 503 with Retry-After at --max-streams (and, with a Redis --state,
    a stream held too long by another server, or Redis away); 413 body too large; 422 a field out
    of its limits (named); 401 without the token when one is required.

`--state` is an SQLite file (one server process) or `redis://HOST:PORT/DB` (`rediss://` for TLS):
one Redis database that several server processes share, with a lock per stream
(`rnnkit/serve/redis_store.py`, docs/deploy.md "Replicated serving with Redis").

Task knowledge comes from each task's `TaskSpec.serving` (`rnnkit.serve.hooks.ServingHooks`,
built in `rnnkit/tasks/<task>/serve.py`); this package names no task.
"""
