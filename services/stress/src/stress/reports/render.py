"""A report's files from its document (users.md §4.3–4.4). Pure; CPU-bound (run it off the event loop).

Names: `<slug>_report_<date>.md`, `<slug>_data_<date>.json`, `<slug>_positions_<date>.csv` and
`<slug>_report_<date>.pdf`, where `<slug>` is the lower-case, hyphenated portfolio name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from stress.exports.files import FileContent
from stress.reports import document, markdown
from stress.reports.book import Book, totals
from stress.reports.inputs import ReportInputs
from stress.reports.positions_table import position_rows, positions_csv

MEDIA_TYPES = {"md": "text/markdown", "json": "application/json", "csv": "text/csv", "pdf": "application/pdf"}
FORMAT_ORDER = ("md", "json", "csv", "pdf")


def slug(name: str) -> str:
    """`Demo High Net Worth Investor Portfolio` → `demo-high-net-worth-investor-portfolio`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "portfolio"


def file_name(portfolio_name: str, fmt: str, as_of: str) -> str:
    """The download name of one format."""
    kind = {"md": "report", "json": "data", "csv": "positions", "pdf": "report"}[fmt]
    return f"{slug(portfolio_name)}_{kind}_{as_of}.{fmt}"


def _csv_rows(doc: dict[str, Any], inputs: ReportInputs) -> list[dict[str, Any]]:
    """The position table: the document's when the positions section is in it, else built the same way."""
    if doc["positions"] is not None:
        rows: list[dict[str, Any]] = doc["positions"]
        return rows
    book = Book.build(inputs.positions)
    return position_rows(book, totals(book, inputs.portfolio.cash_balance).exposure["gross"], inputs.as_of)


def build_files(
    inputs: ReportInputs, formats: Sequence[str], sections: Sequence[str], generated_at: datetime
) -> tuple[dict[str, Any], list[FileContent]]:
    """The document and one file per requested format, in md, json, csv, pdf order."""
    doc = document.build(inputs, generated_at=generated_at, sections=tuple(sections))
    as_of, name = doc["report"]["as_of_date"], doc["portfolio"]["name"]
    out = []
    for fmt in (f for f in FORMAT_ORDER if f in formats):
        if fmt == "md":
            data = markdown.render(doc).encode("utf-8")
        elif fmt == "json":
            data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
        elif fmt == "csv":
            data = positions_csv(_csv_rows(doc, inputs))
        else:
            from stress.reports import pdf  # matplotlib is imported only when a PDF is made

            data = pdf.render(doc)
        out.append(FileContent(file_name(name, fmt, as_of), MEDIA_TYPES[fmt], data))
    return doc, out
