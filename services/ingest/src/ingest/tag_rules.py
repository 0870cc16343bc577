"""Tag naming and limit rules shared by the tag API and the CSV importer (api.md §4.7, csv-format.md §3.5).

Pure functions plus the per-user advisory lock every writer of tags (or portfolios) takes, so that
the API and the upload commit serialise on the same key.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

TagType = Literal["regular", "strategy"]

MAX_TAGS_PER_USER = 100
MAX_TAGS_PER_POSITION = 20
MAX_TAG_NAME_LENGTH = 50
STRATEGY_PREFIX = "#strategy:"
DEFAULT_TAG_COLOR = "#6B7280"
TAG_NAME_RE = re.compile(r"^[A-Za-z0-9 _.&/-]{1,50}$")
COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
_SPACES = re.compile(r"\s+")

TAG_NAME_RULE = "may only contain letters, digits, spaces and _ - . & / (1-50 characters)"


@dataclass(frozen=True)
class ParsedTag:
    """A tag name as written by a user, resolved to its stored name and type."""

    name: str
    tag_type: TagType

    @property
    def key(self) -> str:
        """Case-insensitive identity (`tag.name_key`)."""
        return tag_key(self.name)


def normalize_tag_name(raw: str) -> str:
    """Trim and collapse inner whitespace to single spaces."""
    return _SPACES.sub(" ", raw).strip()


def tag_key(name: str) -> str:
    """The stored `name_key` of a (normalised) name."""
    return normalize_tag_name(name).lower()


def is_valid_tag_name(name: str) -> bool:
    """1-50 characters of letters, digits, spaces and `_ - . & /` (no commas), already normalised."""
    return bool(TAG_NAME_RE.match(name)) and name == normalize_tag_name(name)


def is_valid_color(color: str) -> bool:
    """`#RRGGBB`."""
    return bool(COLOR_RE.match(color))


def parse_tag_token(token: str, *, drop_leading_hash: bool = False) -> ParsedTag:
    """`#strategy:<name>` (any case) → strategy tag `<name>`; otherwise a regular tag.

    `drop_leading_hash` (CSV rule 3): any other leading `#` is dropped (`#Hedge` → `Hedge`).
    The name is normalised but not validated; call `is_valid_tag_name` on the result.
    """
    text = normalize_tag_name(token)
    if text.lower().startswith(STRATEGY_PREFIX):
        return ParsedTag(normalize_tag_name(text[len(STRATEGY_PREFIX) :]), "strategy")
    if drop_leading_hash and text.startswith("#"):
        text = normalize_tag_name(text.lstrip("#"))
    return ParsedTag(text, "regular")


def split_tag_cell(cell: str | None) -> list[str]:
    """A CSV `tags` cell → trimmed, non-empty tokens (csv-format.md §3.5 rule 2)."""
    if not cell:
        return []
    return [normalize_tag_name(t) for t in cell.split(",") if normalize_tag_name(t)]


def advisory_key(kind: str, user_id: UUID) -> int:
    """A signed 64-bit advisory-lock key for (`kind`, user) shared by every ingest writer."""
    high = zlib.crc32(f"ingest.{kind}".encode()) & 0x7FFFFFFF
    low = zlib.crc32(user_id.bytes)
    return (high << 32) | low


async def lock_user(session: AsyncSession, kind: Literal["tags", "portfolios"], user_id: UUID) -> None:
    """Take the transaction-scoped advisory lock guarding a user's tag or portfolio count."""
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key(kind, user_id)})
