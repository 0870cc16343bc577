"""How the edge reaches the services: ASGI calls in process (all-in-one) or an aiohttp proxy
(distributed), plus their readiness and OpenAPI documents."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp
import orjson
from multidict import CIMultiDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.auth import PRINCIPAL_SCOPE_KEY, Principal
from common.errors import ServiceUnavailable, UpstreamError, UpstreamTimeout
from gateway.routing import RouteTemplates

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 §7.6.1) are never forwarded; the gateway's server sets its own
# date/server headers.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
RESPONSE_DROPPED = HOP_BY_HOP | {"date", "server", "x-request-id"}
SMALL_BODY = 1024 * 1024
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Template = tuple[str | None, dict[str, str]]


class ClientGone(Exception):
    """The client went away (or its body was cut off) while its body was being forwarded."""


class UpstreamBroken(Exception):
    """The upstream failed after the response had started; the connection must be dropped."""


class Upstreams(Protocol):
    """What the edge needs from the services."""

    kind: str
    services: tuple[str, ...]

    async def forward(
        self,
        service: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        principal: Principal | None,
    ) -> Template:
        """Send the request to `service`; returns the matched route template and path parameters."""

    async def ready(self, service: str) -> bool:
        """True when the service answers its readiness probe with 200."""

    async def openapi(self, service: str) -> dict[str, Any] | None:
        """The service's OpenAPI document, or None when unavailable."""

    async def close(self) -> None:
        """Release connections."""


def _probe_scope(path: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"accept", b"application/json")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
        "state": {},
    }


class InProcessUpstreams:
    """All-in-one mode: call each service's ASGI app directly, the principal in the scope."""

    kind = "in_process"

    def __init__(self, apps: Mapping[str, ASGIApp]) -> None:
        self.apps = dict(apps)
        self.services = tuple(self.apps)

    async def forward(
        self,
        service: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        principal: Principal | None,
    ) -> Template:
        app = self.apps.get(service)
        if app is None:
            raise ServiceUnavailable(f"Service {service} is not running in this process", headers={"Retry-After": "5"})
        child = dict(scope)
        child["headers"] = headers
        state = dict(scope.get("state") or ())
        if principal is not None:
            state[PRINCIPAL_SCOPE_KEY] = principal
        child["state"] = state
        await app(child, receive, send)
        route = child.get("route")
        return getattr(route, "path", None), child.get("path_params") or {}

    async def _get(self, service: str, path: str) -> tuple[int, bytes]:
        app = self.apps.get(service)
        if app is None:
            return 503, b""
        status = 0
        chunks: list[bytes] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(_probe_scope(path), receive, send)
        return status, b"".join(chunks)

    async def ready(self, service: str) -> bool:
        try:
            status, _ = await self._get(service, "/readyz")
        except Exception as exc:
            log.warning("readiness probe of %s failed: %s", service, exc)
            return False
        return status == 200

    async def openapi(self, service: str) -> dict[str, Any] | None:
        app = self.apps.get(service)
        build = getattr(app, "openapi", None)
        if build is None:
            return None
        try:
            doc: dict[str, Any] = build()
        except Exception:
            log.exception("OpenAPI document of %s could not be built", service)
            return None
        return doc

    async def close(self) -> None:
        return None


async def _body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("client disconnected while sending its body")
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


class HttpUpstreams:
    """Distributed mode: proxy over HTTP with one pooled aiohttp session per process (keep-alive)."""

    kind = "http"

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        probe_timeout: float = 2.0,
    ) -> None:
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.services = tuple(self.urls)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.probe_timeout = probe_timeout
        self.templates = RouteTemplates()
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The process-wide session (created on first use, inside the running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=512, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=60)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, sock_read=self.timeout),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # never share cookies between users
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            )
        return self._session

    async def forward(
        self,
        service: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        principal: Principal | None,
    ) -> Template:
        base = self.urls.get(service)
        if base is None:
            raise ServiceUnavailable(f"No URL configured for service {service}", headers={"Retry-After": "5"})
        method: str = scope["method"]
        raw_path = scope.get("raw_path") or scope["path"].encode()
        url = base + raw_path.decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        out: CIMultiDict[str] = CIMultiDict()
        has_body = False
        for name, value in headers:
            lname = name.decode("latin-1")
            if lname in HOP_BY_HOP:
                if lname == "transfer-encoding":
                    has_body = True
                continue
            if lname == "content-length" and value != b"0":
                has_body = True
            out.add(lname, value.decode("latin-1"))
        client = scope.get("client")
        if client:
            out.add("x-forwarded-for", str(client[0]))
        out["x-forwarded-proto"] = scope.get("scheme", "http")
        data = _body_chunks(receive) if has_body else None
        response = await self._open(method, url, out, data, retry=method in IDEMPOTENT_METHODS and not has_body)
        try:
            status = response.status
            response_headers = [
                (k.lower(), v) for k, v in response.raw_headers if k.lower().decode("latin-1") not in RESPONSE_DROPPED
            ]
            length = response.content_length
            try:
                if length is not None and length <= SMALL_BODY:
                    body = await response.read()
                    await send({"type": "http.response.start", "status": status, "headers": response_headers})
                    await send({"type": "http.response.body", "body": body, "more_body": False})
                else:
                    await send({"type": "http.response.start", "status": status, "headers": response_headers})
                    async for chunk in response.content.iter_chunked(64 * 1024):
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise UpstreamBroken(f"{service} broke off its response: {exc!r}") from exc
        finally:
            response.release()
        return self.templates.match(scope["path"]) or (None, {})

    async def _open(
        self, method: str, url: str, headers: CIMultiDict[str], data: Any, *, retry: bool
    ) -> aiohttp.ClientResponse:
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            try:
                async with asyncio.timeout(self.timeout):
                    return await self.session().request(method, url, headers=headers, data=data, allow_redirects=False)
            except TimeoutError as exc:
                raise UpstreamTimeout(f"The service did not answer within {self.timeout:g} s") from exc
            except aiohttp.ClientConnectorError as exc:
                raise ServiceUnavailable(
                    "The service owning this route is unavailable", headers={"Retry-After": "5"}
                ) from exc
            except aiohttp.ServerDisconnectedError as exc:
                # A pooled keep-alive connection the service had just closed: retry once if safe.
                if attempt + 1 < attempts:
                    continue
                raise UpstreamError("The service closed the connection without answering") from exc
            except ClientGone:
                raise
            except aiohttp.ClientError as exc:
                raise UpstreamError("The service sent an invalid response") from exc
        raise UpstreamError("The service closed the connection without answering")

    async def _get_json(self, service: str, path: str) -> tuple[int, Any]:
        base = self.urls[service]
        async with asyncio.timeout(self.probe_timeout), self.session().get(base + path) as response:
            status = response.status
            body = await response.read()
        try:
            return status, orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return status, None

    async def ready(self, service: str) -> bool:
        try:
            status, _ = await self._get_json(service, "/readyz")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("readiness probe of %s failed: %s", service, exc)
            return False
        return status == 200

    async def openapi(self, service: str) -> dict[str, Any] | None:
        try:
            status, doc = await self._get_json(service, "/openapi.json")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("OpenAPI document of %s unavailable: %s", service, exc)
            return None
        if status != 200 or not isinstance(doc, dict):
            return None
        for path in doc.get("paths") or {}:
            self.templates.add(path)
        return doc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
