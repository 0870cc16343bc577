"""The numeric limits of CSV format v1 (csv-format.md §1-§3).

The tag limits are the tag API's (`ingest.tag_rules`): a file may never create what the API would
refuse, so both read the same numbers.
"""

from __future__ import annotations

from decimal import Decimal

from ingest import tag_rules

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ROWS = 10_000
MAX_OPEN_POSITIONS = 10_000
MAX_TAGS_PER_USER = tag_rules.MAX_TAGS_PER_USER
MAX_TAGS_PER_ROW = tag_rules.MAX_TAGS_PER_POSITION
MAX_QUANTITY = Decimal(1_000_000_000)
MAX_PRICE = Decimal(1_000_000)
MAX_DECIMALS = 4
VALUE_MAX_CHARS = 100  # an issue's `value` is the cell as written, cut to this length
OPTION_MULTIPLIER = 100
