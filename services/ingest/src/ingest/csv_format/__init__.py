"""CSV upload format v1 (csv-format.md): decode, parse, validate and verify a positions file.

Pure and deterministic: no I/O and no clock. The upload date (US/Eastern calendar date the file
was received), the user's existing tags, the target portfolio's open positions and the security
master are all passed in. Two passes:

1. `check_file(content, ctx)`: file, header, cell, cross-cell and across-row rules (§1-§3).
2. `verify_symbols(result, lookup, ctx)`: security-master checks (§7) for every well-formed ticker.

Issues are `{row, column, code, message, value}` with the exact catalogue texts of §6; they are
sorted by row, then column order ticker, quantity, entry_price, entry_date, tags. A file is
imported only when it has zero errors.

Modules, in the order a file flows through them: `text` (bytes → lines → fields), `header`,
`cells` and `occ` (one cell each), `tags`, `rows` (the row pass), `check` (entry points), `verify`
(pass 2); `model` and `result` hold the data types, `limits` the numbers of the spec.
"""

from ingest.csv_format.cells import five_years_before, position_type
from ingest.csv_format.check import check_file, validate
from ingest.csv_format.header import ALIASES, COLUMNS, REQUIRED_COLUMNS, normalise_header
from ingest.csv_format.limits import (
    MAX_DECIMALS,
    MAX_FILE_BYTES,
    MAX_OPEN_POSITIONS,
    MAX_PRICE,
    MAX_QUANTITY,
    MAX_ROWS,
    MAX_TAGS_PER_ROW,
    MAX_TAGS_PER_USER,
    OPTION_MULTIPLIER,
    VALUE_MAX_CHARS,
)
from ingest.csv_format.model import CheckContext, ExistingTag, Issue, Mode, Row, Severity, TagRef
from ingest.csv_format.occ import OccSymbol, parse_occ
from ingest.csv_format.result import CheckResult, SecuritySummary
from ingest.csv_format.text import decode_utf8, split_fields, split_lines
from ingest.csv_format.verify import Security, SecurityLookup, is_classified, symbols_to_look_up, verify_symbols

__all__ = [
    "ALIASES",
    "COLUMNS",
    "MAX_DECIMALS",
    "MAX_FILE_BYTES",
    "MAX_OPEN_POSITIONS",
    "MAX_PRICE",
    "MAX_QUANTITY",
    "MAX_ROWS",
    "MAX_TAGS_PER_ROW",
    "MAX_TAGS_PER_USER",
    "OPTION_MULTIPLIER",
    "REQUIRED_COLUMNS",
    "VALUE_MAX_CHARS",
    "CheckContext",
    "CheckResult",
    "ExistingTag",
    "Issue",
    "Mode",
    "OccSymbol",
    "Row",
    "Security",
    "SecurityLookup",
    "SecuritySummary",
    "Severity",
    "TagRef",
    "check_file",
    "decode_utf8",
    "five_years_before",
    "is_classified",
    "normalise_header",
    "parse_occ",
    "position_type",
    "split_fields",
    "split_lines",
    "symbols_to_look_up",
    "validate",
    "verify_symbols",
]
