"""The multipart form of api.md #24: size and type of the file part, then the optional fields.

Transport problems answer 400/413/415 at once; every field problem is collected so one 422 lists
them all.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from common.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from common.logging import request_id_var
from ingest.models_upload import MAX_UPLOAD_BYTES
from ingest.upload.accept import UploadRequest

FORM_FIELDS = {"file", "portfolio_id", "portfolio_name", "mode", "cash_balance", "auto_complete"}
CSV_CONTENT_TYPES = {
    "",
    "text/csv",
    "text/plain",
    "text/x-csv",
    "text/comma-separated-values",
    "application/csv",
    "application/x-csv",
    "application/vnd.ms-excel",  # what Windows browsers send for .csv files
    "application/octet-stream",
}
MULTIPART_SLACK = 1024 * 1024  # form fields and boundaries around a 10 MiB file
_MONEY = re.compile(r"^\+?(\d+(\.\d{0,2})?|\.\d{1,2})$")
_TOO_LARGE = f"The file is larger than {MAX_UPLOAD_BYTES} bytes (10 MiB)"

Details = list[dict[str, Any]]


async def parse_upload_form(request: Request) -> UploadRequest:
    """Validate the multipart form of #24 (400/413/415/422 as api.md lists them)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("Uploads are multipart/form-data with a `file` part")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_UPLOAD_BYTES + MULTIPART_SLACK:
        raise PayloadTooLarge(_TOO_LARGE)
    try:
        form = await request.form(max_files=4, max_fields=32)
    except Exception as exc:  # malformed multipart
        raise BadRequest("The multipart body could not be parsed") from exc
    try:
        file_name, content = await _csv_file(form)
        details: Details = [
            {"field": f"body.{key}", "issue": "unknown field", "value": None}
            for key in dict.fromkeys(form.keys())
            if key not in FORM_FIELDS
        ]
        for key in FORM_FIELDS - {"file"}:
            if len(form.getlist(key)) > 1:
                details.append({"field": f"body.{key}", "issue": "given more than once", "value": None})
        raw_pid = _text(form.get("portfolio_id"), "portfolio_id")
        portfolio_id = _portfolio_id(raw_pid, details)
        name = _portfolio_name(_text(form.get("portfolio_name"), "portfolio_name"), raw_pid, details)
        mode = _mode(_text(form.get("mode"), "mode"), raw_pid, details)
        cash = _cash(_text(form.get("cash_balance"), "cash_balance"), details)
        auto = _auto_complete(_text(form.get("auto_complete"), "auto_complete"), raw_pid, details)
        if details:
            raise ValidationFailed("Upload form failed validation", details=details)
        return UploadRequest(
            file_name=file_name,
            content=content,
            portfolio_id=portfolio_id,
            portfolio_name=name,
            mode=mode,
            cash_balance=cash,
            auto_complete=auto,
            correlation_id=request_id_var.get() or request.headers.get("x-request-id"),
        )
    finally:
        await form.close()


async def _csv_file(form: FormData) -> tuple[str, bytes]:
    """(file name, content) of the one `file` part: a .csv of at most 10 MiB."""
    files = form.getlist("file")
    if not files:
        raise BadRequest("A `file` part with the CSV is required")
    if len(files) > 1:
        raise BadRequest("Send exactly one `file` part")
    part = files[0]
    if not isinstance(part, UploadFile):
        raise BadRequest("The `file` part must be a file (with a filename), not a text field")
    # One byte more than the limit tells an oversized file from one exactly at the limit.
    content = await part.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(_TOO_LARGE)
    file_name = _file_name(part.filename)
    media = (part.content_type or "").split(";")[0].strip().lower()
    if not file_name.lower().endswith(".csv") or media not in CSV_CONTENT_TYPES:
        raise UnsupportedMediaType(
            "The file must be a .csv file (text/csv)",
            details=[{"field": "body.file", "issue": "expected a .csv file", "value": f"{file_name} ({media})"}],
        )
    return file_name, content


def _text(value: Any, field: str) -> str | None:
    """A text field, trimmed; None when absent or blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed.field(f"body.{field}", "must be a text field", None)
    value = value.strip()
    return value or None


def _file_name(raw: str | None) -> str:
    """The base name a browser sent (Windows paths included), at most 255 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255]


def _portfolio_id(raw: str | None, details: Details) -> UUID | None:
    if raw is None:
        return None
    try:
        return UUID(raw)
    except ValueError:
        details.append({"field": "body.portfolio_id", "issue": "must be a UUID", "value": raw})
        return None


def _portfolio_name(name: str | None, raw_pid: str | None, details: Details) -> str | None:
    if name is not None and len(name) > 255:
        details.append({"field": "body.portfolio_name", "issue": "must be 1-255 characters", "value": name[:50]})
    if name is not None and raw_pid is not None:
        details.append(
            {
                "field": "body.portfolio_name",
                "issue": "only used when creating a portfolio (without portfolio_id)",
                "value": name,
            }
        )
    return name


def _mode(mode: str | None, raw_pid: str | None, details: Details) -> str | None:
    if mode is None:
        return None
    mode = mode.lower()
    if raw_pid is None:
        details.append(
            {"field": "body.mode", "issue": "only allowed with portfolio_id (new portfolios)", "value": mode}
        )
    elif mode not in ("append", "replace"):
        details.append({"field": "body.mode", "issue": "must be append or replace", "value": mode})
    return mode


def _cash(raw: str | None, details: Details) -> Decimal | None:
    """USD >= 0 with at most 2 decimals (below 10^18, the column's range)."""
    if raw is None:
        return None
    cash: Decimal | None = None
    try:
        if _MONEY.match(raw) is None:
            raise InvalidOperation
        cash = Decimal(raw)
        if cash >= Decimal("1e18"):
            raise InvalidOperation
    except InvalidOperation:
        details.append(
            {
                "field": "body.cash_balance",
                "issue": "must be a decimal amount >= 0 with at most 2 decimals",
                "value": raw,
            }
        )
    return cash


def _auto_complete(raw: str | None, raw_pid: str | None, details: Details) -> bool:
    if raw is None:
        return False
    auto = False
    if raw.lower() in ("true", "1", "yes", "on"):
        auto = True
    elif raw.lower() not in ("false", "0", "no", "off"):
        details.append({"field": "body.auto_complete", "issue": "must be true or false", "value": raw})
    if auto and raw_pid is not None:
        details.append(
            {
                "field": "body.auto_complete",
                "issue": "only for new portfolios (without portfolio_id)",
                "value": True,
            }
        )
    return auto
