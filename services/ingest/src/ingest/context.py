"""What the ingest routers need: settings, database, bus and plumbing.

`main.create_service()` builds one `IngestContext` and passes it to every router factory, so they
share one outbox, job ledger and runner. Contract with the upload/onboarding part of the package:

* `ingest.api_upload.create_upload_router(ctx: IngestContext) -> APIRouter` is included by
  `main.py`. The factory may also subscribe bus handlers (before the bus starts) and append
  coroutines to `ctx.on_start` / `ctx.background`; `main.py` hands both lists to the `Service`.
  Queues are `<consumer>.<routing_key>` and competing consumers share a queue, so a handler for a
  routing key the book part already consumes (`greeks.computed`, `cycle.started`) must use its
  own consumer name (e.g. `ingest.onboarding`), never plain `ingest`.
* Portfolio resolution for portfolio-scoped routes: `ingest.access.resolve_portfolio`.
* Tag naming rules and the per-user advisory lock: `ingest.tag_rules`; finding or creating a
  user's tags inside a transaction: `ingest.repository.ensure_tags`.
* Tables: `ingest.models` (one `metadata`); migration `0002_*` revises `ingest_0001`.
* Demo reset calls `ingest.upload.store.delete_for_user(session, user_id)` inside the reset
  transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from common.bus import Bus
from common.db import Database
from common.service import Plumbing
from ingest.settings import Settings

SERVICE = "ingest"


@dataclass(frozen=True)
class IngestContext:
    """Shared handles for the ingest service's routers, handlers and jobs."""

    settings: Settings
    db: Database
    bus: Bus
    plumbing: Plumbing
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
