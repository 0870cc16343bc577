"""Trade-export formatters (api.md #69): normalisation, session netting, CSV, upload CSV and FIX 4.4
New Order Single messages parsed back with simplefix (BodyLength and CheckSum verified)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import simplefix

from stress.exports.fix import SOH, fix_file, frame
from stress.exports.render import CSV_COLUMNS, line_item, render, upload_csv
from stress.exports.trades import SessionTrade, TradeLine, TradeProblem, net_session_trades, normalise

MOMENT = datetime(2026, 11, 25, 14, 3, 22, 123456, tzinfo=UTC)


def trade(side: str, symbol: str, quantity: str, **extra: object) -> TradeLine:
    return normalise(
        {"side": side, "symbol": symbol, "quantity": Decimal(quantity), **extra}, field="t", account="ACC-1"
    )


def session_trade(
    no: int, symbol: str, side: str, quantity: str, price: str | None = "100", open_close: str | None = None
) -> SessionTrade:
    price_d = None if price is None else Decimal(price)
    return SessionTrade(no, symbol, side, Decimal(quantity), price_d, date(2026, 11, 25), open_close=open_close)


def parse_messages(data: bytes, delimiter: bytes = b"\x01") -> list[simplefix.FixMessage]:
    """Every line of a FIX file parsed with simplefix (pipes turned back into SOH first)."""
    out = []
    for line in data.split(b"\n"):
        if not line:
            continue
        raw = line.replace(b"|", b"\x01") if delimiter == b"|" else line
        parser = simplefix.FixParser()
        parser.append_buffer(raw)
        message = parser.get_message()
        assert message is not None, raw
        out.append((raw, message))
    return out


def check_framing(raw: bytes) -> None:
    """BodyLength = bytes after the 9 field up to the SOH before 10=; CheckSum = Σ bytes before 10= mod 256."""
    head_end = raw.index(b"\x01", raw.index(b"\x019=") + 1) + 1
    checksum_at = raw.rindex(b"10=")
    body_length = int(raw[raw.index(b"\x019=") + 3 : head_end - 1])
    assert body_length == checksum_at - head_end
    assert int(raw[checksum_at + 3 : checksum_at + 6]) == sum(raw[:checksum_at]) % 256
    assert raw.startswith(b"8=FIX.4.4\x019=") and raw.endswith(b"\x01")


def test_fix_frame_computes_body_length_and_checksum() -> None:
    message = frame([(35, "D"), (11, "abc"), (55, "QQQ")]).encode()
    check_framing(message)
    body = b"35=D\x0111=abc\x0155=QQQ\x01"
    assert message == b"8=FIX.4.4\x019=" + str(len(body)).encode() + b"\x01" + body + message[-7:]


@pytest.mark.parametrize("delimiter", ["soh", "pipe"])
def test_fix_file_parses_back_with_simplefix(delimiter: str) -> None:
    lines = [
        trade("SELL_SHORT", "QQQ", "595"),
        trade("BUY_TO_COVER", "NFLX", "300", order_type="LIMIT", limit_price=Decimal("612.5"), time_in_force="GTC"),
        trade("BUY", "AAPL261218C00250000", "5"),
    ]
    data = fix_file(lines, ["id-1", "id-2", "id-3"], MOMENT, delimiter=delimiter)
    if delimiter == "pipe":
        assert SOH.encode() not in data and data.count(b"\n") == 3
    messages = parse_messages(data, b"|" if delimiter == "pipe" else b"\x01")
    assert len(messages) == 3
    for raw, _ in messages:
        check_framing(raw)
    (_, short), (_, cover), (_, call) = messages
    assert short.get(35) == b"D" and short.get(55) == b"QQQ" and short.get(54) == b"5" and short.get(38) == b"595"
    assert short.get(40) == b"1" and short.get(44) is None and short.get(59) == b"0" and short.get(1) == b"ACC-1"
    assert short.get(167) == b"CS" and short.get(60) == b"20261125-14:03:22.123" and short.get(11) == b"id-1"
    assert cover.get(54) == b"1" and cover.get(40) == b"2" and cover.get(44) == b"612.5" and cover.get(59) == b"1"
    assert call.get(55) == b"AAPL" and call.get(167) == b"OPT" and call.get(201) == b"1"
    assert call.get(202) == b"250" and call.get(541) == b"20261218" and call.get(77) == b"O"


def test_normalise_validates_order_combinations() -> None:
    with pytest.raises(TradeProblem, match="LIMIT"):
        trade("BUY", "AAPL", "1", order_type="LIMIT")
    with pytest.raises(TradeProblem, match="only a LIMIT"):
        trade("BUY", "AAPL", "1", limit_price=Decimal("10"))
    with pytest.raises(TradeProblem, match="whole contracts"):
        trade("BUY", "AAPL261218C00250000", "1.5")
    with pytest.raises(TradeProblem):
        trade("BUY", "AAPL261332C00250000", "1")  # month 13
    assert trade("BUY", "brk.b", "2").symbol == "BRK-B"


def test_session_trades_are_netted_per_symbol() -> None:
    trades = [
        session_trade(1, "QQQ", "SELL_SHORT", "595", "420"),
        session_trade(2, "NFLX", "BUY_TO_COVER", "300", "490"),
        session_trade(3, "AAPL", "BUY", "100", "200"),
        session_trade(4, "AAPL", "SELL", "40", "210"),
        session_trade(5, "MSFT", "BUY", "10"),
        session_trade(6, "MSFT", "SELL", "10"),
        # Cover 50 of a short, then go long 30 more: two lines.
        session_trade(7, "TSLA", "BUY_TO_COVER", "50", "250"),
        session_trade(8, "TSLA", "BUY", "30", "260"),
    ]
    lines = net_session_trades(trades, account=None)
    assert [(x.side, x.symbol, x.quantity) for x in lines] == [
        ("SELL_SHORT", "QQQ", Decimal(595)),
        ("BUY_TO_COVER", "NFLX", Decimal(300)),
        ("BUY", "AAPL", Decimal(60)),
        ("BUY_TO_COVER", "TSLA", Decimal(50)),
        ("BUY", "TSLA", Decimal(30)),
    ]
    assert lines[0].reference_price == Decimal("420.0000") and lines[0].open_close == "O"
    assert lines[1].open_close == "C"
    assert lines[3].reference_price == Decimal("253.7500")  # (50·250 + 30·260) / 80


def test_trade_csv_has_the_documented_columns_and_empty_cells_for_stocks() -> None:
    lines = [trade("SELL_SHORT", "QQQ", "595"), trade("SELL", "AAPL261218P00180000", "2")]
    items = [line_item(line, n, f"x-{n}") for n, line in enumerate(lines, 1)]
    rows = list(
        csv.reader(
            io.StringIO(render("csv", lines, items, moment=MOMENT, account="ACC-1", fix_delimiter="soh").decode())
        )
    )
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1] == ["SELL_SHORT", "QQQ", "595", "CS", "QQQ", "", "", "", "MARKET", "", "DAY", "ACC-1"]
    assert rows[2] == [
        "SELL",
        "AAPL261218P00180000",
        "2",
        "OPT",
        "AAPL",
        "put",
        "180.0000",
        "2026-12-18",
        "MARKET",
        "",
        "DAY",
        "ACC-1",
    ]


def test_upload_csv_writes_signed_positions_in_the_upload_format() -> None:
    base = [trade("BUY", "AAPL", "10"), trade("SELL_SHORT", "QQQ", "595")]
    priced = [
        TradeLine(**{**line.__dict__, "reference_price": Decimal(p), "trade_date": date(2026, 11, 25)})
        for line, p in zip(base, ("187.25", "420"), strict=True)
    ]
    rows = list(csv.reader(io.StringIO(upload_csv(priced).decode())))
    assert rows == [
        ["ticker", "quantity", "entry_price", "entry_date", "tags"],
        ["AAPL", "10", "187.2500", "2026-11-25", ""],
        ["QQQ", "-595", "420.0000", "2026-11-25", ""],
    ]


def test_option_session_trades_use_open_close_not_short_sides() -> None:
    """ingest.api_modeling_trade writes an option as SELL + O and buys it back as BUY + C."""
    call, put = "AAPL261218C00250000", "AAPL261218P00180000"
    trades = [
        session_trade(1, call, "SELL", "5", "4.10", "O"),
        session_trade(2, put, "BUY", "3", "2.00", "C"),
        session_trade(3, put, "BUY", "2", "2.10", "O"),
    ]
    lines = net_session_trades(trades, account=None)
    assert [(x.side, x.symbol, x.quantity, x.open_close) for x in lines] == [
        ("SELL", call, Decimal(5), "O"),
        ("BUY", put, Decimal(3), "C"),
        ("BUY", put, Decimal(2), "O"),
    ]
    data = fix_file(lines, ["a", "b", "c"], MOMENT, delimiter="soh")
    sides = [(m.get(54), m.get(77)) for _, m in parse_messages(data)]
    assert sides == [(b"2", b"O"), (b"1", b"C"), (b"1", b"O")]
