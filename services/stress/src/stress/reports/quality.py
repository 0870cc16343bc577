"""Data quality per engine and the attention flags of a report (users.md §4.5 items 6–7, §4.6). Pure.

Every engine is `ok`, `partial` or `missing` with the reason; a flag carries the number behind it and
its threshold. Thresholds are the defaults of users.md §4.5 and can be overridden per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from common.formatting import stat
from stress.reports.book import ETF_FUND, Book, days_to_expiry, grouped
from stress.reports.correlation_section import clusters
from stress.reports.inputs import ReportInputs


@dataclass(frozen=True)
class Thresholds:
    """Attention rules (fractions of gross exposure; days)."""

    position_share: float = 0.10
    sector_share: float = 0.30
    cluster_share: float = 0.25
    expiry_days: int = 30


def _engine(status: str, reason: str | None) -> dict[str, Any]:
    return {"status": status, "reason": reason}


def engines(inputs: ReportInputs, book: Book) -> dict[str, dict[str, Any]]:
    """Status of every engine the report draws on, with the reason when not `ok`."""
    n, d = book.n, inputs.as_of.isoformat()
    unpriced, stale = int((~book.valued).sum()), int(book.stale.sum())
    out: dict[str, dict[str, Any]] = {}
    if n == 0:
        out["market_data"] = _engine("missing", f"no positions held on {d}")
    elif unpriced == n:
        out["market_data"] = _engine("missing", f"no position has a price for {d}")
    elif unpriced or stale:
        out["market_data"] = _engine("partial", f"{unpriced} unpriced and {stale} stale-priced of {n} positions")
    else:
        out["market_data"] = _engine("ok", None)
    valued = int(book.valued.sum())
    out["aggregation"] = (
        _engine("ok", None)
        if n and valued == n
        else _engine("missing" if not valued else "partial", f"{valued} of {n} positions valued for {d}")
    )
    options = int(book.is_option.sum())
    greek_ok = sum(
        1 for r in book.rows if r["instrument_type"] == "option" and r.get("greek_status") in ("ok", "expired")
    )
    if options == 0:
        out["greeks"] = _engine("ok", "no option positions")
    elif greek_ok == options:
        out["greeks"] = _engine("ok", None)
    else:
        status = "missing" if greek_ok == 0 else "partial"
        out["greeks"] = _engine(status, f"Greeks for {greek_ok} of {options} option positions on {d}")
    ok_factors = [f for f in inputs.factors if f["status"] == "ok"]
    without_beta = int((book.valued & ~np.isfinite(book.market_beta)).sum())
    if not ok_factors:
        out["factors"] = _engine("missing", f"no factor exposures calculated for {d}")
    elif without_beta:
        out["factors"] = _engine("partial", f"{without_beta} of {n} positions have no market beta")
    else:
        out["factors"] = _engine("ok", None)
    metric = inputs.risk_metric
    if metric is None:
        out["market_risk"] = _engine("missing", f"no risk metrics stored for {d}")
    elif metric["data_status"] == "partial" or metric["var_95_hist"] is None:
        out["market_risk"] = _engine("partial", "VaR unavailable or computed from partial inputs")
    else:
        out["market_risk"] = _engine("ok", None)
    run = inputs.stress_run
    if run is None:
        out["stress_tests"] = _engine("missing", f"no stress run stored for {d}")
    else:
        out["stress_tests"] = (
            _engine("partial", "inputs were missing at the deadline") if run["partial"] else _engine("ok", None)
        )
    corr = inputs.correlation
    if corr is None:
        out["correlations"] = _engine("missing", "no position correlations calculated for this portfolio")
    elif corr["calculation_date"] != inputs.as_of:
        out["correlations"] = _engine("partial", f"latest calculation is of {corr['calculation_date'].isoformat()}")
    elif corr["data_quality"] not in (None, "sufficient"):
        out["correlations"] = _engine("partial", f"data quality {corr['data_quality']}")
    else:
        out["correlations"] = _engine("ok", None)
    snap = inputs.snapshot
    if snap is None:
        out["snapshots"] = _engine("missing", f"no snapshot stored for {d}")
    elif snap["inputs_status"] == "partial":
        out["snapshots"] = _engine("partial", "snapshot built from partial inputs: " + ", ".join(snap["flags"] or []))
    else:
        out["snapshots"] = _engine("ok", None)
    return out


def _flag(rule: str, message: str, value: float | int, threshold: float | int) -> dict[str, Any]:
    return {"rule": rule, "message": message, "value": value, "threshold": threshold}


def attention_flags(
    inputs: ReportInputs, book: Book, gross_exposure: int, gross_mv: int, limits: Thresholds | None = None
) -> list[dict[str, Any]]:
    """One flag per triggered rule, with the number behind it."""
    t = limits or Thresholds()
    flags: list[dict[str, Any]] = []
    if gross_exposure > 0:
        share = np.where(book.exposure_ok, np.abs(book.exposure) / gross_exposure, 0.0)
        for i in np.flatnonzero(share > t.position_share):
            flags.append(
                _flag(
                    "position_concentration",
                    f"{book.symbol[i]} is {share[i]:.1%} of gross exposure",
                    stat(share[i], 4) or 0.0,
                    t.position_share,
                )
            )
        for g in grouped(book, book.sector, gross_exposure, gross_mv):
            if g["key"] not in (ETF_FUND, "Unknown") and (g["share_of_gross"] or 0) > t.sector_share:
                flags.append(
                    _flag(
                        "sector_concentration",
                        f"{g['key']} is {g['share_of_gross']:.1%} of gross exposure",
                        stat(g["share_of_gross"], 4) or 0.0,
                        t.sector_share,
                    )
                )
    corr = inputs.correlation
    for cluster in clusters(inputs.correlation_clusters) if corr is not None else []:
        share = cluster["share_of_gross"]
        if share is not None and share > t.cluster_share:
            members = ", ".join(m["symbol"] for m in cluster["members"])
            flags.append(
                _flag(
                    "correlation_clusters",
                    f"correlation cluster '{cluster['nickname']}' ({members}) holds {share:.1%} of the gross "
                    "exposure of the positions analysed",
                    share,
                    t.cluster_share,
                )
            )
    dte = days_to_expiry(book, inputs.as_of)
    for i in np.flatnonzero(book.is_option & np.isfinite(dte) & (dte <= t.expiry_days)):
        flags.append(
            _flag("option_expiry", f"{book.symbol[i]} expires in {int(dte[i])} days", int(dte[i]), t.expiry_days)
        )
    for i in np.flatnonzero(~book.valued):
        flags.append(_flag("missing_price", f"{book.symbol[i]} has no price for {inputs.as_of.isoformat()}", 1, 0))
    stale = int(book.stale.sum())
    if stale:
        names = ", ".join(str(s) for s in book.symbol[book.stale])
        flags.append(_flag("stale_price", f"{stale} position(s) valued at an older close: {names}", stale, 0))
    no_beta = book.valued & ~np.isfinite(book.market_beta)
    if inputs.factors and no_beta.any():
        names = ", ".join(str(s) for s in book.symbol[no_beta])
        flags.append(_flag("factor_exclusion", f"excluded from factor analysis: {names}", int(no_beta.sum()), 0))
    if corr is not None and (corr["nodes_excluded"] or 0) > 0:
        flags.append(
            _flag(
                "correlation_exclusion",
                f"{corr['nodes_excluded']} position(s) excluded from correlation analysis",
                int(corr["nodes_excluded"]),
                0,
            )
        )
    return flags
