"""Rolling-window rate limiter (api.md §2.3), in memory, O(1) amortised per request.

Each key (user id, or client IP + email for logins) keeps one counter per second of the window in a
small ring; a request advances the ring (clearing the seconds that left the window), checks the
running total and records itself. A request counts for at least `window` seconds: a request made
during second s leaves the window at s + window + 1, so no key ever gets more than `limit` requests
into any rolling `window`-second interval. Idle keys are evicted oldest-first (an OrderedDict in
last-use order), so memory is bounded by the keys active in the last window.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of one hit: allowed or not, and the X-RateLimit-* values."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # seconds until a slot frees (0 when nothing is counted)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """X-RateLimit-Limit / -Remaining / -Reset (+ Retry-After when refused), as ASGI headers."""
        out = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_seconds).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(max(1, self.reset_seconds)).encode()))
        return out

    def header_dict(self) -> dict[str, str]:
        """The same headers as a str dict (for FastAPI responses and ApiError headers)."""
        return {k.decode(): v.decode() for k, v in self.headers()}


class _Window:
    __slots__ = ("counts", "last", "oldest", "total")

    def __init__(self, slots: int, now_s: int) -> None:
        self.counts = [0] * slots
        self.total = 0
        self.last = now_s  # newest second seen
        self.oldest = now_s  # oldest second that may still hold requests


class SlidingWindowLimiter:
    """`limit` requests per rolling `window` seconds per key."""

    def __init__(
        self, limit: int, window: int = 60, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 1_000_000
    ) -> None:
        self.limit = limit
        self.window = window
        self.slots = window + 1
        self.clock = clock
        self.max_keys = max_keys
        self._windows: OrderedDict[Hashable, _Window] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def hit(self, key: Hashable) -> Decision:
        """Count one request for `key` if it fits; the decision carries the header values."""
        now = self.clock()
        now_s = int(now)
        windows = self._windows
        win = windows.get(key)
        if win is None:
            self._evict(now_s)
            win = _Window(self.slots, now_s)
            windows[key] = win
        else:
            windows.move_to_end(key)
            self._advance(win, now_s)
        allowed = win.total < self.limit
        if allowed:
            win.counts[now_s % self.slots] += 1
            win.total += 1
        return Decision(allowed, self.limit, self.limit - win.total, self._reset(win, now))

    def _advance(self, win: _Window, now_s: int) -> None:
        """Drop the seconds that left the window (each slot is cleared at most once per second)."""
        if now_s <= win.last:
            return
        first_expired = win.last - self.window  # slots (last - window) .. (now_s - window - 1) expire
        last_expired = now_s - self.window - 1
        if now_s - win.last >= self.slots:
            win.counts = [0] * self.slots
            win.total = 0
            win.oldest = now_s
        else:
            counts = win.counts
            for second in range(max(first_expired, win.oldest), last_expired + 1):
                idx = second % self.slots
                win.total -= counts[idx]
                counts[idx] = 0
        win.last = now_s
        if win.oldest <= last_expired:
            win.oldest = last_expired + 1

    def _reset(self, win: _Window, now: float) -> int:
        """Seconds until the oldest counted request leaves the window."""
        if win.total == 0:
            return 0
        counts = win.counts
        second = win.oldest
        # `oldest` only moves forward, so this scan is amortised O(1) per request.
        while counts[second % self.slots] == 0 and second < win.last:
            second += 1
        win.oldest = second
        return max(1, math.ceil(second + self.slots - now))

    def _evict(self, now_s: int) -> None:
        """Forget keys idle for a whole window (oldest-used first), and cap the number of keys."""
        windows = self._windows
        horizon = now_s - self.slots
        while windows:
            key, win = next(iter(windows.items()))
            if win.last >= horizon and len(windows) < self.max_keys:
                break
            del windows[key]
