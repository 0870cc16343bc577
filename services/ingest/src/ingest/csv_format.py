"""CSV upload format v1 (csv-format.md): decode, parse, validate and verify a positions file.

Pure and deterministic: no I/O and no clock. The upload date (US/Eastern calendar date the file
was received), the user's existing tags, the target portfolio's open positions and the security
master are all passed in. Two passes:

1. `check_file(content, ctx)`: file, header, cell, cross-cell and across-row rules (§1-§3).
2. `verify_symbols(result, lookup)`: security-master checks (§7) for every well-formed ticker.

Issues are `{row, column, code, message, value}` with the exact catalogue texts of §6; they are
sorted by row, then column order ticker, quantity, entry_price, entry_date, tags. A file is
imported only when it has zero errors.

The row loop is per row by nature (each cell is a string to parse); it stays fast by caching the
parse of repeated cells (tickers, dates, tag cells) and doing only constant work per cell.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ROWS = 10_000
MAX_OPEN_POSITIONS = 10_000
MAX_TAGS_PER_USER = 100
MAX_TAGS_PER_ROW = 20
MAX_QUANTITY = Decimal(1_000_000_000)
MAX_PRICE = Decimal(1_000_000)
MAX_DECIMALS = 4
VALUE_MAX_CHARS = 100
OPTION_MULTIPLIER = 100

COLUMNS: tuple[str, ...] = ("ticker", "quantity", "entry_price", "entry_date", "tags")
REQUIRED_COLUMNS: tuple[str, ...] = COLUMNS[:4]
ALIASES: dict[str, str] = {
    "symbol": "ticker",
    "qty": "quantity",
    "price": "entry_price",
    "trade_date": "entry_date",
    "tag": "tags",
}
_COLUMN_ORDER = {name: i for i, name in enumerate(COLUMNS)}

Severity = Literal["error", "warning"]
Mode = Literal["new", "append", "replace"]

_HEADER_SEP = re.compile(r"[\s\-]+")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_SIX_DIGITS = re.compile(r"\d{6}")
_OCC = re.compile(r"^([A-Z][A-Z0-9]{0,5})(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")
_STOCK = re.compile(r"^[A-Z][A-Z0-9]{0,5}([.-][A-Z0-9]{1,2})?$")
_TAG_NAME = re.compile(r"^[A-Za-z0-9 _.&/-]{1,50}$")
_WHITESPACE = re.compile(r"\s+")
_STRATEGY_PREFIX = "#strategy:"
_TRIM = " \t"


# --------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True, slots=True)
class Issue:
    """One reported problem: file line number (header = 1), canonical column or None, code."""

    row: int
    column: str | None
    code: str
    severity: Severity
    message: str
    value: str | None

    def to_api(self) -> dict[str, Any]:
        """The `{row, column, code, message, value}` object of api.md #60."""
        return {"row": self.row, "column": self.column, "code": self.code, "message": self.message, "value": self.value}


@dataclass(frozen=True, slots=True)
class TagRef:
    """A tag a row carries, after matching the user's existing tags."""

    name: str
    tag_type: Literal["regular", "strategy"]
    existing: bool


@dataclass(frozen=True, slots=True)
class ExistingTag:
    """One of the user's live tags (matched case-insensitively by name)."""

    name: str
    tag_type: Literal["regular", "strategy"]


@dataclass(frozen=True, slots=True)
class OccSymbol:
    """A parsed OCC option symbol (compact form)."""

    symbol: str
    root: str
    expiration_date: date
    option_type: Literal["C", "P"]
    strike_price: Decimal


@dataclass(slots=True)
class Row:
    """One data row: the cells as written and what was parsed from them (None when invalid)."""

    row_number: int
    raw: dict[str, str | None]
    symbol: str | None = None
    instrument_type: Literal["stock", "option"] | None = None
    position_type: str | None = None
    quantity: Decimal | None = None
    entry_price: Decimal | None = None
    multiplier: int | None = None
    underlying_symbol: str | None = None
    option_type: Literal["C", "P"] | None = None
    strike_price: Decimal | None = None
    expiration_date: date | None = None
    entry_date: date | None = None
    tags: tuple[TagRef, ...] = ()
    # Columns (None = whole row) that already carry an error: at most one error per cell.
    error_columns: set[str | None] = field(default_factory=set)

    @property
    def is_valid(self) -> bool:
        return not self.error_columns

    @property
    def cost_basis(self) -> Decimal | None:
        """quantity × entry_price × multiplier (signed), exact."""
        if self.quantity is None or self.entry_price is None or self.multiplier is None:
            return None
        return self.quantity * self.entry_price * self.multiplier

    def tags_json(self) -> list[dict[str, str]]:
        return [{"name": t.name, "tag_type": t.tag_type} for t in self.tags]


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything the rules compare against besides the file itself."""

    upload_date: date
    mode: Mode = "new"
    existing_tags: Mapping[str, ExistingTag] = field(default_factory=dict)  # keyed by lower(name)
    open_positions: frozenset[tuple[str, date]] = frozenset()  # (symbol, entry_date), append mode
    open_position_count: int = 0

    @staticmethod
    def tags_by_key(tags: Iterable[ExistingTag]) -> dict[str, ExistingTag]:
        """Index existing tags by their case-insensitive key."""
        return {t.name.lower(): t for t in tags}


@dataclass(frozen=True, slots=True)
class Security:
    """What the security master says about a symbol."""

    symbol: str
    security_type: str  # stock | etf | mutual_fund | option | index
    sector: str | None = None
    industry: str | None = None


@dataclass(frozen=True)
class SecurityLookup:
    """The known securities for the symbols of one file (api_security + api_symbol_alias + prices)."""

    securities: Mapping[str, Security]
    aliases: Mapping[str, str] = field(default_factory=dict)
    priced: frozenset[str] = frozenset()  # symbols with at least one row in api_daily_price


@dataclass
class SecuritySummary:
    """`securities` block of api.md #60."""

    verified: int = 0
    classified: int = 0
    unknown_classification: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "classified": self.classified,
            "unknown_classification": self.unknown_classification,
        }


@dataclass
class CheckResult:
    """Outcome of checking one file."""

    upload_date: date
    issues: list[Issue] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    header_map: dict[str, str] = field(default_factory=dict)  # original header -> canonical column
    ignored_columns: list[str] = field(default_factory=list)
    rows_total: int = 0
    stopped: bool = False  # a file-level error stopped the check before the rows
    new_tags: list[TagRef] = field(default_factory=list)  # created at import, first spelling wins
    reused_tags: list[str] = field(default_factory=list)  # existing tag names used by the file
    securities: SecuritySummary | None = None
    _column_rank: dict[str | None, int] = field(default_factory=dict)

    def add(self, row: int, column: str | None, code: str, message: str, value: str | None) -> None:
        """Record an error (and mark the cell as failed)."""
        self.issues.append(Issue(row, column, code, "error", message, _clip(value)))

    def warn(self, row: int, column: str | None, code: str, message: str, value: str | None) -> None:
        self.issues.append(Issue(row, column, code, "warning", message, _clip(value)))

    @property
    def error_count(self) -> int:
        return sum(1 for i in self.issues if i.severity == "error")

    @property
    def warning_count(self) -> int:
        return sum(1 for i in self.issues if i.severity == "warning")

    @property
    def rows_valid(self) -> int:
        return sum(1 for r in self.rows if r.is_valid) if not self.stopped else 0

    @property
    def rows_invalid(self) -> int:
        return sum(1 for r in self.rows if not r.is_valid) if not self.stopped else 0

    @property
    def ok(self) -> bool:
        """True when the file can be imported (zero errors)."""
        return self.error_count == 0

    def sorted_issues(self) -> list[Issue]:
        """Issues by row, then column order (ticker … tags, other columns, then whole-row)."""
        rank = self._column_rank
        keyed = [(i.row, rank.get(i.column, -1), n, i) for n, i in enumerate(self.issues)]
        keyed.sort(key=lambda k: (k[0], k[1], k[2]))
        return [k[3] for k in keyed]

    def summary(self) -> dict[str, int]:
        return {
            "rows_total": self.rows_total,
            "rows_valid": self.rows_valid,
            "rows_invalid": self.rows_invalid,
            "errors": self.error_count,
            "warnings": self.warning_count,
        }

    def positions_by_type(self) -> dict[str, int]:
        counts = {"LONG": 0, "SHORT": 0, "LC": 0, "LP": 0, "SC": 0, "SP": 0}
        for r in self.rows:
            if r.position_type is not None:
                counts[r.position_type] += 1
        return counts


# --------------------------------------------------------------------------------------------
# Small pure helpers


def _clip(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    return value[:VALUE_MAX_CHARS]


def normalise_header(header: str) -> str:
    """Trim, lower-case, runs of spaces or hyphens → one underscore (`Entry Price` → `entry_price`)."""
    return _HEADER_SEP.sub("_", header.strip(_TRIM).lower())


def five_years_before(day: date) -> date:
    """Same calendar day five years earlier; 29 February maps to 28 February."""
    try:
        return day.replace(year=day.year - 5)
    except ValueError:
        return date(day.year - 5, 2, 28)


def decode_utf8(content: bytes) -> str | Issue:
    """UTF-8 text without a leading BOM, or the INVALID_ENCODING issue."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Issue(
            1,
            None,
            "INVALID_ENCODING",
            "error",
            f"file is not valid UTF-8 (first invalid byte at offset {exc.start})",
            None,
        )
    return text[1:] if text.startswith("\ufeff") else text


def split_fields(line: str) -> list[str]:
    """RFC 4180 fields of one physical line (`""` inside quotes is a literal quote)."""
    if '"' not in line:
        return line.split(",")
    return next(csv.reader((line,), skipinitialspace=True))


def split_lines(lines: list[str]) -> list[list[str]]:
    """`split_fields` for many lines at once: one C csv reader over every line whose quotes balance.

    A line with an odd number of quotes would swallow the next line in a reader over all lines,
    so it is parsed alone (its open quote ends at the end of the line: rows never span lines).
    """
    out: list[list[str] | None] = [None] * len(lines)
    quoted: list[int] = []
    for i, line in enumerate(lines):
        if '"' not in line:
            out[i] = line.split(",")
        elif line.count('"') % 2 == 0:
            quoted.append(i)
        else:
            out[i] = split_fields(line)
    if quoted:
        for i, fields in zip(quoted, csv.reader([lines[i] for i in quoted], skipinitialspace=True), strict=True):
            out[i] = fields
    return [f if f is not None else [] for f in out]


def parse_occ(text: str) -> OccSymbol | str:
    """Parse an OCC option symbol (spaces removed, upper-cased); a §6 error code when it fails."""
    compact = _WHITESPACE.sub("", text).upper()
    m = _OCC.match(compact)
    if m is None:
        return "INVALID_OPTION_SYMBOL"
    root, yy, mm, dd, cp, strike = m.groups()
    try:
        expiry = date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        return "INVALID_EXPIRY"
    strike_price = Decimal(int(strike)) / 1000
    if strike_price <= 0:
        return "INVALID_STRIKE"
    return OccSymbol(compact, root, expiry, "C" if cp == "C" else "P", strike_price.quantize(Decimal("0.001")))


def position_type(instrument_type: str, option_type: str | None, quantity: Decimal) -> str:
    """Derived position type (csv-format.md §5; calculations.md §0.2)."""
    long = quantity > 0
    if instrument_type == "stock":
        return "LONG" if long else "SHORT"
    if option_type == "C":
        return "LC" if long else "SC"
    return "LP" if long else "SP"


def _parse_number(cell: str) -> Decimal | str:
    """A plain decimal, or the code of the first failing format rule (INVALID_NUMBER, PRECISION)."""
    if _NUMBER.match(cell) is None:
        return "INVALID_NUMBER"
    _, _, frac = cell.partition(".")
    # Trailing zeros carry no precision ("1.50000" is 1.5), so only significant decimals count.
    if len(frac.rstrip("0")) > MAX_DECIMALS:
        return "PRECISION"
    try:
        return Decimal(cell)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return "INVALID_NUMBER"


# --------------------------------------------------------------------------------------------
# Cell rules (cached per distinct cell text: files repeat tickers, dates and tag sets)


@dataclass(frozen=True, slots=True)
class _Ticker:
    symbol: str | None
    occ: OccSymbol | None
    error: tuple[str, str] | None  # (code, message)


def _check_ticker(cell: str, upload_date: date) -> _Ticker:
    upper = cell.upper()
    if _SIX_DIGITS.search(upper):
        parsed = parse_occ(upper)
        if isinstance(parsed, str):
            if parsed == "INVALID_EXPIRY":
                yymmdd = _OCC.match(_WHITESPACE.sub("", upper))
                digits = "".join(yymmdd.groups()[1:4]) if yymmdd else ""
                return _Ticker(None, None, (parsed, f"option expiry '{digits}' is not a real date"))
            if parsed == "INVALID_STRIKE":
                return _Ticker(None, None, (parsed, "option strike must be greater than zero"))
            return _Ticker(
                None,
                None,
                (
                    parsed,
                    f"'{_clip(cell)}' is not a valid OCC option symbol (ROOT + YYMMDD + C/P + 8-digit strike)",
                ),
            )
        if parsed.expiration_date < upload_date:
            # Well-formed but expired: the contract is still parsed so cross rules can compare.
            return _Ticker(
                parsed.symbol, parsed, ("OPTION_EXPIRED", f"option expired on {parsed.expiration_date.isoformat()}")
            )
        return _Ticker(parsed.symbol, parsed, None)
    if _STOCK.match(upper) is None:
        return _Ticker(None, None, ("INVALID_TICKER", f"'{_clip(cell)}' is not a valid stock ticker"))
    return _Ticker(upper.replace(".", "-"), None, None)


@dataclass(frozen=True, slots=True)
class _Date:
    value: date | None
    error: tuple[str, str] | None


def _check_date(cell: str, upload_date: date, min_date: date) -> _Date:
    m = _DATE.match(cell)
    parsed: date | None = None
    if m is not None:
        try:
            parsed = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            parsed = None
    if parsed is None:
        return _Date(None, ("INVALID_DATE", f"'{_clip(cell)}' is not a date in YYYY-MM-DD format"))
    if parsed > upload_date:
        return _Date(parsed, ("FUTURE_DATE", f"entry_date {cell} is after the upload date {upload_date.isoformat()}"))
    if parsed < min_date:
        return _Date(
            parsed,
            (
                "DATE_TOO_OLD",
                f"entry_date {cell} is more than 5 years before the upload date "
                f"(earliest allowed {min_date.isoformat()})",
            ),
        )
    return _Date(parsed, None)


@dataclass(frozen=True, slots=True)
class _TagCell:
    tokens: tuple[tuple[str, Literal["regular", "strategy"]], ...]  # distinct, in order
    issues: tuple[tuple[str, Severity, str], ...]  # (code, severity, message)
    failed: bool


def _parse_tag_cell(cell: str) -> _TagCell:
    issues: list[tuple[str, Severity, str]] = []
    seen: dict[str, str] = {}
    tokens: list[tuple[str, Literal["regular", "strategy"]]] = []
    parsed: list[tuple[str, Literal["regular", "strategy"]]] = []
    for part in cell.split(","):
        token = _WHITESPACE.sub(" ", part.strip())
        if not token:
            continue
        tag_type: Literal["regular", "strategy"] = "regular"
        if token[: len(_STRATEGY_PREFIX)].lower() == _STRATEGY_PREFIX:
            name = token[len(_STRATEGY_PREFIX) :].strip()
            tag_type = "strategy"
        elif token.startswith("#"):
            name = token[1:].strip()
        else:
            name = token
        parsed.append((name, tag_type))
    for name, _ in parsed:
        if _TAG_NAME.match(name) is None:
            message = (
                f"tag '{name[:VALUE_MAX_CHARS]}' may only contain letters, digits, spaces "
                "and _ - . & / (1-50 characters)"
            )
            return _TagCell((), (("INVALID_TAG", "error", message),), True)
    for name, tag_type in parsed:
        key = name.lower()
        first = seen.get(key)
        if first is not None:
            issues.append(("DUPLICATE_TAG", "warning", f"tag '{name}' repeats '{first}' in this row and was kept once"))
            continue
        seen[key] = name
        tokens.append((name, tag_type))
    if len(tokens) > MAX_TAGS_PER_ROW:
        issues.append(("TOO_MANY_TAGS", "error", f"row has {len(tokens)} tags; the limit is {MAX_TAGS_PER_ROW}"))
        return _TagCell((), tuple(issues), True)
    return _TagCell(tuple(tokens), tuple(issues), False)


# --------------------------------------------------------------------------------------------
# Pass 1: file, header, cells, rows


def check_file(content: bytes, ctx: CheckContext) -> CheckResult:
    """Run every rule of csv-format.md §1-§3 (symbol verification is `verify_symbols`)."""
    result = CheckResult(upload_date=ctx.upload_date)
    decoded = decode_utf8(content)
    if isinstance(decoded, Issue):
        result.issues.append(decoded)
        result.stopped = True
        return result
    lines = decoded.split("\n")
    for i, line in enumerate(lines):
        if line.endswith("\r"):
            lines[i] = line[:-1]

    last = len(lines) - 1
    while last >= 0 and _blank_line(lines[last]):
        last -= 1
    if last < 0:  # nothing but blank lines: no header, no rows
        result.add(1, None, "EMPTY_FILE", "file contains no data rows", None)
        result.stopped = True
        return result

    header_cells = split_fields(lines[0])
    positions = _check_header(header_cells, result)
    result.rows_total = last  # lines 2 … last data line
    data_rows = sum(1 for line in lines[1 : last + 1] if not _blank_line(line))
    if result.rows_total == 0:
        result.add(1, None, "EMPTY_FILE", "file contains no data rows", None)
    if data_rows > MAX_ROWS:
        result.add(1, None, "TOO_MANY_ROWS", f"file has {data_rows} data rows; the limit is {MAX_ROWS}", None)
    if positions is None or result.rows_total == 0 or data_rows > MAX_ROWS:
        result.stopped = True
        return result

    if ctx.mode == "append" and ctx.open_position_count + data_rows > MAX_OPEN_POSITIONS:
        result.add(
            1,
            None,
            "POSITION_LIMIT",
            f"portfolio would hold {ctx.open_position_count + data_rows} open positions; "
            f"the limit is {MAX_OPEN_POSITIONS}",
            None,
        )
    _check_rows(lines, last, len(header_cells), positions, ctx, result)
    return result


def _blank_line(line: str) -> bool:
    return not line.strip(' \t,"')


def _check_header(cells: list[str], result: CheckResult) -> dict[str, int] | None:
    """Map canonical columns to field positions; None when a file-level header error stops the check."""
    found: dict[str, list[tuple[int, str]]] = {}
    rank: dict[str | None, int] = {}
    rank.update(_COLUMN_ORDER)
    for idx, cell in enumerate(cells):
        original = cell.strip(_TRIM)
        norm = normalise_header(original)
        canonical = norm if norm in _COLUMN_ORDER else ALIASES.get(norm)
        if canonical is None:
            if not norm:  # an unnamed column (trailing comma of a spreadsheet export) carries nothing
                continue
            rank.setdefault(norm, len(COLUMNS) + idx)
            result.ignored_columns.append(original)
            result.warn(1, norm, "IGNORED_COLUMN", f"column '{original}' is not used and was ignored", None)
            continue
        found.setdefault(canonical, []).append((idx, original))
        result.header_map[original] = canonical
        if canonical != norm:
            result.warn(1, canonical, "HEADER_ALIAS", f"column '{original}' was read as '{canonical}'", None)
    result._column_rank = rank
    ok = True
    for column in REQUIRED_COLUMNS:
        if column not in found:
            result.add(1, column, "MISSING_COLUMN", f"required column '{column}' is missing", None)
            ok = False
    for column in COLUMNS:
        hits = found.get(column, [])
        if len(hits) > 1:
            headers = ", ".join(h for _, h in hits)
            result.add(1, column, "DUPLICATE_COLUMN", f"more than one column maps to '{column}' ({headers})", None)
            ok = False
    if not ok:
        return None
    return {column: hits[0][0] for column, hits in found.items()}


def _check_rows(
    lines: list[str],
    last: int,
    n_header: int,
    positions: dict[str, int],
    ctx: CheckContext,
    result: CheckResult,
) -> None:
    upload_date = ctx.upload_date
    min_date = five_years_before(upload_date)
    tickers: dict[str, _Ticker] = {}
    dates: dict[str, _Date] = {}
    tag_cells: dict[str, _TagCell] = {}
    known_tags: dict[str, TagRef] = {key: TagRef(t.name, t.tag_type, True) for key, t in ctx.existing_tags.items()}
    reused: dict[str, str] = {}
    first_seen: dict[tuple[str, date], int] = {}
    append = ctx.mode == "append"
    p_ticker = positions["ticker"]
    p_qty = positions["quantity"]
    p_price = positions["entry_price"]
    p_date = positions["entry_date"]
    p_tags = positions.get("tags")
    add = result.add
    warn = result.warn

    numbers: dict[str, Decimal | str] = {}
    resolved: dict[str, tuple[tuple[TagRef, ...], list[tuple[str, str, str]]]] = {}
    blank = [""] * (n_header + 1)
    p_none = n_header  # position of an always-empty cell (no tags column)
    if p_tags is None:
        p_tags = p_none
    all_fields = split_lines(lines[1 : last + 1])

    for idx in range(1, last + 1):
        line = lines[idx]
        n = idx + 1
        if _blank_line(line):
            row = Row(n, {})
            row.error_columns.add(None)
            result.rows.append(row)
            add(n, None, "BLANK_ROW", "blank row inside the data", None)
            continue
        fields = all_fields[idx - 1]
        nf = len(fields)
        if nf <= n_header:
            fields = fields + blank[nf:]
        c_ticker = fields[p_ticker].strip(_TRIM)
        c_qty = fields[p_qty].strip(_TRIM)
        c_price = fields[p_price].strip(_TRIM)
        c_date = fields[p_date].strip(_TRIM)
        c_tags = fields[p_tags].strip(_TRIM)
        row = Row(
            n,
            {
                "ticker": c_ticker or None,
                "quantity": c_qty or None,
                "entry_price": c_price or None,
                "entry_date": c_date or None,
                "tags": c_tags or None,
            },
        )
        result.rows.append(row)
        if nf > n_header:
            row.error_columns.add(None)
            add(n, None, "FIELD_COUNT", f"row has {nf} fields but the header has {n_header}", None)
            continue
        errs = row.error_columns

        # ticker
        occ: OccSymbol | None = None
        if not c_ticker:
            errs.add("ticker")
            add(n, "ticker", "REQUIRED", "ticker is required", None)
        else:
            t = tickers.get(c_ticker)
            if t is None:
                t = tickers[c_ticker] = _check_ticker(c_ticker, upload_date)
            occ = t.occ
            if t.symbol is not None:
                row.symbol = t.symbol
                if occ is not None:
                    row.instrument_type = "option"
                    row.multiplier = OPTION_MULTIPLIER
                    row.underlying_symbol = occ.root
                    row.option_type = occ.option_type
                    row.strike_price = occ.strike_price
                    row.expiration_date = occ.expiration_date
                else:
                    row.instrument_type = "stock"
                    row.multiplier = 1
                    row.underlying_symbol = t.symbol
            if t.error is not None:
                errs.add("ticker")
                add(n, "ticker", t.error[0], t.error[1], c_ticker)

        # quantity
        if not c_qty:
            errs.add("quantity")
            add(n, "quantity", "REQUIRED", "quantity is required", None)
        else:
            q = numbers.get(c_qty)
            if q is None:
                q = numbers[c_qty] = _parse_number(c_qty)
            if isinstance(q, str):
                errs.add("quantity")
                add(n, "quantity", q, _number_message(q, c_qty), c_qty)
            elif q == 0:
                errs.add("quantity")
                add(n, "quantity", "ZERO_QUANTITY", "quantity must not be zero", c_qty)
            elif abs(q) > MAX_QUANTITY:
                errs.add("quantity")
                add(n, "quantity", "OUT_OF_RANGE", f"quantity must not exceed {MAX_QUANTITY} in absolute value", c_qty)
            elif occ is not None and q != q.to_integral_value():
                errs.add("quantity")
                add(n, "quantity", "FRACTIONAL_CONTRACTS", "option quantity must be a whole number of contracts", c_qty)
            else:
                row.quantity = q

        # entry_price
        if not c_price:
            errs.add("entry_price")
            add(n, "entry_price", "REQUIRED", "entry_price is required", None)
        else:
            p = numbers.get(c_price)
            if p is None:
                p = numbers[c_price] = _parse_number(c_price)
            if isinstance(p, str):
                errs.add("entry_price")
                add(n, "entry_price", p, _number_message(p, c_price), c_price)
            elif p <= 0:
                errs.add("entry_price")
                add(n, "entry_price", "NON_POSITIVE_PRICE", "entry_price must be greater than zero", c_price)
            elif p > MAX_PRICE:
                errs.add("entry_price")
                message = f"entry_price must not exceed {MAX_PRICE} in absolute value"
                add(n, "entry_price", "OUT_OF_RANGE", message, c_price)
            else:
                row.entry_price = p

        # entry_date
        if not c_date:
            errs.add("entry_date")
            add(n, "entry_date", "REQUIRED", "entry_date is required", None)
        else:
            d = dates.get(c_date)
            if d is None:
                d = dates[c_date] = _check_date(c_date, upload_date, min_date)
            if d.error is not None:
                errs.add("entry_date")
                add(n, "entry_date", d.error[0], d.error[1], c_date)
            elif occ is not None and d.value is not None and d.value > occ.expiration_date:
                errs.add("entry_date")
                add(
                    n,
                    "entry_date",
                    "ENTRY_AFTER_EXPIRY",
                    f"entry_date {c_date} is after the option's expiry {occ.expiration_date.isoformat()}",
                    c_date,
                )
            else:
                row.entry_date = d.value

        # tags
        if c_tags:
            tc = tag_cells.get(c_tags)
            if tc is None:
                tc = tag_cells[c_tags] = _parse_tag_cell(c_tags)
            for code, severity, message in tc.issues:
                if severity == "error":
                    errs.add("tags")
                    add(n, "tags", code, message, c_tags)
                else:
                    warn(n, "tags", code, message, c_tags)
            if not tc.failed:
                hit = resolved.get(c_tags)
                if hit is None:
                    hit = resolved[c_tags] = _resolve_tags(tc, known_tags, reused, result)
                refs, tag_issues = hit
                for code, column_message, _ in tag_issues:
                    if code == "MULTIPLE_STRATEGIES":
                        errs.add("tags")
                        add(n, "tags", code, column_message, c_tags)
                    else:
                        warn(n, "tags", code, column_message, c_tags)
                row.tags = refs

        # derived type
        if row.quantity is not None and row.instrument_type is not None and "ticker" not in errs:
            row.position_type = position_type(row.instrument_type, row.option_type, row.quantity)

        # across rows
        if row.symbol is not None and row.entry_date is not None and "ticker" not in errs:
            key = (row.symbol, row.entry_date)
            first = first_seen.get(key)
            if first is not None:
                errs.add("ticker")
                message = f"duplicate of row {first} (same ticker and entry_date)"
                add(n, "ticker", "DUPLICATE_POSITION", message, c_ticker)
            else:
                first_seen[key] = n
                if append and key in ctx.open_positions:
                    errs.add("ticker")
                    add(
                        n,
                        "ticker",
                        "DUPLICATE_OPEN_POSITION",
                        _open_duplicate_message(row.symbol, row.entry_date),
                        c_ticker,
                    )

    result.reused_tags = list(reused.values())
    total_tags = len(ctx.existing_tags) + len(result.new_tags)
    if total_tags > MAX_TAGS_PER_USER:
        result.add(
            1,
            "tags",
            "TAG_LIMIT_EXCEEDED",
            f"this upload would bring you to {total_tags} tags; the limit is {MAX_TAGS_PER_USER}",
            None,
        )


def _open_duplicate_message(symbol: str, entry_date: date) -> str:
    return f"portfolio already holds an open {symbol} position entered on {entry_date.isoformat()}"


def _number_message(code: str, cell: str) -> str:
    if code == "PRECISION":
        return f"'{_clip(cell)}' has more than {MAX_DECIMALS} decimal places"
    return f"'{_clip(cell)}' is not a plain decimal number"


def _resolve_tags(
    tc: _TagCell,
    known: dict[str, TagRef],
    reused: dict[str, str],
    result: CheckResult,
) -> tuple[tuple[TagRef, ...], list[tuple[str, str, str]]]:
    """Match a tag cell to the user's tags (and tags created earlier in the file).

    Returns the refs (empty when the row breaks the one-strategy rule) and the issues as
    (code, message, severity). The outcome for a given cell never changes later in the file (a new
    tag keeps the type of its first row), so callers cache it per cell text.
    """
    refs: list[TagRef] = []
    issues: list[tuple[str, str, str]] = []
    for name, wanted in tc.tokens:
        key = name.lower()
        ref = known.get(key)
        if ref is None:
            ref = known[key] = TagRef(name, wanted, False)
            result.new_tags.append(ref)
        else:
            if ref.existing:
                reused.setdefault(key, ref.name)
            if ref.tag_type != wanted:
                issues.append(
                    (
                        "TAG_TYPE_MISMATCH",
                        f"tag '{name}' already exists as a {ref.tag_type} tag; the existing tag is used",
                        "warning",
                    )
                )
        refs.append(ref)
    strategies = [r.name for r in refs if r.tag_type == "strategy"]
    if len(strategies) > 1:
        issues.append(
            (
                "MULTIPLE_STRATEGIES",
                f"row names {len(strategies)} strategy tags ({', '.join(strategies)}); "
                "a position can belong to one strategy",
                "error",
            )
        )
        return (), issues
    return tuple(refs), issues


# --------------------------------------------------------------------------------------------
# Pass 2: symbol verification against the security master (§7)


def symbols_to_look_up(result: CheckResult) -> set[str]:
    """Symbols whose security-master rows, aliases and price presence pass 2 needs."""
    out: set[str] = set()
    for row in result.rows:
        if row.symbol is None:
            continue
        out.add(row.symbol)
        if row.underlying_symbol:
            out.add(row.underlying_symbol)
            if row.instrument_type == "stock" and "-" in row.symbol:
                out.add(row.symbol.replace("-", "."))
    return out


def _resolve(symbol: str, lookup: SecurityLookup) -> Security | None:
    sec = lookup.securities.get(symbol)
    if sec is not None:
        return sec
    for alias in (symbol, symbol.replace("-", ".")):
        target = lookup.aliases.get(alias)
        if target is not None and target in lookup.securities:
            return lookup.securities[target]
    return None


def _unclassified(sec: Security) -> bool:
    return not sec.sector or not sec.industry or sec.sector == "Unknown" or sec.industry == "Unknown"


def verify_symbols(result: CheckResult, lookup: SecurityLookup, ctx: CheckContext) -> None:
    """Add UNKNOWN_SYMBOL, NOT_HOLDABLE, SHORT_NOT_ALLOWED, NO_OPTION_DATA, UNKNOWN_CLASSIFICATION."""
    if result.stopped:
        return
    verified: set[str] = set()  # position symbols found in the security master
    unclassified: set[str] = set()  # position symbols whose (underlying's) classification is missing
    unknown_class: dict[str, None] = {}  # securities without sector/industry, in file order
    rewritten = False
    for row in result.rows:
        if row.symbol is None or "ticker" in row.error_columns:
            continue
        n = row.row_number
        value = row.raw.get("ticker")
        if row.instrument_type == "stock":
            sec = _resolve(row.symbol, lookup)
            if sec is None:
                row.error_columns.add("ticker")
                result.add(n, "ticker", "UNKNOWN_SYMBOL", f"symbol '{row.symbol}' is not a known security", value)
                continue
            if sec.symbol != row.symbol:
                row.symbol = row.underlying_symbol = sec.symbol
                rewritten = True
            if sec.security_type == "index":
                row.error_columns.add("ticker")
                message = f"'{sec.symbol}' is an index and cannot be held directly"
                result.add(n, "ticker", "NOT_HOLDABLE", message, value)
                continue
            if sec.security_type == "mutual_fund" and row.quantity is not None and row.quantity < 0:
                row.error_columns.add("quantity")
                row.position_type = None
                result.add(
                    n,
                    "quantity",
                    "SHORT_NOT_ALLOWED",
                    f"mutual fund '{sec.symbol}' cannot be held short",
                    row.raw.get("quantity"),
                )
            classified_by = sec
        else:
            root = row.underlying_symbol or ""
            underlying = _resolve(root, lookup)
            if underlying is None:
                row.error_columns.add("ticker")
                result.add(
                    n,
                    "ticker",
                    "UNKNOWN_SYMBOL",
                    f"underlying '{root}' of '{row.symbol}' is not a known security",
                    value,
                )
                continue
            row.underlying_symbol = underlying.symbol
            if row.symbol not in lookup.securities and row.symbol not in lookup.priced:
                result.warn(
                    n,
                    "ticker",
                    "NO_OPTION_DATA",
                    f"no market data found for option '{row.symbol}'; it is kept and priced from model inputs",
                    value,
                )
            classified_by = underlying  # options take the underlying's classification
        verified.add(row.symbol)
        if _unclassified(classified_by):
            unclassified.add(row.symbol)
            unknown_class[classified_by.symbol] = None
            result.warn(
                n,
                "ticker",
                "UNKNOWN_CLASSIFICATION",
                f"no sector/industry found for '{classified_by.symbol}'; stored as 'Unknown'",
                value,
            )
    if rewritten:
        _recheck_duplicates_after_aliases(result, ctx)
    result.securities = SecuritySummary(
        verified=len(verified),
        classified=len(verified - unclassified),
        unknown_classification=list(unknown_class),
    )


def _recheck_duplicates_after_aliases(result: CheckResult, ctx: CheckContext) -> None:
    """An alias (e.g. a provider spelling) can make two rows the same position; report the later one."""
    seen: dict[tuple[str, date], int] = {}
    for row in result.rows:
        if row.symbol is None or row.entry_date is None or "ticker" in row.error_columns:
            continue
        key = (row.symbol, row.entry_date)
        first = seen.get(key)
        if first is not None:
            row.error_columns.add("ticker")
            result.add(
                row.row_number,
                "ticker",
                "DUPLICATE_POSITION",
                f"duplicate of row {first} (same ticker and entry_date)",
                row.raw.get("ticker"),
            )
        elif ctx.mode == "append" and key in ctx.open_positions:
            row.error_columns.add("ticker")
            result.add(
                row.row_number,
                "ticker",
                "DUPLICATE_OPEN_POSITION",
                _open_duplicate_message(row.symbol, row.entry_date),
                row.raw.get("ticker"),
            )
        else:
            seen[key] = row.row_number


def validate(content: bytes, ctx: CheckContext, lookup: SecurityLookup) -> CheckResult:
    """Both passes (for callers that already hold the lookup)."""
    result = check_file(content, ctx)
    verify_symbols(result, lookup, ctx)
    return result
