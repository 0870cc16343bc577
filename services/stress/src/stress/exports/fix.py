"""FIX 4.4 New Order Single (35=D) messages for trade exports (api.md #69). Pure.

Each message is `8=FIX.4.4 9=<BodyLength> 35=D … 10=<CheckSum>`, fields separated by SOH (0x01):
* BodyLength (9) = number of bytes after the SOH that ends the 9 field, up to and including the SOH
  before `10=` (FIX 4.4 Vol. 2 "Message Format").
* CheckSum (10) = sum of every byte before `10=` modulo 256, written as three digits.
With `fix_delimiter = pipe` every SOH is shown as `|` after the checksum was computed on the SOH form,
so replacing `|` with SOH gives back the exact valid message (BodyLength is the same either way).
One message per line (`\n` after the trailing delimiter).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from stress.exports.trades import TradeLine

SOH = "\x01"
BEGIN_STRING = "FIX.4.4"
SIDE = {"BUY": "1", "SELL": "2", "SELL_SHORT": "5", "BUY_TO_COVER": "1"}
# Options are not sold short: writing one is a Sell (2) with OpenClose O, buying it back a Buy with C.
OPTION_SIDE = {"BUY": "1", "SELL": "2", "SELL_SHORT": "2", "BUY_TO_COVER": "1"}
ORD_TYPE = {"MARKET": "1", "LIMIT": "2"}
TIME_IN_FORCE = {"DAY": "0", "GTC": "1"}
PUT_OR_CALL = {"P": "0", "C": "1"}


def _decimal(value: Decimal) -> str:
    """A FIX float: plain notation, no exponent, no trailing zeros."""
    text = f"{value.normalize():f}"
    return text


def transact_time(moment: datetime) -> str:
    """UTCTimestamp with milliseconds (`YYYYMMDD-HH:MM:SS.sss`)."""
    return moment.strftime("%Y%m%d-%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def order_fields(line: TradeLine, cl_ord_id: str, moment: datetime) -> list[tuple[int, str]]:
    """Body fields of one order, MsgType first (header tags 8 and 9 and trailer 10 are added by `frame`)."""
    fields: list[tuple[int, str]] = [(35, "D"), (11, cl_ord_id)]
    if line.account:
        fields.append((1, line.account))
    fields += [(55, line.underlying), (167, line.security_type)]
    if line.contract is not None:
        fields += [
            (201, PUT_OR_CALL[line.contract.option_type]),
            (202, _decimal(line.contract.strike_price)),
            (541, line.contract.expiration_date.strftime("%Y%m%d")),
        ]
    side = (OPTION_SIDE if line.is_option else SIDE)[line.side]
    fields += [(54, side), (38, _decimal(line.quantity)), (40, ORD_TYPE[line.order_type])]
    if line.limit_price is not None:
        fields.append((44, _decimal(line.limit_price)))
    fields += [(59, TIME_IN_FORCE[line.time_in_force]), (60, transact_time(moment))]
    if line.contract is not None:
        fields.append((77, line.open_close))
    return fields


def frame(fields: Sequence[tuple[int, str]]) -> str:
    """A complete SOH-delimited message: BeginString, BodyLength, the fields, CheckSum."""
    body = "".join(f"{tag}={value}{SOH}" for tag, value in fields)
    head = f"8={BEGIN_STRING}{SOH}9={len(body.encode('ascii'))}{SOH}"
    checksum = sum((head + body).encode("ascii")) % 256
    return f"{head}{body}10={checksum:03d}{SOH}"


def fix_file(lines: Sequence[TradeLine], cl_ord_ids: Sequence[str], moment: datetime, *, delimiter: str) -> bytes:
    """One New Order Single per line; `delimiter` is `soh` or `pipe`."""
    messages = [frame(order_fields(line, ident, moment)) for line, ident in zip(lines, cl_ord_ids, strict=True)]
    text = "".join(m + "\n" for m in messages)
    if delimiter == "pipe":
        text = text.replace(SOH, "|")
    return text.encode("ascii")
