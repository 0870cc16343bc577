"""Turning #55 request items into priced TradeIntents: symbols checked against the security master,
base positions looked up, prices found (I/O; the book rules that follow are pure, `modeling.book`).

Tickers follow the CSV rules (csv-format.md §3.1: `BRK.B` is stored `BRK-B`, OCC options not expired on
the session date). Unknown symbols → 422 UNKNOWN_SYMBOL, an index cannot be held, a mutual fund
cannot be sold short. Price: the request's (`user`), else the base position's valuation price, else the
latest close on or before the session date (`last_close`), else for an option the model price of the
greeks engine (`model`), else 422 NO_PRICE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from common.bus import Bus
from common.db import Database
from common.errors import ValidationFailed
from ingest.csv_format.cells import check_ticker
from ingest.modeling.book import BasePosition, Instrument, TradeIntent
from ingest.modeling.engines import Engines
from ingest.modeling.market import latest_closes, securities
from ingest.modeling.schemas import TradeRequest
from ingest.tag_rules import is_valid_tag_name, parse_tag_token

OPTION_MULTIPLIER = 100


@dataclass
class _Item:
    field: str
    request: TradeRequest
    instrument: Instrument | None = None
    raw_symbol: str = ""


def occ_symbol(root: str, expiry: date, option_type: str, strike: Decimal) -> str:
    """Compact OCC symbol: ROOT + YYMMDD + C/P + strike × 1000 in 8 digits."""
    return f"{root}{expiry:%y%m%d}{option_type}{int(strike * 1000):08d}"


def _problem(field: str, issue: str, value: Any) -> dict[str, Any]:
    return {"field": field, "issue": issue, "value": value}


def _raise(problems: list[dict[str, Any]], code: str = "VALIDATION_ERROR") -> None:
    if problems:
        raise ValidationFailed("Trade rejected: " + problems[0]["issue"], code=code, details=problems)


def _parse(item: _Item, as_of: date, base: dict[str, BasePosition]) -> dict[str, Any] | None:
    """Fill `item.instrument` from its ticker or option fields; a problem dict when it cannot be parsed."""
    req = item.request
    if req.ticker is not None:
        text, where = req.ticker.strip(), f"{item.field}.ticker"
    else:
        assert req.underlying and req.option_type and req.strike_price is not None and req.expiration_date
        text = occ_symbol(req.underlying.strip().upper(), req.expiration_date, req.option_type, req.strike_price)
        where = f"{item.field}.expiration_date"
    cell = check_ticker(text, as_of)
    if cell.error is not None:
        return _problem(where, cell.error[1], text)
    assert cell.symbol is not None
    item.raw_symbol = cell.symbol
    if cell.symbol in base:
        item.instrument = base[cell.symbol].instrument
    elif cell.occ is not None:
        occ = cell.occ
        item.instrument = Instrument(
            cell.symbol, "option", occ.root, OPTION_MULTIPLIER, occ.option_type, occ.strike_price, occ.expiration_date
        )
    else:
        item.instrument = Instrument(cell.symbol, "stock", cell.symbol)
    return None


def _tags(item: _Item) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    names, problems = [], []
    for name in item.request.tag_names():
        parsed = parse_tag_token(name)
        if not is_valid_tag_name(parsed.name):
            problems.append(
                _problem(f"{item.field}.tags", "tag names are 1-50 letters, digits, spaces, _ - . & /", name)
            )
        names.append(name)
    return tuple(names), problems


async def resolve(
    db: Database,
    bus: Bus,
    engines: Engines,
    base: Sequence[BasePosition],
    items: Sequence[tuple[str, TradeRequest]],
    as_of: date,
) -> list[TradeIntent]:
    """Priced intents for `items` ((error field prefix, request) pairs); all problems of a kind at once."""
    by_id = {p.id: p for p in base}
    by_symbol = {p.instrument.symbol: p for p in base}
    parsed = [_Item(field, req) for field, req in items]
    problems: list[dict[str, Any]] = []
    for item in parsed:
        if item.request.position_id is not None:
            lot = by_id.get(item.request.position_id)
            if lot is None:
                where = f"{item.field}.position_id"
                problems.append(_problem(where, "not a position of this session", str(item.request.position_id)))
            else:
                item.instrument = lot.instrument
        elif (problem := _parse(item, as_of, by_symbol)) is not None:
            problems.append(problem)
    _raise(problems)

    fresh = [i for i in parsed if i.instrument is not None and i.instrument.symbol not in by_symbol]
    master = await securities(db, bus, {i.instrument.underlying for i in fresh if i.instrument is not None})
    for item in fresh:
        assert item.instrument is not None
        instrument = item.instrument
        sec = master.resolve(instrument.underlying)
        where = f"{item.field}.{'ticker' if item.request.ticker is not None else 'underlying'}"
        if sec is None:
            problems.append(_problem(where, f"{instrument.underlying} is not in the security master", item.raw_symbol))
            continue
        if instrument.is_option:
            item.instrument = Instrument(
                instrument.symbol,
                "option",
                sec.symbol,
                OPTION_MULTIPLIER,
                instrument.option_type,
                instrument.strike,
                instrument.expiry,
            )
        elif sec.security_type == "index":
            problems.append(
                _problem(where, f"{sec.symbol} is an index and cannot be held; trade its options", sec.symbol)
            )
        else:
            item.instrument = Instrument(sec.symbol, "stock", sec.symbol)
            if sec.security_type == "mutual_fund" and item.request.side == "short":
                problems.append(
                    _problem(f"{item.field}.side", f"mutual fund {sec.symbol} cannot be sold short", "short")
                )
    _raise([p for p in problems if "security master" in p["issue"]], code="UNKNOWN_SYMBOL")
    _raise(problems)
    return await _priced(db, engines, parsed, by_symbol, as_of)


async def _priced(
    db: Database, engines: Engines, items: list[_Item], base: dict[str, BasePosition], as_of: date
) -> list[TradeIntent]:
    unpriced = [i for i in items if i.request.price is None]

    def needs_quote(i: _Item) -> bool:
        assert i.instrument is not None
        lot = base.get(i.instrument.symbol)
        return lot is None or lot.last_price is None

    quotes = await latest_closes(db, {i.instrument.symbol for i in unpriced if i.instrument and needs_quote(i)}, as_of)
    modelled = {
        i.instrument.symbol
        for i in unpriced
        if i.instrument and needs_quote(i) and i.instrument.symbol not in quotes and i.instrument.is_option
    }
    models = await engines.option_inputs(modelled, as_of) if modelled else {}
    intents, problems = [], []
    for item in items:
        req, instrument = item.request, item.instrument
        assert instrument is not None
        lot = base.get(instrument.symbol)
        model = models.get(instrument.symbol)
        if req.price is not None:
            price, source = req.price, "user"
        elif lot is not None and lot.last_price is not None:
            price, source = lot.last_price, "model" if lot.price_source == "model" else "last_close"
        elif instrument.symbol in quotes:
            price, source = quotes[instrument.symbol].price, "last_close"
        elif model is not None and math.isfinite(model.model_price) and model.model_price > 0:
            price, source = Decimal(repr(round(model.model_price, 4))), "model"
        else:
            issue = f"no stored price for {instrument.symbol} on or before {as_of.isoformat()}; give a price"
            problems.append(_problem(f"{item.field}.price", issue, None))
            continue
        tags, tag_problems = _tags(item)
        problems += tag_problems
        intents.append(
            TradeIntent(
                field=item.field,
                instrument=instrument,
                price=price,
                price_source=source,
                side=req.side,
                action=req.action,
                position_ref=req.position_id,
                quantity=req.quantity,
                amount=req.amount,
                tags=tags,
                note=req.note,
            )
        )
    _raise([p for p in problems if p["field"].endswith(".price")], code="NO_PRICE")
    _raise(problems)
    return intents
