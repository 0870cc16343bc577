"""Activity log writer (api.md §2.4): rows are buffered in memory and written in batches in the
background, so recording a request never waits for the database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from common.db import Database, is_transient_db_error
from gateway import repository

log = logging.getLogger(__name__)

MAX_BUFFERED = 50_000


class ActivityWriter:
    """Buffers activity rows; `run()` flushes every `interval` seconds or once `batch` rows wait."""

    def __init__(self, db: Database, *, batch: int = 500, interval: float = 1.0, max_buffered: int = MAX_BUFFERED):
        self.db = db
        self.batch = batch
        self.interval = interval
        self._rows: deque[dict[str, Any]] = deque(maxlen=max_buffered)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.dropped = 0
        self.written = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: dict[str, Any]) -> None:
        """Queue one row (O(1); the oldest row is dropped if the database is down for very long)."""
        if len(self._rows) == self._rows.maxlen:
            self.dropped += 1
        self._rows.append(row)
        if len(self._rows) >= self.batch:
            self._wake.set()

    async def flush(self) -> int:
        """Write everything queued; returns the number of rows written."""
        written = 0
        async with self._lock:
            while self._rows:
                chunk = [self._rows.popleft() for _ in range(min(self.batch, len(self._rows)))]
                try:
                    await self._write(chunk)
                except Exception as exc:
                    if not is_transient_db_error(exc):
                        # Bad data never becomes good: drop the batch rather than block the log.
                        self.dropped += len(chunk)
                        log.error("dropped %d activity rows that cannot be written: %s", len(chunk), exc)
                        continue
                    # Keep the rows for the next attempt (in order), then give up for this round.
                    self._rows.extendleft(reversed(chunk))
                    raise
                written += len(chunk)
        self.written += written
        return written

    async def _write(self, chunk: list[dict[str, Any]]) -> None:
        try:
            async with self.db.transaction() as session:
                await repository.insert_activity(session, rows=chunk)
        except Exception as exc:
            if "no partition" not in str(exc):
                raise
            # A month boundary passed before the daily maintenance ran: create the partition, retry.
            async with self.db.transaction() as session:
                await repository.ensure_activity_partitions(session)
            async with self.db.transaction() as session:
                await repository.insert_activity(session, rows=chunk)

    async def run(self) -> None:
        """Background loop (Service.background)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:
                log.warning("activity log write failed (%d rows kept for retry): %s", len(self._rows), exc)
