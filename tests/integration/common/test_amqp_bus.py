"""AmqpBus against a real RabbitMQ: delivery, retry bound, dead-lettering, request/reply."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest

from common.bundles import Outgoing
from common.bus import AmqpBus, InProcessBus
from common.errors import TransientError
from common.events import PricesUpdated
from common.testing import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def bus(amqp_url: str):
    b = AmqpBus(amqp_url, namespace=f"test{uuid.uuid4().hex[:8]}", prefetch=4)
    yield b
    await b.close()


async def _delete_namespace_queues(bus: AmqpBus, names: list[str]) -> None:
    channel = await bus._connection.channel()
    for name in names:
        for q in (f"{bus.namespace}{name}", f"{bus.namespace}{name}.dlq"):
            await channel.queue_delete(q)
    await channel.exchange_delete(bus.exchange_name)
    await channel.exchange_delete(bus.dlx_name)
    await channel.close()


async def test_event_is_delivered_and_acked(bus: AmqpBus) -> None:
    got: list[PricesUpdated] = []

    async def handler(evt: PricesUpdated) -> None:
        got.append(evt)

    bus.subscribe("greeks", PricesUpdated, handler)
    await bus.start()
    sent = PricesUpdated(as_of=date(2026, 11, 24), symbols=["AAPL", "MSFT"], producer="marketdata")
    await bus.publish(sent)
    await wait_until(lambda: len(got) == 1, timeout=10)
    assert got[0].event_id == sent.event_id and got[0].symbols == ["AAPL", "MSFT"]
    await asyncio.sleep(0.3)
    assert await bus.queue_depth("greeks.prices.updated") == 0
    await _delete_namespace_queues(bus, ["greeks.prices.updated"])


async def test_transient_failure_is_retried_then_dead_lettered(bus: AmqpBus) -> None:
    attempts: list[int] = []

    async def flaky(evt: PricesUpdated) -> None:
        attempts.append(1)
        raise TransientError("database away")

    bus.subscribe("greeks", PricesUpdated, flaky)
    await bus.start()
    await bus.publish(PricesUpdated(as_of=date(2026, 11, 24), producer="marketdata"))
    await wait_until(lambda: len(attempts) >= 5, timeout=20)
    await asyncio.sleep(1.0)
    assert len(attempts) <= 6  # bounded by x-delivery-limit
    await wait_until(lambda: bus.queue_depth("greeks.prices.updated.dlq"), timeout=10)
    assert await bus.queue_depth("greeks.prices.updated.dlq") == 1
    await _delete_namespace_queues(bus, ["greeks.prices.updated"])


async def test_permanent_failure_goes_straight_to_dlq(bus: AmqpBus) -> None:
    attempts: list[int] = []

    async def broken(evt: PricesUpdated) -> None:
        attempts.append(1)
        raise ValueError("bad data")

    bus.subscribe("greeks", PricesUpdated, broken)
    await bus.start()
    await bus.publish(PricesUpdated(as_of=date(2026, 11, 24), producer="marketdata"))
    await wait_until(lambda: bus.queue_depth("greeks.prices.updated.dlq"), timeout=10)
    assert len(attempts) == 1
    await _delete_namespace_queues(bus, ["greeks.prices.updated"])


async def test_request_reply_over_direct_reply_to(bus: AmqpBus) -> None:
    async def double(payload: dict) -> dict:
        return {"value": payload["value"] * 2}

    bus.respond("greeks.evaluate", double)
    await bus.start()
    assert await bus.request("greeks.evaluate", {"value": 21}, timeout=5) == {"value": 42}
    channel = await bus._connection.channel()
    await channel.queue_delete(f"{bus.namespace}rpc.greeks.evaluate")
    await channel.close()


async def test_in_process_bus_retries_transient_then_dead_letters() -> None:
    bus = InProcessBus(retry_delay=0.001)
    attempts: list[int] = []

    async def flaky(evt: PricesUpdated) -> None:
        attempts.append(1)
        raise TransientError("nope")

    bus.subscribe("greeks", PricesUpdated, flaky)
    await bus.start()
    await bus.publish(PricesUpdated(as_of=date(2026, 11, 24)))
    await bus.drain()
    assert len(attempts) == 5
    assert len(bus.dead_letters) == 1 and bus.dead_letters[0].queue == "greeks.prices.updated"
    await bus.close()


async def _batch_roundtrip(bus, publish_count: int = 20) -> tuple[list[int], list[str]]:
    """Publish `publish_count` events to a batch subscription; one of them is poisoned."""
    sizes: list[int] = []
    handled: list[str] = []
    poisoned = "POISON"

    async def handler(events: list[PricesUpdated]) -> None:
        if any(poisoned in e.symbols for e in events):
            raise ValueError("bad event in batch")
        sizes.append(len(events))
        handled.extend(e.symbols[0] for e in events)

    bus.subscribe_batch("greeks", PricesUpdated, handler, max_batch=8, max_wait=0.05)
    await bus.start()
    for i in range(publish_count):
        symbol = poisoned if i == 5 else f"S{i}"
        await bus.publish(PricesUpdated(as_of=date(2026, 11, 24), symbols=[symbol]))
    return sizes, handled


async def test_in_process_batch_subscription_batches_and_isolates_a_bad_event() -> None:
    bus = InProcessBus(retry_delay=0.001)
    sizes, handled = await _batch_roundtrip(bus)
    await bus.drain()
    assert sorted(handled) == sorted(f"S{i}" for i in range(20) if i != 5)
    assert max(sizes) > 1  # events really arrived together
    assert [d.error for d in bus.dead_letters] == ["dlq"]
    await bus.close()


async def test_amqp_batch_subscription_batches_acks_and_dead_letters_only_the_bad_event(bus: AmqpBus) -> None:
    sizes, handled = await _batch_roundtrip(bus)
    await wait_until(lambda: len(handled) == 19, timeout=15)
    assert max(sizes) > 1
    await wait_until(lambda: bus.queue_depth("greeks.prices.updated.dlq"), timeout=10)
    assert await bus.queue_depth("greeks.prices.updated.dlq") == 1
    assert await bus.queue_depth("greeks.prices.updated") == 0
    await _delete_namespace_queues(bus, ["greeks.prices.updated"])


def _outgoing(events: list[PricesUpdated]) -> list[Outgoing]:
    return [Outgoing(e.model_dump_json().encode(), str(e.event_id), "marketdata") for e in events]


async def _declared(amqp_url: str, namespace: str, subscribe) -> None:  # type: ignore[no-untyped-def]
    """Declare a subscription's queues (a bus that subscribes, starts and closes) so that messages
    published before the consumer starts wait in the queue and can be counted."""
    probe = AmqpBus(amqp_url, namespace=namespace)
    subscribe(probe)
    await probe.start()
    await probe.close()


async def test_bundle_is_one_message_and_a_failing_envelope_is_retried_or_dead_lettered_alone(amqp_url: str) -> None:
    namespace = f"test{uuid.uuid4().hex[:8]}"
    handled: list[str] = []
    tries: dict[str, int] = {}

    async def handler(evt: PricesUpdated) -> None:
        symbol = evt.symbols[0]
        tries[symbol] = tries.get(symbol, 0) + 1
        if symbol == "FLAKY" and tries[symbol] < 3:
            raise TransientError("database away")
        if symbol == "POISON":
            raise ValueError("bad data")
        handled.append(symbol)

    await _declared(amqp_url, namespace, lambda b: b.subscribe("greeks", PricesUpdated, handler))
    bus = AmqpBus(amqp_url, namespace=namespace, prefetch=4)
    try:
        symbols = [f"S{i}" for i in range(10)] + ["FLAKY", "POISON"]
        await bus.publish_many(
            "prices.updated", _outgoing([PricesUpdated(as_of=date(2026, 11, 24), symbols=[s]) for s in symbols])
        )
        assert await bus.queue_depth("greeks.prices.updated") == 1  # twelve events, one message
        bus.subscribe("greeks", PricesUpdated, handler)
        await bus.start()
        await wait_until(lambda: len(handled) == 11, timeout=15)
        await wait_until(lambda: bus.queue_depth("greeks.prices.updated.dlq"), timeout=10)
        await asyncio.sleep(0.3)
        assert sorted(handled) == sorted(s for s in symbols if s != "POISON")
        assert tries["FLAKY"] == 3 and tries["POISON"] == 1
        assert all(tries[s] == 1 for s in symbols[:10])  # the bundle's good envelopes ran once
        assert await bus.queue_depth("greeks.prices.updated.dlq") == 1
        assert await bus.queue_depth("greeks.prices.updated") == 0
        await _delete_namespace_queues(bus, ["greeks.prices.updated"])
    finally:
        await bus.close()


async def test_batch_subscription_unpacks_bundles_and_dead_letters_only_the_bad_envelope(amqp_url: str) -> None:
    namespace = f"test{uuid.uuid4().hex[:8]}"
    sizes: list[int] = []
    handled: list[str] = []

    async def handler(events: list[PricesUpdated]) -> None:
        if any("POISON" in e.symbols for e in events):
            raise ValueError("bad event in batch")
        sizes.append(len(events))
        handled.extend(e.symbols[0] for e in events)

    def subscribe(b: AmqpBus) -> None:
        b.subscribe_batch("greeks", PricesUpdated, handler, max_batch=8, max_wait=0.05)

    await _declared(amqp_url, namespace, subscribe)
    bus = AmqpBus(amqp_url, namespace=namespace)
    try:
        symbols = ["POISON" if i == 5 else f"S{i}" for i in range(20)]
        events = [PricesUpdated(as_of=date(2026, 11, 24), symbols=[s]) for s in symbols]
        await bus.publish_many("prices.updated", _outgoing(events))
        assert await bus.queue_depth("greeks.prices.updated") == 1
        subscribe(bus)
        await bus.start()
        await wait_until(lambda: len(handled) == 19, timeout=15)
        await wait_until(lambda: bus.queue_depth("greeks.prices.updated.dlq"), timeout=10)
        await asyncio.sleep(0.3)
        assert sorted(handled) == sorted(s for s in symbols if s != "POISON")
        assert max(sizes) == 8  # a 20-envelope bundle is cut into batches of at most max_batch
        assert await bus.queue_depth("greeks.prices.updated.dlq") == 1
        assert await bus.queue_depth("greeks.prices.updated") == 0
        await _delete_namespace_queues(bus, ["greeks.prices.updated"])
    finally:
        await bus.close()
