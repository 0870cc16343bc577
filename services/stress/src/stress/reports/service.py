"""On-demand reports (api.md #66–#68, #75): accept a request as a job, build the files off the event
loop, store them in PostgreSQL, answer status, downloads (recorded in the export history) and lists."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

from common.auth import Principal
from common.errors import ApiError, Conflict, Gone, NotCalculated, NotFound, ValidationFailed
from common.formatting import utcnow
from common.jobs import JobOutcome
from common.service import Plumbing
from stress import stress_queries
from stress.exports import files, history
from stress.reports import inputs as reads
from stress.reports import store
from stress.reports.present import report_body, status_url
from stress.reports.render import build_files
from stress.reports.schemas import GenerateRequest

JOB_TYPE = "report.generate"
SNAPSHOT_HINT = "POST /api/v1/admin/batch/snapshots"


class ReportService:
    """Report jobs and reads of one stress service instance."""

    def __init__(self, plumbing: Plumbing, *, pdf_enabled: bool) -> None:
        self.plumbing = plumbing
        self.db = plumbing.db
        self.pdf_enabled = pdf_enabled

    async def accept(self, principal: Principal, body: GenerateRequest) -> tuple[dict[str, Any], UUID, bool]:
        """Validate, create the report and its job (committed before the 202); returns (job, report id,
        deduplicated)."""
        if "pdf" in body.formats and not self.pdf_enabled:
            raise ValidationFailed.field(
                "body.formats", "pdf reports are disabled on this deployment", "pdf", code="UNSUPPORTED_FORMAT"
            )
        formats = sorted(set(body.formats), key=("md", "json", "csv", "pdf").index)
        sections = sorted(set(body.sections), key=body.section_order)
        async with self.db.transaction() as session:
            portfolio = await stress_queries.resolve_portfolio(session, principal, body.portfolio_id)
            as_of = (await reads.snapshot_dates(session, [portfolio.id], body.as_of_date)).get(portfolio.id)
            if as_of is None:
                when = f"for {body.as_of_date.isoformat()}" if body.as_of_date else "yet"
                raise NotCalculated(f"No snapshot of this portfolio is stored {when}", hint=SNAPSHOT_HINT)
            ident = uuid4()
            scope = {
                "portfolio_id": str(portfolio.id),
                "as_of_date": as_of.isoformat(),
                "formats": formats,
                "sections": sections,
            }
            job, deduplicated = await self.plumbing.ledger.create(
                session,
                job_type=JOB_TYPE,
                requested_by=principal.user_id,
                scope=scope,
                request=body.model_dump(mode="json", exclude_none=True),
                ident=ident,
                result_url=status_url(ident),
            )
            if not deduplicated:
                await store.create(
                    session,
                    id=ident,
                    user_id=portfolio.user_id,
                    portfolio_id=portfolio.id,
                    trigger="api",
                    formats=formats,
                    sections=sections,
                    as_of_date=as_of,
                )
        report_id: UUID = job["id"]
        if not deduplicated:
            self.plumbing.runner.submit(report_id, JOB_TYPE, self.run)
        return job, report_id, deduplicated

    async def run(self, report_id: UUID) -> JobOutcome:
        """The job: one consistent read, files built in a worker thread, stored in one transaction."""
        try:
            return await self._build(report_id)
        except Exception as exc:
            code = exc.code if isinstance(exc, ApiError) else "INTERNAL_ERROR"
            async with self.db.transaction() as session:
                await store.update(session, report_id, status="failed", error_code=code, error_message=str(exc)[:1000])
            raise

    async def _build(self, report_id: UUID) -> JobOutcome:
        async with self.db.transaction() as session:
            row = await store.get(session, report_id, utcnow())
            if row is None:
                raise NotFound("REPORT")
            await store.update(
                session, report_id, status="running", started_at=utcnow(), progress_pct=10, progress_step="reading"
            )
        async with self.db.transaction() as session:
            await reads.start_consistent_read(session)
            loaded = await reads.load(session, [row["portfolio_id"]], row["as_of_date"])
        inputs = loaded.get(row["portfolio_id"])
        if inputs is None:
            raise NotFound("PORTFOLIO", "The portfolio no longer exists")
        async with self.db.transaction() as session:
            await store.update(session, report_id, progress_pct=40, progress_step="rendering")
        _, made = await asyncio.to_thread(build_files, inputs, row["formats"], row["sections"], utcnow())
        completed = utcnow()
        expires = completed + files.RETENTION
        async with self.db.transaction() as session:
            stored = await files.put_many(session, owner=row["user_id"], files=made, expires_at=expires)
            formats = [f for f in ("md", "json", "csv", "pdf") if f in row["formats"]]
            await store.attach_files(session, report_id, list(zip(formats, stored, strict=True)))
            await store.update(
                session,
                report_id,
                status="completed",
                completed_at=completed,
                expires_at=expires,
                data_source=inputs.data_source,
                progress_pct=100,
                progress_step="completed",
            )
        result = {"report_id": str(report_id), "files": [f.file_name for f in stored]}
        return JobOutcome(status="completed", result=result, result_url=status_url(report_id))

    async def _owned(self, principal: Principal, report_id: UUID) -> dict[str, Any]:
        async with self.db.session() as session:
            row = await store.get(session, report_id, utcnow())
        if row is None or (row["user_id"] != principal.user_id and not principal.is_admin):
            raise NotFound("REPORT")
        return row

    async def status(self, principal: Principal, report_id: UUID) -> dict[str, Any]:
        """#67."""
        row = await self._owned(principal, report_id)
        async with self.db.session() as session:
            attached = (await store.file_rows(session, [report_id]))[report_id]
        return report_body(row, attached, self.plumbing.ledger.public_id(report_id))

    async def download(self, principal: Principal, report_id: UUID, fmt: str | None) -> files.FileContent:
        """#68: one file of a completed report; the download is recorded in the export history."""
        row = await self._owned(principal, report_id)
        now = utcnow()
        if row["visible_status"] in ("queued", "running", "failed"):
            raise Conflict(
                f"The report is {row['visible_status']}; download it once it is completed",
                code="REPORT_NOT_READY",
                details=[{"field": "status", "issue": "not completed", "value": row["visible_status"]}],
                retryable=row["visible_status"] != "failed",
            )
        if row["visible_status"] == "expired":
            raise Gone(f"The files of report {report_id} expired (kept 30 days)")
        async with self.db.transaction() as session:
            attached = {f["format"]: f for f in (await store.file_rows(session, [report_id]))[report_id]}
            if fmt is None:
                if len(attached) != 1:
                    raise ValidationFailed.field("query.format", f"required: the report has {', '.join(attached)}")
                fmt = next(iter(attached))
            chosen = attached.get(fmt)
            if chosen is None:
                raise NotFound("REPORT", f"This report has no {fmt} file (formats: {', '.join(attached)})")
            data = None if chosen["stored_file_id"] is None else await files.read(session, chosen["stored_file_id"])
            if data is None:
                raise Gone(f"The files of report {report_id} expired (kept 30 days)")
            await history.record(
                session,
                user_id=principal.user_id,
                export_type="report",
                format=fmt,
                portfolio_id=row["portfolio_id"],
                report_id=report_id,
                file_name=chosen["file_name"],
                content_type=chosen["content_type"],
                size_bytes=chosen["size_bytes"],
                stored_file_id=chosen["stored_file_id"],
                created_at=now,
                expires_at=row["expires_at"],
            )
        return files.FileContent(chosen["file_name"], chosen["content_type"], data)

    async def portfolio_scope(self, principal: Principal, portfolio_id: UUID | None) -> list[UUID]:
        """#75 scope: the given portfolio (404 when not the caller's), else every portfolio of the caller."""
        async with self.db.session() as session:
            if portfolio_id is not None:
                return [(await stress_queries.resolve_portfolio(session, principal, portfolio_id)).id]
            return await store.owned_portfolio_ids(session, principal.user_id)

    async def listing(self, query: store.ListQuery) -> tuple[list[dict[str, Any]], int]:
        """#75 rows and total."""
        async with self.db.session() as session:
            return await store.page(session, query, utcnow())
