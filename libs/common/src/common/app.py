"""FastAPI app factory: error envelope, request ids, `/healthz`, `/readyz`, `/metrics`, jobs route."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common import metrics
from common.api import JSONResponse, envelope, meta
from common.auth import PRINCIPAL_SCOPE_KEY, Principal, current_principal
from common.errors import STATUS_CODES, ApiError, NotFound
from common.health_metrics import checks_pass
from common.ids import new_request_id, parse_job_id, valid_request_id
from common.logging import request_id_var, user_id_var
from common.schemas import ErrorResponse, JobResponse, error_responses

log = logging.getLogger(__name__)


def error_response(exc: ApiError, request: Request | None = None) -> JSONResponse:
    """The error envelope for `exc`."""
    return JSONResponse({"error": exc.body(), "meta": meta(request)}, status_code=exc.status, headers=exc.headers)


def _validation_details(exc: RequestValidationError) -> tuple[list[dict[str, Any]], bool]:
    details = []
    bad_json = False
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if err.get("type") == "json_invalid":
            bad_json = True
        issue = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            issue = "unknown field"
        value = err.get("input")
        if isinstance(value, dict | list) and len(str(value)) > 200:
            value = None
        details.append({"field": ".".join(loc), "issue": issue, "value": value})
    return details, bad_json


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the envelope of api.md §2.5-2.6."""

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        details, bad_json = _validation_details(exc)
        if bad_json:
            return error_response(
                ApiError("Request body is not valid JSON", code="BAD_REQUEST", status=400, details=details), request
            )
        return error_response(
            ApiError("Request failed validation", code="VALIDATION_ERROR", status=422, details=details), request
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        code = STATUS_CODES.get(exc.status_code, "INTERNAL_ERROR")
        message = "No such route" if exc.status_code == 404 else str(exc.detail)
        if exc.status_code == 405:
            code, message = "METHOD_NOT_ALLOWED", "Method not allowed on this route"
        return error_response(
            ApiError(message, code=code, status=exc.status_code, headers=dict(exc.headers or {})), request
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(ApiError("Internal error", code="INTERNAL_ERROR", status=500), request)


class RequestIdMiddleware:
    """Accept a valid client X-Request-ID or mint one; expose it to logs and echo it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if PRINCIPAL_SCOPE_KEY in scope.get("state", {}) and request_id_var.get() is not None:
            # Called in process by the gateway, which already minted the id, set the log context
            # and writes the response header itself.
            await self.app(scope, receive, send)
            return
        incoming = None
        for key, value in scope.get("headers", []):
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if valid_request_id(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        raw = str(request_id).encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", raw))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            user_id_var.set(None)


FastEndpoint = Callable[[Request], Awaitable[Response]]


class FastPathMiddleware:
    """Serves a few latency-critical routes without FastAPI's routing and dependency solving.

    The routes stay declared in FastAPI (same endpoint function) for the OpenAPI document; requests
    for them are answered here first. Endpoints take only the Request and parse their own parameters.
    """

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], FastEndpoint]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self.routes.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except ApiError as exc:
            response = error_response(exc, request)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            response = error_response(ApiError("Internal error", code="INTERNAL_ERROR", status=500), request)
        await response(scope, receive, send)


def create_service_app(
    service: str,
    *,
    title: str,
    description: str,
    jwt_secret: str,
    ready_check: Any,
    version: str = "1.0.0",
) -> FastAPI:
    """A FastAPI app with SigmaSight conventions; `ready_check()` -> dict of check -> bool."""
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = service
    app.state.jwt_secret = jwt_secret
    document_common_errors(app)
    install_error_handlers(app)
    # Fast paths sit inside the request-id middleware (the last added middleware is the outermost).
    app.state.fast_paths = {}
    app.add_middleware(FastPathMiddleware, routes=app.state.fast_paths)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"status": "ok", "service": service})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        checks = await ready_check()
        ok = checks_pass(checks)
        body = {
            "status": "ok" if ok else "error",
            "checks": {k: (v if isinstance(v, str) else ("ok" if v else "error")) for k, v in checks.items()},
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    # Refreshers of scrape-time series (common.health_metrics), registered by common.service.Service.
    app.state.scrape_hooks = []

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        for hook in app.state.scrape_hooks:
            await hook()
        body, content_type = metrics.exposition()
        return PlainTextResponse(body, media_type=content_type)

    return app


_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_COMMON_ERRORS = {
    "401": "Missing, malformed, badly signed or expired token (UNAUTHENTICATED, TOKEN_EXPIRED)",
    "422": "VALIDATION_ERROR: a parameter or body field is invalid; `details` names it",
    "429": "RATE_LIMITED: over 100 requests per 60 s; see Retry-After",
    "500": "INTERNAL_ERROR",
}


def document_common_errors(app: FastAPI) -> None:
    """Add the error catalogue that applies to every endpoint (api.md §2.6) to each operation of the
    app's OpenAPI document, with the error envelope as schema; 404 where a route takes an id."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = build()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault(
            "ErrorResponse", ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        for defs_name, definition in ErrorResponse.model_json_schema().get("$defs", {}).items():
            schemas.setdefault(defs_name, definition)
        schemas["ErrorResponse"].pop("$defs", None)
        for path, item in doc.get("paths", {}).items():
            for method, operation in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                responses = operation.setdefault("responses", {})
                wanted = dict(_COMMON_ERRORS)
                params = [p.get("name", "") for p in operation.get("parameters", [])]
                if "{" in path or any(name.endswith("_id") for name in params):
                    wanted["404"] = "<RESOURCE>_NOT_FOUND (also for another user's resource) or NOT_CALCULATED"
                for status, description in wanted.items():
                    responses.setdefault(status, {"description": description})
                for status, response in responses.items():
                    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                    # FastAPI documents its own 422 shape; every SigmaSight error is the envelope.
                    if (
                        status.isdigit()
                        and int(status) >= 400
                        and (not schema or schema.get("$ref", "").endswith("/HTTPValidationError"))
                    ):
                        if status == "422":
                            response["description"] = _COMMON_ERRORS["422"]
                        response["content"] = {"application/json": {"schema": _ERROR_REF}}
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def jobs_router(service: str, load_job: Any) -> APIRouter:
    """`GET /api/v1/jobs/{job_id}` for this service's prefix; `load_job(uuid)` -> Job dict or None."""
    router = APIRouter(tags=["jobs"])

    @router.get(
        "/api/v1/jobs/{job_id}",
        summary="Status of an async job",
        description="Job ids are `<svc>_<uuid>`; visible to the user who started the job and to admins.",
        response_model=JobResponse,
        responses=error_responses(401, 404),
    )
    async def get_job(job_id: str, request: Request, principal: Principal = Depends(current_principal)) -> Response:
        parsed = parse_job_id(job_id)
        if parsed is None or parsed[0] != service:
            raise NotFound("JOB")
        job: dict[str, Any] | None = await load_job(parsed[1])
        if job is None:
            raise NotFound("JOB")
        owner = job.get("requested_by")
        if not principal.is_admin and owner is not None and UUID(str(owner)) != principal.user_id:
            raise NotFound("JOB")
        return envelope(job, request=request)

    return router
