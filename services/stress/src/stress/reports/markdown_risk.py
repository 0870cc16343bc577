"""Section 4 of the Markdown report, "Risk analytics" (users.md §4.5): factors, stress tests, Greeks,
correlations and VaR, each "Not available" with the reason when its engine has no data. Pure."""

from __future__ import annotations

from typing import Any

from stress.reports.text_format import NA, num, pct, table, usd

NOT_REQUESTED = "Not included in this report (section not requested)."
TOP_CLUSTERS = 3  # users.md §4.5: "top 3 clusters with members"


def not_available(doc: dict[str, Any], engine: str) -> str:
    """`Not available: <reason>` from the document's data quality block."""
    state = doc["data_quality"]["engines"].get(engine) or {}
    return f"Not available: {state.get('reason') or 'no data'}."


def factors_block(doc: dict[str, Any]) -> list[str]:
    rows = doc["factor_exposures"]
    out = ["### Factor exposures", ""]
    if rows is None:
        return [*out, NOT_REQUESTED, ""]
    if not rows:
        return [*out, not_available(doc, "factors"), ""]
    body = [
        [
            f["name"],
            f["proxy"] or NA,
            num(f["beta"]),
            usd(f["exposure_dollar"]),
            "" if f["percentile"] is None else f["percentile"],
        ]
        for f in rows
    ]
    window = rows[0]["observations"]
    notes = [f"Model window: {window} daily returns; portfolio R² (exposure-weighted): {num(rows[0]['r_squared'])}."]
    return [*out, *table(["Factor", "Proxy", "Beta", "Dollar exposure", "Percentile"], body), "", *notes, ""]


def stress_block(doc: dict[str, Any]) -> list[str]:
    rows = doc["stress_tests"]
    out = ["### Stress tests", ""]
    if rows is None:
        return [*out, NOT_REQUESTED, ""]
    if doc["data_quality"]["engines"]["stress_tests"]["status"] == "missing":
        return [*out, not_available(doc, "stress_tests"), ""]
    body = [
        [
            s["name"],
            s["category"],
            s["severity"],
            usd(s["direct_impact"]),
            pct(s["direct_impact_percent"]),
            usd(s["correlated_impact"]),
            pct(s["impact_percent"]),
        ]
        for s in rows
    ]
    header = ["Scenario", "Category", "Severity", "Direct $", "Direct %", "Correlated $", "Correlated %"]
    return [*out, *table(header, body), ""]


def greeks_block(doc: dict[str, Any]) -> list[str]:
    g = doc["greeks"]
    out = ["### Options Greeks", ""]
    if g is None:
        return [*out, NOT_REQUESTED, ""]
    if g["option_position_count"] == 0:
        return [*out, "No option positions.", ""]
    t = g["totals"]
    out += [
        f"Totals over {g['option_position_count']} option positions: dollar delta {usd(t['dollar_delta'])}, "
        f"dollar gamma per 1% move {usd(t['dollar_gamma_1pct'])}, theta {num(t['theta'], 2)} $/day, "
        f"vega {num(t['vega'], 2)} $/vol point, rho {num(t['rho'], 2)} $/rate point.",
        "",
    ]
    body = [
        [
            p["symbol"],
            p["position_type"],
            usd(p["dollar_delta"]),
            usd(p["dollar_gamma_1pct"]),
            num(p["theta"], 2),
            num(p["vega"], 2),
            num(p["rho"], 2),
        ]
        for p in g["positions"]
    ]
    out += [*table(["Option", "Type", "Dollar delta", "Dollar gamma 1%", "Theta", "Vega", "Rho"], body), ""]
    shares = [
        [u["underlying"], num(u["option_share_delta"], 2), num(u["stock_shares"], 2), num(u["net_share_delta"], 2)]
        for u in g["by_underlying"]
    ]
    return [*out, *table(["Underlying", "Option share delta", "Stock shares", "Net share delta"], shares), ""]


def correlations_block(doc: dict[str, Any]) -> list[str]:
    c = doc["correlations"]
    out = ["### Correlations", ""]
    if "correlations" not in doc["report"]["sections"]:
        return [*out, NOT_REQUESTED, ""]
    if c is None:
        return [*out, not_available(doc, "correlations"), ""]
    return [
        *out,
        f"Overall (average pairwise) correlation {num(c['overall'], 6)}, concentration score "
        f"{num(c['concentration_score'], 6)}, effective positions {num(c['effective_positions'], 2)} "
        f"({c['window']['days']}-day window ending {c['window']['end_date']}, calculated {c['calculation_date']}; "
        f"{c['positions_included']} positions included, {c['positions_excluded']} excluded).",
        "",
        *clusters_table(c),
    ]


def clusters_table(c: dict[str, Any]) -> list[str]:
    """The top clusters with their members, and where the rest and the pairwise matrix are."""
    found, cut = c["clusters"], num(c["correlation_threshold"], 2)
    symbols = len(c["matrix"]["symbols"])
    matrix_note = f"The pairwise correlation matrix of the {symbols} included underlyings is in the JSON export."
    if not found:
        return [
            f"Top clusters: none (no group of 2 or more positions correlated at {cut} or more).",
            "",
            matrix_note,
            "",
        ]
    rows = [
        [
            k["cluster_number"],
            k["nickname"],
            ", ".join(m["symbol"] for m in k["members"]),
            usd(k["gross"]),
            usd(k["net"]),
            pct(k["share_of_gross"]),
            num(k["avg_correlation"], 6),
        ]
        for k in found[:TOP_CLUSTERS]
    ]
    header = ["#", "Cluster", "Members", "Gross", "Net", "Share of gross", "Avg correlation"]
    rest = len(found) - TOP_CLUSTERS
    more = [f"{rest} more cluster(s) in the JSON export."] if rest > 0 else []
    return [
        f"Top clusters (average linkage at correlation {cut}; shares of the included positions' gross exposure):",
        "",
        *table(header, rows),
        "",
        " ".join([*more, matrix_note]),
        "",
    ]


def var_block(doc: dict[str, Any]) -> list[str]:
    m = doc["risk_metrics"]
    out = ["### Value at risk", ""]
    if m is None:
        return [*out, NOT_REQUESTED, ""]
    if m["var_window"] is None:
        return [*out, not_available(doc, "market_risk"), ""]
    w = m["var_window"]
    return [
        *out,
        f"1-day historical VaR 95% {usd(m['var_95_1d'])}, 99% {usd(m['var_99_1d'])}; expected shortfall 95% "
        f"{usd(m['es_95_1d'])}, 99% {usd(m['es_99_1d'])} ({w['observations']} observations, "
        f"{w['start_date']} to {w['end_date']}). Annualised volatility {pct(m['annualized_volatility'])}, "
        f"max drawdown {pct(m['max_drawdown'])}.",
        "",
    ]


def risk_section(doc: dict[str, Any]) -> list[str]:
    """## Risk analytics."""
    return [
        "## Risk analytics",
        "",
        *factors_block(doc),
        *stress_block(doc),
        *greeks_block(doc),
        *correlations_block(doc),
        *var_block(doc),
    ]
