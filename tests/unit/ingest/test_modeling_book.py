"""ProForma trade rules (api.md #55): sizing by amount, sides, OVERSELL/OVERCOVER, replay, cash and summaries."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from common.errors import ValidationFailed
from ingest.modeling.book import (
    BasePosition,
    Instrument,
    TradeIntent,
    apply_trades,
    cash_after,
    holdings_of,
    replay,
    trade_summary,
    units_for_amount,
)

D = Decimal
QQQ = Instrument("QQQ", "stock", "QQQ")
NFLX = Instrument("NFLX", "stock", "NFLX")
CALL = Instrument("SPY271217C00600000", "option", "SPY", 100, "C", D("600"), date(2027, 12, 17))
NFLX_LOT = uuid.uuid4()


def base() -> list[BasePosition]:
    return [BasePosition(NFLX_LOT, NFLX, D(-600), D(490), "close", None, D(-294000), D(-294000), D(294000))]


def intent(instrument: Instrument = QQQ, **kw: object) -> TradeIntent:
    values: dict[str, object] = {"field": "body", "instrument": instrument, "price": D(420), "price_source": "user"}
    values.update(kw)
    return TradeIntent(**values)  # type: ignore[arg-type]


def book(*intents: TradeIntent) -> list:
    return apply_trades(holdings_of(base()), {NFLX_LOT: D(-600)}, intents)[0]


def test_amount_is_sized_to_whole_shares_rounded_down() -> None:
    assert units_for_amount(D(250000), D(420), 1) == 595
    assert units_for_amount(D(1000), D("7.25"), 100) == 1


def test_demo_trades_short_qqq_by_amount_and_cover_half_the_nflx_short() -> None:
    short, cover = book(
        intent(side="short", amount=D(250000)),
        intent(NFLX, action="reduce", position_ref=NFLX_LOT, quantity=D(300), price=D(490)),
    )
    assert (short.side, short.quantity, short.quantity_after, short.position_type_after) == (
        "short",
        595,
        -595,
        "SHORT",
    )
    assert short.requested_amount == 250000
    assert (cover.side, cover.quantity_before, cover.quantity_after) == ("cover", -600, -300)
    assert [trade_summary(short), trade_summary(cover)] == ["SHORT 595 QQQ @ 420.00", "COVER 300 NFLX"]
    # Short proceeds are cash; covering pays: equity is unchanged by trades at market.
    assert cash_after(D("1135300.00"), [short, cover]) == D("1135300.00") + D(249900) - D(147000)


def test_close_brings_the_net_position_to_zero() -> None:
    (close,) = book(intent(NFLX, action="close", position_ref=NFLX_LOT, price=D(490)))
    assert (close.side, close.quantity, close.quantity_after, close.position_type_after) == ("cover", 600, 0, None)


def test_increase_on_a_short_position_shorts_more() -> None:
    (more,) = book(intent(NFLX, action="increase", position_ref=NFLX_LOT, quantity=D(10), price=D(490)))
    assert (more.side, more.quantity_after) == ("short", -610)


@pytest.mark.parametrize(
    ("trade", "code", "field"),
    [
        (intent(NFLX, side="cover", quantity=D(601)), "OVERCOVER", "body.quantity"),
        (intent(side="sell", quantity=D(1)), "OVERSELL", "body.quantity"),
        (intent(NFLX, side="buy", quantity=D(1)), "VALIDATION_ERROR", "body.side"),
        (intent(side="buy", amount=D(100)), "VALIDATION_ERROR", "body.amount"),
        (intent(CALL, side="buy", quantity=D("1.5"), price=D(10)), "VALIDATION_ERROR", "body.quantity"),
    ],
)
def test_invalid_trades_are_rejected_with_their_code(trade: TradeIntent, code: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        book(trade)
    assert caught.value.code == code
    assert caught.value.details[0]["field"] == field  # type: ignore[index]


def test_a_batch_is_all_or_nothing_and_sees_earlier_trades() -> None:
    _, sell = book(intent(side="buy", quantity=D(10)), intent(side="sell", quantity=D(10)))
    assert sell.quantity_before == 10 and sell.quantity_after == 0
    with pytest.raises(ValidationFailed):
        book(intent(side="buy", quantity=D(10)), intent(side="sell", quantity=D(11)))


def test_replay_after_removing_the_buy_makes_the_sell_an_oversell() -> None:
    buy, sell = book(intent(side="buy", quantity=D(10)), intent(side="sell", quantity=D(10)))
    kept, holdings = replay(holdings_of(base()), {NFLX_LOT: D(-600)}, [buy])
    assert holdings["QQQ"] == 10 and kept[0].quantity_after == 10
    with pytest.raises(ValidationFailed) as caught:
        replay(holdings_of(base()), {NFLX_LOT: D(-600)}, [sell])
    assert caught.value.code == "OVERSELL"


def test_replay_recloses_what_is_left_and_keeps_request_details() -> None:
    _, close = book(
        intent(NFLX, action="reduce", position_ref=NFLX_LOT, quantity=D(100), price=D(490)),
        intent(NFLX, action="close", position_ref=NFLX_LOT, price=D(490), note="flat"),
    )
    (reclosed,), holdings = replay(holdings_of(base()), {NFLX_LOT: D(-600)}, [close])
    assert reclosed.quantity == 600 and holdings["NFLX"] == 0 and reclosed.note == "flat"
