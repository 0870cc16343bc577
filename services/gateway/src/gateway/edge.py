"""The edge: a pure ASGI app in front of every route (api.md §1.1, §2.2-§2.4, §2.10).

Per request, in this order: request id, CORS, routing, authentication (cached JWT verification),
per-user rate limit, body limits, idempotency keys (POST with `Idempotency-Key`), dispatch (in
process or over HTTP), then one JSON log line, Prometheus metrics and, for state-changing requests
and logins, an activity-log row queued for the background writer. An authenticated GET touches no
database and no lock.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from common import metrics
from common.auth import PRINCIPAL_SCOPE_KEY, Principal
from common.errors import (
    ApiError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from common.ids import valid_request_id
from common.logging import request_id_var, user_id_var
from gateway.activity import ActivityWriter
from gateway.api import ACTIVITY_KEY, CLIENT_IP_KEY, TOKEN_JTI_KEY
from gateway.compute import (
    STATE_CHANGING,
    activity_action,
    body_limit,
    client_ip,
    is_internal_address,
    new_request_id,
    parse_ip,
    portfolio_id_of,
    request_hash,
    valid_idempotency_key,
)
from gateway.errors import RouteNotFound
from gateway.exchange import TOO_LARGE_MESSAGE, BufferedReceive, CorsPolicy, Exchange, LimitedReceive, Recorder
from gateway.idempotency import IdempotencyStore
from gateway.ratelimit import SlidingWindowLimiter
from gateway.routing import LOCAL, Access, Target, resolve
from gateway.tokens import TokenVerifier, Verified
from gateway.upstream import ClientGone, UpstreamBroken, Upstreams

log = logging.getLogger(__name__)
access_log = logging.getLogger("gateway.access")

# Request headers the edge reads; x-request-id and the identity headers are replaced, never trusted.
_WANTED = frozenset(
    {
        b"authorization",
        b"x-request-id",
        b"origin",
        b"content-type",
        b"content-length",
        b"transfer-encoding",
        b"idempotency-key",
        b"x-forwarded-for",
        b"forwarded",
        b"access-control-request-method",
        b"user-agent",
    }
)
_STRIPPED = frozenset({b"x-request-id", b"x-user-id", b"x-user-role"})
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class EdgeMetrics:
    """The gateway's Prometheus series, with labelled children cached per label set."""

    def __init__(self) -> None:
        self.requests = metrics.counter(
            "gateway", "http_requests_total", "HTTP requests through the gateway", ("route", "method", "status")
        )
        self.duration = metrics.histogram(
            "gateway", "http_request_duration_seconds", "Gateway request duration", ("route", "method")
        )
        self.rate_limited = metrics.counter("gateway", "rate_limited_total", "Requests refused with 429")
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and its duration."""
        key = (route, method, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(route, method, str(status))
        child.inc()
        dkey = (route, method)
        timer = self._durations.get(dkey)
        if timer is None:
            timer = self._durations[dkey] = self.duration.labels(route, method)
        timer.observe(seconds)


class Edge:
    """The gateway's ASGI entry point."""

    def __init__(
        self,
        *,
        local: ASGIApp,
        upstreams: Upstreams,
        verifier: TokenVerifier,
        limiter: SlidingWindowLimiter,
        cors: CorsPolicy,
        activity: ActivityWriter,
        idempotency: IdempotencyStore,
        forwarded_hops: int = 0,
        edge_metrics: EdgeMetrics | None = None,
    ) -> None:
        self.local = local
        self.upstreams = upstreams
        self.verifier = verifier
        self.limiter = limiter
        self.cors = cors
        self.activity = activity
        self.idempotency = idempotency
        self.forwarded_hops = forwarded_hops
        self.metrics = edge_metrics or EdgeMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.local(scope, receive, send)
            return
        t0 = time.perf_counter()
        found: dict[bytes, bytes] = {}
        kept: list[tuple[bytes, bytes]] = []
        for pair in scope["headers"]:
            name = pair[0]
            if name in _WANTED:
                found[name] = pair[1]
            if name not in _STRIPPED:
                kept.append(pair)
        incoming = found.get(b"x-request-id")
        request_id = incoming.decode("latin-1") if incoming is not None else None
        if request_id is None or not valid_request_id(request_id):
            request_id = new_request_id()
        ex = Exchange(send, scope["method"], scope["path"], request_id)
        ex.t0 = t0
        ex.started_wall = time.time()
        ex.query = scope.get("query_string", b"")
        peer = scope.get("client")
        forwarded = found.get(b"x-forwarded-for")
        ex.ip = client_ip(
            peer[0] if peer else None, forwarded.decode("latin-1") if forwarded else None, self.forwarded_hops
        )
        agent = found.get(b"user-agent")
        ex.user_agent = agent.decode("latin-1")[:512] if agent else None
        token = request_id_var.set(request_id)
        try:
            await self._handle(ex, scope, receive, found, kept)
        except Exception as exc:
            await self._fail(ex, exc)
        finally:
            self._finish(ex)
            request_id_var.reset(token)
            user_id_var.set(None)

    async def _fail(self, ex: Exchange, exc: Exception) -> None:
        """Answer a request whose handling raised: error envelope if nothing was sent yet."""
        if ex.started:
            if isinstance(exc, UpstreamBroken):
                ex.code = "UPSTREAM_ERROR"
                log.warning("upstream %s broke off %s %s: %s", ex.upstream, ex.method, ex.path, exc)
            elif not isinstance(exc, ClientGone):
                log.error("error after the response started on %s %s: %r", ex.method, ex.path, exc)
            raise exc
        if ex.too_large:
            await ex.error(PayloadTooLarge(TOO_LARGE_MESSAGE))
        elif isinstance(exc, ApiError):
            await ex.error(exc)
        elif isinstance(exc, ClientGone):
            return  # nobody left to answer
        else:
            log.error("unhandled error at the edge on %s %s", ex.method, ex.path, exc_info=exc)
            await ex.error(ApiError("Internal error", code="INTERNAL_ERROR", status=500))

    async def _handle(
        self, ex: Exchange, scope: Scope, receive: Receive, found: dict[bytes, bytes], kept: list[tuple[bytes, bytes]]
    ) -> None:
        method = ex.method
        origin = found.get(b"origin")
        if origin is not None and self.cors.allows(origin):
            if method == "OPTIONS" and b"access-control-request-method" in found:
                ex.route = resolve(ex.path).label
                await ex.respond(204, self.cors.preflight_headers(origin), b"")
                return
            ex.extra.extend(self.cors.response_headers(origin))
        elif origin is not None and method == "OPTIONS" and b"access-control-request-method" in found:
            ex.route = resolve(ex.path).label
            raise ApiError("CORS origin not allowed", code="BAD_REQUEST", status=400)

        target = resolve(ex.path)
        ex.route = target.label
        ex.upstream = target.service
        access = target.access
        if access is Access.NOT_FOUND:
            raise RouteNotFound()
        content_type = found.get(b"content-type", b"").decode("latin-1")
        limit = body_limit(method, ex.path, content_type)
        receive = self._limit_body(ex, receive, found, limit)
        if access is Access.PUBLIC:
            await self._local(ex, scope, receive, kept, None)
            return
        authorization = found.get(b"authorization")
        if access is Access.METRICS:
            await self._metrics(ex, scope, receive, kept, found, authorization)
            return

        verified = self.verifier.verify_header(authorization.decode("latin-1") if authorization else None)
        principal = verified.principal
        ex.user_id = principal.user_id
        ex.user_text = verified.user_id
        user_id_var.set(verified.user_id)
        if target.rate_limited:
            decision = self.limiter.hit(principal.user_id)
            ex.extra.extend(decision.headers())
            if not decision.allowed:
                self.metrics.rate_limited.inc()
                raise RateLimited(
                    f"Rate limit of {decision.limit} requests per {self.limiter.window} s exceeded",
                    hint=f"retry after {decision.reset_seconds} s",
                )
        if access is Access.JOB_NOT_FOUND:
            raise NotFound("JOB")
        if target.service == LOCAL:
            await self._local(ex, scope, receive, kept, verified)
            return
        key = found.get(b"idempotency-key")
        if key is not None and method == "POST":
            await self._idempotent(
                ex, scope, receive, kept, target, verified, key.decode("latin-1"), content_type, limit
            )
            return
        await self._forward(ex, scope, receive, ex.send, kept, target, verified)
        self._check_answered(ex)

    @staticmethod
    def _limit_body(ex: Exchange, receive: Receive, found: dict[bytes, bytes], limit: int) -> Receive:
        """413 at once for a declared oversized body; count the bytes of any body that is sent."""
        length = found.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError as exc:
                raise ApiError("Malformed Content-Length", code="BAD_REQUEST", status=400) from exc
            if declared > limit:
                raise PayloadTooLarge(f"Request body exceeds {limit // (1024 * 1024)} MiB")
            if declared == 0:
                return receive
        elif b"transfer-encoding" not in found:
            return receive
        return LimitedReceive(receive, limit, ex)

    @staticmethod
    def _check_answered(ex: Exchange) -> None:
        """After dispatch: an oversized streamed body is a 413; no response at all is a 502."""
        if ex.too_large:
            raise PayloadTooLarge(TOO_LARGE_MESSAGE)
        if not ex.started:
            raise ApiError("The service sent no response", code="UPSTREAM_ERROR", status=502, retryable=True)

    def _identity_headers(
        self, ex: Exchange, kept: list[tuple[bytes, bytes]], verified: Verified | None
    ) -> list[tuple[bytes, bytes]]:
        headers = [*kept, (b"x-request-id", ex.request_id.encode("latin-1"))]
        if verified is not None:
            headers.extend(verified.identity_headers)
        return headers

    async def _local(
        self, ex: Exchange, scope: Scope, receive: Receive, kept: list[tuple[bytes, bytes]], verified: Verified | None
    ) -> None:
        child = dict(scope)
        child["headers"] = self._identity_headers(ex, kept, verified)
        state = dict(scope.get("state") or ())
        state[CLIENT_IP_KEY] = ex.ip
        if verified is not None:
            state[PRINCIPAL_SCOPE_KEY] = verified.principal
            state[TOKEN_JTI_KEY] = verified.jti
        child["state"] = state
        await self.local(child, receive, ex.send)
        route = child.get("route")
        if route is not None and getattr(route, "path", None):
            ex.route = route.path
            ex.params = child.get("path_params") or {}
        activity = state.get(ACTIVITY_KEY)
        if activity is not None:
            ex.action = activity["action"]
            if activity.get("user_id") is not None:
                ex.user_id = activity["user_id"]
                ex.user_text = str(activity["user_id"])
        self._check_answered(ex)

    async def _metrics(
        self,
        ex: Exchange,
        scope: Scope,
        receive: Receive,
        kept: list[tuple[bytes, bytes]],
        found: dict[bytes, bytes],
        authorization: bytes | None,
    ) -> None:
        if authorization is not None:
            verified = self.verifier.verify_header(authorization.decode("latin-1"))
            ex.user_id = verified.principal.user_id
            ex.user_text = verified.user_id
            if not verified.principal.is_admin:
                raise Forbidden("Metrics require the admin role")
        else:
            peer = scope.get("client")
            proxied = b"x-forwarded-for" in found or b"forwarded" in found
            if proxied or not is_internal_address(peer[0] if peer else None):
                raise Unauthenticated("Metrics are served to the internal network, or with an admin token")
        await self._local(ex, scope, receive, kept, None)

    async def _forward(
        self,
        ex: Exchange,
        scope: Scope,
        receive: Receive,
        send: Send,
        kept: list[tuple[bytes, bytes]],
        target: Target,
        verified: Verified,
    ) -> None:
        headers = self._identity_headers(ex, kept, verified)
        template, params = await self.upstreams.forward(
            target.service, scope, receive, send, headers, verified.principal
        )
        if template:
            ex.route = template
            ex.params = params

    async def _read_body(self, ex: Exchange, receive: Receive, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if ex.too_large:
                    raise PayloadTooLarge(TOO_LARGE_MESSAGE)
                raise ClientGone("client disconnected while sending its body")
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                raise PayloadTooLarge(TOO_LARGE_MESSAGE)
            chunks.append(body)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _idempotent(
        self,
        ex: Exchange,
        scope: Scope,
        receive: Receive,
        kept: list[tuple[bytes, bytes]],
        target: Target,
        verified: Verified,
        key: str,
        content_type: str,
        limit: int,
    ) -> None:
        if not valid_idempotency_key(key):
            raise ValidationFailed.field(
                "header.Idempotency-Key", "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'", key
            )
        principal = verified.principal
        body = await self._read_body(ex, receive, limit)
        fingerprint = request_hash(ex.method, ex.path, ex.query, body, content_type)
        replay = await self.idempotency.begin(
            user_id=principal.user_id, key=key, method=ex.method, route=ex.path, request_hash=fingerprint
        )
        if replay is not None:
            await ex.respond(replay.status, replay.headers, replay.body)
            return
        recorder = Recorder()
        try:
            await self._forward(ex, scope, BufferedReceive(body, receive), recorder, kept, target, verified)
        except BaseException:
            await self._release(principal, key)
            raise
        if recorder.status == 0:
            await self._release(principal, key)
            raise ApiError("The service sent no response", code="UPSTREAM_ERROR", status=502, retryable=True)
        payload = b"".join(recorder.body)
        try:
            await self.idempotency.complete(
                user_id=principal.user_id, key=key, status=recorder.status, headers=recorder.headers, body=payload
            )
        except Exception as exc:
            log.warning("could not store the response for idempotency key %s: %s", key, exc)
            await self._release(principal, key)
        headers = [h for h in recorder.headers if h[0] != b"content-length"]
        await ex.respond(recorder.status, headers, payload)

    async def _release(self, principal: Principal, key: str) -> None:
        try:
            await self.idempotency.release(user_id=principal.user_id, key=key)
        except Exception as exc:
            log.warning("could not release idempotency key %s: %s", key, exc)

    def _finish(self, ex: Exchange) -> None:
        """Log line, metrics and activity row of a finished request (no I/O besides the log write)."""
        seconds = time.perf_counter() - ex.t0
        status = ex.status or 499  # 499: the client went away before an answer
        method = ex.method if ex.method in _KNOWN_METHODS else "OTHER"
        self.metrics.observe(ex.route, method, status, seconds)
        duration_ms = round(seconds * 1000, 3)
        user_id = ex.user_text if ex.user_text is not None else (str(ex.user_id) if ex.user_id else None)
        fields: dict[str, Any] = {
            "request_id": ex.request_id,
            "user_id": user_id,
            "method": ex.method,
            "route": ex.route,
            "path": ex.path,
            "status": status,
            "duration_ms": duration_ms,
            "bytes_out": ex.bytes_out,
            "upstream": ex.upstream,
            "ip": ex.ip,
        }
        if status >= 400:
            fields["code"] = ex.error_code()
        if access_log.isEnabledFor(logging.INFO):
            # makeRecord + handle: the logging call without the caller-frame lookup (hot path).
            access_log.handle(
                access_log.makeRecord(
                    access_log.name,
                    logging.INFO,
                    __file__,
                    0,
                    "%s %s %s",
                    (ex.method, ex.route, status),
                    None,
                    extra=fields,
                )
            )
        if ex.action is not None or ex.method in STATE_CHANGING:
            self.activity.add(
                {
                    "occurred_at": datetime.fromtimestamp(ex.started_wall, UTC),
                    "user_id": ex.user_id,
                    "action": ex.action or activity_action(ex.method, ex.route),
                    "request_id": ex.request_id,
                    "method": ex.method,
                    "route": ex.route,
                    "path": ex.path[:2048],
                    "status": status,
                    "duration_ms": round(seconds * 1000),
                    "portfolio_id": portfolio_id_of(ex.route, ex.params, ex.query),
                    "ip": parse_ip(ex.ip),
                    "user_agent": ex.user_agent,
                }
            )
