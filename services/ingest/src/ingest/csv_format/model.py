"""What a check reads besides the file (`CheckContext`) and what it records per row and issue."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from ingest.tag_rules import TagType

Severity = Literal["error", "warning"]
Mode = Literal["new", "append", "replace"]


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
    tag_type: TagType
    existing: bool


@dataclass(frozen=True, slots=True)
class ExistingTag:
    """One of the user's live tags (matched case-insensitively by name)."""

    name: str
    tag_type: TagType


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
