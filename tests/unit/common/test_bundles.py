"""Bundle encoding: several envelopes of one routing key in one message body (common.bundles)."""

from __future__ import annotations

from datetime import date

import orjson

from common.bundles import BUNDLE_MAX, Envelope, Outgoing, Settlement, chunks, encode, unpack
from common.events import PricesUpdated


def _outgoing(symbol: str) -> tuple[PricesUpdated, Outgoing]:
    event = PricesUpdated(as_of=date(2026, 11, 24), symbols=[symbol], producer="marketdata")
    return event, Outgoing(event.model_dump_json().encode(), str(event.event_id), "marketdata")


def test_a_bundle_unpacks_into_the_same_events_in_order() -> None:
    pairs = [_outgoing(f"S{i}") for i in range(5)]
    body = encode([o for _, o in pairs])
    assert isinstance(orjson.loads(body), list) and len(orjson.loads(body)) == 5
    envelopes = unpack("prices.updated", body)
    assert [e.event for e in envelopes] == [event for event, _ in pairs]
    # Each envelope keeps a body that decodes alone (what is sent on when it must be retried).
    assert [orjson.loads(e.body) for e in envelopes] == [orjson.loads(o.body) for _, o in pairs]


def test_a_plain_body_is_one_envelope() -> None:
    event, out = _outgoing("AAPL")
    [envelope] = unpack("prices.updated", out.body)
    assert envelope.event == event and envelope.body == out.body and envelope.error is None


def test_an_undecodable_element_is_reported_alone() -> None:
    event, out = _outgoing("AAPL")
    body = b"[" + out.body + b',{"as_of": "not a date"}]'
    good, bad = unpack("prices.updated", body)
    assert good.event == event
    assert bad.event is None and bad.error is not None and bad.error.startswith("undecodable")
    [broken] = unpack("prices.updated", b"[{")
    assert broken.event is None and "bundle" in (broken.error or "")


def test_chunks_keep_order_and_bound_the_size() -> None:
    items = [_outgoing(f"S{i}")[1] for i in range(2 * BUNDLE_MAX + 3)]
    groups = chunks(items)
    assert [len(g) for g in groups] == [BUNDLE_MAX, BUNDLE_MAX, 3]
    assert [i for g in groups for i in g] == items


def test_a_settlement_completes_on_its_last_envelope() -> None:
    settlement = Settlement(message=object(), size=2)
    first, second = Envelope(b"{}", None), Envelope(b"{}", None)
    assert settlement.record(first, "ok") is False
    assert settlement.record(second, "retry") is True
    assert [o for _, o in settlement.outcomes] == ["ok", "retry"]
