"""The risk summary `M` of one pro-forma book (api.md #57), its difference and its wire format (pure).

Local figures (calculations.md §2.1-§2.3, §3.5):
    equity V = cash + Σ MV;   market_value long/short/gross/net = Σ MV>0, Σ MV<0, Σ|MV|, Σ MV
    exposure long/short/gross/net on the delta-adjusted E (options q·m·Δ·S); notional Σ |q|·m·S
    greeks: dollar_delta = net exposure, dollar_gamma_1pct = Σ Γ·S²/100, theta/vega/rho summed
    concentration on w_i = |E_i| / G: top5_weight = Σ of the 5 largest w, effective_positions = 1 / Σ w²
Factors, risk and stress come from the engines (rpc.factors.evaluate, rpc.stress.evaluate).
Internally every number is a float (None = unknown); `present` turns money into 2-dp strings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from common.formatting import money, stat
from ingest.modeling.valuation import ValuedBook

TOP_STRESS = 5
TOP_WEIGHTS = 5
MONEY_KEYS = frozenset(
    {
        "equity",
        "long",
        "short",
        "gross",
        "net",
        "notional",
        "dollar_delta",
        "dollar_gamma_1pct",
        "exposure_dollar",
        "var_95_1d",
        "var_99_1d",
        "es_95_1d",
        "var_95_1d_parametric",
        "correlated_pnl",
        "direct_pnl",
    }
)
LIST_KEYS = {"factors": "code", "stress": "scenario_id"}


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def views(values: np.ndarray) -> dict[str, float | None]:
    """long, short, gross and net of signed amounts (unknown ones left out)."""
    v = _finite(values)
    return {
        "long": float(v[v > 0].sum()),
        "short": float(v[v < 0].sum()),
        "gross": float(np.abs(v).sum()),
        "net": float(v.sum()),
    }


def concentration(exposure: np.ndarray) -> dict[str, float | None]:
    """top5_weight and effective_positions (1/Σw², the HHI count) on w = |E| / Σ|E|."""
    e = np.abs(_finite(exposure))
    gross = float(e.sum())
    if gross <= 0:
        return {"top5_weight": None, "effective_positions": None}
    w = e / gross
    top = np.sort(w)[::-1][:TOP_WEIGHTS]
    return {"top5_weight": float(top.sum()), "effective_positions": float(1.0 / np.square(w).sum())}


def local_figures(book: ValuedBook) -> dict[str, Any]:
    """Everything of M computed from the positions themselves."""
    mv = views(book.market_value)
    exposure = views(book.exposure)
    equity = book.cash + float(_finite(book.market_value).sum())
    return {
        "equity": equity,
        "market_value": mv,
        "exposure": exposure,
        "notional": float(_finite(book.notional).sum()),
        "greeks": {
            "dollar_delta": exposure["net"],
            "dollar_gamma_1pct": float(_finite(book.dollar_gamma_1pct()).sum()),
            "theta": float(_finite(book.greek("theta")).sum()),
            "vega": float(_finite(book.greek("vega")).sum()),
            "rho": float(_finite(book.greek("rho")).sum()),
        },
        "concentration": concentration(book.exposure),
        "position_count": len(book.units),
    }


def _money_value(value: Any) -> float | None:
    return None if value is None else float(value)


def factor_block(engine_book: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """[{code, name, beta, beta_gross, exposure_dollar, status}] of the factors engine's answer for one book."""
    if engine_book is None:
        return []
    return [
        {
            "code": f["code"],
            "name": f.get("name"),
            "beta": f.get("beta"),
            "beta_gross": f.get("beta_gross"),
            "exposure_dollar": _money_value(f.get("exposure_dollar")),
            "status": f.get("status"),
        }
        for f in engine_book["factors"]
    ]


def risk_block(engine_book: Mapping[str, Any] | None) -> dict[str, Any]:
    """{annualized_volatility, var_95_1d, …} from the stress engine's VaR of one book (historical VaR first)."""
    var = (engine_book or {}).get("var") or {}
    hist = var.get("historical") or {}
    para = var.get("parametric") or {}
    return {
        "annualized_volatility": var.get("ex_ante_volatility_annual"),
        "var_95_1d": _money_value((hist.get("0.95") or {}).get("var")),
        "var_99_1d": _money_value((hist.get("0.99") or {}).get("var")),
        "es_95_1d": _money_value((hist.get("0.95") or {}).get("es")),
        "var_95_1d_parametric": _money_value((para.get("0.95") or {}).get("var")),
    }


def scenario_pnls(engine_book: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Every scenario of the stress engine's answer for one book (computed ones only)."""
    rows = (engine_book or {}).get("stress") or []
    return [
        {
            "scenario_id": r["scenario_id"],
            "name": r.get("name"),
            "correlated_pnl": _money_value(r.get("correlated_pnl")),
            "direct_pnl": _money_value(r.get("direct_pnl")),
        }
        for r in rows
        if r.get("correlated_pnl") is not None
    ]


def worst(scenarios: Sequence[dict[str, Any]], n: int = TOP_STRESS) -> list[dict[str, Any]]:
    """The `n` scenarios with the lowest correlated P&L, worst first (ties by id)."""
    return sorted(scenarios, key=lambda r: (r["correlated_pnl"], r["scenario_id"]))[:n]


def compose(book: ValuedBook, factors: Mapping[str, Any] | None, stress: Mapping[str, Any] | None) -> dict[str, Any]:
    """M of one book: local figures plus the engines' factor exposures, risk and 5 worst stress scenarios."""
    out = local_figures(book)
    out["factors"] = factor_block(factors)
    out["risk"] = risk_block(stress)
    out["stress"] = worst(scenario_pnls(stress))
    return out


def _diff(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return a - b


def change(after: Mapping[str, Any], before: Mapping[str, Any], all_before: Sequence[dict[str, Any]] = ()) -> Any:
    """after − before, field by field; list items are matched by code / scenario_id. `all_before` (every
    scenario of the before book) lets the after book's worst scenarios be compared with the same scenario."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        other = before.get(key)
        if isinstance(value, Mapping):
            out[key] = change(value, other or {})
        elif key in LIST_KEYS:
            ident = LIST_KEYS[key]
            pool = {r[ident]: r for r in (all_before if key == "stress" and all_before else other or [])}
            out[key] = [
                {ident: item[ident], **{k: _diff(v, pool.get(item[ident], {}).get(k)) for k, v in _numbers(item)}}
                for item in value
            ]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = _diff(value, other)
        else:
            out[key] = value
    return out


def _numbers(item: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in item.items() if isinstance(v, int | float) and not isinstance(v, bool)]


def present(value: Any, key: str = "") -> Any:
    """Wire format: money as 2-dp strings (api.md §2.7), statistics rounded to 6 decimals, counts as ints."""
    if isinstance(value, Mapping):
        return {k: present(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [present(v, key) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if key in MONEY_KEYS:
        return money(_num(float(value)))
    if key == "position_count":
        return int(value)
    return stat(_num(float(value)))
