"""Provider throttling: token bucket, jittered exponential backoff, retries (injected clock, no waiting)."""

from __future__ import annotations

import random

import pytest

from marketdata.errors import ProviderError, ProviderUnavailable, UnknownSymbol
from marketdata.providers.throttle import Backoff, Throttle, TokenBucket, provider_requests


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_token_bucket_allows_a_burst_of_its_size_then_waits_for_refill() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, clock=clock, sleep=clock.sleep)  # 5 per minute: one token every 12 s
    for _ in range(5):
        assert await bucket.acquire() == 0.0
    waited = await bucket.acquire()
    assert waited == pytest.approx(12.0)
    assert clock.sleeps == [pytest.approx(12.0)]
    # A minute of idling refills the bucket to capacity, never beyond.
    clock.now += 600
    assert all([bucket.try_acquire() for _ in range(5)])
    assert not bucket.try_acquire()
    assert bucket.wait_time() == pytest.approx(12.0)


async def test_token_bucket_spaces_sustained_calls_at_the_configured_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(180):
        await bucket.acquire()
    # 60 immediate (the burst) + 120 more at one per second.
    assert clock.now - start == pytest.approx(120.0)


async def test_reconfigure_caps_the_tokens_at_the_new_size() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, clock=clock, sleep=clock.sleep)
    bucket.reconfigure(5)
    assert bucket.tokens == 5 and bucket.capacity == 5
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_backoff_grows_exponentially_with_equal_jitter_and_a_cap() -> None:
    backoff = Backoff(base=0.5, factor=2.0, cap=8.0, rng=random.Random(7))
    for attempt in range(8):
        ceiling = min(8.0, 0.5 * 2**attempt)
        for _ in range(50):
            delay = backoff.delay(attempt)
            assert ceiling / 2 <= delay <= ceiling
    assert backoff.ceiling(10) == 8.0
    # jitter: the delays for one attempt are not all the same
    assert len({round(backoff.delay(3), 9) for _ in range(20)}) > 1


def _count(provider: str, outcome: str) -> float:
    return provider_requests().labels(provider, outcome)._value.get()


async def test_throttle_retries_transient_failures_with_backoff_then_succeeds() -> None:
    clock = FakeClock()
    throttle = Throttle(
        "t_retry", rate_per_minute=600, max_retries=3, backoff=Backoff(rng=random.Random(1)),
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ProviderError("t_retry", "HTTP 503")
        return "ok"

    assert await throttle.call(flaky) == "ok"
    assert calls == 3
    assert len(clock.sleeps) == 2  # two backoff pauses
    assert 0.25 <= clock.sleeps[0] <= 0.5 and 0.5 <= clock.sleeps[1] <= 1.0
    assert _count("t_retry", "retry") == 2 and _count("t_retry", "ok") == 1


async def test_throttle_gives_up_after_max_retries_as_provider_unavailable() -> None:
    clock = FakeClock()
    throttle = Throttle("t_down", rate_per_minute=600, max_retries=2, clock=clock, sleep=clock.sleep)
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise TimeoutError

    with pytest.raises(ProviderUnavailable, match="after 3 attempt"):
        await throttle.call(down, what="history AAPL")
    assert calls == 3
    assert _count("t_down", "failed") == 1 and _count("t_down", "retry") == 2


async def test_unknown_symbols_are_not_retried() -> None:
    clock = FakeClock()
    throttle = Throttle("t_unknown", rate_per_minute=600, max_retries=5, clock=clock, sleep=clock.sleep)
    calls = 0

    async def missing() -> None:
        nonlocal calls
        calls += 1
        raise UnknownSymbol("ZZZZ")

    with pytest.raises(UnknownSymbol):
        await throttle.call(missing)
    assert calls == 1 and clock.sleeps == []
    assert _count("t_unknown", "not_found") == 1


async def test_every_attempt_takes_a_token() -> None:
    clock = FakeClock()
    throttle = Throttle("t_tokens", rate_per_minute=2, max_retries=2, clock=clock, sleep=clock.sleep)

    async def failing() -> None:
        raise ProviderError("t_tokens", "boom")

    start = clock.now
    with pytest.raises(ProviderUnavailable):
        await throttle.call(failing)
    # 3 attempts against a 2-per-minute bucket (burst 2, then one token per 30 s): the third attempt
    # could only start when the third token existed, 30 s after the first, backoff pauses included.
    assert len(clock.sleeps) == 3  # backoff, backoff, token wait
    assert clock.now - start == pytest.approx(30.0)


def test_configure_applies_stored_limits() -> None:
    throttle = Throttle("t_cfg", rate_per_minute=60, max_retries=3, timeout_seconds=30)
    throttle.configure(rate_per_minute=5, max_retries=1, timeout_seconds=10)
    assert throttle.bucket.rate_per_minute == 5 and throttle.max_retries == 1 and throttle.timeout_seconds == 10
    throttle.configure(rate_per_minute=None, max_retries=None, timeout_seconds=None)
    assert throttle.bucket.rate_per_minute == 5 and throttle.max_retries == 1


async def test_float_rounding_in_the_refill_never_stalls_the_bucket() -> None:
    clock = FakeClock()
    clock.now = 9.87654321e8  # a large clock value: tiny increments would vanish in rounding
    bucket = TokenBucket(7, clock=clock, sleep=clock.sleep)
    for _ in range(200):
        await bucket.acquire()
    assert len(clock.sleeps) < 400
    assert all(s >= 0.001 for s in clock.sleeps)
