"""Per-request plumbing of the edge: the exchange (send wrapper + what the log line needs), body
limiting and buffering helpers, and the CORS policy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import Message, Receive, Send

from common.errors import ApiError
from common.formatting import iso_datetime, utcnow

_JSON_HEADERS = [(b"content-type", b"application/json")]
_ERROR_CAPTURE_BYTES = 16 * 1024
TOO_LARGE_MESSAGE = "Request body exceeds its limit (JSON 1 MiB, multipart 10 MiB, price import 50 MiB)"


class CorsPolicy:
    """Allowed origins with credentials (FE-05); `*` reflects any origin."""

    ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
    ALLOW_HEADERS = b"Authorization, Content-Type, Accept, Idempotency-Key, X-Request-ID, Prefer"
    EXPOSE_HEADERS = (
        b"X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Location, "
        b"Idempotent-Replayed, Content-Disposition"
    )
    MAX_AGE = b"600"

    def __init__(self, origins: Iterable[str]) -> None:
        cleaned = [o.strip().rstrip("/") for o in origins if o.strip()]
        self.any = "*" in cleaned
        self.origins = frozenset(o.encode("latin-1") for o in cleaned if o != "*")

    def allows(self, origin: bytes) -> bool:
        """True when `origin` may call the API from a browser."""
        return self.any or origin in self.origins

    def response_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        """Headers added to actual responses for an allowed origin."""
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-expose-headers", self.EXPOSE_HEADERS),
            (b"vary", b"Origin"),
        ]

    def preflight_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        """Headers of a successful preflight answer."""
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-allow-methods", self.ALLOW_METHODS),
            (b"access-control-allow-headers", self.ALLOW_HEADERS),
            (b"access-control-max-age", self.MAX_AGE),
            (b"vary", b"Origin"),
        ]


class LimitedReceive:
    """Counts body bytes; past the limit it reports a disconnect and flags the exchange."""

    __slots__ = ("exchange", "limit", "receive", "seen")

    def __init__(self, receive: Receive, limit: int, exchange: Exchange) -> None:
        self.receive = receive
        self.limit = limit
        self.exchange = exchange
        self.seen = 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                self.exchange.too_large = True
                return {"type": "http.disconnect"}
        return message


class BufferedReceive:
    """Replays an already-read body, then defers to the real receive (disconnect notices)."""

    __slots__ = ("body", "receive", "sent")

    def __init__(self, body: bytes, receive: Receive) -> None:
        self.body = body
        self.receive = receive
        self.sent = False

    async def __call__(self) -> Message:
        if not self.sent:
            self.sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        return await self.receive()


class Recorder:
    """Collects a whole response (idempotent requests are stored before they are answered)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = [(h[0], h[1]) for h in message.get("headers", ())]
        elif message["type"] == "http.response.body":
            self.body.append(message.get("body", b""))


class Exchange:
    """Per-request state: what the log line, metrics and activity row need, and the send wrapper."""

    __slots__ = (
        "_send",
        "action",
        "bytes_out",
        "capture",
        "code",
        "extra",
        "ip",
        "method",
        "params",
        "path",
        "query",
        "request_id",
        "route",
        "started",
        "started_wall",
        "status",
        "suppress",
        "t0",
        "too_large",
        "upstream",
        "user_agent",
        "user_id",
        "user_text",
    )

    def __init__(self, send: Send, method: str, path: str, request_id: str) -> None:
        self._send = send
        self.method = method
        self.path = path
        self.query = b""
        self.request_id = request_id
        self.route = "unmatched"
        self.params: dict[str, str] = {}
        self.upstream: str | None = None
        self.user_id: Any = None
        self.user_text: str | None = None
        self.action: str | None = None
        self.ip: str | None = None
        self.user_agent: str | None = None
        self.status = 0
        self.bytes_out = 0
        self.code: str | None = None
        self.started = False
        self.too_large = False
        self.suppress = False
        self.capture: bytearray | None = None
        self.extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode("latin-1"))]
        self.t0 = 0.0
        self.started_wall = 0.0

    async def send(self, message: Message) -> None:
        """Forward a response message, adding the edge's headers and counting bytes."""
        if self.too_large or self.suppress:
            return
        mtype = message["type"]
        if mtype == "http.response.start":
            self.status = status = message["status"]
            self.started = True
            headers = [h for h in message.get("headers", ()) if h[0] != b"x-request-id"]
            headers.extend(self.extra)
            message = {**message, "headers": headers}
            if status >= 400 and self.code is None:
                self.capture = bytearray()
        elif mtype == "http.response.body":
            body = message.get("body", b"")
            self.bytes_out += len(body)
            capture = self.capture
            if capture is not None and len(capture) < _ERROR_CAPTURE_BYTES:
                capture += body[: _ERROR_CAPTURE_BYTES - len(capture)]
        await self._send(message)

    async def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Send a complete response from the edge itself."""
        self.too_large = self.suppress = False
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    async def error(self, exc: ApiError) -> None:
        """Answer with the error envelope (api.md §2.5)."""
        self.code = exc.code
        body = orjson.dumps(
            {"error": exc.body(), "meta": {"request_id": self.request_id, "timestamp": iso_datetime(utcnow())}}
        )
        headers = [*_JSON_HEADERS, *((k.lower().encode(), v.encode()) for k, v in exc.headers.items())]
        await self.respond(exc.status, headers, body)

    def error_code(self) -> str | None:
        """The `error.code` of an error response (edge-made or captured from the body)."""
        if self.code is None and self.capture:
            try:
                parsed = orjson.loads(bytes(self.capture))
                self.code = parsed.get("error", {}).get("code") if isinstance(parsed, dict) else None
            except (orjson.JSONDecodeError, AttributeError):
                self.code = None
        return self.code
