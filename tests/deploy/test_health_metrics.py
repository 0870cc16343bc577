"""The scrape-time series behind SigmaSightDeadLetters and SigmaSightServiceNotReady, on a real
RabbitMQ: a permanently failing event shows in `sigmasight_<svc>_dlq_messages{queue}`, and a failing
or hanging readiness check sets `sigmasight_<svc>_ready` to 0 without failing the scrape."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from prometheus_client import REGISTRY

from common import health_metrics
from common.bus import AmqpBus, Bus
from common.events import PricesUpdated
from common.testing import wait_until

pytestmark = pytest.mark.integration


@dataclass
class FakePlumbing:
    """What `health_metrics.observe` reads from a service's Plumbing."""

    name: str
    bus: Bus
    checks: Any

    async def ready(self) -> dict[str, Any]:
        return dict(await self.checks())


def sample(metric: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


async def test_dead_lettered_event_shows_in_the_dlq_gauge(amqp_url: str) -> None:
    bus = AmqpBus(amqp_url, namespace=f"health{uuid.uuid4().hex[:8]}")

    async def broken(evt: PricesUpdated) -> None:
        raise ValueError("permanent: bad data")

    bus.subscribe("deploytest", PricesUpdated, broken)
    await bus.start()
    try:
        await bus.publish(PricesUpdated(as_of=date(2026, 11, 24), producer="marketdata"))
        await wait_until(lambda: bus.queue_depth("deploytest.prices.updated.dlq"), timeout=10)

        async def ok() -> dict[str, Any]:
            return {"database": True, "broker": await bus.ping()}

        await health_metrics.observe(FakePlumbing("deploytest", bus, ok))
        assert sample("sigmasight_deploytest_ready") == 1
        assert sample("sigmasight_deploytest_dlq_messages", queue="deploytest.prices.updated") == 1
        assert sample("sigmasight_deploytest_queue_messages", queue="deploytest.prices.updated") == 0
    finally:
        channel = await bus._connection.channel()
        for queue in ("deploytest.prices.updated", "deploytest.prices.updated.dlq"):
            await channel.queue_delete(f"{bus.namespace}{queue}")
        await channel.exchange_delete(bus.exchange_name)
        await channel.exchange_delete(bus.dlx_name)
        await channel.close()
        await bus.close()


async def test_failing_or_hanging_readiness_reads_as_not_ready(amqp_url: str, monkeypatch: Any) -> None:
    bus = AmqpBus(amqp_url)

    async def database_down() -> dict[str, Any]:
        return {"database": False, "broker": True}

    await health_metrics.observe(FakePlumbing("deployready", bus, database_down))
    assert sample("sigmasight_deployready_ready") == 0

    async def up() -> dict[str, Any]:
        return {"database": True, "broker": "in_process"}

    await health_metrics.observe(FakePlumbing("deployready", bus, up))
    assert sample("sigmasight_deployready_ready") == 1

    async def hangs() -> dict[str, Any]:
        await asyncio.sleep(60)
        return {}

    monkeypatch.setattr(health_metrics, "SCRAPE_BUDGET_SECONDS", 0.2)
    await health_metrics.observe(FakePlumbing("deployready", bus, hangs))
    assert sample("sigmasight_deployready_ready") == 0
