"""The Notification JSON shape (built from rows) and its OpenAPI models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from common.formatting import iso_datetime
from ingest.upload_schemas import Meta, Page

_EXAMPLE: dict[str, Any] = {
    "id": "5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
    "kind": "onboarding_completed",
    "severity": "info",
    "title": "Growth book is onboarded",
    "message": "Onboarding of Growth book is complete: its first snapshot (2026-11-24) is stored and the "
    "portfolio is part of the daily run.",
    "portfolio_id": "0b8e1c7e-8c1d-4e0b-9a55-0c6a2f0e9d11",
    "link": "/api/v1/portfolio?portfolio_id=0b8e1c7e-8c1d-4e0b-9a55-0c6a2f0e9d11",
    "details": {"first_snapshot_date": "2026-11-24"},
    "read": False,
    "read_at": None,
    "created_at": "2026-11-25T14:03:22Z",
    "email": {"status": "sent", "sent_at": "2026-11-25T14:03:23Z"},
}


def notification_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row as the API's Notification."""
    details = row["details"]
    if isinstance(details, str | bytes):  # the raw pool returns jsonb as text
        details = orjson.loads(details)
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "severity": row["severity"],
        "title": row["title"],
        "message": row["message"],
        "portfolio_id": None if row["portfolio_id"] is None else str(row["portfolio_id"]),
        "link": row["link"],
        "details": details or {},
        "read": row["read_at"] is not None,
        "read_at": iso_datetime(row["read_at"]),
        "created_at": iso_datetime(row["created_at"]),
        "email": {"status": row["email_status"], "sent_at": iso_datetime(row["email_sent_at"])},
    }


class EmailState(BaseModel):
    status: Literal["pending", "sent", "failed", "skipped"] = Field(
        description="pending (queued for SMTP), sent, failed (gave up), skipped (SMTP not configured)"
    )
    sent_at: str | None = Field(description="UTC timestamp the SMTP server accepted the e-mail")


class Notification(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": _EXAMPLE})

    id: str
    kind: Literal["onboarding_completed", "onboarding_failed", "upload_failed", "run_failed"]
    severity: Literal["info", "warning", "error"]
    title: str
    message: str
    portfolio_id: str | None
    link: str | None = Field(description="The API call that shows more (GET)")
    details: dict[str, Any] = Field(description="Machine-readable context: upload_id, run_id, step, error, …")
    read: bool
    read_at: str | None
    created_at: str
    email: EmailState


class NotificationListMeta(Meta):
    unread_count: int = Field(description="Unread notifications of the caller (all kinds)")


class NotificationListResponse(BaseModel):
    data: list[Notification]
    meta: NotificationListMeta
    page: Page


class NotificationResponse(BaseModel):
    data: Notification
    meta: Meta


class MarkedRead(BaseModel):
    marked_read: int = Field(description="Notifications that were unread and now are read")


class MarkedReadResponse(BaseModel):
    data: MarkedRead
    meta: Meta
