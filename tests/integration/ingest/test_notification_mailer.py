"""Notification e-mail through SMTP: a local aiosmtpd server on a free port receives what the mailer
sends; rows move pending → sent exactly once, retry while the server is down, fail on a refused
recipient, and the background loop wakes on commit (NOTIFY) without waiting for its poll."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from tests.conftest import make_migrated_database, worker_suffix
from tests.e2e.cluster import free_port

from common.db import Database
from common.testing import drop_database
from ingest.notifications import store
from ingest.notifications.compose import Draft
from ingest.notifications.mailer import Mailer, MailerOptions
from ingest.notifications.smtp import SmtpConfig

pytestmark = pytest.mark.integration

SENDER = "SigmaSight <notifications@example.test>"
REFUSED = "nobody@example.test"


@dataclass
class Sink:
    """aiosmtpd handler: keeps every accepted message, refuses one address with 550."""

    messages: list[tuple[list[str], Message]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address == REFUSED:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted"


@pytest.fixture(scope="module")
async def db(pg_admin_url: str) -> AsyncIterator[Database]:
    name = f"sigmasight_mailer_{worker_suffix()}_{uuid.uuid4().hex[:8]}"
    url = await make_migrated_database(pg_admin_url, name, ("gateway", "ingest"))
    database = Database(url, pool_size=4)
    try:
        yield database
    finally:
        await database.close()
        await drop_database(pg_admin_url, name)


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, SmtpConfig]]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield sink, SmtpConfig.from_url(f"smtp://127.0.0.1:{controller.port}", timeout=5)
    finally:
        controller.stop()


async def user(db: Database, email: str | None = None) -> uuid.UUID:
    ident = uuid.uuid4()
    await db.fetch(
        "INSERT INTO gateway.app_user (id, email, password_hash, full_name) VALUES ($1, $2, 'x', 'Ann Lee')",
        ident,
        email or f"{ident.hex[:10]}@example.test",
    )
    return ident


async def notify(db: Database, user_id: uuid.UUID, *subjects: str) -> list[uuid.UUID]:
    drafts = [
        Draft(user_id, "run_failed", s, "error", f"Greeks failed ({s})", "The greeks step failed.", link="/api/v1/x")
        for s in subjects
    ]
    async with db.transaction() as session:
        return await store.insert_drafts(session, drafts, mail=True)


async def email_state(db: Database, ident: uuid.UUID) -> dict[str, Any]:
    row = await db.fetchrow(
        "SELECT email_status, email_attempts, email_sent_at, email_error, email_next_attempt_at > now() AS later "
        "FROM ingest.notification WHERE id = $1",
        ident,
    )
    assert row is not None
    return dict(row)


async def drain(db: Database) -> None:
    """Forget rows other tests left pending, so each test sees only its own."""
    await db.fetch("UPDATE ingest.notification SET email_status = 'skipped' WHERE email_status = 'pending'")


async def test_a_pending_notification_is_mailed_once_and_marked_sent(
    db: Database, smtp: tuple[Sink, SmtpConfig]
) -> None:
    sink, config = smtp
    await drain(db)
    address = f"ann-{uuid.uuid4().hex[:6]}@example.test"
    (ident,) = await notify(db, await user(db, address), "one")
    mailer = Mailer(db, config, SENDER)
    assert await mailer.run_once() == 1
    ((rcpt, msg),) = sink.messages
    assert rcpt == [address] and msg["To"] == f"Ann Lee <{address}>" and msg["From"] == SENDER
    assert msg["Subject"] == "[SigmaSight] Greeks failed (one)"
    assert str(ident) in msg["Message-ID"]
    body = msg.get_payload(decode=True).decode()
    assert "The greeks step failed." in body and "GET /api/v1/x" in body
    state = await email_state(db, ident)
    assert (state["email_status"], state["email_attempts"], state["email_error"]) == ("sent", 1, None)
    assert state["email_sent_at"] is not None
    assert await mailer.run_once() == 0 and len(sink.messages) == 1


async def test_a_down_server_is_retried_later_then_given_up(db: Database) -> None:
    await drain(db)
    (ident,) = await notify(db, await user(db), "down")
    config = SmtpConfig.from_url(f"smtp://127.0.0.1:{free_port()}", timeout=2)  # nothing listens there
    mailer = Mailer(db, config, SENDER, MailerOptions(max_attempts=2, retry_base_seconds=0))
    assert await mailer.run_once() == 1
    state = await email_state(db, ident)
    assert (state["email_status"], state["email_attempts"]) == ("pending", 1)
    assert "ConnectionRefusedError" in state["email_error"]
    assert await mailer.run_once() == 1  # retry_base_seconds=0: due again at once
    state = await email_state(db, ident)
    assert (state["email_status"], state["email_attempts"]) == ("failed", 2)


async def test_a_claimed_row_is_not_sent_again_before_its_lease_ends(
    db: Database, smtp: tuple[Sink, SmtpConfig]
) -> None:
    sink, config = smtp
    await drain(db)
    (ident,) = await notify(db, await user(db), "leased")
    # A crashed sender claimed it (lease in the future) and never marked it: nobody sends it now.
    await db.fetch(
        "UPDATE ingest.notification SET email_attempts = 1, email_next_attempt_at = now() + interval '5 minutes' "
        "WHERE id = $1",
        ident,
    )
    mailer = Mailer(db, config, SENDER)
    assert await mailer.run_once() == 0
    # Once the lease has run out it is sent (at least once, never lost).
    await db.fetch("UPDATE ingest.notification SET email_next_attempt_at = now() WHERE id = $1", ident)
    assert await mailer.run_once() == 1 and len(sink.messages) == 1
    assert (await email_state(db, ident))["email_attempts"] == 2


async def test_a_refused_recipient_fails_at_once_and_the_others_still_go(
    db: Database, smtp: tuple[Sink, SmtpConfig]
) -> None:
    sink, config = smtp
    await drain(db)
    (refused,) = await notify(db, await user(db, REFUSED), "refused")
    (fine,) = await notify(db, await user(db), "fine")
    (orphan,) = await notify(db, uuid.uuid4(), "no user")
    assert await Mailer(db, config, SENDER).run_once() == 3
    assert (await email_state(db, refused))["email_status"] == "failed"
    assert "550" in (await email_state(db, refused))["email_error"]
    assert (await email_state(db, fine))["email_status"] == "sent"
    orphan_state = await email_state(db, orphan)
    assert orphan_state["email_status"] == "failed" and "no e-mail address" in orphan_state["email_error"]
    assert len(sink.messages) == 1


async def test_the_loop_wakes_on_commit_without_waiting_for_its_poll(
    db: Database, smtp: tuple[Sink, SmtpConfig]
) -> None:
    sink, config = smtp
    await drain(db)
    mailer = Mailer(db, config, SENDER, MailerOptions(poll_seconds=300))
    task = asyncio.create_task(mailer.run_forever())
    try:
        await asyncio.sleep(0.5)  # the loop has drained and now waits (LISTEN) for up to 300 s
        (ident,) = await notify(db, await user(db), "woken")
        deadline = asyncio.get_running_loop().time() + 10
        while not sink.messages:
            assert asyncio.get_running_loop().time() < deadline, "the commit did not wake the mailer"
            await asyncio.sleep(0.05)
        assert str(ident) in sink.messages[0][1]["Message-ID"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_without_smtp_notifications_are_stored_as_skipped(db: Database) -> None:
    user_id = await user(db)
    async with db.transaction() as session:
        (ident,) = await store.insert_drafts(
            session, [Draft(user_id, "run_failed", "quiet", "error", "t", "m")], mail=False
        )
    state = await email_state(db, ident)
    assert (state["email_status"], state["email_attempts"], state["later"]) == ("skipped", 0, None)
