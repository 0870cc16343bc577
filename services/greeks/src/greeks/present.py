"""API representation of Greeks (api.md §3.3) from a greeks.position_greek record."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from common.formatting import iso_date, money, price, qty, stat


def _stat(value: Any, digits: int = 6) -> float | None:
    if value is None:
        return None
    f = float(value)
    return stat(f, digits) if math.isfinite(f) else None


def greeks_object(rec: dict[str, Any]) -> dict[str, Any]:
    """The Greeks schema: position-level values signed by quantity, status, inputs and flags.

    Units: delta in shares of underlying; gamma in delta per $1; theta $ per calendar day; vega $
    per vol point; rho $ per percentage point; dollar_delta = delta × S; dollar_gamma_1pct =
    gamma × S² / 100.
    """
    calc: date | None = rec.get("calculation_date")
    expiry: date | None = rec.get("expiration_date")
    days = (expiry - calc).days if expiry and calc else None
    return {
        "delta": _stat(rec.get("delta")),
        "gamma": _stat(rec.get("gamma")),
        "theta": _stat(rec.get("theta")),
        "vega": _stat(rec.get("vega")),
        "rho": _stat(rec.get("rho")),
        "dollar_delta": money(rec.get("dollar_delta")),
        "dollar_gamma_1pct": money(rec.get("dollar_gamma_1pct")),
        "calculation_date": iso_date(calc),
        "status": rec["status"],
        "reason": rec.get("reason"),
        "flags": list(rec.get("flags") or []),
        "per_share": {
            "delta": _stat(rec.get("delta_ps"), 8),
            "gamma": _stat(rec.get("gamma_ps"), 8),
            "theta": _stat(rec.get("theta_ps"), 8),
            "vega": _stat(rec.get("vega_ps"), 8),
            "rho": _stat(rec.get("rho_ps"), 8),
        },
        "inputs": {
            "underlying_price": price(rec.get("underlying_price")),
            "underlying_price_date": iso_date(rec.get("underlying_price_date")),
            "option_price": price(rec.get("option_price")),
            "implied_volatility": _stat(rec.get("implied_volatility"), 8),
            "iv_source": rec.get("iv_source"),
            "risk_free_rate": _stat(rec.get("risk_free_rate"), 8),
            "dividend_yield": _stat(rec.get("dividend_yield"), 8),
            "time_to_expiry_years": _stat(rec.get("time_to_expiry_years"), 8),
            "days_to_expiry": days,
            "model_price": price(rec.get("model_price")),
        },
    }


def contract_object(rec: dict[str, Any]) -> dict[str, Any]:
    """Contract fields shown next to the Greeks of a position or an ad hoc contract."""
    return {
        "symbol": rec["symbol"],
        "underlying": rec["underlying_symbol"],
        "option_type": rec.get("option_type"),
        "strike_price": price(rec.get("strike_price")),
        "expiration_date": iso_date(rec.get("expiration_date")),
        "quantity": qty(rec.get("quantity")),
        "multiplier": rec.get("multiplier"),
    }
