"""Wire formats of api.md §2.7: money and prices as exact decimal strings, timestamps in UTC `Z`."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
PRICE_QUANTUM = Decimal("0.0001")

Number = Decimal | float | int


def to_decimal(value: Number | str | None) -> Decimal | None:
    """Decimal from a float/int/str; floats go through repr so 0.1 stays 0.1. NaN/inf -> None."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def round_money(value: Number | str | None) -> Decimal | None:
    """Round to cents, half-even (storage and API rounding of USD amounts)."""
    d = to_decimal(value)
    return None if d is None else d.quantize(CENT, rounding=ROUND_HALF_EVEN)


def money(value: Number | str | None) -> str | None:
    """USD amount as a 2-dp string (`"-151234.20"`); None stays None."""
    d = round_money(value)
    if d is None:
        return None
    if d == 0:
        d = abs(d)  # never "-0.00"
    return f"{d:.2f}"


def price(value: Number | str | None) -> str | None:
    """Per-share price or premium as a 4-dp string (`"187.2500"`)."""
    d = to_decimal(value)
    if d is None:
        return None
    d = d.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)
    return f"{abs(d) if d == 0 else d:.4f}"


def qty(value: Number | str | None) -> str | None:
    """Signed quantity with up to 4 dp and no trailing zeros (`"-150"`, `"1200.5"`)."""
    d = to_decimal(value)
    if d is None:
        return None
    d = d.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN).normalize()
    if d == 0:
        return "0"
    text = f"{d:f}"
    return text


def stat(value: float | Decimal | None, digits: int = 6) -> float | None:
    """A statistic (beta, Greek, ratio) as a JSON number rounded to `digits` decimals; NaN -> None."""
    if value is None:
        return None
    f = float(value)
    if not math.isfinite(f):
        return None
    return round(f, digits)


def ratio(numerator: Number | None, denominator: Number | None, digits: int = 6) -> float | None:
    """numerator / denominator as a fraction; None when undefined (denominator <= 0 or missing)."""
    if numerator is None or denominator is None:
        return None
    den = float(denominator)
    if den <= 0 or not math.isfinite(den):
        return None
    return stat(float(numerator) / den, digits)


def nan_as_null(values: list[float]) -> list[float | None]:
    """NaN (a missing value in float arrays) as None: a NULL element of a PostgreSQL float8[]."""
    return [None if v != v else v for v in values]


def iso_datetime(value: datetime | None) -> str | None:
    """UTC ISO-8601 with a trailing Z, second precision."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def iso_date(value: date | None) -> str | None:
    """ISO calendar date."""
    return None if value is None else value.isoformat()


def utcnow() -> datetime:
    """Timezone-aware now in UTC (I/O layer only; compute code receives dates explicitly)."""
    return datetime.now(UTC)


def json_default(value: Any) -> Any:
    """orjson fallback: Decimals as strings (never binary floats), sets as lists."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
