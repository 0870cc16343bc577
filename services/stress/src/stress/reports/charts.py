"""Charts of the PDF report, drawn with matplotlib's Agg canvas into RGBA pixel arrays (embedded in the
PDF as images). Only the object-oriented API is used (no pyplot state), so charts can be drawn in
worker threads. Values come from the report document: money strings → dollars, fractions as numbers.
A chart without data returns None and the PDF says why instead."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

DPI = 150
SIZE = (7.0, 3.2)  # inches
LONG, SHORT, NEUTRAL, ACCENT = "#2E7D32", "#C62828", "#455A64", "#1565C0"
Pixels = npt.NDArray[np.uint8]


def _dollars(value: str | None) -> float:
    return float("nan") if value is None else float(value)


def _money_axis(ax: Axes, axis: str = "y") -> None:
    def fmt(v: float, _: object) -> str:
        for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if abs(v) >= div:
                return f"\\${v / div:,.1f}{unit}"
        return f"\\${v:,.0f}"

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(FuncFormatter(fmt))


def _draw(title: str, plot: Callable[[Figure], None]) -> Pixels:
    fig = Figure(figsize=SIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    plot(fig)
    fig.suptitle(title, fontsize=10, fontweight="bold")
    fig.tight_layout()
    fig.canvas.draw()
    pixels: Pixels = np.asarray(fig.canvas.buffer_rgba()).copy()  # type: ignore[attr-defined]
    return pixels


def exposure_breakdown(doc: dict[str, Any]) -> Pixels | None:
    """Long, short, gross and net in the capital and exposure views, and gross exposure by sector."""
    ex = doc.get("exposures")
    if not ex:
        return None
    sides = ("long", "short", "gross", "net")
    mv = [_dollars(ex["market_value"][s]) for s in sides]
    e = [_dollars(ex["exposure"][s]) for s in sides]
    sectors = [(k, v["share_of_gross_exposure"] or 0.0) for k, v in ex["sectors"].items()][:10]

    def plot(fig: Figure) -> None:
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
        x = np.arange(len(sides))
        left.bar(x - 0.2, mv, 0.4, label="market value", color=NEUTRAL)
        left.bar(x + 0.2, e, 0.4, label="exposure (delta-adj.)", color=ACCENT)
        left.set_xticks(x, [s.capitalize() for s in sides])
        left.axhline(0, color="black", linewidth=0.6)
        left.legend(fontsize=7)
        _money_axis(left)
        left.tick_params(labelsize=7)
        names = [k for k, _ in sectors][::-1]
        shares = [v * 100 for _, v in sectors][::-1]
        right.barh(names, shares, color=ACCENT)
        right.set_xlabel("% of gross exposure", fontsize=7)
        right.tick_params(labelsize=7)

    return _draw("Exposure breakdown", plot)


def factor_exposures(doc: dict[str, Any]) -> Pixels | None:
    """Portfolio beta to each factor (dollar exposure / equity)."""
    rows = [f for f in doc.get("factor_exposures") or [] if f["beta"] is not None]
    if not rows:
        return None

    def plot(fig: Figure) -> None:
        ax = fig.subplots()
        names = [f["name"] for f in rows][::-1]
        betas = [f["beta"] for f in rows][::-1]
        ax.barh(names, betas, color=[LONG if b >= 0 else SHORT for b in betas])
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_xlabel("beta (factor dollar exposure / equity)", fontsize=7)
        ax.tick_params(labelsize=7)

    return _draw("Factor exposures", plot)


def stress_results(doc: dict[str, Any]) -> Pixels | None:
    """Correlated (else direct) P&L of every scenario, worst first."""
    rows = [s for s in doc.get("stress_tests") or [] if s["impact"] is not None]
    if not rows:
        return None
    rows = sorted(rows, key=lambda s: float(s["impact"]))

    def plot(fig: Figure) -> None:
        ax = fig.subplots()
        names = [s["name"][:38] for s in rows][::-1]
        pnl = [float(s["impact"]) for s in rows][::-1]
        ax.barh(names, pnl, color=[LONG if p >= 0 else SHORT for p in pnl])
        ax.axvline(0, color="black", linewidth=0.6)
        _money_axis(ax, "x")
        ax.tick_params(labelsize=6)

    return _draw("Stress test P&L (correlated impact)", plot)


def history(doc: dict[str, Any]) -> Pixels | None:
    """Equity and gross / net exposure over the stored snapshots (up to 90 trading days)."""
    points = doc.get("snapshots") or []
    if len(points) < 2:
        return None
    days = np.array([date.fromisoformat(p["date"]) for p in points], dtype="datetime64[D]")

    def plot(fig: Figure) -> None:
        ax = fig.subplots()
        ax.plot(days, [_dollars(p["equity"]) for p in points], label="equity", color="black", linewidth=1.4)
        ax.plot(days, [_dollars(p["gross_exposure"]) for p in points], label="gross exposure", color=ACCENT)
        ax.plot(days, [_dollars(p["net_exposure"]) for p in points], label="net exposure", color=LONG)
        ax.legend(fontsize=7)
        _money_axis(ax)
        ax.tick_params(labelsize=7)
        fig.autofmt_xdate()

    return _draw(f"Equity and exposure, last {len(points)} snapshots", plot)


CHARTS: dict[str, Callable[[dict[str, Any]], Pixels | None]] = {
    "exposure_breakdown": exposure_breakdown,
    "factor_exposures": factor_exposures,
    "stress_results": stress_results,
    "history": history,
}
