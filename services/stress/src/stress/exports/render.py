"""File bodies of a trade export (api.md #69): csv, json, fix and upload_csv. Pure.

* `csv`: the broker trade list, columns exactly as api.md #69.
* `json`: `{format, account, generated_at, trades: [normalised lines]}`.
* `fix`: FIX 4.4 New Order Single per line (stress.exports.fix).
* `upload_csv`: the opening lines as a positions file of csv-format.md (`ticker,quantity,entry_price,
  entry_date,tags`), signed quantity (SELL_SHORT negative), so uploading it through
  POST /api/v1/portfolio/upload creates exactly these positions. A positions file can only open
  positions, so closing lines (SELL, BUY_TO_COVER) are refused before this is called.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from common.formatting import iso_date, iso_datetime, price, qty
from stress.exports.fix import fix_file
from stress.exports.trades import TradeLine

CSV_COLUMNS = (
    "side",
    "symbol",
    "quantity",
    "security_type",
    "underlying",
    "option_type",
    "strike_price",
    "expiration_date",
    "order_type",
    "limit_price",
    "time_in_force",
    "account",
)
UPLOAD_COLUMNS = ("ticker", "quantity", "entry_price", "entry_date", "tags")
MEDIA = {
    "csv": "text/csv",
    "upload_csv": "text/csv",
    "json": "application/json",
    "fix": "text/plain",
}
EXTENSION = {"csv": "csv", "upload_csv": "csv", "json": "json", "fix": "fix"}
OPTION_TYPE = {"C": "call", "P": "put"}


def line_item(line: TradeLine, number: int, cl_ord_id: str) -> dict[str, Any]:
    """A normalised line as JSON (the 201 body's `trades` and the json file)."""
    contract = line.contract
    return {
        "line": number,
        "cl_ord_id": cl_ord_id,
        "side": line.side,
        "symbol": line.symbol,
        "quantity": qty(line.quantity),
        "security_type": line.security_type,
        "underlying": line.underlying,
        "option_type": OPTION_TYPE[contract.option_type] if contract else None,
        "strike_price": price(contract.strike_price) if contract else None,
        "expiration_date": iso_date(contract.expiration_date) if contract else None,
        "open_close": line.open_close,
        "order_type": line.order_type,
        "limit_price": price(line.limit_price),
        "time_in_force": line.time_in_force,
        "account": line.account,
        "reference_price": price(line.reference_price),
        "summary": f"{line.side} {qty(line.quantity)} {line.symbol}",
    }


def _csv(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def trade_csv(items: Sequence[dict[str, Any]]) -> bytes:
    """The broker CSV: one row per line, empty cells for what does not apply."""
    return _csv([["" if item[c] is None else item[c] for c in CSV_COLUMNS] for item in items], CSV_COLUMNS)


def upload_csv(lines: Sequence[TradeLine]) -> bytes:
    """A csv-format.md positions file of opening lines (entry price = reference price, 4 dp)."""
    rows = []
    for line in lines:
        if line.reference_price is None or line.trade_date is None:
            raise ValueError(f"{line.symbol}: an upload row needs an entry price and date")
        rows.append(
            [
                line.symbol,
                qty(line.signed_quantity),
                price(line.reference_price),
                iso_date(line.trade_date),
                ",".join(line.tags),
            ]
        )
    return _csv(rows, UPLOAD_COLUMNS)


def render(
    fmt: str,
    lines: Sequence[TradeLine],
    items: Sequence[dict[str, Any]],
    *,
    moment: datetime,
    account: str | None,
    fix_delimiter: str,
) -> bytes:
    """The file body of `fmt`."""
    if fmt == "csv":
        return trade_csv(items)
    if fmt == "json":
        doc = {"format": "json", "account": account, "generated_at": iso_datetime(moment), "trades": list(items)}
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    if fmt == "fix":
        return fix_file(lines, [i["cl_ord_id"] for i in items], moment, delimiter=fix_delimiter)
    if fmt == "upload_csv":
        return upload_csv(lines)
    raise ValueError(f"unknown export format {fmt!r}")
