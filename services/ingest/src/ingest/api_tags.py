"""#48-#52: tags (api.md §4.7)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from common.api import check_limit, envelope, page_block, parse_bool, parse_enum_multi, parse_sort
from common.auth import Principal
from common.db import Database
from common.errors import ValidationFailed
from common.logging import request_id_var
from ingest import tags_service
from ingest.access import caller, parse_uuid, resolve_portfolio
from ingest.api import today_eastern
from ingest.api_schemas import (
    BulkAssignRequest,
    BulkAssignResponse,
    CreateTagRequest,
    PositionTagsResponse,
    ReplaceTagsRequest,
    TagListResponse,
    TagResponse,
)
from ingest.context import IngestContext
from ingest.positions_query import _escape_like
from ingest.tags_service import TAG_COLUMNS, TagCommand, tag_json

TAG_SORTS = {"name": "t.name_key", "position_count": "position_count", "created_at": "t.created_at"}
RULES = (
    "Names: 1-50 characters after trimming of letters, digits, spaces and _ - . & / (no commas), case-insensitively "
    "unique per user; `#strategy:<name>` creates a strategy tag. Limits: 100 tags per user, 20 per position, one "
    "strategy tag per position. "
)


def _uuids(values: list[str], field: str) -> list[UUID]:
    out = []
    for i, value in enumerate(values):
        parsed = parse_uuid(value, f"{field}.{i}")
        assert parsed is not None
        out.append(parsed)
    return out


def create_tags_router(ctx: IngestContext) -> APIRouter:
    """#48-#52."""
    db: Database = ctx.db
    uow = ctx.plumbing.uow
    router = APIRouter(tags=["tags"])

    def command(principal: Principal) -> TagCommand:
        return TagCommand(principal=principal, correlation_id=request_id_var.get(), today=today_eastern())

    @router.get(
        "/api/v1/tags",
        summary="List the caller's tags",
        description=RULES + "`position_count` counts open positions carrying the tag (in `portfolio_id` when given). "
        "Filters: `tag_type` (regular | strategy), `q` (name prefix). "
        "Sort: name (default), position_count, created_at.",
        response_model=TagListResponse,
    )
    async def list_tags(
        request: Request,
        tag_type: str | None = Query(None, description="regular | strategy"),
        q: str | None = Query(None, description="Case-insensitive name prefix"),
        portfolio_id: str | None = Query(None, description="Restrict position_count to one portfolio"),
        sort: str | None = Query(None),
        limit: int = Query(50),
        offset: int = Query(0),
        principal: Principal = Depends(caller),
    ) -> Response:
        limit, offset = check_limit(limit, offset)
        order = parse_sort(sort, tuple(TAG_SORTS), "name")
        types = parse_enum_multi(tag_type, ("regular", "strategy"), "tag_type")
        args: list[Any] = [principal.user_id]
        where = ["t.user_id = $1", "t.deleted_at IS NULL"]
        scope_id = None
        if portfolio_id is not None:
            scope_id = (await resolve_portfolio(db, principal, portfolio_id)).id
        if types:
            args.append(types)
            where.append(f"t.tag_type = ANY(${len(args)}::text[])")
        if q and q.strip():
            args.append(_escape_like(" ".join(q.split()).lower()) + "%")
            where.append(f"t.name_key LIKE ${len(args)}")
        total_row = await db.fetchrow(f"SELECT count(*) AS n FROM ingest.tag t WHERE {' AND '.join(where)}", *args)
        total = int(total_row["n"]) if total_row else 0
        keys = [f"{TAG_SORTS[n]} {'DESC' if d else 'ASC'}" for n, d in order]
        count_scope = ""
        if scope_id is not None:
            args.append(scope_id)
            count_scope = f" AND p.portfolio_id = ${len(args)}"
        args.extend([limit, offset])
        rows = await db.fetch(
            f"SELECT {TAG_COLUMNS}, (SELECT count(*) FROM ingest.position_tag pt JOIN ingest.position p "
            "ON p.id = pt.position_id AND p.status = 'open' JOIN ingest.portfolio pf ON pf.id = p.portfolio_id "
            f"AND pf.deleted_at IS NULL WHERE pt.tag_id = t.id{count_scope}) AS position_count "
            f"FROM ingest.tag t WHERE {' AND '.join(where)} ORDER BY {', '.join([*keys, 't.id'])} "
            f"LIMIT ${len(args) - 1} OFFSET ${len(args)}",
            *args,
        )
        return envelope(
            [tag_json(r, r["position_count"]) for r in rows],
            request=request,
            page=page_block(limit, offset, total),
        )

    @router.post(
        "/api/v1/tags",
        status_code=201,
        summary="Create a tag",
        description=RULES + "201 with the Tag and `Location`. 409 TAG_EXISTS (details.existing_tag_id), "
        "409 TAG_LIMIT_REACHED, 422 invalid name or color (`#RRGGBB`, default #6B7280).",
        response_model=TagResponse,
        responses={409: {"description": "TAG_EXISTS | TAG_LIMIT_REACHED"}, 422: {"description": "VALIDATION_ERROR"}},
    )
    async def create_tag(request: Request, body: CreateTagRequest, principal: Principal = Depends(caller)) -> Response:
        async with uow.begin() as work:
            tag = await tags_service.create_tag(
                work.session,
                command(principal),
                name=body.name,
                tag_type=body.tag_type,
                color=body.color,
                description=body.description,
            )
        return envelope(tag, request=request, status=201, headers={"Location": f"/api/v1/tags/{tag['id']}"})

    @router.put(
        "/api/v1/positions/{id}/tags",
        summary="Replace a position's tag set",
        description=RULES + "Body: `tag_ids` and/or `tag_names` (the full new set; `[]` clears it); "
        "`create_missing` (default false: unknown names → 422). A position may carry one strategy tag: to move it "
        "between strategies send the new set. 409 TOO_MANY_TAGS (> 20), STRATEGY_CONFLICT (two strategies), "
        "TAG_LIMIT_REACHED (creating would exceed 100); 404 POSITION_NOT_FOUND.",
        response_model=PositionTagsResponse,
        responses={404: {"description": "POSITION_NOT_FOUND"}, 409: {"description": "Tag rule violated"}},
    )
    async def replace_tags(
        request: Request, id: str, body: ReplaceTagsRequest, principal: Principal = Depends(caller)
    ) -> Response:
        position_id = parse_uuid(id, "path.id")
        assert position_id is not None
        if body.tag_ids is None and body.tag_names is None:
            raise ValidationFailed.field("body", "send tag_ids and/or tag_names")
        ids = _uuids(body.tag_ids, "body.tag_ids") if body.tag_ids else []
        async with uow.begin() as work:
            result = await tags_service.replace_position_tags(
                work,
                command(principal),
                position_id,
                tag_ids=ids,
                tag_names=body.tag_names,
                create_missing=body.create_missing,
            )
        return envelope(result, request=request)

    @router.delete(
        "/api/v1/tags/{id}",
        status_code=204,
        summary="Delete a tag",
        description="Removes the tag from every position (one transaction) and keeps the tag soft-deleted for 30 days. "
        "A tag still on open positions needs `force=true`, else 409 TAG_IN_USE (details.position_count).",
        responses={404: {"description": "TAG_NOT_FOUND"}, 409: {"description": "TAG_IN_USE"}},
    )
    async def delete_tag(
        id: str,
        force: str | None = Query(None, description="Default false"),
        principal: Principal = Depends(caller),
    ) -> Response:
        tag_id = parse_uuid(id, "path.id")
        assert tag_id is not None
        forced = parse_bool(force, "force", False)
        async with uow.begin() as work:
            await tags_service.delete_tag(work, command(principal), tag_id, force=forced)
        return Response(status_code=204)

    @router.post(
        "/api/v1/tags/bulk-assign",
        summary="Add or remove tags on many positions",
        description=RULES + "Body: `tag_ids` (1-20), `position_ids` (1-1000), `action` add (default) | remove. One "
        "transaction: any violation changes nothing. 404 for any unknown tag or position; 409 TOO_MANY_TAGS, "
        "STRATEGY_CONFLICT (adding a strategy to a position that has another). `skipped` lists positions with "
        "nothing to change.",
        response_model=BulkAssignResponse,
        responses={
            404: {"description": "TAG_NOT_FOUND | POSITION_NOT_FOUND"},
            409: {"description": "Tag rule violated"},
        },
    )
    async def bulk_assign(
        request: Request, body: BulkAssignRequest, principal: Principal = Depends(caller)
    ) -> Response:
        tag_ids = _uuids(body.tag_ids, "body.tag_ids")
        position_ids = _uuids(body.position_ids, "body.position_ids")
        async with uow.begin() as work:
            result = await tags_service.bulk_assign(
                work, command(principal), tag_ids=tag_ids, position_ids=position_ids, action=body.action
            )
        return envelope(result, request=request)

    return router
