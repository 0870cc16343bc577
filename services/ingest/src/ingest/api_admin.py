"""#74 `POST /api/v1/admin/demo/reset` (admin; async job `demo.reset`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from common.api import envelope
from common.auth import Principal, require_admin
from common.jobs import prefer_wait_seconds
from common.logging import request_id_var
from ingest.api_schemas import JobAcceptedResponse
from ingest.context import IngestContext
from ingest.service import IngestService

JOB_TYPE = "demo.reset"


def create_admin_router(ctx: IngestContext, service: IngestService) -> APIRouter:
    """#74."""
    plumbing = ctx.plumbing
    router = APIRouter(tags=["admin"])

    @router.post(
        "/api/v1/admin/demo/reset",
        status_code=202,
        summary="Restore the demo accounts to their seeded state",
        description=(
            "Admin only. Restores the three demo portfolios (names, cash, status active, default), their 63 positions "
            "(open, seeded quantities and entry prices) and 9 tags with their seeded links; deletes every other "
            "portfolio, position, tag, upload and modelling session of the demo users. Publishes `portfolio.updated` "
            "`removed` for each removed portfolio and `positions` (`trigger: demo_reset`) for each demo portfolio, on "
            "which marketdata starts the recalculation run. 202 JobAccepted (`job_type: demo.reset`); with "
            "`Prefer: wait=N` (N ≤ 10) a job finished in time answers 200 with the Job. The result counts what was "
            "restored and removed."
        ),
        response_model=JobAcceptedResponse,
        responses={403: {"description": "FORBIDDEN (not an admin)"}},
    )
    async def reset(
        request: Request,
        prefer: str | None = Header(None),
        principal: Principal = Depends(require_admin),
    ) -> Response:
        correlation_id = request_id_var.get()
        async with ctx.db.transaction() as session:
            row, deduplicated = await plumbing.ledger.create(
                session, job_type=JOB_TYPE, requested_by=principal.user_id, scope={"demo": True}
            )
        job_id = row["id"]
        if not deduplicated:

            async def run(ident: Any) -> Any:
                return await service.demo_reset_job(ident, correlation_id)

            plumbing.runner.submit(job_id, JOB_TYPE, run)
        wait = prefer_wait_seconds(prefer)
        if wait > 0 and await plumbing.runner.wait(job_id, wait):
            async with ctx.db.session() as session:
                done = await plumbing.ledger.get(session, job_id)
            if done is not None:
                return envelope(plumbing.ledger.to_api(done), request=request, status=200)
        body = plumbing.ledger.accepted(row, deduplicated)
        headers = {"Location": body["status_url"], "Retry-After": "2"}
        return envelope(body, request=request, status=202, headers=headers)

    return router
