"""The event bus: one interface, two transports (CONVENTIONS.md "Event bus").

* `AmqpBus` on aio-pika: durable topic exchange `sigmasight.events`, a quorum queue
  `<consumer>.<routing_key>` per subscription with `x-delivery-limit` and a dead-letter queue
  `<queue>.dlq`, publisher confirms, prefetch, manual ack after the handler returned (handlers
  commit before returning), robust reconnect, request/reply over direct reply-to.
* `InProcessBus`: the same interface in memory for all-in-one mode and fast tests, with the same
  retry/dead-letter semantics.

Handlers depend only on `Bus`; only this module imports aio_pika.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from common import metrics
from common.bundles import BUNDLE_HEADER, Envelope, Outgoing, Settlement, chunks, encode, unpack
from common.errors import TransientError
from common.events import Event, decode
from common.formatting import json_default
from common.logging import event_id_var, run_id_var

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
Handler = Callable[[Any], Awaitable[None]]
RpcHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

EXCHANGE = "sigmasight.events"
DLX = "sigmasight.dlx"
DELIVERY_LIMIT = 5
RPC_TIMEOUT_SECONDS = 30.0


@dataclass
class Subscription:
    """One consumer's interest in one routing key."""

    consumer: str
    event_type: type[Event]
    handler: Handler
    concurrency: int
    # Batch subscriptions receive lists of up to `max_batch` events gathered for up to `max_wait` s.
    max_batch: int = 1
    max_wait: float = 0.0

    @property
    def batched(self) -> bool:
        return self.max_batch > 1

    @property
    def routing_key(self) -> str:
        return self.event_type.routing_key

    @property
    def queue(self) -> str:
        return f"{self.consumer}.{self.routing_key}"


@dataclass
class DeadLetter:
    """A message that exhausted its retries or failed permanently (in-process transport)."""

    queue: str
    routing_key: str
    body: bytes
    error: str
    attempts: int


class Outcome:
    OK = "ok"
    RETRY = "retry"
    DLQ = "dlq"


async def run_handler(sub: Subscription, event: Event) -> str:
    """Call a subscription's handler with log context; classify the result (ok / retry / dlq)."""
    service = sub.consumer
    tok_e = event_id_var.set(str(event.event_id))
    tok_r = run_id_var.set(str(event.run_id) if event.run_id else None)
    try:
        await sub.handler(event)
        outcome = Outcome.OK
    except TransientError as exc:
        log.warning("transient failure in %s on %s: %s", sub.queue, event.event_id, exc)
        outcome = Outcome.RETRY
    except Exception:
        log.exception("handler %s failed permanently on event %s", sub.queue, event.event_id)
        outcome = Outcome.DLQ
    finally:
        event_id_var.reset(tok_e)
        run_id_var.reset(tok_r)
    metrics.events_consumed(service).labels(sub.routing_key, outcome).inc()
    return outcome


async def run_batch(sub: Subscription, events: list[Event]) -> str:
    """Call a batch subscription's handler once for `events`; classify the result."""
    started = time.perf_counter()
    try:
        await sub.handler(events)
        outcome = Outcome.OK
    except TransientError as exc:
        log.warning("transient failure in %s on a batch of %d: %s", sub.queue, len(events), exc)
        outcome = Outcome.RETRY
    except Exception:
        log.exception("batch handler %s failed on %d event(s)", sub.queue, len(events))
        outcome = Outcome.DLQ
    metrics.events_consumed(sub.consumer).labels(sub.routing_key, outcome).inc(len(events))
    metrics.batch_handler_duration(sub.consumer).labels(sub.routing_key).observe(time.perf_counter() - started)
    return outcome


def single(sub: Subscription) -> Subscription:
    """A batch subscription seen as a one-event subscription (used to isolate a failing batch)."""

    async def one(event: Event) -> None:
        await sub.handler([event])

    return Subscription(sub.consumer, sub.event_type, one, sub.concurrency)


class Bus(ABC):
    """publish / subscribe / request / respond / start / close (CONVENTIONS.md)."""

    kind: str = "abstract"

    def __init__(self, *, namespace: str = "", prefetch: int = 8) -> None:
        self.namespace = f"{namespace}." if namespace and not namespace.endswith(".") else namespace
        self.prefetch = prefetch
        self.subscriptions: list[Subscription] = []
        self.responders: dict[str, RpcHandler] = {}
        self.started = False

    def subscribe(
        self,
        consumer: str,
        event_type: type[E],
        handler: Callable[[E], Awaitable[None]],
        *,
        concurrency: int | None = None,
    ) -> None:
        """Register `handler` for `event_type` in the queue `<consumer>.<routing_key>`."""
        if self.started:
            raise RuntimeError("subscribe before start()")
        self.subscriptions.append(Subscription(consumer, event_type, handler, concurrency or self.prefetch))

    def subscriber(
        self, consumer: str, event_type: type[E], *, concurrency: int | None = None
    ) -> Callable[[Callable[[E], Awaitable[None]]], Callable[[E], Awaitable[None]]]:
        """Decorator form of `subscribe`."""

        def wrap(fn: Callable[[E], Awaitable[None]]) -> Callable[[E], Awaitable[None]]:
            self.subscribe(consumer, event_type, fn, concurrency=concurrency)
            return fn

        return wrap

    def subscribe_batch(
        self,
        consumer: str,
        event_type: type[E],
        handler: Callable[[list[E]], Awaitable[None]],
        *,
        max_batch: int = 64,
        max_wait: float = 0.02,
        concurrency: int | None = None,
    ) -> None:
        """Like `subscribe`, but the handler receives up to `max_batch` events at once (gathered for
        at most `max_wait` s), so per-event fixed costs (a transaction, a query) are paid once per
        batch. A batch that fails is re-run one event at a time, so one bad event cannot hold back
        the others and retry/dead-letter behaviour stays per event."""
        if self.started:
            raise RuntimeError("subscribe before start()")
        self.subscriptions.append(
            Subscription(consumer, event_type, handler, concurrency or 2, max_batch=max_batch, max_wait=max_wait)
        )

    def respond(self, name: str, handler: RpcHandler) -> None:
        """Serve request/reply calls on `rpc.<name>` (e.g. `greeks.evaluate`)."""
        self.responders[name] = handler

    async def publish(self, event: Event) -> None:
        """Publish an event (confirmed by the broker before returning)."""
        await self.publish_raw(
            event.routing_key,
            event.model_dump_json().encode(),
            message_id=str(event.event_id),
            producer=event.producer,
            correlation_id=event.correlation_id,
        )

    @abstractmethod
    async def publish_raw(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        producer: str,
        correlation_id: str | None = None,
    ) -> None:
        """Publish an already-encoded event body (used by the outbox relay)."""

    async def publish_many(self, routing_key: str, items: list[Outgoing]) -> None:
        """Publish encoded events of one routing key (the outbox relay's pending rows), all confirmed
        before returning. Here one by one, concurrently; RabbitMQ carries them in bundles."""
        await asyncio.gather(
            *(
                self.publish_raw(
                    routing_key,
                    item.body,
                    message_id=item.message_id,
                    producer=item.producer,
                    correlation_id=item.correlation_id,
                )
                for item in items
            )
        )

    @abstractmethod
    async def request(self, name: str, payload: dict[str, Any], timeout: float = RPC_TIMEOUT_SECONDS) -> dict[str, Any]:
        """Call `rpc.<name>` and wait for its reply."""

    @abstractmethod
    async def start(self) -> None:
        """Declare topology and start consuming."""

    @abstractmethod
    async def close(self) -> None:
        """Stop consuming and release connections."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the transport is usable (readiness)."""

    async def queue_depths(self) -> dict[str, tuple[int, int]]:
        """Messages waiting per subscription queue: `queue -> (ready, dead-lettered)`; empty when the
        transport has no broker-side queues (in-process)."""
        return {}

    def _count_published(self, producer: str, routing_key: str, outcome: str) -> None:
        metrics.events_published(producer or "unknown").labels(routing_key, outcome).inc()


@dataclass
class _Delivery:
    routing_key: str
    body: bytes
    attempts: int = 0


@dataclass
class _Lane:
    """In-process queue for one subscription, with its worker tasks."""

    sub: Subscription
    queue: asyncio.Queue[_Delivery] = field(default_factory=asyncio.Queue)
    workers: list[asyncio.Task[None]] = field(default_factory=list)


class InProcessBus(Bus):
    """In-memory transport with the same routing, retry and dead-letter behaviour as AmqpBus."""

    kind = "in_process"

    def __init__(self, *, namespace: str = "", prefetch: int = 8, retry_delay: float = 0.05) -> None:
        super().__init__(namespace=namespace, prefetch=prefetch)
        self.retry_delay = retry_delay
        self.dead_letters: list[DeadLetter] = []
        self._lanes: dict[str, list[_Lane]] = {}
        self._pending: list[tuple[str, bytes]] = []

    async def publish_raw(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        producer: str,
        correlation_id: str | None = None,
    ) -> None:
        self._count_published(producer, routing_key, Outcome.OK)
        if not self.started:
            self._pending.append((routing_key, body))
            return
        for lane in self._lanes.get(routing_key, []):
            lane.queue.put_nowait(_Delivery(routing_key, body))

    async def start(self) -> None:
        if self.started:
            return
        for sub in self.subscriptions:
            lane = _Lane(sub)
            lane.workers = [asyncio.create_task(self._work(lane)) for _ in range(sub.concurrency)]
            self._lanes.setdefault(sub.routing_key, []).append(lane)
        self.started = True
        pending, self._pending = self._pending, []
        for routing_key, body in pending:
            for lane in self._lanes.get(routing_key, []):
                lane.queue.put_nowait(_Delivery(routing_key, body))

    async def _work(self, lane: _Lane) -> None:
        while True:
            delivery = await lane.queue.get()
            if lane.sub.batched:
                batch = [delivery, *await self._gather(lane)]
                try:
                    await self._deliver_batch(lane, batch)
                finally:
                    for _ in batch:
                        lane.queue.task_done()
                continue
            try:
                await self._deliver(lane, delivery)
            finally:
                lane.queue.task_done()

    async def _gather(self, lane: _Lane) -> list[_Delivery]:
        """More deliveries for a batch: whatever is queued, waiting at most `max_wait` for more."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + lane.sub.max_wait
        more: list[_Delivery] = []
        while len(more) + 1 < lane.sub.max_batch:
            try:
                more.append(lane.queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                more.append(await asyncio.wait_for(lane.queue.get(), remaining))
            except TimeoutError:
                break
        return more

    async def _deliver_batch(self, lane: _Lane, batch: list[_Delivery]) -> None:
        decoded: list[tuple[_Delivery, Event]] = []
        for delivery in batch:
            try:
                decoded.append((delivery, decode(delivery.routing_key, delivery.body)))
            except Exception as exc:
                self._dead(lane, delivery, f"undecodable: {exc}")
        if not decoded:
            return
        if await run_batch(lane.sub, [event for _, event in decoded]) == Outcome.OK:
            return
        # Isolate: each event alone, with the usual per-event retries and dead-lettering.
        one = _Lane(single(lane.sub))
        for delivery, _ in decoded:
            await self._deliver(one, delivery)

    async def _deliver(self, lane: _Lane, delivery: _Delivery) -> None:
        try:
            event = decode(delivery.routing_key, delivery.body)
        except Exception as exc:
            self._dead(lane, delivery, f"undecodable: {exc}")
            return
        while True:
            delivery.attempts += 1
            outcome = await run_handler(lane.sub, event)
            if outcome == Outcome.OK:
                return
            if outcome == Outcome.RETRY and delivery.attempts < DELIVERY_LIMIT:
                await asyncio.sleep(self.retry_delay * delivery.attempts)
                continue
            self._dead(lane, delivery, outcome)
            return

    def _dead(self, lane: _Lane, delivery: _Delivery, error: str) -> None:
        log.error("dead-lettered %s after %d attempt(s): %s", lane.sub.queue, delivery.attempts, error)
        self.dead_letters.append(
            DeadLetter(lane.sub.queue, delivery.routing_key, delivery.body, error, delivery.attempts)
        )

    async def drain(self, timeout: float = 60.0) -> None:
        """Wait until every lane is empty and idle, including events published while draining."""

        async def settle() -> None:
            while True:
                lanes = [lane for group in self._lanes.values() for lane in group]
                if all(lane.queue._unfinished_tasks == 0 for lane in lanes):  # type: ignore[attr-defined]
                    await asyncio.sleep(0)
                    if all(lane.queue._unfinished_tasks == 0 for lane in lanes):  # type: ignore[attr-defined]
                        return
                await asyncio.gather(*(lane.queue.join() for lane in lanes))

        await asyncio.wait_for(settle(), timeout)

    async def request(self, name: str, payload: dict[str, Any], timeout: float = RPC_TIMEOUT_SECONDS) -> dict[str, Any]:
        handler = self.responders.get(name)
        if handler is None:
            raise TransientError(f"no responder for rpc.{name}")
        # Round-trip through JSON so both transports see exactly the same data.
        wire = orjson.loads(orjson.dumps(payload, default=json_default))
        reply = await asyncio.wait_for(handler(wire), timeout)
        result: dict[str, Any] = orjson.loads(orjson.dumps(reply, default=json_default))
        return result

    async def close(self) -> None:
        for group in self._lanes.values():
            for lane in group:
                for task in lane.workers:
                    task.cancel()
        for group in self._lanes.values():
            for lane in group:
                for task in lane.workers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        self._lanes.clear()
        self.started = False

    async def ping(self) -> bool:
        return True


class AmqpBus(Bus):
    """RabbitMQ transport on aio-pika (robust connection, quorum queues, DLQ, confirms)."""

    kind = "amqp"

    def __init__(self, url: str, *, namespace: str = "", prefetch: int = 8) -> None:
        super().__init__(namespace=namespace, prefetch=prefetch)
        self.url = url
        self._connection: Any = None
        self._publish_channel: Any = None
        self._exchange: Any = None
        self._dlx: Any = None
        self._consumer_channels: list[Any] = []
        self._rpc_channel: Any = None
        self._rpc_futures: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._rpc_lock = asyncio.Lock()
        self._rpc_ready = False

    @property
    def exchange_name(self) -> str:
        return f"{self.namespace}{EXCHANGE}"

    @property
    def dlx_name(self) -> str:
        return f"{self.namespace}{DLX}"

    def queue_name(self, sub: Subscription) -> str:
        return f"{self.namespace}{sub.queue}"

    async def connect(self) -> None:
        """Open the robust connection and the confirmed publishing channel."""
        import aio_pika

        if self._connection is not None:
            return
        self._connection = await aio_pika.connect_robust(self.url, client_properties={"connection_name": "sigmasight"})
        self._publish_channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._publish_channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._dlx = await self._publish_channel.declare_exchange(
            self.dlx_name, aio_pika.ExchangeType.DIRECT, durable=True
        )

    async def start(self) -> None:
        import aio_pika

        if self.started:
            return
        await self.connect()
        for sub in self.subscriptions:
            channel = await self._connection.channel()
            # A batch subscription needs a whole batch (times its parallel batches) in flight.
            await channel.set_qos(prefetch_count=sub.concurrency * sub.max_batch)
            exchange = await channel.declare_exchange(self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
            dlx = await channel.declare_exchange(self.dlx_name, aio_pika.ExchangeType.DIRECT, durable=True)
            qname = self.queue_name(sub)
            dlq = await channel.declare_queue(f"{qname}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
            await dlq.bind(dlx, routing_key=qname)
            queue = await channel.declare_queue(
                qname,
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-delivery-limit": DELIVERY_LIMIT,
                    "x-dead-letter-exchange": self.dlx_name,
                    "x-dead-letter-routing-key": qname,
                },
            )
            await queue.bind(exchange, routing_key=sub.routing_key)
            consumer = self._batch_consumer(sub) if sub.batched else self._consumer(sub)
            await queue.consume(consumer, no_ack=False)
            self._consumer_channels.append(channel)
        for name, handler in self.responders.items():
            channel = await self._connection.channel()
            await channel.set_qos(prefetch_count=self.prefetch)
            queue = await channel.declare_queue(f"{self.namespace}rpc.{name}", durable=False, auto_delete=False)
            await queue.consume(self._rpc_server(channel, handler), no_ack=False)
            self._consumer_channels.append(channel)
        self.started = True

    async def _run_envelope(self, sub: Subscription, envelope: Envelope) -> str:
        if envelope.event is None:
            log.error("%s on %s; dead-lettering", envelope.error, sub.queue)
            return Outcome.DLQ
        return await run_handler(sub, envelope.event)

    async def _settle(self, sub: Subscription, settlement: Settlement) -> None:
        """Ack, requeue or dead-letter a message once each of its envelopes has an outcome."""
        message: Any = settlement.message
        if settlement.size == 1:
            outcome = settlement.outcomes[0][1]
            if outcome == Outcome.OK:
                await message.ack()
            else:
                # RETRY requeues: the quorum queue counts deliveries and dead-letters past the limit.
                await message.reject(requeue=outcome == Outcome.RETRY)
            return
        # A bundle: its unfinished envelopes go on as messages of their own (confirmed) before the
        # ack, so a crash in between re-delivers the bundle and the handled envelopes are dropped
        # as repeated event ids.
        for envelope, outcome in settlement.outcomes:
            if outcome != Outcome.OK:
                await self._send_alone(sub, envelope, dead=outcome != Outcome.RETRY)
        await message.ack()

    async def _send_alone(self, sub: Subscription, envelope: Envelope, *, dead: bool) -> None:
        """One envelope of a bundle back to the subscription's queue (retry) or to its dead-letter
        queue, as a single-envelope message."""
        import aio_pika

        message = aio_pika.Message(
            envelope.body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(envelope.event.event_id) if envelope.event is not None else None,
            type=sub.routing_key,
        )
        queue = self.queue_name(sub)
        if dead:
            await self._dlx.publish(message, routing_key=queue)  # the DLX routes on the queue name
        else:
            await self._publish_channel.default_exchange.publish(message, routing_key=queue)

    def _consumer(self, sub: Subscription) -> Callable[[Any], Awaitable[None]]:
        async def on_message(message: Any) -> None:
            envelopes = unpack(sub.routing_key, message.body)
            settlement = Settlement(message, len(envelopes))
            for envelope in envelopes:
                settlement.record(envelope, await self._run_envelope(sub, envelope))
            await self._settle(sub, settlement)

        return on_message

    def _batch_consumer(self, sub: Subscription) -> Callable[[Any], Awaitable[None]]:
        """Gather envelopes into batches of up to `max_batch` (or whatever arrived within
        `max_wait`), run the handler once, settle each message when all its envelopes are done; a
        failed batch is re-run event by event.

        At most `sub.concurrency` handler calls run at once: deliveries that arrive while they run
        wait in the buffer and make the next batch bigger, instead of each starting its own small
        batch that then queues for database connections and locks.
        """
        buffer: list[tuple[Settlement, Envelope]] = []
        slots = asyncio.Semaphore(max(1, sub.concurrency))
        alone = single(sub)

        async def flush() -> None:
            while True:
                async with slots:
                    if not buffer:
                        return  # earlier flushes took these envelopes into their batches
                    batch = buffer[: sub.max_batch]
                    del buffer[: sub.max_batch]
                    events = [env.event for _, env in batch if env.event is not None]  # all decoded
                    ok = await run_batch(sub, events) == Outcome.OK
                    for settlement, envelope in batch:
                        outcome = Outcome.OK if ok else await self._run_envelope(alone, envelope)
                        if settlement.record(envelope, outcome):
                            await self._settle(sub, settlement)

        async def on_message(message: Any) -> None:
            envelopes = unpack(sub.routing_key, message.body)
            settlement = Settlement(message, len(envelopes))
            decoded = []
            for envelope in envelopes:
                if envelope.event is not None:
                    decoded.append(envelope)
                elif settlement.record(envelope, await self._run_envelope(sub, envelope)):
                    await self._settle(sub, settlement)
            if not decoded:
                return
            buffer.extend((settlement, envelope) for envelope in decoded)
            if len(buffer) < sub.max_batch:
                await asyncio.sleep(sub.max_wait)
            await flush()

        return on_message

    def _rpc_server(self, channel: Any, handler: RpcHandler) -> Callable[[Any], Awaitable[None]]:
        import aio_pika

        async def on_request(message: Any) -> None:
            try:
                payload = orjson.loads(message.body)
                reply: dict[str, Any] = {"ok": True, "result": await handler(payload)}
            except Exception as exc:
                log.exception("rpc handler failed")
                reply = {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc)}}
            if message.reply_to:
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        orjson.dumps(reply, default=json_default),
                        correlation_id=message.correlation_id,
                        content_type="application/json",
                    ),
                    routing_key=message.reply_to,
                )
            await message.ack()

        return on_request

    async def publish_raw(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        producer: str,
        correlation_id: str | None = None,
    ) -> None:
        import aio_pika

        await self.connect()
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            type=routing_key,
            correlation_id=correlation_id,
            headers={"producer": producer},
        )
        try:
            await self._exchange.publish(message, routing_key=routing_key)
        except Exception as exc:
            self._count_published(producer, routing_key, Outcome.RETRY)
            raise TransientError(f"publish of {routing_key} failed: {exc}") from exc
        self._count_published(producer, routing_key, Outcome.OK)

    async def publish_many(self, routing_key: str, items: list[Outgoing]) -> None:
        """Bundles of up to BUNDLE_MAX envelopes per message (common.bundles), confirmed as a pipeline."""
        await asyncio.gather(*(self._publish_bundle(routing_key, group) for group in chunks(items)))

    async def _publish_bundle(self, routing_key: str, items: list[Outgoing]) -> None:
        import aio_pika

        if len(items) == 1:
            item = items[0]
            await self.publish_raw(
                routing_key,
                item.body,
                message_id=item.message_id,
                producer=item.producer,
                correlation_id=item.correlation_id,
            )
            return
        await self.connect()
        producers = sorted({item.producer for item in items})
        correlations = {item.correlation_id for item in items}
        message = aio_pika.Message(
            encode(items),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=uuid.uuid4().hex,
            type=routing_key,
            correlation_id=correlations.pop() if len(correlations) == 1 else None,
            headers={"producer": ",".join(producers), BUNDLE_HEADER: len(items)},
        )
        try:
            await self._exchange.publish(message, routing_key=routing_key)
        except Exception as exc:
            for producer in producers:
                self._count_published(producer, routing_key, Outcome.RETRY)
            raise TransientError(f"publish of a bundle of {routing_key} failed: {exc}") from exc
        for item in items:
            self._count_published(item.producer, routing_key, Outcome.OK)

    async def _ensure_rpc_client(self) -> None:
        async with self._rpc_lock:
            if self._rpc_ready:
                return
            await self.connect()
            self._rpc_channel = await self._connection.channel()
            underlay = await self._rpc_channel.get_underlay_channel()

            async def on_reply(message: Any) -> None:
                cid = message.header.properties.correlation_id
                future = self._rpc_futures.pop(cid, None)
                if future is not None and not future.done():
                    future.set_result(orjson.loads(message.body))

            # Direct reply-to: consume the pseudo-queue in no-ack mode before publishing.
            await underlay.basic_consume("amq.rabbitmq.reply-to", on_reply, no_ack=True)
            self._rpc_ready = True

    async def request(self, name: str, payload: dict[str, Any], timeout: float = RPC_TIMEOUT_SECONDS) -> dict[str, Any]:
        import aio_pika

        await self._ensure_rpc_client()
        cid = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._rpc_futures[cid] = future
        await self._rpc_channel.default_exchange.publish(
            aio_pika.Message(
                orjson.dumps(payload, default=json_default),
                correlation_id=cid,
                reply_to="amq.rabbitmq.reply-to",
                content_type="application/json",
            ),
            routing_key=f"{self.namespace}rpc.{name}",
        )
        try:
            reply = await asyncio.wait_for(future, timeout)
        finally:
            self._rpc_futures.pop(cid, None)
        if not reply.get("ok"):
            raise TransientError(f"rpc.{name} failed: {reply.get('error')}")
        result: dict[str, Any] = reply["result"]
        return result

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None
        self._consumer_channels.clear()
        self._rpc_ready = False
        self.started = False

    async def ping(self) -> bool:
        return bool(self._connection is not None and not self._connection.is_closed)

    async def queue_depth(self, queue: str) -> int:
        """Messages ready in a queue (tests and diagnostics)."""
        return (await self._message_counts([queue]))[queue]

    async def queue_depths(self) -> dict[str, tuple[int, int]]:
        """Ready and dead-lettered messages of every subscription queue (one channel, passive declares)."""
        names = [sub.queue for sub in self.subscriptions]
        counts = await self._message_counts([q for name in names for q in (name, f"{name}.dlq")])
        return {name: (counts[name], counts[f"{name}.dlq"]) for name in names}

    async def _message_counts(self, queues: list[str]) -> dict[str, int]:
        channel = await self._connection.channel()
        try:
            counts: dict[str, int] = {}
            for queue in queues:
                declared = await channel.declare_queue(f"{self.namespace}{queue}", passive=True)
                counts[queue] = int(declared.declaration_result.message_count)
            return counts
        finally:
            await channel.close()


def make_bus(mode: str, amqp_url: str | None, *, namespace: str = "", prefetch: int = 8) -> Bus:
    """The transport for a running mode: RabbitMQ when distributed, in-process otherwise."""
    if mode == "distributed":
        if not amqp_url:
            raise SystemExit("AMQP_URL must be set in distributed mode")
        return AmqpBus(amqp_url, namespace=namespace, prefetch=prefetch)
    return InProcessBus(namespace=namespace, prefetch=prefetch)
