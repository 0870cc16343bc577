"""The PDF report: the Markdown report laid out on A4 pages with matplotlib (Agg / PDF backends) and
four charts embedded as images — exposure breakdown, factor exposures, stress results and the equity
and exposure history. Text is embedded with TrueType fonts (extractable), so the PDF shows and yields
the same numbers as the Markdown and the JSON. Pure: document in, bytes out (no files, no pyplot).
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Iterator
from typing import Any

import matplotlib
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from stress.reports import charts, markdown
from stress.reports.charts import Pixels

# TrueType (Type 42) fonts keep the text extractable; set once for the process (rc_context is not
# thread-safe, and reports render in worker threads). Nothing else in the service writes PDFs.
matplotlib.rcParams["pdf.fonttype"] = 42

PAGE_W, PAGE_H = 595.0, 842.0  # A4 in points
MARGIN = 42.0
WIDTH = PAGE_W - 2 * MARGIN
BODY, TABLE = 8.5, 6.2
SANS_WIDTH, MONO_WIDTH = 0.56, 0.61  # average glyph width as a fraction of the font size
STYLES = {"#": (16.0, "bold"), "##": (12.5, "bold"), "###": (10.0, "bold")}
# Charts drawn right after these headings.
CHART_AFTER = {
    "## Portfolio snapshot": "exposure_breakdown",
    "### Factor exposures": "factor_exposures",
    "### Stress tests": "stress_results",
    "## Recent performance": "history",
}
_NUMERIC = re.compile(r"^[-+$0-9.,%]*$|^n/a$")


class Layout:
    """Writes lines top to bottom, starting a new page when the next block does not fit."""

    def __init__(self, pdf: PdfPages) -> None:
        self.pdf = pdf
        self.fig: Figure | None = None
        self.y = 0.0
        self.pages = 0

    def _new_page(self) -> None:
        self.flush()
        self.fig = Figure(figsize=(PAGE_W / 72, PAGE_H / 72), dpi=72)
        self.y = PAGE_H - MARGIN
        self.pages += 1

    def ensure(self, height: float) -> Figure:
        if self.fig is None or self.y - height < MARGIN:
            self._new_page()
        assert self.fig is not None
        return self.fig

    def text(self, line: str, size: float, *, weight: str = "normal", family: str = "DejaVu Sans") -> None:
        fig = self.ensure(size * 1.35)
        self.y -= size * 1.35
        fig.text(
            MARGIN / PAGE_W, self.y / PAGE_H, line, fontsize=size, fontweight=weight, family=family, parse_math=False
        )

    def gap(self, height: float) -> None:
        self.y -= height

    def image(self, pixels: Pixels) -> None:
        height = WIDTH * pixels.shape[0] / pixels.shape[1]
        fig = self.ensure(height + 6)
        self.y -= height + 6
        ax = fig.add_axes((MARGIN / PAGE_W, self.y / PAGE_H, WIDTH / PAGE_W, height / PAGE_H))
        ax.imshow(pixels, interpolation="antialiased")
        ax.set_axis_off()

    def flush(self) -> None:
        if self.fig is not None:
            # The page number is drawn last so text extraction reads the page top to bottom first.
            self.fig.text(1 - MARGIN / PAGE_W, MARGIN / 2 / PAGE_H, f"page {self.pages}", fontsize=6, ha="right")
            self.pdf.savefig(self.fig)
            self.fig = None


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]


def table_lines(rows: list[list[str]]) -> Iterator[str]:
    """Monospace lines of a table; text columns (never numbers) are wrapped to fit the page width."""
    limit = int(WIDTH / (TABLE * MONO_WIDTH))
    count = max(len(r) for r in rows)
    rows = [r + [""] * (count - len(r)) for r in rows]
    widths = [max(len(r[c]) for r in rows) for c in range(count)]
    numeric = [all(_NUMERIC.match(r[c]) for r in rows[1:]) for c in range(count)]
    while sum(widths) + 2 * (count - 1) > limit:
        text_cols = [c for c in range(count) if not numeric[c] and widths[c] > 12]
        if not text_cols:
            break
        widest = max(text_cols, key=lambda c: widths[c])
        widths[widest] = max(12, widths[widest] - (sum(widths) + 2 * (count - 1) - limit))
    for i, row in enumerate(rows):
        wrapped = [textwrap.wrap(cell, widths[c]) or [""] for c, cell in enumerate(row)]
        for k in range(max(len(w) for w in wrapped)):
            parts = [(w[k] if k < len(w) else "").ljust(widths[c]) for c, w in enumerate(wrapped)]
            yield "  ".join(parts).rstrip()
        if i == 0:
            yield "  ".join("-" * w for w in widths)


def _write(layout: Layout, lines: list[str], doc: dict[str, Any]) -> int:
    """Lay out Markdown lines; returns the number of charts embedded."""
    drawn, i = 0, 0
    wrap_at = int(WIDTH / (BODY * SANS_WIDTH))
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                if not re.fullmatch(r"\|(---\|)+", lines[i]):
                    block.append(_cells(lines[i]))
                i += 1
            for text in table_lines(block):
                layout.text(text, TABLE, family="DejaVu Sans Mono")
            continue
        marker, _, rest = line.partition(" ")
        if marker in STYLES:
            size, weight = STYLES[marker]
            layout.gap(size * 0.4)
            layout.text(rest, size, weight=weight)
            chart = CHART_AFTER.get(f"{marker} {rest}")
            if chart is not None:
                pixels = charts.CHARTS[chart](doc)
                if pixels is None:
                    layout.text(f"Chart not available: no data for {chart.replace('_', ' ')}.", BODY)
                else:
                    layout.image(pixels)
                    drawn += 1
        elif not line.strip():
            layout.gap(BODY * 0.6)
        else:
            bold = line.startswith("**") and line.endswith("**")
            plain = line.strip("*") if bold else line.replace("**", "")
            indent = "   " if plain.startswith("- ") else ""
            for k, part in enumerate(textwrap.wrap(plain, wrap_at, subsequent_indent=indent)):
                layout.text(part, BODY, weight="bold" if bold and k == 0 else "normal")
        i += 1
    return drawn


def render(doc: dict[str, Any]) -> bytes:
    """The PDF bytes of a report document."""
    buffer = io.BytesIO()
    title = f"Portfolio report: {doc['portfolio']['name']} ({doc['report']['as_of_date']})"
    with PdfPages(buffer, metadata={"Title": title, "Creator": "SigmaSight"}) as pdf:
        layout = Layout(pdf)
        _write(layout, markdown.render(doc).splitlines(), doc)
        layout.flush()
    return buffer.getvalue()
