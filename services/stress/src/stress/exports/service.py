"""Trade exports (api.md #69) and export downloads (#71): validation, rendering, storage, history."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from common.auth import Principal
from common.db import Database
from common.errors import Gone, NotFound, ValidationFailed
from common.formatting import iso_datetime, utcnow
from stress.exports import files, history
from stress.exports import repository as repo
from stress.exports.render import EXTENSION, MEDIA, line_item, render
from stress.exports.schemas import TradeExportRequest
from stress.exports.trades import TradeLine, TradeProblem, net_session_trades, normalise


def _invalid(details: list[dict[str, Any]], *, code: str = "VALIDATION_ERROR", message: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, details=details)


def _normalised(body: TradeExportRequest) -> list[TradeLine]:
    """The request's own trades as lines (422 listing every bad combination)."""
    lines, problems = [], []
    for i, trade in enumerate(body.trades or []):
        try:
            lines.append(normalise(trade.model_dump(), field=f"body.trades.{i}", account=body.account))
        except TradeProblem as exc:
            problems.append({"field": exc.field, "issue": exc.issue, "value": exc.value})
    if problems:
        raise _invalid(problems, message="Some trades cannot be exported")
    return lines


async def _canonical(session: AsyncSession, lines: list[TradeLine], fields: list[str]) -> list[TradeLine]:
    """Lines with stock tickers in canonical form; 422 UNKNOWN_SYMBOL for symbols (or option underlyings)
    the security master does not know."""
    known = await repo.canonical_symbols(session, [line.underlying for line in lines])
    unknown = [
        {"field": field, "issue": "unknown symbol", "value": line.symbol}
        for line, field in zip(lines, fields, strict=True)
        if line.underlying not in known
    ]
    if unknown:
        raise _invalid(unknown, code="UNKNOWN_SYMBOL", message="Unknown symbol(s)")
    return [line if line.is_option else replace(line, symbol=known[line.symbol]) for line in lines]


async def _priced_for_upload(
    session: AsyncSession, lines: list[TradeLine], fields: list[str], today: date
) -> list[TradeLine]:
    """Opening lines with an entry price (limit, modelled, else latest close) and date, for upload_csv."""
    closing = [
        {
            "field": field,
            "issue": f"{line.side} closes a position; a positions file (upload_csv) can only open positions",
            "value": line.symbol,
        }
        for line, field in zip(lines, fields, strict=True)
        if line.open_close == "C"
    ]
    if closing:
        raise _invalid(closing, message="Closing trades cannot be written as a positions file; use csv, json or fix")
    closes = await repo.latest_closes(
        session, [line.symbol for line in lines if line.limit_price is None and line.reference_price is None], today
    )
    priced, missing = [], []
    for line, field in zip(lines, fields, strict=True):
        entry = line.limit_price or line.reference_price or closes.get(line.symbol)
        if entry is None:
            missing.append({"field": field, "issue": "no stored price; give a LIMIT price", "value": line.symbol})
            continue
        priced.append(replace(line, reference_price=entry, trade_date=line.trade_date or today))
    if missing:
        raise _invalid(missing, code="NO_PRICE", message="No price to write as the entry price")
    return priced


class TradeExports:
    """Creates trade exports and serves stored export files."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, principal: Principal, body: TradeExportRequest) -> dict[str, Any]:
        """#69: validate, render, store and record one export; returns the 201 body."""
        moment = utcnow()
        today = moment.astimezone(repo.EASTERN).date()
        export_id = uuid4()
        async with self.db.transaction() as session:
            portfolio_id = None
            if body.session_id is not None:
                modeled = await repo.modeling_session(session, body.session_id)
                if modeled is None or (modeled.user_id != principal.user_id and not principal.is_admin):
                    raise NotFound("SESSION")
                portfolio_id = modeled.portfolio_id
                lines = net_session_trades(await repo.session_trades(session, modeled.id), account=body.account)
                fields = [f"session.trades.{line.symbol}" for line in lines]
                if not lines:
                    raise ValidationFailed.field("body.session_id", "the session has no trades to export", None)
            else:
                lines = _normalised(body)
                fields = [f"body.trades.{i}.symbol" for i in range(len(lines))]
            lines = await _canonical(session, lines, fields)
            if body.format == "upload_csv":
                lines = await _priced_for_upload(session, lines, fields, today)
            items = [line_item(line, n, f"{export_id.hex[:12]}-{n:04d}") for n, line in enumerate(lines, start=1)]
            data = render(
                body.format, lines, items, moment=moment, account=body.account, fix_delimiter=body.fix_delimiter
            )
            name = f"sigmasight_trades_{today.isoformat()}_{export_id.hex[:8]}.{EXTENSION[body.format]}"
            content = files.FileContent(name, MEDIA[body.format], data)
            expires = moment + files.RETENTION
            stored = await files.put(session, owner=principal.user_id, file=content, expires_at=expires)
            row = await history.record(
                session,
                id=export_id,
                user_id=principal.user_id,
                export_type="trades",
                format=body.format,
                portfolio_id=portfolio_id,
                session_id=body.session_id,
                file_name=name,
                content_type=content.content_type,
                size_bytes=content.size_bytes,
                trade_count=len(lines),
                stored_file_id=stored.id,
                created_at=moment,
                expires_at=expires,
            )
        return {
            "export_id": str(export_id),
            "format": body.format,
            "trade_count": len(lines),
            "file_name": name,
            "size_bytes": content.size_bytes,
            "download_url": history.download_url(export_id),
            "created_at": iso_datetime(row["created_at"]),
            "expires_at": iso_datetime(row["expires_at"]),
            "session_id": None if body.session_id is None else str(body.session_id),
            "portfolio_id": None if portfolio_id is None else str(portfolio_id),
            "trades": items,
        }

    async def download(self, principal: Principal, export_id: UUID) -> files.FileContent:
        """#71: the stored file of an export (404 EXPORT_NOT_FOUND, 410 GONE after 30 days)."""
        now: datetime = utcnow()
        async with self.db.session() as session:
            row = await history.get(session, export_id)
            if row is None or (row["user_id"] != principal.user_id and not principal.is_admin):
                raise NotFound("EXPORT")
            if row["stored_file_id"] is None or row["expires_at"] <= now:
                raise Gone(f"The file of export {export_id} expired on {iso_datetime(row['expires_at'])}")
            data = await files.read(session, row["stored_file_id"])
        if data is None:
            raise Gone(f"The file of export {export_id} is no longer stored")
        return files.FileContent(row["file_name"], row["content_type"], data)
