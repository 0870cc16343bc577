"""Validation of a daily-price CSV for #76 (pure: bytes + today in, records or a row report out).

All or nothing: every problem in the file is reported in one pass (up to MAX_REPORTED_ERRORS),
each with its 1-based line number (`row`, the header is row 1), the column, the issue and the
offending value. Columns are case-insensitive: `symbol, date, close` required; `open, high, low,
adj_close, volume, implied_volatility, dividend` optional; any other column is an error.
Without `adj_close` the close is used as the adjusted close.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
import pandas as pd

from marketdata.symbols import canonical_symbol, is_valid_symbol

REQUIRED = ("symbol", "date", "close")
OPTIONAL = ("open", "high", "low", "adj_close", "volume", "implied_volatility", "dividend")
PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
MAX_REPORTED_ERRORS = 1000
MAX_PRICE = 1e13  # numeric(18,4)
MAX_IV = 10.0
Q4, Q6 = Decimal("0.0001"), Decimal("0.000001")


@dataclass
class ParsedImport:
    """A clean file: COPY-ready rows keyed by canonical symbol, plus a summary."""

    records: list[tuple[Any, ...]] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    first_date: date | None = None
    last_date: date | None = None
    has_dividends: bool = False


@dataclass
class ImportReport:
    """Why a file was rejected: one entry per problem (row, field, issue, value)."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0

    def add(self, row: int | None, field_name: str, issue: str, value: Any = None) -> None:
        self.total += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": row, "field": field_name, "issue": issue, "value": value})

    def details(self) -> list[dict[str, Any]]:
        """The reported problems in file order (row, then column order)."""
        order = {name: i for i, name in enumerate((*REQUIRED, *OPTIONAL))}
        out = sorted(
            self.errors,
            key=lambda e: (e["row"] if e["row"] is not None else 0, order.get(e["field"], len(order))),
        )
        if self.total > len(self.errors):
            out.append(
                {
                    "row": None,
                    "field": "file",
                    "issue": f"{self.total - len(self.errors)} more error(s) not listed",
                    "value": None,
                }
            )
        return out


class ImportRejected(Exception):
    """The file failed validation; `report` lists every problem."""

    def __init__(self, report: ImportReport, message: str) -> None:
        super().__init__(message)
        self.report = report


def _read(content: bytes, report: ImportReport) -> pd.DataFrame | None:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        report.add(None, "file", f"not UTF-8 text (byte {exc.start})")
        return None
    if not text.strip():
        report.add(None, "file", "the file is empty")
        return None
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            skip_blank_lines=True,
            quoting=csv.QUOTE_MINIMAL,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        report.add(None, "file", f"not a readable CSV: {exc}")
        return None
    return frame


def _numbers(values: pd.Series) -> pd.Series:
    cleaned = values.str.strip().str.replace(",", "", regex=False).str.replace("$", "", regex=False)
    return pd.to_numeric(cleaned.where(cleaned != "", None), errors="coerce")


def _report_mask(
    report: ImportReport, rows: np.ndarray, mask: np.ndarray, column: str, issue: str, raw: pd.Series
) -> None:
    for i in np.flatnonzero(mask):
        report.add(int(rows[i]), column, issue, raw.iloc[i])


def _dec(value: float, quantum: Decimal) -> Decimal:
    return Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_EVEN)


def parse_price_csv(content: bytes, *, today: date, source: str) -> ParsedImport:
    """Validate and convert a price file; raises ImportRejected with the full row report."""
    report = ImportReport()
    frame = _read(content, report)
    if frame is None:
        raise ImportRejected(report, "The file could not be read")
    headers = [str(c).strip().lower() for c in frame.columns]
    seen: set[str] = set()
    for h in headers:
        if h in seen:
            report.add(1, h, "duplicate column")
        elif h not in REQUIRED and h not in OPTIONAL:
            report.add(1, h or "(blank)", f"unknown column; allowed: {', '.join(REQUIRED + OPTIONAL)}")
        seen.add(h)
    for h in REQUIRED:
        if h not in seen:
            report.add(1, h, "required column is missing")
    frame.columns = pd.Index(headers)
    frame = frame.loc[:, ~frame.columns.duplicated()]
    n = len(frame)
    if n == 0:
        report.add(None, "file", "the file has no data rows")
        raise ImportRejected(report, "The file has no data rows")
    rows = np.arange(n) + 2  # header is row 1

    def col(name: str) -> pd.Series:
        return frame[name].astype(str).str.strip() if name in frame else pd.Series([""] * n, dtype=str)

    raw_symbol, raw_date = col("symbol"), col("date")
    symbols = pd.Series([""] * n, dtype=object)
    if "symbol" in frame:
        mapping = {s: canonical_symbol(s) for s in raw_symbol.unique()}
        symbols = raw_symbol.map(mapping)
        empty = (raw_symbol == "").to_numpy()
        _report_mask(report, rows, empty, "symbol", "required", raw_symbol)
        valid = {s: is_valid_symbol(c) for s, c in mapping.items()}
        bad = (~raw_symbol.map(valid).astype(bool)).to_numpy() & ~empty
        _report_mask(report, rows, bad, "symbol", "not a valid ticker or OCC option symbol", raw_symbol)

    dates = pd.to_datetime(raw_date, format="%Y-%m-%d", errors="coerce")
    if "date" in frame:
        missing_date = (raw_date == "").to_numpy()
        _report_mask(report, rows, missing_date, "date", "required", raw_date)
        _report_mask(report, rows, dates.isna().to_numpy() & ~missing_date, "date", "not a date (YYYY-MM-DD)", raw_date)
        future = (dates > pd.Timestamp(today)).fillna(False).to_numpy()
        _report_mask(report, rows, future, "date", f"in the future (today is {today.isoformat()})", raw_date)
        too_old = (dates < pd.Timestamp("1900-01-01")).fillna(False).to_numpy()
        _report_mask(report, rows, too_old, "date", "before 1900-01-01", raw_date)

    numbers: dict[str, pd.Series] = {}
    for name in (*PRICE_COLUMNS, "volume", "implied_volatility", "dividend"):
        if name not in frame:
            continue
        raw = col(name)
        values = _numbers(raw)
        blank = (raw == "").to_numpy()
        if name == "close":
            _report_mask(report, rows, blank, name, "required", raw)
        not_number = values.isna().to_numpy() & ~blank
        _report_mask(report, rows, not_number, name, "not a number", raw)
        finite = values.notna().to_numpy()
        v = values.to_numpy(dtype=float, na_value=np.nan)
        if name in PRICE_COLUMNS:
            _report_mask(report, rows, finite & (v <= 0), name, "must be a positive price", raw)
            _report_mask(report, rows, finite & (v >= MAX_PRICE), name, "out of range", raw)
        elif name == "volume":
            _report_mask(
                report, rows, finite & ((v < 0) | (v != np.floor(v))), name, "must be a whole number >= 0", raw
            )
            _report_mask(report, rows, finite & (v >= 9.2e18), name, "out of range", raw)
        elif name == "implied_volatility":
            _report_mask(report, rows, finite & ((v <= 0) | (v > MAX_IV)), name, "must be a fraction in (0, 10]", raw)
        elif name == "dividend":
            _report_mask(report, rows, finite & ((v < 0) | (v >= MAX_PRICE)), name, "must be >= 0", raw)
        numbers[name] = values
    if "high" in numbers and "low" in numbers:
        hv, lv = (
            numbers["high"].to_numpy(dtype=float, na_value=np.nan),
            numbers["low"].to_numpy(dtype=float, na_value=np.nan),
        )
        with np.errstate(invalid="ignore"):
            inverted = (hv < lv) & ~np.isnan(hv) & ~np.isnan(lv)
        _report_mask(report, rows, inverted, "high", "high is below low", col("high"))

    if "symbol" in frame and "date" in frame:
        keys = pd.DataFrame({"s": symbols, "d": dates})
        dup = keys.duplicated(keep="first").to_numpy() & keys["d"].notna().to_numpy() & (raw_symbol != "").to_numpy()
        if dup.any():
            first_row = keys.reset_index().groupby(["s", "d"])["index"].transform("min").to_numpy() + 2
            for i in np.flatnonzero(dup):
                report.add(
                    int(rows[i]),
                    "date",
                    f"duplicate (symbol, date): first seen on row {int(first_row[i])}",
                    f"{symbols.iloc[i]} {raw_date.iloc[i]}",
                )

    if report.total:
        bad_rows = len({e["row"] for e in report.errors if e["row"] not in (None, 1)})
        raise ImportRejected(report, f"The file has {report.total} error(s) in {bad_rows} row(s); nothing was imported")
    return _records(symbols, dates, numbers, source)


def _records(symbols: pd.Series, dates: pd.Series, numbers: dict[str, pd.Series], source: str) -> ParsedImport:
    n = len(symbols)

    def arr(name: str) -> np.ndarray:
        if name not in numbers:
            return np.full(n, np.nan)
        return numbers[name].to_numpy(dtype=float, na_value=np.nan)

    close = arr("close")
    adj = arr("adj_close")
    adj = np.where(np.isnan(adj), close, adj)
    opens, highs, lows, vols, ivs, divs = (
        arr("open"),
        arr("high"),
        arr("low"),
        arr("volume"),
        arr("implied_volatility"),
        arr("dividend"),
    )
    day = [d.date() for d in dates]
    records: list[tuple[Any, ...]] = []
    for i in range(n):
        records.append(
            (
                symbols.iloc[i],
                day[i],
                None if np.isnan(opens[i]) else _dec(opens[i], Q4),
                None if np.isnan(highs[i]) else _dec(highs[i], Q4),
                None if np.isnan(lows[i]) else _dec(lows[i], Q4),
                _dec(close[i], Q4),
                _dec(adj[i], Q4),
                None if np.isnan(vols[i]) else int(vols[i]),
                None if np.isnan(ivs[i]) else float(ivs[i]),
                None if np.isnan(divs[i]) else _dec(divs[i], Q6),
                source,
            )
        )
    return ParsedImport(
        records=records,
        symbols=sorted(set(symbols)),
        first_date=min(day),
        last_date=max(day),
        has_dividends=bool((~np.isnan(divs)).any()),
    )
