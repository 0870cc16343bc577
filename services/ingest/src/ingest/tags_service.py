"""Tag commands and reads (api.md §4.7): every rule checked inside one transaction.

Limits are enforced under the per-user advisory lock (tag count) and row locks on the positions
touched (tags per position, one strategy per position). Changes that touch positions emit
`portfolio.updated` with `change: "tags"` for each affected portfolio.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.auth import Principal
from common.errors import NotFound, ValidationFailed
from common.events import PortfolioUpdated
from common.formatting import iso_datetime
from common.uow import Work
from ingest import repository
from ingest.errors import StrategyConflict, TagExists, TagInUse, TagLimitReached, TooManyTags
from ingest.tag_rules import (
    MAX_TAGS_PER_POSITION,
    MAX_TAGS_PER_USER,
    TAG_NAME_RULE,
    ParsedTag,
    is_valid_tag_name,
    lock_user,
    parse_tag_token,
)

TAG_COLUMNS = "t.id, t.name, t.tag_type, t.color, t.description, t.created_at, t.updated_at"


def tag_json(row: Any, position_count: int) -> dict[str, Any]:
    """api.md §3.2 Tag."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "tag_type": row["tag_type"],
        "color": str(row["color"]).strip(),
        "description": row["description"],
        "position_count": int(position_count),
        "created_at": iso_datetime(row["created_at"]),
        "updated_at": iso_datetime(row["updated_at"]),
    }


def tag_ref(row: Any) -> dict[str, Any]:
    """TagRef `{id, name, tag_type, color}`."""
    return {"id": str(row.id), "name": row.name, "tag_type": row.tag_type, "color": str(row.color).strip()}


def parse_name(raw: str, field: str, tag_type: str | None = None) -> ParsedTag:
    """A tag name as sent (optionally `#strategy:`-prefixed) → validated name and type, else 422."""
    parsed = parse_tag_token(raw)
    if tag_type is not None and parsed.tag_type == "strategy" and tag_type == "regular":
        raise ValidationFailed.field(field, "a '#strategy:' name cannot have tag_type 'regular'", raw)
    if tag_type == "strategy":
        parsed = ParsedTag(parsed.name, "strategy")
    if "," in parsed.name or not is_valid_tag_name(parsed.name):
        raise ValidationFailed.field(field, TAG_NAME_RULE, raw)
    return parsed


async def _emit_tags(work: Work, portfolio_ids: set[UUID], correlation_id: str | None, today: date) -> None:
    """One `portfolio.updated` (tags) per affected portfolio; `as_of` = its valuation date."""
    if not portfolio_ids:
        return
    rows = await work.session.execute(
        sa.text("SELECT id, valuation_date FROM ingest.portfolio WHERE id = ANY(CAST(:p AS uuid[]))"),
        {"p": sorted(portfolio_ids)},
    )
    for row in rows:
        work.emit(
            PortfolioUpdated(
                as_of=row.valuation_date or today,
                portfolio_id=row.id,
                change="tags",
                correlation_id=correlation_id,
                trigger="api",
            )
        )


@dataclass(frozen=True)
class TagCommand:
    """Who asks, and the request id to carry into events."""

    principal: Principal
    correlation_id: str | None
    today: date


async def create_tag(
    session: AsyncSession,
    cmd: TagCommand,
    *,
    name: str,
    tag_type: str | None,
    color: str | None,
    description: str | None,
) -> dict[str, Any]:
    """#49: create a tag (TAG_EXISTS / TAG_LIMIT_REACHED under the per-user lock)."""
    parsed = parse_name(name, "body.name", tag_type)
    user = cmd.principal.user_id
    await lock_user(session, "tags", user)
    existing = await repository.live_tags(session, user)
    hit = existing.get(parsed.key)
    if hit is not None:
        raise TagExists(hit.id, hit.name, hit.tag_type)
    if len(existing) + 1 > MAX_TAGS_PER_USER:
        raise TagLimitReached(len(existing) + 1, MAX_TAGS_PER_USER)
    row = (
        (
            await session.execute(
                sa.text(
                    "INSERT INTO ingest.tag AS t (user_id, name, tag_type, color, description) "
                    "VALUES (:u, :n, :tt, COALESCE(:c, '#6B7280'), :d) RETURNING " + TAG_COLUMNS
                ),
                {"u": user, "n": parsed.name, "tt": parsed.tag_type, "c": color, "d": description},
            )
        )
        .mappings()
        .one()
    )
    return tag_json(row, 0)


async def _lock_positions(session: AsyncSession, user: UUID, position_ids: list[UUID]) -> dict[UUID, Any]:
    """The caller's positions (row-locked, in id order so concurrent requests cannot deadlock)."""
    rows = await session.execute(
        sa.text(
            "SELECT p.id, p.portfolio_id, p.symbol FROM ingest.position p JOIN ingest.portfolio pf "
            "ON pf.id = p.portfolio_id AND pf.deleted_at IS NULL "
            "WHERE p.id = ANY(CAST(:ids AS uuid[])) AND pf.user_id = :u ORDER BY p.id FOR UPDATE OF p"
        ),
        {"ids": position_ids, "u": user},
    )
    return {r.id: r for r in rows}


async def _links(session: AsyncSession, position_ids: list[UUID]) -> dict[UUID, dict[UUID, Any]]:
    rows = await session.execute(
        sa.text(
            "SELECT pt.position_id, t.id, t.name, t.tag_type, t.color FROM ingest.position_tag pt "
            "JOIN ingest.tag t ON t.id = pt.tag_id AND t.deleted_at IS NULL "
            "WHERE pt.position_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": position_ids},
    )
    out: dict[UUID, dict[UUID, Any]] = defaultdict(dict)
    for row in rows:
        out[row.position_id][row.id] = row
    return out


async def _user_tags_by_id(session: AsyncSession, user: UUID, tag_ids: list[UUID]) -> dict[UUID, Any]:
    rows = await session.execute(
        sa.text(
            "SELECT id, name, tag_type, color FROM ingest.tag WHERE id = ANY(CAST(:ids AS uuid[])) "
            "AND user_id = :u AND deleted_at IS NULL"
        ),
        {"ids": tag_ids, "u": user},
    )
    return {r.id: r for r in rows}


def _check_sets(positions: dict[UUID, Any], new_sets: dict[UUID, dict[UUID, Any]]) -> None:
    """TOO_MANY_TAGS and STRATEGY_CONFLICT over the proposed tag sets."""
    too_many = [
        {"id": str(pid), "count": len(tags)} for pid, tags in new_sets.items() if len(tags) > MAX_TAGS_PER_POSITION
    ]
    if too_many:
        raise TooManyTags(too_many, MAX_TAGS_PER_POSITION)
    conflicts = []
    for pid, tags in new_sets.items():
        strategies = sorted(t.name for t in tags.values() if t.tag_type == "strategy")
        if len(strategies) > 1:
            conflicts.append(
                {
                    "field": "position_id",
                    "issue": f"{positions[pid].symbol} would carry strategies {', '.join(strategies)}",
                    "value": str(pid),
                }
            )
    if conflicts:
        raise StrategyConflict(conflicts)


async def replace_position_tags(
    work: Work,
    cmd: TagCommand,
    position_id: UUID,
    *,
    tag_ids: list[UUID] | None,
    tag_names: list[str] | None,
    create_missing: bool,
) -> dict[str, Any]:
    """#50: replace a position's tag set."""
    session, user = work.session, cmd.principal.user_id
    positions = await _lock_positions(session, user, [position_id])
    if position_id not in positions:
        raise NotFound("POSITION")
    wanted: dict[UUID, Any] = {}
    if tag_ids:
        found = await _user_tags_by_id(session, user, list(dict.fromkeys(tag_ids)))
        unknown = [str(t) for t in dict.fromkeys(tag_ids) if t not in found]
        if unknown:
            raise ValidationFailed(
                "Unknown tag ids",
                details=[{"field": "body.tag_ids", "issue": "unknown tag", "value": t} for t in unknown],
            )
        wanted.update(found)
    if tag_names:
        parsed = [parse_name(n, "body.tag_names") for n in tag_names]
        resolved = await repository.ensure_tags(session, user, parsed, create_missing=create_missing)
        for tag in resolved.values():
            wanted[tag.id] = tag
    _check_sets(positions, {position_id: wanted})
    current = (await _links(session, [position_id])).get(position_id, {})
    removed = [t for t in current if t not in wanted]
    added = [t for t in wanted if t not in current]
    if removed:
        await session.execute(
            sa.text("DELETE FROM ingest.position_tag WHERE position_id = :p AND tag_id = ANY(CAST(:t AS uuid[]))"),
            {"p": position_id, "t": removed},
        )
    if added:
        await session.execute(
            sa.text("INSERT INTO ingest.position_tag (position_id, tag_id, source) VALUES (:p, :t, 'api')"),
            [{"p": position_id, "t": t} for t in added],
        )
    if removed or added:
        await _emit_tags(work, {positions[position_id].portfolio_id}, cmd.correlation_id, cmd.today)
    tags = sorted(wanted.values(), key=lambda t: (t.tag_type != "strategy", t.name.lower()))
    return {"position_id": str(position_id), "tags": [tag_ref(t) for t in tags]}


async def bulk_assign(
    work: Work, cmd: TagCommand, *, tag_ids: list[UUID], position_ids: list[UUID], action: str
) -> dict[str, Any]:
    """#52: add or remove tags on many positions in one transaction (all or nothing)."""
    session, user = work.session, cmd.principal.user_id
    tag_ids = list(dict.fromkeys(tag_ids))
    position_ids = list(dict.fromkeys(position_ids))
    tags = await _user_tags_by_id(session, user, tag_ids)
    missing_tags = [str(t) for t in tag_ids if t not in tags]
    if missing_tags:
        raise NotFound(
            "TAG", details=[{"field": "body.tag_ids", "issue": "unknown tag", "value": t} for t in missing_tags]
        )
    positions = await _lock_positions(session, user, position_ids)
    missing = [str(p) for p in position_ids if p not in positions]
    if missing:
        raise NotFound(
            "POSITION",
            details=[{"field": "body.position_ids", "issue": "unknown position", "value": p} for p in missing],
        )
    current = await _links(session, position_ids)
    skipped: list[dict[str, str]] = []
    changed: dict[UUID, list[UUID]] = {}
    if action == "add":
        new_sets = {pid: {**current.get(pid, {}), **tags} for pid in position_ids}
        _check_sets(positions, new_sets)
        for pid in position_ids:
            adds = [t for t in tag_ids if t not in current.get(pid, {})]
            if adds:
                changed[pid] = adds
            else:
                skipped.append({"position_id": str(pid), "reason": "already_tagged"})
        rows = [{"p": pid, "t": t} for pid, adds in changed.items() for t in adds]
        if rows:
            await session.execute(
                sa.text("INSERT INTO ingest.position_tag (position_id, tag_id, source) VALUES (:p, :t, 'api')"), rows
            )
    else:
        for pid in position_ids:
            drops = [t for t in tag_ids if t in current.get(pid, {})]
            if drops:
                changed[pid] = drops
            else:
                skipped.append({"position_id": str(pid), "reason": "not_tagged"})
        if changed:
            await session.execute(
                sa.text(
                    "DELETE FROM ingest.position_tag pt USING unnest(CAST(:p AS uuid[]), CAST(:t AS uuid[])) "
                    "AS x(position_id, tag_id) WHERE pt.position_id = x.position_id AND pt.tag_id = x.tag_id"
                ),
                {
                    "p": [pid for pid, drops in changed.items() for _ in drops],
                    "t": [t for drops in changed.values() for t in drops],
                },
            )
    await _emit_tags(work, {positions[pid].portfolio_id for pid in changed}, cmd.correlation_id, cmd.today)
    return {"updated_positions": len(changed), "skipped": skipped}


async def delete_tag(work: Work, cmd: TagCommand, tag_id: UUID, *, force: bool) -> None:
    """#51: soft-delete a tag (TAG_IN_USE unless `force`); its links go in the same transaction."""
    session, user = work.session, cmd.principal.user_id
    await lock_user(session, "tags", user)
    row = (
        await session.execute(
            sa.text("SELECT id FROM ingest.tag WHERE id = :t AND user_id = :u AND deleted_at IS NULL FOR UPDATE"),
            {"t": tag_id, "u": user},
        )
    ).first()
    if row is None:
        raise NotFound("TAG")
    usage = (
        await session.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE p.status = 'open') AS open_count, "
                "array_agg(DISTINCT p.portfolio_id) AS portfolios FROM ingest.position_tag pt "
                "JOIN ingest.position p ON p.id = pt.position_id WHERE pt.tag_id = :t"
            ),
            {"t": tag_id},
        )
    ).one()
    if usage.open_count and not force:
        raise TagInUse(int(usage.open_count))
    await session.execute(sa.text("DELETE FROM ingest.position_tag WHERE tag_id = :t"), {"t": tag_id})
    await session.execute(
        sa.text("UPDATE ingest.tag SET deleted_at = now(), updated_at = now() WHERE id = :t"), {"t": tag_id}
    )
    await _emit_tags(work, set(usage.portfolios or []), cmd.correlation_id, cmd.today)


async def purge_deleted_tags(session: AsyncSession, older_than: datetime) -> int:
    """Hard-delete tags soft-deleted before `older_than` (data-model.md §11: kept 30 days)."""
    result = await session.execute(
        sa.text("DELETE FROM ingest.tag WHERE deleted_at IS NOT NULL AND deleted_at < :cutoff RETURNING id"),
        {"cutoff": older_than},
    )
    return len(result.all())
