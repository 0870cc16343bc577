"""The `tags` cell (§3.5): tokens and prefixes, name rules, per-row limits, matching the user's tags.

A tag a file names for the first time is created at import with the spelling and type of its first
row; later rows (and the user's existing tags, matched case-insensitively) keep that tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ingest.csv_format.limits import MAX_TAGS_PER_ROW, MAX_TAGS_PER_USER, VALUE_MAX_CHARS
from ingest.csv_format.model import ExistingTag, Row, Severity, TagRef
from ingest.csv_format.result import CheckResult
from ingest.csv_format.text import WHITESPACE
from ingest.tag_rules import STRATEGY_PREFIX, TAG_NAME_RE, TAG_NAME_RULE, TagType

TagIssue = tuple[str, Severity, str]  # (code, severity, message)


@dataclass(frozen=True, slots=True)
class TagCell:
    tokens: tuple[tuple[str, TagType], ...]  # distinct, in order
    issues: tuple[TagIssue, ...]
    failed: bool


def parse_tag_cell(cell: str) -> TagCell:
    """Split on commas, read `#strategy:` / `#` prefixes, check names, drop repeats, apply the row limit."""
    parsed: list[tuple[str, TagType]] = []
    for part in cell.split(","):
        token = WHITESPACE.sub(" ", part.strip())
        if not token:
            continue
        tag_type: TagType = "regular"
        if token[: len(STRATEGY_PREFIX)].lower() == STRATEGY_PREFIX:
            name = token[len(STRATEGY_PREFIX) :].strip()
            tag_type = "strategy"
        elif token.startswith("#"):
            name = token[1:].strip()
        else:
            name = token
        parsed.append((name, tag_type))
    for name, _ in parsed:
        if TAG_NAME_RE.match(name) is None:
            message = f"tag '{name[:VALUE_MAX_CHARS]}' {TAG_NAME_RULE}"
            return TagCell((), (("INVALID_TAG", "error", message),), True)
    issues: list[TagIssue] = []
    seen: dict[str, str] = {}
    tokens: list[tuple[str, TagType]] = []
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
        return TagCell((), tuple(issues), True)
    return TagCell(tuple(tokens), tuple(issues), False)


class TagMatcher:
    """Checks the `tags` cells of one file in row order and collects the new and reused tags.

    Both steps are cached per cell text: a cell's outcome never changes later in the file, because
    a new tag keeps the type of the first row that names it.
    """

    def __init__(self, existing: Mapping[str, ExistingTag], result: CheckResult) -> None:
        self.result = result
        self.existing_count = len(existing)
        self.known: dict[str, TagRef] = {key: TagRef(t.name, t.tag_type, True) for key, t in existing.items()}
        self.reused: dict[str, str] = {}
        self.parsed: dict[str, TagCell] = {}
        self.matched: dict[str, tuple[tuple[TagRef, ...], list[TagIssue]]] = {}

    def check(self, row: Row, cell: str) -> None:
        """Report the cell's issues on `row` and set `row.tags` (empty when the cell failed)."""
        tc = self.parsed.get(cell)
        if tc is None:
            tc = self.parsed[cell] = parse_tag_cell(cell)
        if tc.issues:
            self._report(row, cell, tc.issues)
        if tc.failed:
            return
        hit = self.matched.get(cell)
        if hit is None:
            hit = self.matched[cell] = self._match(tc)
        refs, issues = hit
        if issues:
            self._report(row, cell, issues)
        row.tags = refs

    def finish(self) -> None:
        """After the last row: the reused tags, and the per-user limit over existing plus new tags."""
        result = self.result
        result.reused_tags = list(self.reused.values())
        total_tags = self.existing_count + len(result.new_tags)
        if total_tags > MAX_TAGS_PER_USER:
            result.add(
                1,
                "tags",
                "TAG_LIMIT_EXCEEDED",
                f"this upload would bring you to {total_tags} tags; the limit is {MAX_TAGS_PER_USER}",
                None,
            )

    def _report(self, row: Row, cell: str, issues: tuple[TagIssue, ...] | list[TagIssue]) -> None:
        for code, severity, message in issues:
            if severity == "error":
                self.result.fail_cell(row, "tags", code, message, cell)
            else:
                self.result.warn(row.row_number, "tags", code, message, cell)

    def _match(self, tc: TagCell) -> tuple[tuple[TagRef, ...], list[TagIssue]]:
        """Match a cell's tokens to known tags (creating new ones); no refs when it names two strategies."""
        refs: list[TagRef] = []
        issues: list[TagIssue] = []
        for name, wanted in tc.tokens:
            key = name.lower()
            ref = self.known.get(key)
            if ref is None:
                ref = self.known[key] = TagRef(name, wanted, False)
                self.result.new_tags.append(ref)
            else:
                if ref.existing:
                    self.reused.setdefault(key, ref.name)
                if ref.tag_type != wanted:
                    message = f"tag '{name}' already exists as a {ref.tag_type} tag; the existing tag is used"
                    issues.append(("TAG_TYPE_MISMATCH", "warning", message))
            refs.append(ref)
        strategies = [r.name for r in refs if r.tag_type == "strategy"]
        if len(strategies) > 1:
            message = (
                f"row names {len(strategies)} strategy tags ({', '.join(strategies)}); "
                "a position can belong to one strategy"
            )
            issues.append(("MULTIPLE_STRATEGIES", "error", message))
            return (), issues
        return tuple(refs), issues
