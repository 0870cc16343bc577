"""Entry points: `check_file` (pass 1: file, header, cells, rows) and `validate` (both passes)."""

from __future__ import annotations

from ingest.csv_format.header import check_header
from ingest.csv_format.limits import MAX_OPEN_POSITIONS, MAX_ROWS
from ingest.csv_format.model import CheckContext, Issue
from ingest.csv_format.result import CheckResult
from ingest.csv_format.rows import check_rows
from ingest.csv_format.text import decode_utf8, is_blank_line, last_non_blank, physical_lines, split_fields
from ingest.csv_format.verify import SecurityLookup, verify_symbols


def check_file(content: bytes, ctx: CheckContext) -> CheckResult:
    """Run every rule of csv-format.md §1-§3 (symbol verification is `verify_symbols`).

    A file-level problem (encoding, no rows, bad header, too many rows) stops the check before the
    rows (`result.stopped`), so a broken file reports its cause instead of one error per row.
    """
    result = CheckResult(upload_date=ctx.upload_date)
    decoded = decode_utf8(content)
    if isinstance(decoded, Issue):
        result.issues.append(decoded)
        result.stopped = True
        return result
    lines = physical_lines(decoded)
    last = last_non_blank(lines)
    if last < 0:  # nothing but blank lines: no header, no rows
        result.add(1, None, "EMPTY_FILE", "file contains no data rows", None)
        result.stopped = True
        return result

    header_cells = split_fields(lines[0])
    positions = check_header(header_cells, result)
    result.rows_total = last  # lines 2 … last data line
    data_rows = sum(1 for line in lines[1 : last + 1] if not is_blank_line(line))
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
    check_rows(lines, last, len(header_cells), positions, ctx, result)
    return result


def validate(content: bytes, ctx: CheckContext, lookup: SecurityLookup) -> CheckResult:
    """Both passes (for callers that already hold the lookup)."""
    result = check_file(content, ctx)
    verify_symbols(result, lookup, ctx)
    return result
