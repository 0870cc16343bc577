"""Ingest errors: the tag rules' 409s (api.md §4.7) and valuation failures."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common.errors import Conflict, PermanentError


class IngestError(PermanentError):
    """Base of ingest's permanent (non-HTTP) failures."""


class ValuationFailed(IngestError):
    """A portfolio could not be valued (bad data); its step is reported `failed`."""


class TagExists(Conflict):
    """409 TAG_EXISTS; `details` carry the existing tag."""

    code = "TAG_EXISTS"

    def __init__(self, tag_id: UUID, name: str, tag_type: str) -> None:
        super().__init__(
            f"A tag named '{name}' already exists",
            details={"existing_tag_id": str(tag_id), "name": name, "tag_type": tag_type},
        )


class TagLimitReached(Conflict):
    """409 TAG_LIMIT_REACHED (100 live tags per user)."""

    code = "TAG_LIMIT_REACHED"

    def __init__(self, would_have: int, limit: int) -> None:
        super().__init__(
            f"This would bring you to {would_have} tags; the limit is {limit}",
            details={"limit": limit, "would_have": would_have},
        )


class TooManyTags(Conflict):
    """409 TOO_MANY_TAGS (20 tags per position)."""

    code = "TOO_MANY_TAGS"

    def __init__(self, positions: list[dict[str, Any]], limit: int) -> None:
        super().__init__(
            f"A position may carry at most {limit} tags",
            details=[
                {"field": "position_id", "issue": f"would carry {p['count']} tags", "value": p["id"]} for p in positions
            ],
        )


class StrategyConflict(Conflict):
    """409 STRATEGY_CONFLICT (one strategy tag per position)."""

    code = "STRATEGY_CONFLICT"

    def __init__(self, conflicts: list[dict[str, Any]]) -> None:
        super().__init__(
            "A position can belong to one strategy; replace its tag set to move it (PUT /api/v1/positions/{id}/tags)",
            details=conflicts,
        )


class TagInUse(Conflict):
    """409 TAG_IN_USE; `details.position_count`."""

    code = "TAG_IN_USE"

    def __init__(self, position_count: int) -> None:
        super().__init__(
            f"The tag is on {position_count} position(s); pass force=true to remove it from them",
            details={"position_count": position_count},
        )
