"""The engines a session asks over request/reply (api.md §5.4): rpc.greeks/factors/stress.evaluate.

Each call waits at most 30 s. Failures become API errors: the engine's own error when it raised one
in process, otherwise 504 UPSTREAM_TIMEOUT (no answer in time) or 502 UPSTREAM_ERROR.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from common.bus import RPC_TIMEOUT_SECONDS, Bus
from common.errors import ApiError, TransientError, UpstreamError, UpstreamTimeout
from ingest.modeling.valuation import OptionInputs, ValuedBook

# rpc.greeks.evaluate takes up to 500 contracts per call (greeks.schemas.MAX_ADHOC_POSITIONS).
GREEKS_CHUNK = 500


def _num(value: Any) -> float:
    if value is None:
        return math.nan
    number = float(value)
    return number if math.isfinite(number) else math.nan


def _json_num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def option_inputs(result: Mapping[str, Any]) -> OptionInputs:
    """Per-share Greeks and model inputs of one rpc.greeks.evaluate result (quantity 1)."""
    greeks = result.get("greeks") or {}
    per_share = greeks.get("per_share") or {}
    inputs = greeks.get("inputs") or {}
    return OptionInputs(
        status=str(greeks.get("status") or "error"),
        delta=_num(per_share.get("delta")),
        gamma=_num(per_share.get("gamma")),
        theta=_num(per_share.get("theta")),
        vega=_num(per_share.get("vega")),
        rho=_num(per_share.get("rho")),
        underlying_price=_num(inputs.get("underlying_price")),
        sigma=_num(inputs.get("implied_volatility")),
        rate=_num(inputs.get("risk_free_rate")),
        dividend_yield=_num(inputs.get("dividend_yield")),
        time_to_expiry=_num(inputs.get("time_to_expiry_years")),
        model_price=_num(inputs.get("model_price")),
    )


def engine_positions(book: ValuedBook) -> list[dict[str, Any]]:
    """The positions of a book as rpc.factors/stress.evaluate read them (NaN → null)."""
    out = []
    for i, unit in enumerate(book.units):
        q = float(book.quantity[i])
        item: dict[str, Any] = {
            "symbol": unit.instrument.symbol,
            "underlying_symbol": unit.instrument.underlying,
            "market_value": _json_num(float(book.market_value[i])),
            "dollar_exposure": _json_num(float(book.exposure[i])),
            "is_option": unit.instrument.is_option,
            "quantity": q,
            "multiplier": unit.instrument.multiplier,
        }
        o = unit.option
        if o is not None:
            item.update(
                spot=_json_num(o.underlying_price),
                strike=float(unit.instrument.strike) if unit.instrument.strike is not None else None,
                is_call=unit.instrument.option_type == "C",
                time_to_expiry=_json_num(o.time_to_expiry),
                rate=_json_num(o.rate),
                dividend_yield=_json_num(o.dividend_yield),
                sigma=_json_num(o.sigma),
                gamma=_json_num(o.gamma * unit.instrument.multiplier * q),
                greek_status=o.status,
            )
        out.append(item)
    return out


def payload_books(books: Mapping[str, ValuedBook]) -> list[dict[str, Any]]:
    """`books` of a factors/stress request."""
    return [{"key": key, "cash": b.cash, "positions": engine_positions(b)} for key, b in books.items()]


class Engines:
    """Request/reply client of the three engines."""

    def __init__(self, bus: Bus, timeout: float = RPC_TIMEOUT_SECONDS) -> None:
        self.bus = bus
        self.timeout = timeout

    async def _call(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.bus.request(name, payload, timeout=self.timeout)
        except ApiError:
            raise
        except TimeoutError as exc:
            raise UpstreamTimeout(f"rpc.{name} did not answer within {int(self.timeout)} s") from exc
        except TransientError as exc:
            raise UpstreamError(f"rpc.{name} failed: {exc}") from exc
        except Exception as exc:
            raise UpstreamError(f"rpc.{name} failed: {type(exc).__name__}: {exc}") from exc

    async def option_inputs(self, symbols: Iterable[str], as_of: date) -> dict[str, OptionInputs]:
        """Per-share Greeks and inputs of each OCC contract on `as_of`."""
        wanted = sorted(set(symbols))
        out: dict[str, OptionInputs] = {}
        for start in range(0, len(wanted), GREEKS_CHUNK):
            chunk = wanted[start : start + GREEKS_CHUNK]
            payload = {"positions": [{"symbol": s, "quantity": 1} for s in chunk], "as_of_date": as_of.isoformat()}
            reply = await self._call("greeks.evaluate", payload)
            for result in reply["results"]:
                out[chunk[int(result["input_index"])]] = option_inputs(result)
        return out

    async def factors(self, books: Sequence[dict[str, Any]], as_of: date) -> dict[str, Any]:
        return await self._call("factors.evaluate", {"as_of_date": as_of.isoformat(), "books": list(books)})

    async def stress(
        self, books: Sequence[dict[str, Any]], as_of: date, betas: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        payload = {"as_of_date": as_of.isoformat(), "books": list(books), "betas": dict(betas or {})}
        return await self._call("stress.evaluate", payload)
