"""bcrypt hashing off the event loop, on a small dedicated pool (a burst of logins cannot starve the
default executor that other services use for compute)."""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor

import bcrypt

# bcrypt reads at most 72 bytes; longer passwords are cut there, as bcrypt always did implicitly.
MAX_PASSWORD_BYTES = 72


def _encode(password: str) -> bytes:
    return password.encode("utf-8")[:MAX_PASSWORD_BYTES]


def hash_password_sync(password: str, rounds: int) -> str:
    """bcrypt hash (`$2b$<rounds>$…`) of `password`."""
    return bcrypt.hashpw(_encode(password), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password_sync(password: str, password_hash: str) -> bool:
    """True when `password` matches the stored bcrypt hash; False for malformed hashes."""
    try:
        return bcrypt.checkpw(_encode(password), password_hash.encode("ascii"))
    except ValueError:
        return False


def generate_password() -> str:
    """A strong random password (about 190 bits) for the bootstrap admin."""
    return secrets.token_urlsafe(24)


class PasswordHasher:
    """Hash and verify on a dedicated thread pool (bcrypt releases the GIL)."""

    def __init__(self, rounds: int = 12, workers: int = 2) -> None:
        self.rounds = rounds
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """Hash with the configured cost."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, hash_password_sync, password, self.rounds)

    async def verify(self, password: str, password_hash: str) -> bool:
        """Check a password against a stored hash."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, verify_password_sync, password, password_hash)

    async def dummy_hash(self) -> str:
        """A hash of a random password at the configured cost, verified for unknown emails so that
        'no such user' costs as much as 'wrong password'."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(generate_password())
        return self._dummy_hash

    def close(self) -> None:
        """Release the worker threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
