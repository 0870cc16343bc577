"""Splitting one step trigger into units of work of at most CHUNK_PORTFOLIOS portfolios.

Why: the greeks step is the only step between prices and everything else, and one unit of work
for a 1,000-portfolio run published every greeks.computed at the end (~0.5 s in), leaving the
second core idle meanwhile. Committed chunk by chunk, ingest values the first portfolios while
greeks computes the rest.

Exactly once still holds per chunk: each chunk claims its own inbox key, derived from the event
id and the chunk's place in the event's portfolio list. That list is frozen in the event
(`portfolio_ids`, the run's scope resolved when the run was created), so a redelivery after a
crash splits it identically, skips the chunks already committed and computes the rest. A trigger
without a frozen list (scope "all active", resolved when handled) or with one chunk's worth of
portfolios stays one unit of work claiming the event itself, exactly as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from uuid import UUID

from common.events import CycleStarted, PricesUpdated

CHUNK_PORTFOLIOS = 128


def chunk_event_id(event_id: UUID, index: int, count: int) -> UUID:
    """Inbox key of chunk `index` (0-based) of `count` chunks of the event `event_id`."""
    return uuid.uuid5(event_id, f"greeks-chunk/{index}/{count}")


def scope_chunks(
    evt: PricesUpdated | CycleStarted,
) -> Iterator[tuple[PricesUpdated | CycleStarted, list[UUID] | None]]:
    """(event to claim, portfolio ids to compute) per unit of work, in the event's portfolio order."""
    size = CHUNK_PORTFOLIOS
    ids = None if evt.portfolio_ids is None else list(dict.fromkeys(evt.portfolio_ids))
    if ids is None or len(ids) <= size:
        yield evt, ids
        return
    count = -(-len(ids) // size)
    for index in range(count):
        claim = evt.model_copy(update={"event_id": chunk_event_id(evt.event_id, index, count)})
        yield claim, ids[index * size : (index + 1) * size]
