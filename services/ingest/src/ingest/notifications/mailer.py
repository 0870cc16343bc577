"""E-mail of notifications: a small outbox over `ingest.notification.email_*`, sent after commit.

A round claims due `pending` rows with `FOR UPDATE SKIP LOCKED` (several ingest processes share the
work) and leases them by moving `email_next_attempt_at` forward, commits, and only then talks to the
SMTP server — outside any transaction. Each accepted message is marked `sent` at once. A crash
before the mark leaves the row pending: it is sent again when its lease runs out (at least once,
never lost; the stable Message-ID lets a mail client fold the rare duplicate). Refused recipients
and other 5xx answers fail the row at once; connection problems retry with backoff, up to
`max_attempts`. The loop wakes on `NOTIFY ingest_notification_mail` (sent by the writers, delivered
on commit) and polls every `poll_seconds` for retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import sqlalchemy as sa

from common import metrics
from common.db import Database, asyncpg_dsn
from ingest.notifications.smtp import Mail, SmtpConfig, SmtpConnection, build_message, is_permanent
from ingest.notifications.store import MAIL_CHANNEL

log = logging.getLogger(__name__)

EMAILS = metrics.counter("ingest", "notification_emails", "Notification e-mails, by outcome", ("outcome",))

_CLAIM = sa.text(
    """
    WITH due AS (
        SELECT id FROM ingest.notification
        WHERE email_status = 'pending' AND email_next_attempt_at <= now()
        ORDER BY email_next_attempt_at, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE ingest.notification n
    SET email_attempts = n.email_attempts + 1,
        email_next_attempt_at = now() + make_interval(secs => :lease),
        updated_at = now()
    FROM due WHERE n.id = due.id
    RETURNING n.id, n.user_id, n.title, n.message, n.link, n.created_at, n.email_attempts
    """
)


@dataclass(frozen=True)
class MailerOptions:
    """Pacing of the mailer (seconds)."""

    batch: int = 20
    poll_seconds: float = 30.0
    lease_seconds: float = 300.0
    retry_base_seconds: float = 60.0
    max_attempts: int = 5


def mail_body(message: str, link: str | None) -> str:
    """Plain-text body: the notification, where to look next, and why the e-mail was sent."""
    lines = [message, ""]
    if link:
        lines.append(f"Details: GET {link}")
    lines.append("All your notifications: GET /api/v1/notifications")
    lines += ["", "-- ", "SigmaSight sends this e-mail for events of your portfolios."]
    return "\n".join(lines) + "\n"


class Mailer:
    """Sends the e-mails of pending notifications."""

    def __init__(self, db: Database, config: SmtpConfig, sender: str, options: MailerOptions | None = None) -> None:
        self.db = db
        self.config = config
        self.sender = sender
        self.options = options or MailerOptions()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """One round: claim up to `batch` due rows, send them; returns how many were claimed."""
        opts = self.options
        async with self.db.transaction() as session:
            claimed = (await session.execute(_CLAIM, {"limit": opts.batch, "lease": opts.lease_seconds})).all()
        if not claimed:
            return 0
        users = list({row.user_id for row in claimed})
        people = {
            r["id"]: r
            for r in await self.db.fetch("SELECT id, email, full_name FROM gateway.api_user WHERE id = ANY($1)", users)
        }
        connection = SmtpConnection(self.config)
        try:
            for i, row in enumerate(claimed):
                person = people.get(row.user_id)
                if person is None or not person["email"]:
                    await self._failed(row.id, "the user has no e-mail address")
                    continue
                mail = Mail(
                    row.id,
                    person["email"],
                    person["full_name"],
                    f"[SigmaSight] {row.title}",
                    mail_body(row.message, row.link),
                    row.created_at,
                )
                try:
                    await asyncio.to_thread(connection.send, build_message(mail, self.sender))
                except Exception as exc:
                    if is_permanent(exc):
                        await self._failed(row.id, _describe(exc))
                        continue
                    # The server or the connection is the problem: every row left in this round waits.
                    for rest in claimed[i:]:
                        await self._retry(rest.id, rest.email_attempts, _describe(exc))
                    log.warning("notification e-mail round stopped: %s", _describe(exc))
                    break
                await self._sent(row.id)
        finally:
            await asyncio.to_thread(connection.close)
        return len(claimed)

    async def _sent(self, ident: UUID) -> None:
        await self._update(
            ident,
            "email_status = 'sent', email_sent_at = now(), email_next_attempt_at = NULL, email_error = NULL",
        )
        EMAILS.labels("sent").inc()

    async def _failed(self, ident: UUID, error: str) -> None:
        await self._update(ident, "email_status = 'failed', email_next_attempt_at = NULL, email_error = :error", error)
        EMAILS.labels("failed").inc()
        log.warning("notification %s: e-mail failed for good: %s", ident, error)

    async def _retry(self, ident: UUID, attempts: int, error: str) -> None:
        if attempts >= self.options.max_attempts:
            await self._failed(ident, error)
            return
        delay = self.options.retry_base_seconds * 2 ** (attempts - 1)
        await self._update(
            ident, "email_next_attempt_at = now() + make_interval(secs => :delay), email_error = :error", error, delay
        )
        EMAILS.labels("retry").inc()

    async def _update(self, ident: UUID, assignments: str, error: str | None = None, delay: float = 0.0) -> None:
        params: dict[str, Any] = {"id": ident}
        if ":error" in assignments:
            params["error"] = error[:1000] if error else None
        if ":delay" in assignments:
            params["delay"] = delay
        async with self.db.transaction() as session:
            await session.execute(
                sa.text(
                    f"UPDATE ingest.notification SET {assignments}, updated_at = now() "
                    "WHERE id = :id AND email_status = 'pending'"
                ),
                params,
            )

    async def run_forever(self) -> None:
        """Background loop: drain due e-mails on every wake-up and every `poll_seconds`."""
        listener: asyncpg.Connection | None = None
        try:
            while True:
                if listener is None or listener.is_closed():
                    listener = await self._listen()
                self._wake.clear()
                try:
                    while await self.run_once() >= self.options.batch:
                        pass
                except Exception as exc:
                    log.warning("notification e-mail round failed: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.options.poll_seconds)
        finally:
            if listener is not None and not listener.is_closed():
                await listener.close()

    async def _listen(self) -> asyncpg.Connection | None:
        """A connection LISTENing on the mail channel; None (poll only) when it cannot be opened."""
        try:
            conn = await asyncpg.connect(asyncpg_dsn(self.db.url))
            await conn.add_listener(MAIL_CHANNEL, lambda *_: self.wake())
            return conn
        except Exception as exc:
            log.warning("cannot listen for notification e-mails, polling instead: %s", exc)
            return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]
