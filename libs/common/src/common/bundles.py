"""Bundles: several envelopes of one routing key carried by one RabbitMQ message.

Why: a 1,000-portfolio cycle emits one event per portfolio per step (api.md §5.3) and every event
fans out to several consumer queues. As one AMQP message each, that is ~19,000 quorum-queue
deliveries per cycle, and the broker plus the clients' per-message work cost more CPU than the risk
engines. The outbox relay therefore publishes the events of one routing key that are pending
together as one message whose body is a JSON array of the unchanged envelopes (header
`x-sigmasight-envelopes` = their count). Routing keys, envelopes, handlers and idempotence are
untouched: consumers unpack a bundle into its events, which their handlers see exactly as before.

A bundle is acknowledged once every envelope in it was handled. An envelope whose handler asks for
a retry goes back to the queue as a message of its own, one that failed for good goes to the
queue's dead-letter queue as a message of its own; so retry bounds and dead-lettering stay per event.
A single envelope is published as a plain object body, exactly as without bundling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from common.events import Event, decode

BUNDLE_HEADER = "x-sigmasight-envelopes"
# Envelopes per message: one batch handler call's worth (the stress/ingest batch size).
BUNDLE_MAX = 64


@dataclass(frozen=True)
class Outgoing:
    """One encoded envelope on its way to the broker (an outbox row)."""

    body: bytes
    message_id: str
    producer: str
    correlation_id: str | None = None


@dataclass
class Envelope:
    """One envelope unpacked from a message: its own JSON body and the decoded event (None when
    it does not decode, with the reason in `error`)."""

    body: bytes
    event: Event | None
    error: str | None = None


def chunks(items: list[Outgoing], size: int = BUNDLE_MAX) -> list[list[Outgoing]]:
    """`items` in order, in groups of at most `size`."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def encode(items: list[Outgoing]) -> bytes:
    """The body of a bundle: a JSON array of the envelopes, each byte for byte as published alone."""
    return b"[" + b",".join(item.body for item in items) + b"]"


def unpack(routing_key: str, body: bytes) -> list[Envelope]:
    """The envelopes of a message: one for a plain object body, each array element for a bundle."""
    if body.lstrip()[:1] != b"[":
        return [_decoded(routing_key, body)]
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [Envelope(body, None, f"undecodable bundle: {exc}")]
    if not isinstance(items, list):
        return [Envelope(body, None, "undecodable bundle: not an array")]
    return [_decoded(routing_key, orjson.dumps(item)) for item in items]


def _decoded(routing_key: str, body: bytes) -> Envelope:
    try:
        return Envelope(body, decode(routing_key, body))
    except Exception as exc:
        return Envelope(body, None, f"undecodable: {exc}")


@dataclass
class Settlement:
    """What became of each envelope of one delivered message; the message is settled (acked,
    or its unfinished envelopes sent on) when the last envelope has an outcome."""

    message: object
    size: int
    outcomes: list[tuple[Envelope, str]] = field(default_factory=list)

    def record(self, envelope: Envelope, outcome: str) -> bool:
        """Note one envelope's outcome; True when that was the last one outstanding."""
        self.outcomes.append((envelope, outcome))
        return len(self.outcomes) == self.size
