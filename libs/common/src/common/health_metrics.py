"""Health series refreshed on every scrape of `/metrics`: readiness and queue depths.

Alerts need them as metrics (docs/operations.md): a service that is up but cannot reach its database
or broker (`sigmasight_<svc>_ready` = 0), and messages parked in a dead-letter queue
(`sigmasight_<svc>_dlq_messages` > 0). Computing them at scrape time keeps them exactly as fresh as
the scrape, with no background loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from common import metrics

if TYPE_CHECKING:
    from common.service import Plumbing

log = logging.getLogger(__name__)

# A scrape must answer even when the database or broker hangs; Prometheus' default timeout is 10 s.
SCRAPE_BUDGET_SECONDS = 2.0
READY_VALUES = (True, "ok", "in_process")


def checks_pass(checks: Mapping[str, Any]) -> bool:
    """Whether readiness checks (`/readyz`) all passed."""
    return all(value in READY_VALUES for value in checks.values())


def ready_gauge(service: str) -> Gauge:
    """`sigmasight_<svc>_ready`: 1 when database and broker checks pass (what /readyz answers), else 0."""
    return metrics.gauge(service, "ready", "1 when the database and broker checks pass (/readyz), else 0")


def queue_gauge(service: str) -> Gauge:
    """`sigmasight_<svc>_queue_messages{queue}`: messages waiting in the service's consumer queues."""
    return metrics.gauge(service, "queue_messages", "Messages ready in a consumer queue", ("queue",))


def dlq_gauge(service: str) -> Gauge:
    """`sigmasight_<svc>_dlq_messages{queue}`: messages parked in the dead-letter queue of a consumer queue."""
    return metrics.gauge(service, "dlq_messages", "Messages in the dead-letter queue of a consumer queue", ("queue",))


async def observe(plumbing: Plumbing) -> None:
    """Set the readiness gauge and, when the service is ready, the queue-depth gauges."""
    try:
        async with asyncio.timeout(SCRAPE_BUDGET_SECONDS):
            ok = checks_pass(await plumbing.ready())
    except Exception as exc:  # a hung or failing check is "not ready", never a failed scrape
        log.warning("readiness check of %s failed: %r", plumbing.name, exc)
        ok = False
    ready_gauge(plumbing.name).set(1 if ok else 0)
    if not ok:
        return
    try:
        async with asyncio.timeout(SCRAPE_BUDGET_SECONDS):
            depths = await plumbing.bus.queue_depths()
    except Exception as exc:  # the queue gauges keep their last values
        log.warning("queue depths of %s unavailable: %r", plumbing.name, exc)
        return
    queued, dead = queue_gauge(plumbing.name), dlq_gauge(plumbing.name)
    for queue, (ready_count, dead_count) in depths.items():
        queued.labels(queue).set(ready_count)
        dead.labels(queue).set(dead_count)
