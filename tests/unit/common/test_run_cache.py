"""common.run_cache: values shared by the batches of one run, never outside a run."""

from __future__ import annotations

import uuid
from datetime import date

from common.run_cache import RunCache

DAY = date(2026, 11, 24)


def test_a_value_is_shared_within_its_run_only() -> None:
    cache: RunCache[str] = RunCache()
    run, other = uuid.uuid4(), uuid.uuid4()
    cache.put(DAY, run, "panel")
    assert cache.get(DAY, run) == "panel"
    assert cache.get(DAY, other) is None
    assert cache.get(date(2026, 11, 23), run) is None


def test_nothing_is_cached_outside_a_run() -> None:
    cache: RunCache[str] = RunCache()
    cache.put(DAY, None, "panel")
    assert cache.get(DAY, None) is None


def test_the_least_recently_used_run_is_dropped_beyond_the_size() -> None:
    cache: RunCache[int] = RunCache(size=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.put(DAY, a, 1)
    cache.put(DAY, b, 2)
    assert cache.get(DAY, a) == 1  # a is now the most recent
    cache.put(DAY, c, 3)
    assert cache.get(DAY, b) is None
    assert (cache.get(DAY, a), cache.get(DAY, c)) == (1, 3)
