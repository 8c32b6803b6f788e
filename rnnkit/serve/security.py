"""What `rnnkit serve` refuses before a request reaches a model: big bodies, missing tokens, and
an open address with no token at all.

Both guards are plain ASGI middleware, so they answer before FastAPI parses anything (a 10 GB
body is refused from its `Content-Length`, or after `max_body_bytes` of a chunked one) and they
leave the response stream alone (a server-sent event stream still sees the client go away).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from rnnkit.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: paths that need the token when one is set; the page, its files, the schema and the probes
#: stay open (they hold no data, and a load balancer's probe carries no token).
PROTECTED_PREFIXES = ("/v1/", "/metrics")


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server reachable from this machine only."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_binding(host: str, token: str | None, insecure_no_auth: bool) -> None:
    """Refuse to serve models on a non-loopback address without a token.

    Raises:
        ConfigError: `host` is reachable from other machines, no token is set, and
            `insecure_no_auth` was not asked for.
    """
    if token or insecure_no_auth or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to serve on {host!r} without a token: anyone who reaches this address could "
        "use the models and their streams; pass --token-file FILE (clients then send "
        "'Authorization: Bearer <token>'), bind --host 127.0.0.1, or pass --insecure-no-auth "
        "if another layer (a proxy, a private network) guards it"
    )


def read_token_file(path: str | Path) -> str:
    """The bearer token in `path` (surrounding whitespace dropped).

    Raises:
        ConfigError: the file is missing, unreadable or empty.
    """
    path = Path(path)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--token-file {path}: cannot read it ({exc})") from None
    if not token:
        raise ConfigError(f"--token-file {path}: the file is empty; write the token in it")
    if any(c.isspace() for c in token):
        raise ConfigError(f"--token-file {path}: the token has whitespace inside; use one word")
    return token


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    """A whole JSON response, written straight to the ASGI `send`."""
    payload = json.dumps(body).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """413 for a request body over `max_bytes`, before anything parses it.

    A declared `Content-Length` over the limit is refused unread; otherwise the body is read
    (at most `max_bytes` + one chunk) and replayed to the app, so a chunked upload cannot
    slip past the header check.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await send_json(send, 400, {"detail": "Content-Length is not a number"})
                return
            if too_big:
                await self._refuse(send, f"{int(declared)} bytes")
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left before the body ended
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, f"more than {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        await self.app(scope, _replay(chunks, None, receive), send)

    async def _refuse(self, send: Send, size: str) -> None:
        detail = f"request body too large: {size}; the limit is {self.max_bytes} bytes"
        await send_json(send, 413, {"detail": detail, "limit": self.max_bytes})


def _replay(chunks: list[bytes], first: Message | None, receive: Receive) -> Receive:
    """A `receive` that gives the buffered body once, then the client's later messages."""
    pending: list[Message] = [first] if first is not None else []
    if first is None:
        pending.append({"type": "http.request", "body": b"".join(chunks), "more_body": False})

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()  # http.disconnect, which a streaming response waits for

    return replay


class BearerAuth:
    """401 unless the request carries `Authorization: Bearer <token>` (compared in constant
    time), on the `PROTECTED_PREFIXES` paths."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"authorization") or ""
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode("utf-8"), self._token
        ):
            await self.app(scope, receive, send)
            return
        detail = "missing or wrong token: send 'Authorization: Bearer <token>'"
        await send_json(send, 401, {"detail": detail}, {"WWW-Authenticate": "Bearer"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
