"""#30 ad hoc mode: Greeks for hypothetical contracts, computed on request and never stored."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import ValidationFailed
from common.formatting import money, stat
from greeks import repository
from greeks.errors import UnknownSymbol
from greeks.inputs import Contract, load_market_inputs
from greeks.occ import occ_symbol, parse_occ
from greeks.present import contract_object, greeks_object
from greeks.schemas import AdHocPosition
from greeks.service import OK_STATUSES, GreeksService

_ZERO = Decimal("0")


async def default_as_of(session: AsyncSession) -> date:
    """The latest completed trading day: the newest SPY close (the master date index)."""
    latest = await repository.latest_price_date(session, symbol="SPY")
    if latest is None:
        raise ValidationFailed.field("body.as_of_date", "no market data is stored; give as_of_date explicitly")
    return latest


def _spec(item: AdHocPosition) -> tuple[str, date, str, Decimal]:
    if item.symbol is not None:
        occ = parse_occ(item.symbol)
        return occ.underlying, occ.expiration_date, occ.option_type, occ.strike_price
    assert item.underlying and item.expiration_date and item.option_type and item.strike_price is not None
    return item.underlying.strip().upper(), item.expiration_date, item.option_type, item.strike_price


async def calculate(
    session: AsyncSession, service: GreeksService, positions: list[AdHocPosition], as_of: date
) -> dict[str, Any]:
    """Evaluate the contracts at `as_of`; missing market inputs give status missing_inputs, not errors."""
    specs = [_spec(p) for p in positions]
    canonical = await repository.resolve_symbols(session, symbols=sorted({s[0] for s in specs}))
    unknown = [
        {
            "field": f"body.positions.{i}.{'symbol' if p.symbol is not None else 'underlying'}",
            "issue": "underlying not in the security master",
            "value": spec[0],
        }
        for i, (p, spec) in enumerate(zip(positions, specs, strict=True))
        if spec[0] not in canonical
    ]
    if unknown:
        raise UnknownSymbol(unknown)
    symbols: list[str] = []
    for i, (underlying, expiry, option_type, strike) in enumerate(specs):
        try:
            symbols.append(occ_symbol(canonical[underlying], expiry, option_type, strike))
        except ValueError as exc:
            raise ValidationFailed.field(f"body.positions.{i}", str(exc)) from exc
    option_master = await repository.securities(session, symbols=symbols)
    contracts = [
        Contract(
            symbol=symbol,
            underlying=canonical[underlying],
            option_type=option_type,
            strike=strike,
            expiration_date=expiry,
            quantity=p.quantity,
            multiplier=int(option_master[symbol]["multiplier"] or 100) if symbol in option_master else 100,
            underlying_price=float(p.underlying_price) if p.underlying_price is not None else None,
            implied_volatility=p.implied_volatility,
            risk_free_rate=p.risk_free_rate,
            dividend_yield=p.dividend_yield,
        )
        for p, symbol, (underlying, expiry, option_type, strike) in zip(positions, symbols, specs, strict=True)
    ]
    market = await load_market_inputs(
        session,
        as_of=as_of,
        underlyings={c.underlying for c in contracts},
        option_symbols={c.symbol for c in contracts},
    )
    records = await service.evaluate(contracts, market)
    totals_dd = totals_dg = _ZERO
    theta = vega = rho = 0.0
    results = []
    for i, rec in enumerate(records):
        if rec["status"] in OK_STATUSES:
            totals_dd += rec["dollar_delta"] or _ZERO
            totals_dg += rec["dollar_gamma_1pct"] or _ZERO
            theta += rec["theta"] or 0.0
            vega += rec["vega"] or 0.0
            rho += rec["rho"] or 0.0
        results.append({"input_index": i, **contract_object(rec), "greeks": greeks_object(rec)})
    return {
        "as_of_date": as_of.isoformat(),
        "results": results,
        "totals": {
            "dollar_delta": money(totals_dd),
            "dollar_gamma_1pct": money(totals_dg),
            "theta": stat(theta),
            "vega": stat(vega),
            "rho": stat(rho),
        },
    }
