"""The outcome of checking one file: issues, parsed rows, header mapping, tag and security summaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ingest.csv_format.model import Issue, Row, TagRef
from ingest.csv_format.text import clip
from ingest.models import POSITION_TYPES


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
    # Report order of columns (canonical first, then ignored ones as they stand); set by the header check.
    column_rank: dict[str | None, int] = field(default_factory=dict)

    def add(self, row: int, column: str | None, code: str, message: str, value: str | None) -> None:
        """Record an error that is not tied to a parsed row's cell (file, header, limits)."""
        self.issues.append(Issue(row, column, code, "error", message, clip(value)))

    def warn(self, row: int, column: str | None, code: str, message: str, value: str | None) -> None:
        self.issues.append(Issue(row, column, code, "warning", message, clip(value)))

    def fail_cell(self, row: Row, column: str | None, code: str, message: str, value: str | None) -> None:
        """Record an error in `row`'s `column` (None: the whole row) and mark that cell as failed."""
        row.error_columns.add(column)
        self.add(row.row_number, column, code, message, value)

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
        """Issues by row, then column: whole-row issues, ticker … tags, ignored columns (then as found)."""
        rank = self.column_rank
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
        counts = dict.fromkeys(POSITION_TYPES, 0)
        for r in self.rows:
            if r.position_type is not None:
                counts[r.position_type] += 1
        return counts
