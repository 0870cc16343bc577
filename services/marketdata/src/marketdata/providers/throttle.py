"""Outbound throttling for market-data providers (api.md §2.3, users.md OPS-04 AC2).

* `TokenBucket`: `rate_per_minute` tokens, refilled continuously; a call takes one token and
  waits when none is left.
* `Backoff`: exponential delays with "equal jitter" (half fixed, half random), capped.
* `Throttle`: both around one provider call, with a per-call timeout and bounded retries;
  counts every outcome in `sigmasight_marketdata_provider_requests_total{provider,outcome}`.

Clock, sleep and the random source are injectable so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import Counter

from common import metrics

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

OUTCOMES = ("ok", "retry", "failed", "not_found")
_EPSILON = 1e-9  # float refill arithmetic must not leave a bucket at 0.9999999999 tokens forever
_MIN_WAIT = 0.001


def provider_requests() -> Counter:
    """Counter of provider calls by provider and outcome (ok, retry, failed, not_found)."""
    return metrics.counter(
        "marketdata", "provider_requests", "Outbound market-data provider requests", ("provider", "outcome")
    )


class TokenBucket:
    """A token bucket holding up to `capacity` tokens, refilled at `rate_per_minute`."""

    def __init__(
        self,
        rate_per_minute: float,
        *,
        capacity: float | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.clock = clock
        self.sleep = sleep
        self.rate_per_minute = float(rate_per_minute)
        self.capacity = float(capacity if capacity is not None else rate_per_minute)
        self.tokens = self.capacity
        self.updated = clock()
        self._lock = asyncio.Lock()

    @property
    def per_second(self) -> float:
        return self.rate_per_minute / 60.0

    def reconfigure(self, rate_per_minute: float) -> None:
        """Change the rate (and size) keeping the tokens already earned, capped at the new size."""
        self._refill()
        self.rate_per_minute = float(rate_per_minute)
        self.capacity = float(rate_per_minute)
        self.tokens = min(self.tokens, self.capacity)

    def _refill(self) -> None:
        now = self.clock()
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.per_second)
        self.updated = now

    def try_acquire(self) -> bool:
        """Take a token if one is available now."""
        self._refill()
        if self.tokens >= 1.0 - _EPSILON:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until a token is available (0 when one is)."""
        self._refill()
        if self.tokens >= 1.0 - _EPSILON:
            return 0.0
        # Never less than a millisecond: a clock cannot advance by less than its resolution.
        return max((1.0 - self.tokens) / self.per_second, _MIN_WAIT)

    async def acquire(self) -> float:
        """Take a token, waiting as long as needed; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while not self.try_acquire():
                delay = self.wait_time()
                waited += delay
                await self.sleep(delay)
        return waited


@dataclass
class Backoff:
    """Exponential backoff with equal jitter: attempt n waits in [c/2, c], c = min(cap, base·factor^n)."""

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def ceiling(self, attempt: int) -> float:
        return min(self.cap, self.base * self.factor**attempt)

    def delay(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0 = first retry)."""
        ceiling = self.ceiling(attempt)
        return ceiling / 2.0 + self.rng.uniform(0.0, ceiling / 2.0)


class Throttle:
    """Token bucket + timeout + retries with backoff around calls to one provider."""

    def __init__(
        self,
        provider: str,
        *,
        rate_per_minute: float = 60.0,
        max_retries: int = 3,
        timeout_seconds: float = 30.0,
        backoff: Backoff | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.bucket = TokenBucket(rate_per_minute, clock=clock, sleep=sleep)
        self.max_retries = max_retries
        self.timeout_seconds = timeout_seconds
        self.backoff = backoff or Backoff()
        self.sleep = sleep

    def configure(
        self,
        *,
        rate_per_minute: float | None = None,
        max_retries: int | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        """Apply the limits stored in `marketdata.data_provider` (None keeps the current value)."""
        if rate_per_minute:
            self.bucket.reconfigure(rate_per_minute)
        if max_retries is not None:
            self.max_retries = max(0, max_retries)
        if timeout_seconds:
            self.timeout_seconds = float(timeout_seconds)

    def _count(self, outcome: str) -> None:
        provider_requests().labels(self.provider, outcome).inc()

    async def call(self, fn: Callable[[], Awaitable[T]], *, what: str = "request") -> T:
        """Run `fn()` under the rate limit; retry transient failures with backoff, then give up."""
        from marketdata.errors import ProviderError, ProviderUnavailable, UnknownSymbol

        attempt = 0
        while True:
            await self.bucket.acquire()
            try:
                result = await asyncio.wait_for(fn(), self.timeout_seconds)
            except UnknownSymbol:
                self._count("not_found")
                raise
            except (ProviderError, TimeoutError, OSError) as exc:
                if attempt >= self.max_retries:
                    self._count("failed")
                    reason = str(exc) or type(exc).__name__
                    raise ProviderUnavailable(
                        self.provider, f"{what} failed after {attempt + 1} attempt(s): {reason}"
                    ) from exc
                self._count("retry")
                await self.sleep(self.backoff.delay(attempt))
                attempt += 1
                continue
            self._count("ok")
            return result
