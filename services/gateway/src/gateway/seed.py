"""Seed users (demo.md §2, data-model §10): three demo users and the admin. Idempotent (by email)."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from common.db import Database
from common.ids import demo_user_id
from gateway import repository
from gateway.passwords import PasswordHasher, generate_password
from gateway.settings import Settings

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo12345"
ADMIN_EMAIL = "demo_admin@sigmasight.com"
ADMIN_PASSWORD_FILE = "admin_password"


@dataclass(frozen=True)
class SeedUser:
    email: str
    username: str
    full_name: str
    role: str
    is_demo: bool


DEMO_USERS = (
    SeedUser("demo_individual@sigmasight.com", "demo_individual", "Demo Individual Investor", "user", True),
    SeedUser("demo_hnw@sigmasight.com", "demo_hnw", "Demo High Net Worth Investor", "user", True),
    SeedUser(
        "demo_hedgefundstyle@sigmasight.com", "demo_hedgefundstyle", "Demo Hedge Fund Style Investor", "user", True
    ),
)
ADMIN_USER = SeedUser(ADMIN_EMAIL, "demo_admin", "Demo Administrator", "admin", False)


def admin_password(settings: Settings) -> tuple[str, Path | None]:
    """DEMO_ADMIN_PASSWORD; in all-in-one mode without it, the password kept in
    `<data_dir>/admin_password` (generated once, mode 0600, never overwritten) and that path."""
    if settings.demo_admin_password:
        return settings.demo_admin_password, None
    if settings.mode == "distributed":
        raise SystemExit(
            "DEMO_ADMIN_PASSWORD must be set to seed the admin user demo_admin@sigmasight.com in distributed mode"
        )
    path = settings.data_dir / ADMIN_PASSWORD_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process just wrote it; use theirs
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(generate_password() + "\n")
    password = path.read_text().strip()
    if not password:
        raise SystemExit(f"{path} is empty; delete it to generate a new admin password")
    return password, path


async def _upsert(db: Database, hasher: PasswordHasher, user: SeedUser, password: str) -> str:
    async with db.session() as session:
        existing = await repository.find_user_by_email(session, email=user.email)
    if existing is None:
        password_hash = await hasher.hash(password)
        async with db.transaction() as session:
            await repository.insert_user(
                session,
                user_id=demo_user_id(user.email),
                email=user.email,
                username=user.username,
                password_hash=password_hash,
                full_name=user.full_name,
                role=user.role,
                is_demo=user.is_demo,
            )
        return "created"
    values: dict[str, object] = {}
    # Keep the stored hash while it still matches the configured password (no rehash on every seed).
    if not await hasher.verify(password, existing["password_hash"]):
        values["password_hash"] = await hasher.hash(password)
    wanted = {
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role,
        "is_demo": user.is_demo,
        "is_active": True,
    }
    values.update({k: v for k, v in wanted.items() if existing.get(k) != v})
    if not values:
        return "unchanged"
    async with db.transaction() as session:
        await repository.update_user(session, user_id=existing["id"], values=values)
    return "updated"


async def seed(db: Database, settings: Settings) -> Path | None:
    """Create or update the seeded users; returns the admin password file when one is used."""
    password, path = admin_password(settings)
    hasher = PasswordHasher(settings.bcrypt_rounds)
    try:
        outcomes = await asyncio.gather(
            *(_upsert(db, hasher, user, DEMO_PASSWORD) for user in DEMO_USERS),
            _upsert(db, hasher, ADMIN_USER, password),
        )
    finally:
        hasher.close()
    for user, outcome in zip((*DEMO_USERS, ADMIN_USER), outcomes, strict=True):
        log.info("seed user %s: %s", user.email, outcome)
    log.info("demo logins (password %s): %s", DEMO_PASSWORD, ", ".join(u.email for u in DEMO_USERS))
    return path
