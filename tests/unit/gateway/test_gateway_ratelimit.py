"""Rolling-window rate limiter: per-user limit, login throttle, headers."""

from __future__ import annotations

from gateway.ratelimit import SlidingWindowLimiter


class Clock:
    def __init__(self, now: float = 1_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_hundred_requests_pass_and_the_next_is_refused() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(100, 60, clock=clock)
    decisions = [limiter.hit("u") for _ in range(100)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions[:3]] == [99, 98, 97]
    assert decisions[-1].remaining == 0
    refused = limiter.hit("u")
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.limit == 100


def test_a_request_counts_for_a_full_window_then_frees_its_slot() -> None:
    clock = Clock(1_000.25)
    limiter = SlidingWindowLimiter(2, 60, clock=clock)
    assert limiter.hit("u").allowed
    clock.now = 1_030.0
    second = limiter.hit("u")
    assert second.allowed
    assert second.reset_seconds == 31  # the first request (second 1000) leaves at 1061
    clock.now = 1_059.9
    refused = limiter.hit("u")
    assert not refused.allowed
    assert refused.reset_seconds == 2
    clock.now = 1_060.9  # still inside 60 s of the first request
    assert not limiter.hit("u").allowed
    clock.now = 1_061.0
    freed = limiter.hit("u")
    assert freed.allowed  # the first request left the window
    assert freed.remaining == 0
    assert freed.reset_seconds == 30  # now the 1030 request is the oldest


def test_never_more_than_limit_in_any_rolling_window() -> None:
    clock = Clock(5_000.0)
    limiter = SlidingWindowLimiter(10, 60, clock=clock)
    accepted: list[float] = []
    for step in range(2_000):  # a request every 0.37 s for ~12 minutes
        clock.now = 5_000.0 + step * 0.37
        if limiter.hit("u").allowed:
            accepted.append(clock.now)
    for i, t in enumerate(accepted):
        window = [x for x in accepted[i:] if x < t + 60]
        assert len(window) <= 10
    # and the limiter is not stingy: about 10 per 61 s get through
    assert len(accepted) >= 10 * (2_000 * 0.37 / 61) - 10


def test_keys_are_independent_and_idle_keys_are_forgotten() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(1, 60, clock=clock)
    assert limiter.hit("a").allowed
    assert not limiter.hit("a").allowed
    assert limiter.hit("b").allowed
    assert len(limiter) == 2
    clock.now += 62
    assert limiter.hit("c").allowed  # inserting a key evicts those idle for a whole window
    assert len(limiter) == 1


def test_login_throttle_is_per_ip_and_email() -> None:
    clock = Clock()
    throttle = SlidingWindowLimiter(10, 60, clock=clock)
    for _ in range(10):
        assert throttle.hit(("203.0.113.9", "a@example.com")).allowed
    assert not throttle.hit(("203.0.113.9", "a@example.com")).allowed
    assert throttle.hit(("203.0.113.9", "b@example.com")).allowed
    assert throttle.hit(("198.51.100.7", "a@example.com")).allowed


def test_headers_carry_limit_remaining_reset_and_retry_after() -> None:
    clock = Clock(100.5)
    limiter = SlidingWindowLimiter(1, 60, clock=clock)
    ok = dict(limiter.hit("u").headers())
    assert ok == {b"x-ratelimit-limit": b"1", b"x-ratelimit-remaining": b"0", b"x-ratelimit-reset": b"61"}
    refused = limiter.hit("u")
    assert dict(refused.headers())[b"retry-after"] == b"61"
    assert refused.header_dict()["retry-after"] == "61"


def test_key_capacity_is_bounded() -> None:
    limiter = SlidingWindowLimiter(5, 60, clock=Clock(), max_keys=3)
    for key in range(10):
        limiter.hit(key)
    assert len(limiter) == 3
