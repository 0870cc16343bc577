"""Grouping helpers of #26/#28: stored values → compute arrays, group keys and JSON blocks (§2.4)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from common.formatting import money, stat
from ingest import compute
from ingest.positions_query import tags_json
from ingest.repository import to_cents

NO_STRATEGY, UNTAGGED = "(no strategy)", "(untagged)"


def sort_key(name: str) -> Any:
    """A sort key reading `item["_sort"][name]` (groups and strategies carry private sort values)."""

    def key(item: dict[str, Any]) -> Any:
        return item["_sort"][name]

    return key


def _cents(rows: list[Any], name: str) -> np.ndarray:
    return np.array([to_cents(r[name]) for r in rows], dtype=np.int64)


def _floats(rows: list[Any], name: str) -> np.ndarray:
    return np.array([np.nan if r[name] is None else float(r[name]) for r in rows], dtype=np.float64)


def book_from_rows(rows: list[Any]) -> compute.Book:
    """Stored values of `select_rows` rows as compute arrays (closed positions contribute nothing)."""
    open_ = np.array([r["status"] == "open" for r in rows], dtype=bool)

    def money_col(name: str) -> np.ndarray:
        values = _cents(rows, name)
        values[~open_] = compute.NA
        return values

    is_option = np.array([r["instrument_type"] == "option" for r in rows], dtype=bool)
    return compute.Book(
        market_value=money_col("market_value"),
        dollar_exposure=money_col("dollar_exposure"),
        notional=money_col("notional"),
        unrealized_pnl=money_col("unrealized_pnl"),
        daily_pnl=money_col("daily_pnl"),
        quantity_sign=np.array([1 if r["quantity"] > 0 else -1 for r in rows], dtype=np.int8),
        is_option=is_option,
        dollar_gamma_1pct=np.where(open_, _floats(rows, "g_dollar_gamma"), np.nan),
        theta=np.where(open_, _floats(rows, "g_theta"), np.nan),
        vega=np.where(open_, _floats(rows, "g_vega"), np.nan),
        rho=np.where(open_, _floats(rows, "g_rho"), np.nan),
    )


def group_keys(rows: list[Any], kind: str) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, str]]:
    """(member position indexes, their group codes, group labels, label → tag id) for grouping `kind`."""
    keys: list[str] = []
    members: list[int] = []
    tag_ids: dict[str, str] = {}
    for i, row in enumerate(rows):
        if kind == "type":
            found = [row["position_type"]]
        elif kind == "underlying":
            found = [row["underlying_symbol"]]
        elif kind == "sector":
            found = [row["sector_bucket"]]
        elif kind == "asset_class":
            found = [row["asset_class"]]
        else:
            wanted = "strategy" if kind == "strategy" else "regular"
            tags = [t for t in tags_json(row) if t["tag_type"] == wanted]
            for t in tags:
                tag_ids[t["name"]] = str(t["id"])
            found = [t["name"] for t in tags] or [NO_STRATEGY if kind == "strategy" else UNTAGGED]
        keys.extend(found)
        members.extend([i] * len(found))
    codes, labels = compute.factorize(np.array(keys, dtype=object)) if keys else (np.zeros(0, np.int64), [])
    return np.array(members, dtype=np.int64), codes, labels, tag_ids


def _m(cents: int) -> str | None:
    return money(Decimal(cents).scaleb(-2))


def sums_block(sums: compute.GroupSums, g: int) -> dict[str, Any]:
    """Both views, notional, P&L and dollar Greeks of group `g`."""
    s = {k: int(v[g]) for k, v in sums.sums.items()}
    return {
        "market_value": {
            "long": _m(s["long_mv"]),
            "short": _m(s["short_mv"]),
            "gross": _m(s["gross_mv"]),
            "net": _m(s["net_mv"]),
        },
        "exposure": {
            "long": _m(s["long_exposure"]),
            "short": _m(s["short_exposure"]),
            "gross": _m(s["gross_exposure"]),
            "net": _m(s["net_exposure"]),
        },
        "notional": _m(s["notional"]),
        "unrealized_pnl": _m(s["unrealized_pnl"]),
        "daily_pnl": _m(s["daily_pnl"]),
        "greeks": {
            "dollar_delta": _m(s["net_exposure"]),
            "dollar_gamma_1pct": money(float(sums.greeks["dollar_gamma_1pct"][g])),
            "theta": stat(float(sums.greeks["theta"][g]), 4),
            "vega": stat(float(sums.greeks["vega"][g]), 4),
            "rho": stat(float(sums.greeks["rho"][g]), 4),
        },
    }


def group_json(sums: compute.GroupSums, g: int, label: str, gross: int, equity: int) -> dict[str, Any]:
    """One #26 group."""
    block = sums_block(sums, g)
    return {
        "key": label,
        "label": label,
        "tag_id": None,
        "count": int(sums.count[g]),
        "market_value": block["market_value"],
        "exposure": block["exposure"],
        "notional": block["notional"],
        "share_of_gross": stat(compute.ratio(int(sums.sums["gross_exposure"][g]), gross), 4),
        "pct_of_equity": stat(compute.ratio(int(sums.sums["net_exposure"][g]), equity), 4),
        "unrealized_pnl": block["unrealized_pnl"],
        "daily_pnl": block["daily_pnl"],
        "greeks": block["greeks"],
        "_sort": {
            "gross_exposure": int(sums.sums["gross_exposure"][g]),
            "net_exposure": int(sums.sums["net_exposure"][g]),
            "unrealized_pnl": int(sums.sums["unrealized_pnl"][g]),
            "count": int(sums.count[g]),
            "key": label.lower(),
        },
    }


def sort_groups(items: list[dict[str, Any]], order: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Stable multi-key sort (key as the final tiebreaker); drops the private sort keys."""
    for name, desc in reversed([*order, ("key", False)]):
        items.sort(key=sort_key(name), reverse=desc)
    for it in items:
        it.pop("_sort")
    return items
