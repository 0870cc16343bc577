"""The #21 read cache: hits within the TTL, expires after it, clears on writes, stays bounded."""

from __future__ import annotations

import time

from ingest.summary_cache import SummaryCache


def test_entry_is_served_within_ttl_and_expires_after_it() -> None:
    cache = SummaryCache(ttl=0.05)
    cache.put("k", {"equity": "1.00"})
    assert cache.get("k") == {"equity": "1.00"}
    time.sleep(0.06)
    assert cache.get("k") is None


def test_clear_drops_every_entry_whatever_arguments_the_hook_passes() -> None:
    cache = SummaryCache()
    cache.put("a", 1)
    cache.put("b", 2)
    cache.clear(["an emitted event"])
    assert cache.get("a") is None and cache.get("b") is None


def test_oldest_entries_are_evicted_past_the_size_limit() -> None:
    cache = SummaryCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert cache.get("a") is None
    assert (cache.get("b"), cache.get("c")) == (2, 3)


async def test_concurrent_misses_share_one_computation() -> None:
    import asyncio

    cache = SummaryCache()
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return "summary"

    results = await asyncio.gather(*(cache.get_or_compute("k", compute) for _ in range(32)))
    assert results == ["summary"] * 32
    assert calls == 1


async def test_a_write_during_the_computation_keeps_the_result_out_of_the_cache() -> None:
    import asyncio

    cache = SummaryCache()

    async def compute() -> str:
        await asyncio.sleep(0)
        cache.clear()  # a commit lands while the query runs
        return "old"

    assert await cache.get_or_compute("k", compute) == "old"
    assert cache.get("k") is None
