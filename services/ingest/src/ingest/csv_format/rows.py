"""Pass 1 over the data rows: the cell rules, the cross-cell rules and the rules across rows (§3).

Rows are checked one at a time because each cell is text to parse; the pass stays fast by caching
every cell rule's outcome per distinct cell text (files repeat tickers, numbers, dates and tag
sets) and doing only constant work per cell.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from ingest.csv_format.cells import (
    DateCell,
    TickerCell,
    check_date,
    check_ticker,
    five_years_before,
    number_message,
    parse_number,
    position_type,
)
from ingest.csv_format.limits import MAX_PRICE, MAX_QUANTITY, OPTION_MULTIPLIER
from ingest.csv_format.model import CheckContext, Row
from ingest.csv_format.occ import OccSymbol
from ingest.csv_format.result import CheckResult
from ingest.csv_format.tags import TagMatcher
from ingest.csv_format.text import TRIM, is_blank_line, split_lines

PositionKey = tuple[str, date]  # (symbol, entry_date): one open position per key


def duplicate_error(
    symbol: str, entry_date: date, earlier_row: int | None, ctx: CheckContext
) -> tuple[str, str] | None:
    """(code, message) when a row repeats an earlier row's position or, in append mode, an open one."""
    if earlier_row is not None:
        return "DUPLICATE_POSITION", f"duplicate of row {earlier_row} (same ticker and entry_date)"
    if ctx.mode == "append" and (symbol, entry_date) in ctx.open_positions:
        message = f"portfolio already holds an open {symbol} position entered on {entry_date.isoformat()}"
        return "DUPLICATE_OPEN_POSITION", message
    return None


def check_rows(
    lines: list[str], last: int, n_header: int, positions: dict[str, int], ctx: CheckContext, result: CheckResult
) -> None:
    """Check lines 2 … `last` + 1 (`positions`: field index of each canonical column)."""
    rules = _RowRules(ctx, result)
    blank = [""] * (n_header + 1)
    at_ticker = positions["ticker"]
    at_qty = positions["quantity"]
    at_price = positions["entry_price"]
    at_date = positions["entry_date"]
    at_tags = positions.get("tags", n_header)  # without a tags column: an always-empty padding cell
    all_fields = split_lines(lines[1 : last + 1])

    for idx in range(1, last + 1):
        n = idx + 1
        if is_blank_line(lines[idx]):
            row = Row(n, {})
            result.rows.append(row)
            result.fail_cell(row, None, "BLANK_ROW", "blank row inside the data", None)
            continue
        fields = all_fields[idx - 1]
        nf = len(fields)
        if nf <= n_header:
            fields = fields + blank[nf:]  # missing trailing cells are empty
        cells = (
            fields[at_ticker].strip(TRIM),
            fields[at_qty].strip(TRIM),
            fields[at_price].strip(TRIM),
            fields[at_date].strip(TRIM),
            fields[at_tags].strip(TRIM),
        )
        row = Row(
            n,
            {
                "ticker": cells[0] or None,
                "quantity": cells[1] or None,
                "entry_price": cells[2] or None,
                "entry_date": cells[3] or None,
                "tags": cells[4] or None,
            },
        )
        result.rows.append(row)
        if nf > n_header:
            result.fail_cell(row, None, "FIELD_COUNT", f"row has {nf} fields but the header has {n_header}", None)
            continue
        rules.check(row, *cells)
    rules.tags.finish()


class _RowRules:
    """The rules of one data row, with the per-file caches and what earlier rows established."""

    def __init__(self, ctx: CheckContext, result: CheckResult) -> None:
        self.ctx = ctx
        self.result = result
        self.min_date = five_years_before(ctx.upload_date)
        self.tickers: dict[str, TickerCell] = {}
        self.numbers: dict[str, Decimal | str] = {}
        self.dates: dict[str, DateCell] = {}
        self.tags = TagMatcher(ctx.existing_tags, result)
        self.first_seen: dict[PositionKey, int] = {}

    def check(self, row: Row, ticker: str, quantity: str, entry_price: str, entry_date: str, tags: str) -> None:
        """Cell rules in column order (an option ticker changes the quantity and date rules), then the
        derived position type and the across-row rule, both only for a row whose ticker passed."""
        occ = self._ticker(row, ticker)
        self._quantity(row, quantity, occ)
        self._entry_price(row, entry_price)
        self._entry_date(row, entry_date, occ)
        if tags:
            self.tags.check(row, tags)
        ticker_ok = "ticker" not in row.error_columns
        if row.quantity is not None and row.instrument_type is not None and ticker_ok:
            row.position_type = position_type(row.instrument_type, row.option_type, row.quantity)
        if row.symbol is not None and row.entry_date is not None and ticker_ok:
            self._duplicates(row, row.symbol, row.entry_date, ticker)

    def _missing(self, row: Row, column: str) -> None:
        """Report an empty required cell (callers test the cell first: most cells are filled)."""
        self.result.fail_cell(row, column, "REQUIRED", f"{column} is required", None)

    def _ticker(self, row: Row, cell: str) -> OccSymbol | None:
        """Set the instrument fields; the parsed option (even an expired one) for the cross-cell rules."""
        if not cell:
            self._missing(row, "ticker")
            return None
        t = self.tickers.get(cell)
        if t is None:
            t = self.tickers[cell] = check_ticker(cell, self.ctx.upload_date)
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
            self.result.fail_cell(row, "ticker", t.error[0], t.error[1], cell)
        return occ

    def _number(self, row: Row, column: str, cell: str) -> Decimal | None:
        """The cell as a plain decimal, or None after reporting REQUIRED / INVALID_NUMBER / PRECISION."""
        if not cell:
            self._missing(row, column)
            return None
        value = self.numbers.get(cell)
        if value is None:
            value = self.numbers[cell] = parse_number(cell)
        if isinstance(value, str):
            self.result.fail_cell(row, column, value, number_message(value, cell), cell)
            return None
        return value

    def _quantity(self, row: Row, cell: str, occ: OccSymbol | None) -> None:
        q = self._number(row, "quantity", cell)
        if q is None:
            return
        fail = self.result.fail_cell
        if q == 0:
            fail(row, "quantity", "ZERO_QUANTITY", "quantity must not be zero", cell)
        elif abs(q) > MAX_QUANTITY:
            fail(row, "quantity", "OUT_OF_RANGE", f"quantity must not exceed {MAX_QUANTITY} in absolute value", cell)
        elif occ is not None and q != q.to_integral_value():
            fail(row, "quantity", "FRACTIONAL_CONTRACTS", "option quantity must be a whole number of contracts", cell)
        else:
            row.quantity = q

    def _entry_price(self, row: Row, cell: str) -> None:
        p = self._number(row, "entry_price", cell)
        if p is None:
            return
        if p <= 0:
            self.result.fail_cell(
                row, "entry_price", "NON_POSITIVE_PRICE", "entry_price must be greater than zero", cell
            )
        elif p > MAX_PRICE:
            message = f"entry_price must not exceed {MAX_PRICE} in absolute value"
            self.result.fail_cell(row, "entry_price", "OUT_OF_RANGE", message, cell)
        else:
            row.entry_price = p

    def _entry_date(self, row: Row, cell: str, occ: OccSymbol | None) -> None:
        if not cell:
            self._missing(row, "entry_date")
            return
        d = self.dates.get(cell)
        if d is None:
            d = self.dates[cell] = check_date(cell, self.ctx.upload_date, self.min_date)
        if d.error is not None:
            self.result.fail_cell(row, "entry_date", d.error[0], d.error[1], cell)
        elif occ is not None and d.value is not None and d.value > occ.expiration_date:
            message = f"entry_date {cell} is after the option's expiry {occ.expiration_date.isoformat()}"
            self.result.fail_cell(row, "entry_date", "ENTRY_AFTER_EXPIRY", message, cell)
        else:
            row.entry_date = d.value

    def _duplicates(self, row: Row, symbol: str, entry_date: date, cell: str) -> None:
        """Same (ticker, entry_date) as an earlier row, or as an open position in append mode."""
        key = (symbol, entry_date)
        earlier = self.first_seen.get(key)
        if earlier is None:
            # Remembered even when it repeats an open position: a later copy names this row.
            self.first_seen[key] = row.row_number
        error = duplicate_error(symbol, entry_date, earlier, self.ctx)
        if error is not None:
            self.result.fail_cell(row, "ticker", error[0], error[1], cell)
