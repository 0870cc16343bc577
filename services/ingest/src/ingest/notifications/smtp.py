"""SMTP delivery with the standard library: `SMTP_URL` parsing, the message, one connection per round.

`SMTP_URL` forms: `smtp://[user:pass@]host[:port]` (plain, port 25; `?starttls=true` upgrades),
`smtp+starttls://…` (STARTTLS required, port 587), `smtps://…` (implicit TLS, port 465).
smtplib blocks, so the mailer calls `SmtpConnection` methods through `asyncio.to_thread`.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TRUE = ("1", "true", "yes")


class SmtpUrlError(ValueError):
    """SMTP_URL cannot be used."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to deliver."""

    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool
    timeout: float

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 30.0) -> SmtpConfig:
        """Parse SMTP_URL; a malformed value raises SmtpUrlError naming the problem (never the password)."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise SmtpUrlError(f"SMTP_URL scheme must be one of {', '.join(DEFAULT_PORTS)}, not {scheme!r}")
        if not parts.hostname:
            raise SmtpUrlError("SMTP_URL needs a host")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise SmtpUrlError("SMTP_URL has an invalid port") from exc
        query = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=scheme == "smtps",
            starttls=scheme == "smtp+starttls" or query.get("starttls", "") in TRUE,
            timeout=timeout,
        )


@dataclass(frozen=True)
class Mail:
    """One e-mail of one notification."""

    notification_id: UUID
    to_address: str
    to_name: str | None
    subject: str
    body: str
    created_at: datetime


def build_message(mail: Mail, sender: str) -> EmailMessage:
    """The RFC 5322 message. Its Message-ID is derived from the notification id, so a message sent
    twice after a crash (server accepted, mark not committed) can be recognised as one."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = formataddr((mail.to_name or "", mail.to_address))
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(mail.created_at)
    msg["Message-ID"] = make_msgid(idstring=str(mail.notification_id), domain="notifications.sigmasight")
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-SigmaSight-Notification-Id"] = str(mail.notification_id)
    msg.set_content(mail.body)
    return msg


def is_permanent(exc: BaseException) -> bool:
    """5xx answers (bad recipient, rejected content, refused credentials) will not succeed on retry."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return False


class SmtpConnection:
    """A blocking SMTP session for one mailer round (call each method in a worker thread)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def open(self) -> None:
        cfg = self.config
        smtp: smtplib.SMTP
        if cfg.implicit_tls:
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        try:
            smtp.ehlo()
            if cfg.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, cfg.password or "")
        except Exception:
            smtp.close()
            raise
        self._smtp = smtp

    def send(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self.open()
        assert self._smtp is not None
        self._smtp.send_message(message)

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None
