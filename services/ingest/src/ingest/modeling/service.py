"""ProForma sessions (api.md #53-#58): create, read, trade, calculate (async job), impacts, save.

A session copies the portfolio's open positions with their valuation and cash ("before", frozen), so
nothing ever touches the live portfolio. Trades are validated against the net position per symbol
(`modeling.book`) and stored in order; `trade_version` counts accepted trade requests and the
impacts of a calculation belong to the version they were computed for (`stale` otherwise).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Any
from uuid import UUID

from common.auth import Principal
from common.errors import ApiError, Conflict, NotCalculated, NotFound, ValidationFailed
from common.formatting import iso_datetime, utcnow
from common.jobs import JobOutcome
from ingest.access import resolve_portfolio
from ingest.context import IngestContext
from ingest.modeling import store
from ingest.modeling.book import BasePosition, apply_trades, replay
from ingest.modeling.engines import Engines
from ingest.modeling.impacts import evaluate, impacts_document, load_units
from ingest.modeling.intents import resolve
from ingest.modeling.present import impacts_status, impacts_url, session_json, session_url, trade_json
from ingest.modeling.proforma import SessionBook, before_after
from ingest.modeling.schemas import CalculateRequest, CreateSessionRequest, SaveRequest, TradeRequest

log = logging.getLogger(__name__)

JOB_TYPE = "modeling.calculate"
SWEEP_INTERVAL_SECONDS = 3600.0


def not_found() -> NotFound:
    return NotFound("SESSION", "Modelling session not found")


def require_active(row: dict[str, Any]) -> None:
    """409 SESSION_NOT_ACTIVE for a saved, cancelled or expired session."""
    if row["status"] != "active":
        raise Conflict(
            f"The session is {row['status']}; it can no longer change",
            code="SESSION_NOT_ACTIVE",
            details={"status": row["status"]},
            hint="POST /api/v1/modeling/sessions",
        )


def session_book(row: dict[str, Any], trade_rows: Sequence[dict[str, Any]]) -> SessionBook:
    """The base and trades of a session row."""
    base = [store.base_from_json(p) for p in row["base_positions"]]
    return SessionBook(base, [store.trade_from_row(t) for t in trade_rows], row["base_cash_balance"])


def _lots(base: Sequence[BasePosition]) -> dict[UUID, Any]:
    return {p.id: p.quantity for p in base}


class ModelingService:
    """The session workflow over ingest's database, the job runner and the engines."""

    def __init__(self, ctx: IngestContext) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.engines = Engines(ctx.bus)
        self.plumbing = ctx.plumbing
        # A calculation interrupted by a restart is run again from its scope (session and date).
        self.plumbing.runner.resumers[JOB_TYPE] = self._resume

    def _resume(self, job: dict[str, Any]) -> Callable[[UUID], Awaitable[JobOutcome]]:
        scope = job["scope"]
        session_id, as_of = UUID(scope["session_id"]), date.fromisoformat(scope["as_of_date"])

        async def run(_: UUID) -> JobOutcome:
            return await self.run_calculation(session_id, as_of)

        return run

    async def load(self, session: Any, principal: Principal, session_id: UUID, *, lock: bool = False) -> dict[str, Any]:
        """The caller's session (expiry applied) or 404 SESSION_NOT_FOUND."""
        row = await store.get_session(session, principal, session_id, for_update=lock)
        if row is None:
            raise not_found()
        if row["status"] == "active" and row["expires_at"] <= utcnow():
            row = await store.update_session(session, session_id, touch=False, status="expired")
        return row

    # -- #53 ------------------------------------------------------------------------------------

    async def create(self, principal: Principal, body: CreateSessionRequest) -> dict[str, Any]:
        portfolio = await resolve_portfolio(self.db, principal, body.portfolio_id)
        if portfolio.status != "active":
            raise Conflict(
                f"The portfolio is {portfolio.status}; only active portfolios can be modelled",
                details={"status": portfolio.status},
            )
        if portfolio.valuation_date is None:
            raise Conflict("The portfolio has not been valued yet", code="NOT_READY", retryable=True)
        async with self.db.transaction() as session:
            await store.lock_user(session, principal.user_id)
            await store.expire_due(session, user_id=principal.user_id)
            if await store.active_count(session, principal.user_id) >= store.MAX_ACTIVE_SESSIONS:
                raise Conflict(
                    f"At most {store.MAX_ACTIVE_SESSIONS} active sessions per user; save or cancel one first",
                    code="SESSION_LIMIT",
                    hint="GET /api/v1/modeling/sessions?status=active",
                    details={"limit": store.MAX_ACTIVE_SESSIONS},
                )
            row = await store.insert_session(
                session,
                user_id=principal.user_id,
                portfolio_id=portfolio.id,
                name=body.name,
                description=body.description,
                base_as_of_date=portfolio.valuation_date,
                base_cash_balance=portfolio.cash_balance,
                base_positions=await store.base_positions(session, portfolio.id),
            )
        return session_json(row, 0)

    # -- #54 ------------------------------------------------------------------------------------

    async def read(self, principal: Principal, session_id: UUID) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
        """Session row (activity recorded), its trade rows and its last job (API form)."""
        async with self.db.transaction() as session:
            row = await self.load(session, principal, session_id)
            if row["status"] == "active":
                row = await store.update_session(session, session_id)
            trades = await store.list_trades(session, session_id)
            job = await self.plumbing.ledger.get(session, row["last_job_id"]) if row["last_job_id"] else None
        return row, trades, self.plumbing.ledger.to_api(job) if job else None

    async def list_sessions(
        self, principal: Principal, portfolio_id: UUID | None, statuses: Sequence[str], limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """The caller's sessions (of one portfolio when given: 404 for another user's), newest first."""
        if portfolio_id is not None:
            portfolio_id = (await resolve_portfolio(self.db, principal, portfolio_id)).id
        async with self.db.transaction() as session:
            await store.expire_due(session, user_id=principal.user_id)
            return await store.list_sessions(
                session,
                user_id=principal.user_id,
                portfolio_id=portfolio_id,
                statuses=statuses,
                limit=limit,
                offset=offset,
            )

    async def cancel(self, principal: Principal, session_id: UUID) -> None:
        """End an active session without saving it (it no longer counts toward the limit; stays readable)."""
        async with self.db.transaction() as session:
            row = await self.load(session, principal, session_id, lock=True)
            require_active(row)
            await store.update_session(session, session_id, status="cancelled", expires_at=None)

    # -- #55 and trade removal ------------------------------------------------------------------

    async def add_trades(
        self, principal: Principal, session_id: UUID, items: Sequence[tuple[str, TradeRequest]]
    ) -> dict[str, Any]:
        """Validate, size and store the trades (all or nothing)."""
        async with self.db.session() as session:
            row = await self.load(session, principal, session_id)
        require_active(row)
        book = session_book(row, [])
        intents = await resolve(self.db, self.ctx.bus, self.engines, book.base, items, row["base_as_of_date"])
        async with self.db.transaction() as session:
            row = await self.load(session, principal, session_id, lock=True)
            require_active(row)
            existing = await store.list_trades(session, session_id)
            if len(existing) + len(intents) > store.MAX_TRADES:
                raise Conflict(
                    f"A session holds at most {store.MAX_TRADES} trades",
                    code="TRADE_LIMIT",
                    details={"limit": store.MAX_TRADES, "trades": len(existing), "requested": len(intents)},
                )
            current = session_book(row, existing)
            booked, _ = apply_trades(current.holdings_after(), _lots(current.base), intents)
            first_seq = max((t["seq"] for t in existing), default=0) + 1
            rows = await store.insert_trades(session, session_id, first_seq, booked)
            row = await store.update_session(
                session, session_id, trade_version=row["trade_version"] + 1, impacts_status=_after_change(row)
            )
        return _trades_body(row, rows)

    async def remove_trade(self, principal: Principal, session_id: UUID, trade_id: UUID) -> dict[str, Any]:
        """Delete one trade; the later ones are re-booked (409 INVALID_STATE when one would become invalid)."""
        async with self.db.transaction() as session:
            row = await self.load(session, principal, session_id, lock=True)
            require_active(row)
            existing = await store.list_trades(session, session_id)
            remaining = [t for t in existing if t["id"] != trade_id]
            if len(remaining) == len(existing):
                raise NotFound("TRADE", "Trade not found in this session")
            current = session_book(row, remaining)
            try:
                rebooked, _ = replay(current.holdings_before(), _lots(current.base), current.trades)
            except ValidationFailed as exc:
                raise Conflict(
                    "Removing this trade would invalidate a later one; remove that one first",
                    details=exc.details,
                ) from exc
            await store.delete_trade(session, session_id, trade_id)
            await store.rewrite_positions(session, remaining, rebooked)
            row = await store.update_session(
                session, session_id, trade_version=row["trade_version"] + 1, impacts_status=_after_change(row)
            )
            rows = await store.list_trades(session, session_id)
        return _trades_body(row, rows)

    # -- #56 ------------------------------------------------------------------------------------

    async def calculate(
        self, principal: Principal, session_id: UUID, body: CalculateRequest
    ) -> tuple[dict[str, Any], bool]:
        """Queue (or join the identical queued) `modeling.calculate` job; the row is committed on return."""
        async with self.db.transaction() as session:
            row = await self.load(session, principal, session_id, lock=True)
            require_active(row)
            if not await store.list_trades(session, session_id):
                raise ValidationFailed.field(
                    "session.trades", "no trades", 0, message="Add at least one trade before calculating"
                )
            as_of: date = body.as_of_date or row["base_as_of_date"]
            if as_of > utcnow().date():
                raise ValidationFailed.field("body.as_of_date", "must not be in the future", as_of.isoformat())
            scope = {
                "session_id": str(session_id),
                "portfolio_id": str(row["portfolio_id"]),
                "trade_version": row["trade_version"],
                "as_of_date": as_of.isoformat(),
            }
            job, deduplicated = await self.plumbing.ledger.create(
                session,
                job_type=JOB_TYPE,
                requested_by=principal.user_id,
                scope=scope,
                request=body.model_dump(mode="json"),
                result_url=impacts_url(session_id),
            )
            if not deduplicated:
                await store.update_session(session, session_id, impacts_status="pending", last_job_id=job["id"])
        if not deduplicated:

            async def run(_: UUID) -> JobOutcome:
                return await self.run_calculation(session_id, as_of)

            self.plumbing.runner.submit(job["id"], JOB_TYPE, run)
        return job, deduplicated

    async def run_calculation(self, session_id: UUID, as_of: date) -> JobOutcome:
        """The job: value both books, ask the engines, store the impacts for the trade version read."""
        try:
            async with self.db.session() as session:
                row = await store.get_session(session, _SYSTEM, session_id)
                if row is None:
                    raise not_found()
                trades = await store.list_trades(session, session_id)
            book = session_book(row, trades)
            units, warnings = await load_units(self.db, self.engines, book, as_of)
            before, after = before_after(book, units)
            evaluation = await evaluate(self.engines, {"before": before, "after": after}, as_of)
            document = impacts_document(evaluation, book.trades, row["trade_version"], warnings)
        except Exception as exc:
            await self._record_failure(session_id, exc)
            raise
        async with self.db.transaction() as session:
            current = await store.get_session(session, _SYSTEM, session_id, for_update=True)
            if current is not None and (current["impacts_trade_version"] or -1) <= row["trade_version"]:
                await store.update_session(
                    session,
                    session_id,
                    touch=False,
                    impacts=document,
                    impacts_status="ready",
                    impacts_trade_version=row["trade_version"],
                    impacts_as_of_date=as_of,
                    impacts_calculated_at=utcnow(),
                    impacts_error=None,
                )
        result = {
            "session_id": str(session_id),
            "trade_version": row["trade_version"],
            "warnings": document["warnings"],
        }
        return JobOutcome(result=result, result_url=impacts_url(session_id))

    async def _record_failure(self, session_id: UUID, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
        try:
            async with self.db.transaction() as session:
                await store.update_session(
                    session, session_id, touch=False, impacts_status="failed", impacts_error=message[:1000]
                )
        except Exception:
            log.exception("could not record the failed calculation of session %s", session_id)

    # -- #57, #58 -------------------------------------------------------------------------------

    async def impacts(self, principal: Principal, session_id: UUID) -> dict[str, Any]:
        """The stored impacts with `stale` when trades changed since."""
        async with self.db.session() as session:
            row = await self.load(session, principal, session_id)
        document = row["impacts"]
        if document is None:
            hint = f"POST {session_url(session_id)}/calculate"
            if row["impacts_status"] == "pending" and row["last_job_id"]:
                hint = f"GET /api/v1/jobs/{self.plumbing.ledger.public_id(row['last_job_id'])}"
            raise NotCalculated("The session's impacts have not been calculated yet", hint=hint)
        return {
            "session_id": str(session_id),
            "calculated_at": iso_datetime(row["impacts_calculated_at"]),
            "stale": document["trade_version"] != row["trade_version"],
            "current_trade_version": row["trade_version"],
            "impacts_status": impacts_status(row),
            **document,
        }

    async def save(self, principal: Principal, session_id: UUID, body: SaveRequest) -> dict[str, Any]:
        """Freeze the session with its impacts as a read-only saved scenario (the live portfolio is untouched)."""
        async with self.db.transaction() as session:
            row = await self.load(session, principal, session_id, lock=True)
            require_active(row)
            if impacts_status(row) != "ready":
                raise Conflict(
                    "Calculate the impacts of the current trades before saving",
                    code="IMPACTS_STALE",
                    details={"impacts_status": impacts_status(row), "trade_version": row["trade_version"]},
                    hint=f"POST {session_url(session_id)}/calculate",
                )
            values: dict[str, Any] = {"status": "saved", "saved_at": utcnow(), "expires_at": None}
            if body.name is not None:
                values["name"] = body.name.strip()
            if body.description is not None:
                values["description"] = body.description
            row = await store.update_session(session, session_id, **values)
            trade_count = len(await store.list_trades(session, session_id))
        return {
            "session_id": str(session_id),
            "status": row["status"],
            "saved_at": iso_datetime(row["saved_at"]),
            "name": row["name"],
            "description": row["description"],
            "trade_count": trade_count,
            "as_of": row["impacts"]["as_of"],
            "after": row["impacts"]["after"],
        }

    # -- expiry ---------------------------------------------------------------------------------

    async def expire_forever(self) -> None:
        """Mark sessions idle for 24 h expired, hourly (reads also expire lazily)."""
        while True:
            try:
                async with self.db.transaction() as session:
                    expired = await store.expire_due(session)
                if expired:
                    log.info("expired %d modelling session(s)", expired)
            except Exception as exc:
                log.warning("modelling session expiry failed: %s", exc)
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)


# Internal reads by id (jobs): an admin principal passes the ownership filter.
_SYSTEM = Principal(UUID(int=0), "system", "admin")


def _after_change(row: dict[str, Any]) -> str:
    """Impacts become `stale` when trades change after a calculation; a running one stays `pending`."""
    return "none" if row["impacts_status"] == "none" else ("pending" if row["impacts_status"] == "pending" else "stale")


def _trades_body(row: dict[str, Any], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "session_id": str(row["id"]),
        "trade_version": row["trade_version"],
        "trades": [trade_json(r) for r in rows],
        "impacts_status": impacts_status(row),
    }
