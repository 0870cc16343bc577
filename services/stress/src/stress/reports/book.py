"""A report's book as arrays, and its aggregates (calculations.md §2). Pure.

Money is exact: stored NUMERIC(20,2) values become int64 cents, so every sum is exact and the
Markdown, JSON and CSV agree to the cent with each other and with GET /api/v1/portfolio (which sums
the same stored valuations). `*_ok` masks mark known values (an unpriced position has no market
value; an option without a delta has no exposure and is left out of exposure totals, §2.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
Obj = npt.NDArray[np.object_]

POSITION_TYPES = ("LONG", "SHORT", "LC", "LP", "SC", "SP")
ASSET_CLASSES = ("stock", "etf", "mutual_fund", "option")
ETF_FUND = "ETF/Fund"


def cents(values: Sequence[Any]) -> tuple[I64, B]:
    """Exact cents of 2-dp amounts (None → 0, masked out)."""
    ok = np.array([v is not None for v in values], dtype=bool)
    out = np.array([int(Decimal(v).scaleb(2).to_integral_value()) if v is not None else 0 for v in values], np.int64)
    return out, ok


def floats(values: Sequence[Any]) -> F64:
    """float64 of optional numbers (None → NaN)."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def fraction(numerator: int | float, denominator: int | float) -> float | None:
    """numerator / denominator rounded half away from zero to 4 dp (as GET /api/v1/portfolio); None when
    the denominator is ≤ 0."""
    if denominator <= 0:
        return None
    value = Decimal(numerator) / Decimal(denominator)
    return float(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Book:
    """Positions held on the report date, as columns in the read's order (|exposure| descending)."""

    rows: list[dict[str, Any]]
    symbol: Obj
    underlying: Obj
    position_type: Obj
    asset_class: Obj
    sector: Obj
    strategy: Obj
    quantity: F64
    is_option: B
    valued: B
    stale: B
    mv: I64
    mv_ok: B
    exposure: I64
    exposure_ok: B
    notional: I64
    unrealized: I64
    daily_pnl: I64
    daily_pnl_ok: B
    market_beta: F64
    expiry: npt.NDArray[np.datetime64]

    @property
    def n(self) -> int:
        return len(self.rows)

    @classmethod
    def build(cls, rows: list[dict[str, Any]]) -> Book:
        """Columns of the POSITIONS read."""

        def col(name: str) -> list[Any]:
            return [r.get(name) for r in rows]

        is_option = np.array([r["instrument_type"] == "option" for r in rows], dtype=bool)
        security = np.array([r.get("security_type") or "stock" for r in rows], dtype=object)
        asset = np.where(is_option, "option", security).astype(object)
        sector = np.array(
            [
                ETF_FUND if a in ("etf", "mutual_fund") else (r.get("sector") or "Unknown")
                for r, a in zip(rows, asset, strict=True)
            ],
            dtype=object,
        )
        mv, mv_ok = cents(col("market_value"))
        ex, ex_ok = cents(col("dollar_exposure"))
        daily, daily_ok = cents(col("daily_pnl"))
        return cls(
            rows=rows,
            symbol=np.array(col("symbol"), dtype=object),
            underlying=np.array(col("underlying_symbol"), dtype=object),
            position_type=np.array(col("position_type"), dtype=object),
            asset_class=asset,
            sector=sector,
            strategy=np.array([r.get("strategy") or "" for r in rows], dtype=object),
            quantity=floats(col("quantity")),
            is_option=is_option,
            valued=np.array([bool(r.get("valued")) for r in rows], dtype=bool),
            stale=np.array([r.get("price_source") == "stale" for r in rows], dtype=bool),
            mv=mv,
            mv_ok=mv_ok,
            exposure=ex,
            exposure_ok=ex_ok,
            notional=cents(col("notional"))[0],
            unrealized=cents(col("unrealized_pnl"))[0],
            daily_pnl=daily,
            daily_pnl_ok=daily_ok,
            market_beta=floats(col("market_beta")),
            expiry=np.array([r.get("expiration_date") or "NaT" for r in rows], dtype="datetime64[D]"),
        )


def sides(values: I64, ok: B) -> dict[str, int]:
    """long (Σ > 0), short (Σ < 0, ≤ 0), gross (Σ |·|) and net (Σ) in cents, over known values."""
    v = np.where(ok, values, 0)
    return {
        "long": int(v[v > 0].sum()),
        "short": int(v[v < 0].sum()),
        "gross": int(np.abs(v).sum()),
        "net": int(v.sum()),
    }


@dataclass(frozen=True)
class Totals:
    """Portfolio aggregates of §2.3 in cents, and equity V = C + Σ MV (§2.1)."""

    cash: int
    equity: int
    market_value: dict[str, int]
    exposure: dict[str, int]
    notional: int
    unrealized: int
    daily_pnl: int | None
    counts: dict[str, int]


def totals(book: Book, cash_balance: Any) -> Totals:
    """The book's aggregates."""
    cash = int(Decimal(cash_balance or 0).scaleb(2).to_integral_value())
    mv = sides(book.mv, book.mv_ok)
    counts = {t: int((book.position_type == t).sum()) for t in POSITION_TYPES}
    counts["total"] = book.n
    return Totals(
        cash=cash,
        equity=cash + mv["net"],
        market_value=mv,
        exposure=sides(book.exposure, book.exposure_ok),
        notional=int(book.notional.sum()),
        unrealized=int(book.unrealized.sum()),
        daily_pnl=int(book.daily_pnl[book.daily_pnl_ok].sum()) if book.daily_pnl_ok.any() else None,
        counts=counts,
    )


def weights(book: Book, gross_exposure: int) -> F64:
    """|dollar_exposure| / gross exposure per position (NaN without exposure or when gross is 0)."""
    if gross_exposure <= 0:
        return np.full(book.n, np.nan)
    return np.where(book.exposure_ok, np.abs(book.exposure) / gross_exposure, np.nan)


def grouped(book: Book, keys: Obj, gross_exposure: int, gross_mv: int) -> list[dict[str, Any]]:
    """Per bucket of `keys`: count, net/gross market value and exposure (cents), shares of the gross."""
    labels, index = np.unique(keys.astype(str), return_inverse=True)
    mv = np.where(book.mv_ok, book.mv, 0)
    ex = np.where(book.exposure_ok, book.exposure, 0)
    out = []
    for k, label in enumerate(labels):
        m = index == k
        out.append(
            {
                "key": str(label),
                "count": int(m.sum()),
                "net_mv": int(mv[m].sum()),
                "gross_mv": int(np.abs(mv[m]).sum()),
                "net_exposure": int(ex[m].sum()),
                "gross_exposure": int(np.abs(ex[m]).sum()),
                "unrealized": int(book.unrealized[m].sum()),
                "share_of_gross_mv": None if gross_mv <= 0 else float(np.abs(mv[m]).sum() / gross_mv),
                "share_of_gross": None if gross_exposure <= 0 else float(np.abs(ex[m]).sum() / gross_exposure),
            }
        )
    return sorted(out, key=lambda g: (-g["gross_exposure"], g["key"]))


def days_to_expiry(book: Book, as_of: date) -> F64:
    """Calendar days from the report date to each option's expiry (NaN for stocks)."""
    delta = (book.expiry - np.datetime64(as_of, "D")).astype("timedelta64[D]").astype(np.float64)
    return np.where(np.isnat(book.expiry), np.nan, delta)
