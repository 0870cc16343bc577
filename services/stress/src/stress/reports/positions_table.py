"""The position table of a report (users.md §4.7): one row per position, the same values in the JSON
`positions[]` and the CSV. Pure.

Names, units and signs as the API Position (api.md §3.1): `market_value` and `dollar_exposure` signed,
`notional` unsigned, `weight` = |dollar_exposure| / gross exposure, position-level Greeks (per-share
Greek × contracts × 100). Precision (§4.8): money 2 dp, Greeks 4 dp, fractions 4 dp. Cells that do not
apply (Greeks and strike of a stock) are null in JSON and empty in the CSV.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import numpy as np

from common.formatting import iso_date, money, price, qty, stat
from stress.reports.book import Book, days_to_expiry, weights

CSV_COLUMNS = (
    "symbol",
    "position_type",
    "security_type",
    "quantity",
    "entry_date",
    "entry_price",
    "last_price",
    "market_value",
    "cost_basis",
    "unrealized_pnl",
    "unrealized_pnl_pct",
    "dollar_exposure",
    "notional",
    "weight",
    "delta",
    "gamma",
    "theta",
    "vega",
    "rho",
    "underlying_symbol",
    "option_type",
    "strike_price",
    "expiration_date",
    "days_to_expiry",
    "implied_volatility",
    "iv_source",
    "market_beta",
    "tags",
    "strategy_tag",
    "sector",
    "industry",
    "price_date",
    "price_source",
)
OPTION_TYPES = {"C": "call", "P": "put"}


def _finite(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _pnl_pct(row: dict[str, Any]) -> float | None:
    """unrealized_pnl / |cost_basis| (a fraction, 4 dp)."""
    pnl, basis = row.get("unrealized_pnl"), row.get("cost_basis")
    if pnl is None or basis is None or basis == 0:
        return None
    return stat(float(pnl) / abs(float(basis)), 4)


def position_rows(book: Book, gross_exposure: int, as_of: date) -> list[dict[str, Any]]:
    """The table, in the book's order (|exposure| descending)."""
    weight = weights(book, gross_exposure)
    dte = days_to_expiry(book, as_of)
    out = []
    for i, r in enumerate(book.rows):
        option = bool(book.is_option[i])
        out.append(
            {
                "symbol": r["symbol"],
                "position_type": r["position_type"],
                "security_type": "option" if option else (r.get("security_type") or "stock"),
                "quantity": qty(r["quantity"]),
                "entry_date": iso_date(r["entry_date"]),
                "entry_price": price(r["entry_price"]),
                "last_price": price(r.get("last_price")),
                "market_value": money(r.get("market_value")),
                "cost_basis": money(r.get("cost_basis")),
                "unrealized_pnl": money(r.get("unrealized_pnl")),
                "unrealized_pnl_pct": _pnl_pct(r),
                "dollar_exposure": money(r.get("dollar_exposure")),
                "notional": money(r.get("notional")),
                "weight": stat(_finite(weight[i]), 4),
                "delta": stat(r.get("delta"), 4) if option else None,
                "gamma": stat(r.get("gamma"), 4) if option else None,
                "theta": stat(r.get("theta"), 4) if option else None,
                "vega": stat(r.get("vega"), 4) if option else None,
                "rho": stat(r.get("rho"), 4) if option else None,
                "underlying_symbol": r.get("underlying_symbol"),
                "option_type": OPTION_TYPES.get(r.get("option_type") or "") if option else None,
                "strike_price": price(r.get("strike_price")) if option else None,
                "expiration_date": iso_date(r.get("expiration_date")) if option else None,
                "days_to_expiry": int(dte[i]) if option and np.isfinite(dte[i]) else None,
                "implied_volatility": stat(r.get("implied_volatility"), 4) if option else None,
                "iv_source": r.get("iv_source") if option else None,
                "market_beta": stat(r.get("market_beta"), 4),
                "tags": ",".join(r.get("tags") or []),
                "strategy_tag": r.get("strategy"),
                "sector": r.get("sector"),
                "industry": r.get("industry"),
                "price_date": iso_date(r.get("price_date")),
                "price_source": r.get("price_source"),
            }
        )
    return out


def positions_csv(rows: list[dict[str, Any]]) -> bytes:
    """UTF-8 CSV with the header of §4.7, RFC 4180 quoting, empty cells for nulls."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue().encode("utf-8")
