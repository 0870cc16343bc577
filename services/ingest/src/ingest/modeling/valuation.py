"""Per-unit valuation of every symbol of a session and the valued pro-forma books (pure, numpy).

Every figure of a position is linear in its quantity, so a session values each symbol once per unit
(one share, or one contract of m shares) and a book is quantity × unit:

* symbols of the base portfolio take their units from the frozen valuation of the base date
  (Σ value / Σ quantity over the symbol's lots), so the "before" book reproduces GET /portfolio
  exactly and a change of quantity changes the figures proportionally;
* a symbol new to the session is valued at its trade price: a stock's market value and exposure
  are price per share (calculations.md §2.2, delta 1); an option's are m × premium and
  m × Δ × S (its dollar delta per contract, Δ from the greeks engine), its notional m × S.

Option Greeks come from the greeks engine per share (theta $/day, vega $/vol point, rho $/rate
point, gamma Δ per $1) and scale by m × quantity. Unknown values are NaN and stay out of totals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from ingest.modeling.book import BasePosition, Instrument

NAN = math.nan


def _f(value: Decimal | float | None) -> float:
    return NAN if value is None else float(value)


@dataclass(frozen=True)
class OptionInputs:
    """Per-share model figures of one option contract from the greeks engine (NaN = unknown)."""

    status: str
    delta: float = NAN
    gamma: float = NAN
    theta: float = NAN
    vega: float = NAN
    rho: float = NAN
    underlying_price: float = NAN
    sigma: float = NAN
    rate: float = NAN
    dividend_yield: float = NAN
    time_to_expiry: float = NAN
    model_price: float = NAN


@dataclass(frozen=True)
class Unit:
    """The figures of one share or one contract of `instrument` (money in dollars, NaN = unknown)."""

    instrument: Instrument
    price: float
    market_value: float
    exposure: float
    notional: float
    underlying_price: float
    option: OptionInputs | None = None

    def greek(self, name: str) -> float:
        """A per-unit position Greek (per-share value × m); 0 for stocks."""
        if self.option is None:
            return 0.0
        per_share: float = getattr(self.option, name)
        return per_share * self.instrument.multiplier


def base_units(base: Sequence[BasePosition]) -> dict[str, Unit]:
    """Units of the base symbols from their frozen valuation (lots of one symbol pooled)."""
    pooled: dict[str, list[BasePosition]] = {}
    for p in base:
        pooled.setdefault(p.instrument.symbol, []).append(p)
    out: dict[str, Unit] = {}
    for symbol, lots in pooled.items():
        quantity = float(sum((p.quantity for p in lots), Decimal(0)))

        def per_unit(values: list[Decimal | None], *, unsigned: bool = False, q: float = quantity) -> float:
            if q == 0 or any(v is None for v in values):
                return NAN
            total = float(sum(v for v in values if v is not None))
            return total / abs(q) if unsigned else total / q

        first = lots[0]
        out[symbol] = Unit(
            instrument=first.instrument,
            price=_f(first.last_price),
            market_value=per_unit([p.market_value for p in lots]),
            exposure=per_unit([p.dollar_exposure for p in lots]),
            notional=per_unit([p.notional for p in lots], unsigned=True),
            underlying_price=_f(first.underlying_price),
        )
    return out


def stock_unit(instrument: Instrument, price: Decimal) -> Unit:
    """A share bought at `price`: market value = exposure = notional = price (calculations.md §2.2)."""
    p = float(price)
    return Unit(instrument, p, p, p, p, p)


def option_unit(instrument: Instrument, price: Decimal, inputs: OptionInputs) -> Unit:
    """A contract: MV = m·P, exposure = m·Δ·S (NaN without a delta), notional = m·S."""
    m = instrument.multiplier
    s = inputs.underlying_price
    return Unit(instrument, float(price), m * float(price), m * inputs.delta * s, m * s, s, inputs)


def with_option_inputs(unit: Unit, inputs: OptionInputs | None) -> Unit:
    """A base option's unit with the engine's Greeks; its exposure and notional stay the frozen ones
    (only missing values are filled), so "before" keeps matching the portfolio."""
    if inputs is None or not unit.instrument.is_option:
        return unit
    m = unit.instrument.multiplier
    exposure = unit.exposure if math.isfinite(unit.exposure) else m * inputs.delta * inputs.underlying_price
    notional = unit.notional if math.isfinite(unit.notional) else m * inputs.underlying_price
    spot = unit.underlying_price if math.isfinite(unit.underlying_price) else inputs.underlying_price
    return Unit(unit.instrument, unit.price, unit.market_value, exposure, notional, spot, inputs)


@dataclass(frozen=True)
class ValuedBook:
    """n positions of one pro-forma book, as column arrays aligned by position (NaN = unknown)."""

    units: list[Unit]
    quantity: np.ndarray
    cash: float
    market_value: np.ndarray = field(init=False)
    exposure: np.ndarray = field(init=False)
    notional: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        q = self.quantity
        object.__setattr__(self, "market_value", q * np.array([u.market_value for u in self.units]))
        object.__setattr__(self, "exposure", q * np.array([u.exposure for u in self.units]))
        object.__setattr__(self, "notional", np.abs(q) * np.array([u.notional for u in self.units]))

    @property
    def symbols(self) -> list[str]:
        return [u.instrument.symbol for u in self.units]

    def greek(self, name: str) -> np.ndarray:
        """Position-level Greek `name` (theta, vega, rho, gamma, delta): per-share × m × quantity."""
        return self.quantity * np.array([u.greek(name) for u in self.units], dtype=np.float64)

    def dollar_gamma_1pct(self) -> np.ndarray:
        """Γ·S²/100 per position: the change of dollar delta for a 1 % move of the underlying."""
        spot = np.array([u.underlying_price for u in self.units], dtype=np.float64)
        gamma = self.greek("gamma")
        return np.where(gamma == 0, 0.0, gamma * spot * spot / 100.0)


def valued_book(quantities: Mapping[str, Decimal], units: Mapping[str, Unit], cash: Decimal) -> ValuedBook:
    """The book of every non-zero net position of `quantities` (symbol order), valued by `units`."""
    held = sorted(s for s, q in quantities.items() if q != 0)
    return ValuedBook(
        units=[units[s] for s in held],
        quantity=np.array([float(quantities[s]) for s in held], dtype=np.float64),
        cash=float(cash),
    )
