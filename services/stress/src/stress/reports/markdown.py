"""The Markdown report (users.md §4.5): the seven sections in order, every number taken from the
report document (so it equals the JSON). A fixture-data report says so on its first line. Pure."""

from __future__ import annotations

from typing import Any

from stress.reports.markdown_risk import NOT_REQUESTED, not_available, risk_section
from stress.reports.text_format import NA, num, pct, signed_usd, table, usd

HEADINGS = (
    "Header",
    "Executive summary",
    "Portfolio snapshot",
    "Risk analytics",
    "Recent performance",
    "Attention flags",
    "Data quality and method notes",
)
FIXTURE_LINE = "**Fixture data: the prices in this report are deterministic test fixtures, not market data.**"
CHANGE_LABELS = {
    "equity": "Equity",
    "net_market_value": "Net market value",
    "net_exposure": "Net exposure",
    "gross_exposure": "Gross exposure",
    "beta_adjusted_exposure": "Beta-adjusted exposure",
    "var_95_1d": "1-day VaR 95%",
}


def header(doc: dict[str, Any]) -> list[str]:
    r, p = doc["report"], doc["portfolio"]
    owner = p["owner"]["name"] or p["owner"]["email"] or NA
    source = "fixture (not market data)" if r["data_source"] == "fixture" else "live market data"
    lines = [FIXTURE_LINE, ""] if r["data_source"] == "fixture" else []
    return [
        *lines,
        f"# Portfolio report: {p['name']}",
        "",
        "## Header",
        "",
        f"- Portfolio: {p['name']}",
        f"- Owner: {owner}",
        f"- Generated at: {r['generated_at']}",
        f"- As of: {r['as_of_date']}",
        f"- Data source: {source}",
        "",
    ]


def _changes(doc: dict[str, Any]) -> list[str]:
    c = doc["changes"]
    if c is None:
        return ["### What changed since the previous snapshot", "", "Not available: no earlier snapshot.", ""]
    out = [f"### What changed since {c['from_date']}", ""]
    body = []
    for m in c["metrics"]:
        parts = m["parts"] or {}
        other = parts.get("other", parts.get("beta_update"))
        flags = "; ".join(m["flags"]) or "none"
        body.append(
            [
                CHANGE_LABELS[m["metric"]],
                usd(m["previous"]),
                usd(m["current"]),
                signed_usd(m["change"]),
                signed_usd(parts.get("market")) if parts else "not decomposed",
                signed_usd(parts.get("positions")) if parts else "not decomposed",
                signed_usd(other) if other is not None else "",
                flags,
            ]
        )
    header = [
        "Metric",
        c["from_date"],
        c["to_date"],
        "Change",
        "Market moves",
        "Position changes",
        "Cash / beta update",
        "Flags",
    ]
    return [
        *out,
        *table(header, body),
        "",
        f"Decomposition: {c['method']}. Positions opened: {c['positions_opened']}, closed: {c['positions_closed']}.",
        "",
    ]


def executive_summary(doc: dict[str, Any]) -> list[str]:
    out = ["## Executive summary", ""]
    if "summary" not in doc["report"]["sections"]:
        return [*out, NOT_REQUESTED, ""]
    p, perf, m = doc["portfolio"], doc["performance"] or {}, doc["risk_metrics"]
    ex = doc["exposures"] or {}
    exposure = ex.get("exposure") or {}
    out += [
        f"- Equity: {usd(p['equity'])} (change since the previous snapshot: {signed_usd(perf.get('equity_change'))})",
        f"- Daily P&L: {signed_usd(perf.get('daily_pnl'))} ({pct(perf.get('daily_return'))})",
        f"- Positions: {p['position_count']}",
        f"- Portfolio beta vs SPY: {num(m['portfolio_beta'])}",
        f"- Average position correlation: {num(m['average_correlation'], 6)}",
        f"- Gross exposure: {usd(exposure.get('gross'))}; net exposure: {usd(exposure.get('net'))}",
        "",
    ]
    return [*out, *_changes(doc)]


def portfolio_snapshot(doc: dict[str, Any]) -> list[str]:
    out = ["## Portfolio snapshot", ""]
    ex, counts = doc["exposures"], doc["position_counts"]
    if ex is None:
        return [*out, NOT_REQUESTED, ""]
    mv, e = ex["market_value"], ex["exposure"]
    views = [
        ["Market value (capital)", usd(mv["long"]), usd(mv["short"]), usd(mv["gross"]), usd(mv["net"])],
        ["Exposure (delta-adjusted)", usd(e["long"]), usd(e["short"]), usd(e["gross"]), usd(e["net"])],
    ]
    out += [*table(["View", "Long", "Short", "Gross", "Net"], views), "", f"Notional: {usd(ex['notional'])}.", ""]
    alloc = [
        [k, b["count"], usd(b["net_market_value"]), pct(b["share_of_gross_market_value"])]
        for k, b in ex["allocation"].items()
    ]
    out += [
        "### Allocation by asset type",
        "",
        *table(["Asset type", "Positions", "Market value", "% of gross MV"], alloc),
        "",
    ]
    top = [
        [h["symbol"], h["position_type"], usd(h["dollar_exposure"]), usd(h["market_value"])] for h in ex["top_holdings"]
    ]
    out += [
        "### Top 10 holdings by absolute exposure",
        "",
        *table(["Symbol", "Type", "Exposure", "Market value"], top),
        "",
    ]
    out += ["### Positions by type", "", *table(list(counts), [list(counts.values())]), ""]
    strategies = [
        [k, b["count"], usd(b["net_exposure"]), usd(b["unrealized_pnl"])] for k, b in ex["strategies"].items()
    ]
    return [
        *out,
        "### Strategies",
        "",
        *table(["Strategy", "Positions", "Net exposure", "Unrealized P&L"], strategies),
        "",
    ]


def recent_performance(doc: dict[str, Any]) -> list[str]:
    out = ["## Recent performance", ""]
    if "performance" not in doc["report"]["sections"]:
        return [*out, NOT_REQUESTED, ""]
    perf, points = doc["performance"], doc["snapshots"]
    if perf is None or not points:
        return [*out, not_available(doc, "snapshots"), ""]
    partial = ", ".join(perf["partial_periods"]) or "none"
    out += [
        f"Month to date {pct(perf['mtd_return'])}, year to date {pct(perf['ytd_return'])} (partial: {partial}).",
        "",
    ]
    rows = [[s["date"], usd(s["equity"]), signed_usd(s["daily_pnl"]), pct(s["daily_return"])] for s in points[-30:]]
    return [*out, *table(["Date", "Equity", "Daily P&L", "Return"], rows), ""]


def attention(doc: dict[str, Any]) -> list[str]:
    flags = doc["attention_flags"]
    body = [f"- **{f['rule']}**: {f['message']} (value {f['value']}, threshold {f['threshold']})" for f in flags]
    return ["## Attention flags", "", *(body or ["No rule triggered."]), ""]


def data_quality(doc: dict[str, Any]) -> list[str]:
    q = doc["data_quality"]
    engines = [[name, e["status"], e["reason"] or ""] for name, e in q["engines"].items()]
    excluded = ", ".join(q["excluded_positions"]) or "none"
    methods = [f"- {k}: {v}" for k, v in q["methods"].items()]
    warnings = ["Notes:", "", *(f"- {w}" for w in q["warnings"]), ""] if q["warnings"] else []
    return [
        "## Data quality and method notes",
        "",
        *table(["Engine", "Status", "Reason"], engines),
        "",
        f"Excluded positions (no valuation for the report date): {excluded}.",
        "",
        "Methods and windows:",
        "",
        *methods,
        "",
        *warnings,
    ]


def render(doc: dict[str, Any]) -> str:
    """The whole Markdown document."""
    lines = [
        *header(doc),
        *executive_summary(doc),
        *portfolio_snapshot(doc),
        *risk_section(doc),
        *recent_performance(doc),
        *attention(doc),
        *data_quality(doc),
    ]
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["HEADINGS", "not_available", "render"]
