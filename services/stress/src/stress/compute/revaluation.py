"""Full revaluation of option positions under scenario moves of their underlying (calculations.md §5.1, §6.3).

The pricing is the greeks service's own Black-Scholes-Merton code (`greeks.compute.evaluate`, §3.1
and the edge cases of §3.6), so a scenario price and the stored Greeks come from one model. Pure
and vectorised: every (scenario, option) pair is one element of a single batch.

    P&L = q·m·[ BS(S·(1+R), K, T, r, q, σ + iv_shift) − BS(S, K, T, r, q, σ) ]

R is the (already floored) scenario return of the underlying; the volatility shift, when a scenario
sets one, applies to the shocked price only, so a vol spike shows up as vega P&L. A shocked spot of
0 (R = −100 %) is the limit of the model: a call is worth 0 and a put its discounted strike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from greeks.compute import DAYS_PER_YEAR, OptionBatch, evaluate

# A volatility shifted to ≤ 0 is priced at this σ: σ√T < 1e-8 makes the greeks engine use the
# intrinsic rule on forward moneyness (§3.6), which is the zero-volatility limit.
MIN_SIGMA = 1e-12


@dataclass(frozen=True)
class OptionLegs:
    """Revaluation inputs of m option positions (column arrays, decimals, T in years ACT/365)."""

    spot: np.ndarray
    strike: np.ndarray
    time_to_expiry: np.ndarray
    rate: np.ndarray
    dividend_yield: np.ndarray
    sigma: np.ndarray
    is_call: np.ndarray
    quantity: np.ndarray
    multiplier: np.ndarray

    @classmethod
    def build(cls, **columns: object) -> OptionLegs:
        """Legs from array-likes (is_call as booleans, the rest as float64)."""
        values = {
            name: (np.asarray(value, dtype=bool) if name == "is_call" else np.asarray(value, dtype=np.float64))
            for name, value in columns.items()
        }
        return cls(**values)

    @classmethod
    def empty(cls) -> OptionLegs:
        """No options."""
        zeros = np.zeros(0)
        return cls(zeros, zeros, zeros, zeros, zeros, zeros, np.zeros(0, dtype=bool), zeros, zeros)

    def __len__(self) -> int:
        return int(self.spot.shape[0])

    def take(self, index: np.ndarray) -> OptionLegs:
        """The legs at `index`."""
        return OptionLegs(*(getattr(self, name)[index] for name in self.__dataclass_fields__))


def usable(legs: OptionLegs) -> np.ndarray:
    """Legs whose inputs allow a model price (finite, S > 0, K > 0, T ≥ 0, σ > 0)."""
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(legs.spot)
            & (legs.spot > 0)
            & np.isfinite(legs.strike)
            & (legs.strike > 0)
            & np.isfinite(legs.time_to_expiry)
            & (legs.time_to_expiry >= 0)
            & np.isfinite(legs.rate)
            & np.isfinite(legs.dividend_yield)
            & np.isfinite(legs.sigma)
            & (legs.sigma > 0)
            & np.isfinite(legs.quantity)
            & np.isfinite(legs.multiplier)
        )


def model_prices(legs: OptionLegs, spot: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Per-share BSM prices of the legs at the given spots and volatilities (same shape as `spot`).

    `spot` and `sigma` broadcast against the legs along the last axis, e.g. (n_scenarios, m).
    """
    spot = np.asarray(spot, dtype=np.float64)
    shape = np.broadcast_shapes(spot.shape, np.shape(sigma), (len(legs),))
    m = len(legs)
    if m == 0 or 0 in shape:
        return np.zeros(shape)

    def tile(column: np.ndarray) -> np.ndarray:
        return np.broadcast_to(column, shape).reshape(-1)

    flat_spot = np.broadcast_to(spot, shape).reshape(-1)
    flat_sigma = np.maximum(np.broadcast_to(np.asarray(sigma, dtype=np.float64), shape).reshape(-1), MIN_SIGMA)
    positive = flat_spot > 0
    n = flat_spot.shape[0]
    batch = OptionBatch.build(
        n,
        # A zero spot is not a valid greeks input; it is priced by its limit below.
        spot=np.where(positive, flat_spot, 1.0),
        strike=tile(legs.strike),
        days_to_expiry=tile(legs.time_to_expiry) * DAYS_PER_YEAR,
        is_call=tile(legs.is_call),
        quantity=np.ones(n),
        multiplier=np.ones(n),
        rate=tile(legs.rate),
        dividend_yield=tile(legs.dividend_yield),
        sigma_override=flat_sigma,
    )
    price = evaluate(batch).per_share.price
    strike, rate, t = tile(legs.strike), tile(legs.rate), tile(legs.time_to_expiry)
    at_zero = np.where(tile(legs.is_call), 0.0, strike * np.exp(-rate * t))
    return np.where(positive, price, at_zero).reshape(shape)


def revaluation_pnl(legs: OptionLegs, returns: np.ndarray, iv_shift: np.ndarray | float = 0.0) -> np.ndarray:
    """q·m·[BS(S(1+R), σ + shift) − BS(S, σ)] for each scenario row of `returns` (shape (n_scen, m)).

    `returns` are the floored underlying returns (≥ −1); `iv_shift` is one value per scenario (or a
    scalar) in vol points as a fraction (0.10 = +10 vol points).
    """
    returns = np.atleast_2d(np.asarray(returns, dtype=np.float64))
    if len(legs) == 0:
        return np.zeros(returns.shape)
    shift = np.broadcast_to(np.asarray(iv_shift, dtype=np.float64).reshape(-1, 1), (returns.shape[0], 1))
    base = model_prices(legs, legs.spot, legs.sigma)
    shocked = model_prices(legs, legs.spot * (1.0 + returns), legs.sigma + shift)
    scaled: np.ndarray = (shocked - base) * (legs.quantity * legs.multiplier)
    return scaled
