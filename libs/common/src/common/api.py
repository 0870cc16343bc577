"""Response envelopes, pagination, sorting and multi-value query helpers (api.md §2.5, §2.8)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from common.errors import ValidationFailed
from common.formatting import iso_datetime, json_default
from common.logging import request_id_var

MAX_LIMIT = 500


class JSONResponse(Response):
    """orjson-rendered JSON (Decimals as strings)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=json_default, option=orjson.OPT_NON_STR_KEYS)


_stamp: tuple[int, str] = (0, "")


def now_stamp() -> str:
    """Current UTC time as `YYYY-MM-DDTHH:MM:SSZ`, formatted once per second (it is on every response)."""
    global _stamp
    second = int(time.time())
    if _stamp[0] != second:
        _stamp = (second, iso_datetime(datetime.fromtimestamp(second, UTC)) or "")
    return _stamp[1]


def meta(request: Request | None = None, **extra: Any) -> dict[str, Any]:
    """`meta` block: request_id, timestamp, plus as_of / data_source / page extras."""
    request_id = request_id_var.get()
    if request_id is None and request is not None:
        request_id = request.headers.get("x-request-id")
    out: dict[str, Any] = {"request_id": request_id, "timestamp": now_stamp()}
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def envelope(
    data: Any,
    *,
    request: Request | None = None,
    status: int = 200,
    page: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    **meta_extra: Any,
) -> JSONResponse:
    """`{"data": …, "meta": …}` (+ `page` for lists)."""
    body: dict[str, Any] = {"data": data, "meta": meta(request, **meta_extra)}
    if page is not None:
        body["page"] = dict(page)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def page_block(limit: int, offset: int, total: int) -> dict[str, Any]:
    """The `page` object of a list response."""
    return {"limit": limit, "offset": offset, "total": total, "has_more": offset + limit < total}


def check_limit(limit: int, offset: int, *, max_limit: int = MAX_LIMIT) -> tuple[int, int]:
    """Validate limit (1..max_limit) and offset (>= 0); 422 otherwise."""
    if limit < 1 or limit > max_limit:
        raise ValidationFailed.field("query.limit", f"must be between 1 and {max_limit}", limit)
    if offset < 0:
        raise ValidationFailed.field("query.offset", "must be >= 0", offset)
    return limit, offset


def split_multi(value: str | None) -> list[str]:
    """Comma-separated multi-value query parameter → trimmed non-empty items."""
    if value is None:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_enum_multi(value: str | None, allowed: Iterable[str], field: str, *, upper: bool = False) -> list[str]:
    """Multi-value enum filter, case-insensitive; unknown values → 422."""
    allowed_map = {a.lower(): a for a in allowed}
    out: list[str] = []
    for item in split_multi(value):
        canonical = allowed_map.get(item.lower())
        if canonical is None:
            raise ValidationFailed.field(f"query.{field}", f"must be one of {sorted(allowed_map.values())}", item)
        out.append(canonical.upper() if upper else canonical)
    return out


def parse_sort(value: str | None, allowed: Sequence[str], default: str) -> list[tuple[str, bool]]:
    """`sort=-market_value,symbol` → [(field, descending)]; unknown fields → 422."""
    spec = value if value else default
    out: list[tuple[str, bool]] = []
    for item in split_multi(spec):
        desc = item.startswith("-")
        name = item.lstrip("+-")
        if name not in allowed:
            raise ValidationFailed.field("query.sort", f"sortable fields: {', '.join(allowed)}", item)
        out.append((name, desc))
    return out


def parse_bool(value: str | bool | None, field: str, default: bool) -> bool:
    """Boolean query parameter (true/false/1/0/yes/no)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValidationFailed.field(f"query.{field}", "must be true or false", value)
