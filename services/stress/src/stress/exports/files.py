"""File bytes in PostgreSQL (`stress.stored_file`): report files and trade exports.

Content is zlib-compressed (reports are text and compress 5–10×); `size_bytes` and `sha256` describe
the file as downloaded. Files are kept 30 days (data-model.md §11); `purge_expired` removes the bytes
and leaves the metadata rows (reports turn `expired`, exports lose their `stored_file_id`).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from stress.exports.tables import MAX_FILE_BYTES, report, stored_file

RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class FileContent:
    """A file ready to store or send."""

    file_name: str
    content_type: str
    data: bytes

    @property
    def size_bytes(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.data).digest()


@dataclass(frozen=True)
class StoredFile:
    """Metadata of a stored file."""

    id: UUID
    file_name: str
    content_type: str
    size_bytes: int
    sha256: bytes


def compress(data: bytes) -> bytes:
    """zlib level 6: a good ratio on text at a few ms per megabyte."""
    return zlib.compress(data, 6)


async def put(session: AsyncSession, *, owner: UUID, file: FileContent, expires_at: datetime) -> StoredFile:
    """Store `file` for `owner` until `expires_at`; returns its metadata."""
    return (await put_many(session, owner=owner, files=[file], expires_at=expires_at))[0]


async def put_many(
    session: AsyncSession, *, owner: UUID, files: list[FileContent], expires_at: datetime
) -> list[StoredFile]:
    """Store several files of one owner (one statement)."""
    for f in files:
        if f.size_bytes > MAX_FILE_BYTES:
            raise ValueError(f"{f.file_name}: {f.size_bytes} bytes exceed the {MAX_FILE_BYTES}-byte limit")
    if not files:
        return []
    rows = [
        {
            "owner_user_id": owner,
            "file_name": f.file_name,
            "content_type": f.content_type,
            "size_bytes": f.size_bytes,
            "sha256": f.sha256,
            "content_encoding": "deflate",
            "content": compress(f.data),
            "expires_at": expires_at,
        }
        for f in files
    ]
    result = await session.execute(sa.insert(stored_file).values(rows).returning(stored_file.c.id))
    ids = [r.id for r in result]
    return [StoredFile(i, f.file_name, f.content_type, f.size_bytes, f.sha256) for i, f in zip(ids, files, strict=True)]


async def read(session: AsyncSession, file_id: UUID) -> bytes | None:
    """The file's bytes (decompressed), or None when it was purged."""
    row = (
        await session.execute(
            sa.select(stored_file.c.content, stored_file.c.content_encoding).where(stored_file.c.id == file_id)
        )
    ).first()
    if row is None:
        return None
    content = bytes(row.content)
    return zlib.decompress(content) if row.content_encoding == "deflate" else content


async def delete(session: AsyncSession, file_ids: list[UUID]) -> None:
    """Drop stored files (references become NULL)."""
    if file_ids:
        await session.execute(sa.delete(stored_file).where(stored_file.c.id.in_(file_ids)))


async def purge_expired(session: AsyncSession, now: datetime) -> int:
    """Mark reports past `expires_at` expired and delete every stored file past its expiry."""
    await session.execute(
        sa.update(report).where(report.c.status == "completed", report.c.expires_at < now).values(status="expired")
    )
    result = await session.execute(sa.delete(stored_file).where(stored_file.c.expires_at < now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
