"""Importing a clean file: one transaction writes the portfolio, tags, positions (and for
`mode=replace` closes the old ones), the report, the onboarding steps or the outbox event.

Any failure rolls everything back, so a portfolio never holds part of a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import ApiError, Conflict, NotFound
from common.events import PortfolioUpdated
from common.service import Plumbing
from common.uow import Work
from ingest.csv_format import CheckResult, Row
from ingest.errors import TagLimitReached
from ingest.onboarding import market_reads, position_reads, progress_store
from ingest.onboarding.model import Holding
from ingest.onboarding.steps import collection_steps
from ingest.repository import ensure_tags
from ingest.tag_rules import ParsedTag, lock_user
from ingest.upload import book_writes, clock, report_store, store
from ingest.upload.errors import portfolio_limit


@dataclass(frozen=True)
class Imported:
    portfolio_id: UUID
    positions_created: int
    positions_closed: int
    is_new: bool  # the upload created the portfolio (it is in onboarding)


async def import_clean_file(
    plumbing: Plumbing, up: dict[str, Any], result: CheckResult, correlation_id: str | None, max_portfolios: int
) -> Imported:
    """Import a file without errors in one transaction; maps write conflicts to API errors."""
    rows = [r for r in result.rows if r.is_valid]
    today = clock.eastern_today()
    try:
        async with plumbing.uow.begin() as work:
            imported = await _import(work, up, result, rows, correlation_id, max_portfolios, today)
    except TagLimitReached as exc:
        raise ApiError(exc.message, code="TAG_LIMIT_REACHED", status=409, retryable=False) from exc
    except IntegrityError as exc:
        if "position_open_uq" in str(exc):
            raise ApiError(
                "the portfolio gained one of these positions while the file was processed; submit it again",
                code="INVALID_STATE",
                status=409,
                retryable=True,
            ) from exc
        if "portfolio_user_name_uq" in str(exc):
            raise ApiError(
                f"a portfolio named '{up['target_portfolio_name']}' was created meanwhile; choose another name",
                code="VALIDATION_ERROR",
                status=422,
            ) from exc
        raise
    return imported


async def _import(
    work: Work,
    up: dict[str, Any],
    result: CheckResult,
    rows: list[Row],
    correlation_id: str | None,
    max_portfolios: int,
    today: date,
) -> Imported:
    session = work.session
    upload_id: UUID = up["id"]
    owner: UUID = up["user_id"]
    is_new = up["mode"] == "new"
    # Lock order everywhere: portfolios, then tags (no deadlock with other writers).
    if is_new:
        await lock_user(session, "portfolios", owner)
    await lock_user(session, "tags", owner)
    portfolio_id, status = await _target_portfolio(session, up, max_portfolios)
    wanted = list({t.name.lower(): ParsedTag(t.name, t.tag_type) for r in rows for t in r.tags}.values())
    tags = await ensure_tags(session, owner, wanted) if wanted else {}
    tag_ids = {key: row.id for key, row in tags.items()}
    closed = (
        await book_writes.close_open_positions(session, portfolio_id, up["upload_date"])
        if up["mode"] == "replace"
        else 0
    )
    ids = await book_writes.insert_positions(
        session, portfolio_id=portfolio_id, upload_id=upload_id, rows=rows, tag_ids=tag_ids
    )
    await report_store.stage_rows_and_issues(session, upload_id, result)
    if status == "onboarding":
        await _record_collection_steps(session, portfolio_id, ids, rows, is_new, today)
    elif status == "active":
        # An active portfolio is revalued at once; one still in onboarding waits for #62.
        symbols = sorted({s for r in rows for s in (r.symbol, r.underlying_symbol) if s})
        work.emit(
            PortfolioUpdated(
                as_of=up["upload_date"],
                portfolio_id=portfolio_id,
                change="positions",
                symbols=symbols,
                trigger="api",
                correlation_id=correlation_id,
            )
        )
    outcome = {
        "positions_by_type": result.positions_by_type(),
        "tags": {
            "created": [row.name for row in tags.values() if row.created],
            "reused": [row.name for row in tags.values() if not row.created],
        },
        "securities": result.securities.to_api() if result.securities else None,
    }
    await store.finish_upload(
        session,
        upload_id,
        result,
        status="completed",
        portfolio_id=portfolio_id,
        positions_created=len(ids),
        positions_closed=closed,
        outcome=outcome,
    )
    return Imported(portfolio_id, len(ids), closed, is_new)


async def _target_portfolio(session: AsyncSession, up: dict[str, Any], max_portfolios: int) -> tuple[UUID, str]:
    """(portfolio id, status): a new portfolio in onboarding, or the locked target (cash updated)."""
    if up["mode"] == "new":
        # Checked again: other uploads or the API may have created portfolios since the upload was accepted.
        if await store.live_portfolio_count(session, up["user_id"]) >= max_portfolios:
            raise portfolio_limit(max_portfolios)
        portfolio_id, _ = await book_writes.create_portfolio(
            session, user_id=up["user_id"], name=up["target_portfolio_name"], cash_balance=up["cash_balance"]
        )
        return portfolio_id, "onboarding"
    portfolio_id = up["portfolio_id"]
    target = await book_writes.lock_portfolio(session, portfolio_id)
    if target is None:
        raise NotFound("PORTFOLIO")
    if target["status"] == "archived":
        raise Conflict("The portfolio was archived during the upload", details={"status": "archived"})
    if up["cash_balance"] is not None:
        await book_writes.set_cash(session, portfolio_id, up["cash_balance"])
    return portfolio_id, target["status"]


async def _record_collection_steps(
    session: AsyncSession, portfolio_id: UUID, ids: list[UUID], rows: list[Row], is_new: bool, today: date
) -> None:
    """Onboarding data-collection steps from what marketdata holds now (new portfolios: all six steps)."""
    holdings = (
        [holding_from_row(pid, r) for pid, r in zip(ids, rows, strict=True)]
        if is_new
        else await position_reads.session_holdings(session, portfolio_id)
    )
    market = await market_reads.session_market_data(session, holdings, today)
    await progress_store.write_steps(session, portfolio_id, collection_steps(holdings, market))
    if is_new:
        for step in ("initial_run", "first_snapshot"):
            await progress_store.set_step(session, portfolio_id, step, "pending")


def holding_from_row(position_id: UUID, r: Row) -> Holding:
    """A just-imported row as onboarding sees it (no read-back of 10,000 positions)."""
    assert r.symbol and r.instrument_type and r.position_type and r.quantity is not None
    assert r.multiplier is not None and r.underlying_symbol and r.entry_price is not None and r.entry_date
    return Holding(
        id=str(position_id),
        symbol=r.symbol,
        instrument_type=r.instrument_type,
        position_type=r.position_type,
        quantity=r.quantity,
        multiplier=r.multiplier,
        underlying_symbol=r.underlying_symbol,
        entry_price=r.entry_price,
        entry_date=r.entry_date,
        option_type=r.option_type,
        strike_price=r.strike_price,
        expiration_date=r.expiration_date,
    )
