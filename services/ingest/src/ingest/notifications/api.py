"""Routes of the caller's notifications, and the wiring of the notification part of ingest.

`create_notifications_router(ctx)` is included by `ingest.main`; it also subscribes the bus
handlers and adds the mailer (when SMTP_URL is set) and the retention purge to the background.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from common.api import check_limit, envelope, page_block, parse_bool, parse_enum_multi
from common.auth import Principal
from common.errors import NotFound
from common.schemas import error_responses
from ingest.access import caller, parse_uuid
from ingest.context import IngestContext
from ingest.notifications import store
from ingest.notifications.models import KINDS
from ingest.notifications.schemas import (
    MarkedReadResponse,
    NotificationListResponse,
    NotificationResponse,
    notification_json,
)
from ingest.notifications.wiring import register

LIST_DESCRIPTION = (
    "The caller's notifications, newest first: `onboarding_completed` (first snapshot of an onboarded portfolio "
    "stored), `onboarding_failed` (the upload of a new portfolio was rejected or failed, or onboarding ended "
    "without a first snapshot), `upload_failed` (an upload into an existing portfolio was rejected or failed) and "
    "`run_failed` (a daily-run step failed for one of the caller's portfolios). Filters: `unread=true`, `kind` "
    "(comma-separated). `meta.unread_count` counts all unread notifications. Each notification is also e-mailed "
    "when the server has SMTP configured (`email.status`). Only the caller's own notifications are listed, "
    "admins included."
)


def create_notifications_router(ctx: IngestContext) -> APIRouter:
    """GET /api/v1/notifications, POST …/{id}/read, POST …/read-all."""
    register(ctx)
    db = ctx.db
    router = APIRouter(tags=["notifications"])

    @router.get(
        "/api/v1/notifications",
        summary="List the caller's notifications",
        description=LIST_DESCRIPTION,
        response_model=NotificationListResponse,
        responses=error_responses(422),
    )
    async def list_notifications(
        request: Request,
        unread: str | None = Query(None, description="true = unread only (default false)"),
        kind: str | None = Query(None, description="Comma-separated: " + ", ".join(KINDS)),
        limit: int = Query(50),
        offset: int = Query(0),
        principal: Principal = Depends(caller),
    ) -> Response:
        limit, offset = check_limit(limit, offset)
        unread_only = parse_bool(unread, "unread", False)
        kinds = parse_enum_multi(kind, KINDS, "kind")
        rows, total, unread_count = await store.list_for_user(
            db, principal.user_id, unread_only=unread_only, kinds=kinds, limit=limit, offset=offset
        )
        return envelope(
            [notification_json(r) for r in rows],
            request=request,
            page=page_block(limit, offset, total),
            unread_count=unread_count,
        )

    @router.post(
        "/api/v1/notifications/{id}/read",
        summary="Mark one notification read",
        description="Idempotent: a notification already read keeps its first `read_at`. Another user's id answers "
        "404 NOTIFICATION_NOT_FOUND, like an id that never existed.",
        response_model=NotificationResponse,
        responses=error_responses(404, 422),
    )
    async def mark_read(request: Request, id: str, principal: Principal = Depends(caller)) -> Response:
        notification_id = parse_uuid(id, "path.id")
        assert notification_id is not None
        async with db.transaction() as session:
            row = await store.mark_read(session, principal.user_id, notification_id)
        if row is None:
            raise NotFound("NOTIFICATION", hint="GET /api/v1/notifications")
        return envelope(notification_json(row), request=request)

    @router.post(
        "/api/v1/notifications/read-all",
        summary="Mark all of the caller's notifications read",
        description="Returns how many were unread; calling it again marks nothing.",
        response_model=MarkedReadResponse,
    )
    async def mark_all_read(request: Request, principal: Principal = Depends(caller)) -> Response:
        async with db.transaction() as session:
            changed = await store.mark_all_read(session, principal.user_id)
        return envelope({"marked_read": changed}, request=request)

    return router
