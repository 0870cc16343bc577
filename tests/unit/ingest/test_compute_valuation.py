"""calculations.md §10 Example 1 (valuation and daily P&L) and the §1.2/§1.5 hierarchy, on compute.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np

from ingest import compute
from ingest.compute import NA, ValuationInput, value_positions

T0 = date(2026, 11, 24)
PREV = date(2026, 11, 23)
NAT = np.datetime64("NaT", "D")


def e4(values: list[float | None]) -> np.ndarray:
    return np.array([NA if v is None else round(v * 10_000) for v in values], dtype=np.int64)


def days(values: list[date | None]) -> np.ndarray:
    return np.array([NAT if v is None else np.datetime64(v, "D") for v in values], dtype="datetime64[D]")


def make_input(
    *,
    qty: list[float],
    mult: list[int],
    entry: list[float],
    close_t: list[float | None],
    close_p: list[float | None],
    is_call: list[bool] | None = None,
    strike: list[float] | None = None,
    expiry: list[date | None] | None = None,
    entry_date: list[date] | None = None,
    close_t_date: list[date | None] | None = None,
    close_p_date: list[date | None] | None = None,
    model_t: list[float] | None = None,
    model_p: list[float] | None = None,
    underlying: list[float | None] | None = None,
    delta: list[float] | None = None,
) -> ValuationInput:
    n = len(qty)
    is_option = np.array([m == 100 for m in mult])
    cost = [round(q * m * e * 100) for q, m, e in zip(qty, mult, entry, strict=True)]
    return ValuationInput(
        as_of=T0,
        prev_date=PREV,
        quantity=e4(qty),  # type: ignore[arg-type]
        multiplier=np.array(mult, dtype=np.int64),
        is_option=is_option,
        is_call=np.array(is_call or [False] * n),
        strike=e4(strike or [0.0] * n),  # type: ignore[arg-type]
        expiry=days(expiry or [date(2027, 12, 17) if o else None for o in is_option]),
        entry_price=e4(entry),  # type: ignore[arg-type]
        entry_date=days(entry_date or [date(2024, 1, 2)] * n),  # type: ignore[arg-type]
        cost_basis=np.array(cost, dtype=np.int64),
        close_t=e4(close_t),
        close_t_date=days(close_t_date or [T0 if c is not None else None for c in close_t]),
        close_p=e4(close_p),
        close_p_date=days(close_p_date or [PREV if c is not None else None for c in close_p]),
        model_t=np.array(model_t or [np.nan] * n, dtype=np.float64),
        model_p=np.array(model_p or [np.nan] * n, dtype=np.float64),
        underlying_t=e4(underlying or [None] * n),
        delta_ps=np.array(delta or [np.nan] * n, dtype=np.float64),
    )


def cents(values: np.ndarray) -> list[float | None]:
    return [None if v == NA else v / 100 for v in values.tolist()]


def example_1() -> ValuationInput:
    return make_input(
        qty=[200, -150, 5, -3],
        mult=[1, 1, 100, 100],
        entry=[150.00, 410.00, 4.20, 2.80],
        close_p=[188.40, 402.10, 5.10, 2.40],
        close_t=[191.25, 398.50, 6.35, 1.95],
        is_call=[False, False, True, False],
        strike=[0, 0, 50, 45],
        underlying=[None, None, 52.0, 52.0],
        delta=[np.nan, np.nan, 0.6, -0.3],
    )


def test_example_1_market_values_cost_unrealized_and_daily_pnl() -> None:
    result = value_positions(example_1())
    assert cents(result.market_value) == [38250.00, -59775.00, 3175.00, -585.00]
    assert cents(result.unrealized_pnl) == [8250.00, 1725.00, 1075.00, 255.00]
    assert cents(result.daily_pnl) == [570.00, 540.00, 625.00, 135.00]
    assert sum(result.market_value.tolist()) == -1_893_500
    assert sum(result.unrealized_pnl.tolist()) == 1_130_500
    assert sum(result.daily_pnl.tolist()) == 187_000
    assert result.price_source.tolist() == [compute.SOURCE_CLOSE] * 4


def test_example_1_position_daily_returns_on_capital() -> None:
    inp = example_1()
    result = value_positions(inp)
    prev_mv = np.abs(inp.quantity * inp.multiplier * inp.close_p) / 1e8
    returns = (result.daily_pnl / 100) / prev_mv
    np.testing.assert_allclose(returns, [0.015127, 0.0089530, 0.24510, 0.18750], rtol=1e-4)


def test_position_opened_on_t0_is_measured_from_its_entry_price() -> None:
    inp = make_input(qty=[100], mult=[1], entry=[50.0], close_t=[52.5], close_p=[48.0], entry_date=[T0])
    assert cents(value_positions(inp).daily_pnl) == [250.00]


def test_entry_between_closes_counts_as_opened_on_t0() -> None:
    monday, friday, sunday = date(2026, 11, 23), date(2026, 11, 20), date(2026, 11, 22)
    inp = make_input(qty=[10], mult=[1], entry=[50.0], close_t=[52.0], close_p=[51.0], entry_date=[sunday])
    inp = replace(
        inp,
        as_of=monday,
        prev_date=friday,
        close_t_date=days([monday]),  # type: ignore[arg-type]
        close_p_date=days([friday]),  # type: ignore[arg-type]
    )
    assert cents(value_positions(inp).daily_pnl) == [20.00]


def test_missing_previous_price_gives_null_daily_pnl_with_reason_not_zero() -> None:
    result = value_positions(make_input(qty=[100], mult=[1], entry=[50.0], close_t=[52.0], close_p=[None]))
    assert cents(result.daily_pnl) == [None]
    assert compute.flag_names(int(result.flags[0])) == ["prev_price_missing"]
    assert cents(result.market_value) == [5200.00]


def test_stale_close_is_used_and_flagged_with_its_own_date() -> None:
    old = date(2026, 11, 19)
    inp = make_input(qty=[-10], mult=[1], entry=[100.0], close_t=[90.0], close_p=[90.0], close_t_date=[old])
    result = value_positions(inp)
    assert result.price_source.tolist() == [compute.SOURCE_STALE]
    assert result.price_date.tolist() == [old]
    assert cents(result.market_value) == [-900.00]
    assert "price_stale" in compute.flag_names(int(result.flags[0]))


def test_option_without_close_uses_model_price_then_stays_unpriced_without_one() -> None:
    inp = make_input(
        qty=[2, 2],
        mult=[100, 100],
        entry=[3.0, 3.0],
        close_t=[None, None],
        close_p=[3.5, 3.5],
        is_call=[True, True],
        strike=[100, 100],
        underlying=[105.0, 105.0],
        model_t=[6.12345, np.nan],
        delta=[0.55, 0.55],
    )
    result = value_positions(inp)
    assert result.price_source.tolist() == [compute.SOURCE_MODEL, compute.SOURCE_NONE]
    assert result.last_price.tolist() == [61234, NA]  # rounded to 4 dp before valuing
    assert cents(result.market_value) == [1224.68, None]
    assert cents(result.notional) == [21000.00, None]
    assert cents(result.dollar_exposure) == [11550.00, None]
    assert cents(result.daily_pnl) == [524.68, None]
    assert "unpriced" in compute.flag_names(int(result.flags[1]))


def test_expired_option_is_valued_at_intrinsic_with_zero_delta() -> None:
    inp = make_input(
        qty=[1, -1],
        mult=[100, 100],
        entry=[2.0, 2.0],
        close_t=[9.0, 9.0],
        close_p=[3.0, 3.0],
        is_call=[True, False],
        strike=[100, 100],
        expiry=[date(2026, 11, 20), date(2026, 11, 20)],
        underlying=[104.5, 104.5],
        delta=[np.nan, np.nan],
    )
    result = value_positions(inp)
    assert result.last_price.tolist() == [45000, 0]
    assert cents(result.market_value) == [450.00, 0.00]
    assert cents(result.dollar_exposure) == [0.00, 0.00]
    assert all("expired_unsettled" in compute.flag_names(int(f)) for f in result.flags)


def test_option_without_delta_has_null_exposure_but_keeps_value_and_notional() -> None:
    inp = make_input(
        qty=[-5],
        mult=[100],
        entry=[1.0],
        close_t=[1.5],
        close_p=[1.4],
        is_call=[False],
        strike=[40],
        underlying=[42.0],
    )
    result = value_positions(inp)
    assert cents(result.market_value) == [-750.00]
    assert cents(result.notional) == [21000.00]
    assert cents(result.dollar_exposure) == [None]
    assert compute.flag_names(int(result.flags[0])) == ["no_delta"]


def test_money_rounds_half_even_exactly_at_half_cents() -> None:
    inp = make_input(
        qty=[1, 3, 1],
        mult=[1, 1, 1],
        entry=[1.0, 1.0, 1.0],
        close_t=[10.015, 10.005, 10.025],
        close_p=[10.0, 10.0, 10.0],
    )
    assert cents(value_positions(inp).market_value) == [10.02, 30.02, 10.02]


def test_half_even_division_handles_negative_ties() -> None:
    x = np.array([5, 15, -5, -15, 25, -25, 7, -7], dtype=np.int64)
    assert compute.div_half_even(x, 10).tolist() == [0, 2, 0, -2, 2, -2, 1, -1]


def test_previous_trading_day_skips_weekends_and_holidays_from_the_calendar() -> None:
    # Thanksgiving 2026-11-26 is a holiday: prev(Fri 11-27) is Wed 11-25.
    days_before = [date(2026, 11, d) for d in (16, 17, 18, 19, 20, 23, 24, 25)]
    cal = compute.trading_calendar(days_before, date(2026, 11, 27), 5)
    assert cal.prev_date == date(2026, 11, 25)
    assert cal.window_t == date(2026, 11, 19)  # five trading days back, inclusive
    assert cal.window_p == date(2026, 11, 18)


def test_calendar_falls_back_to_business_days_when_not_seeded() -> None:
    cal = compute.trading_calendar([], date(2026, 11, 23), 5)
    assert cal.prev_date == date(2026, 11, 20)
    assert cal.window_t == date(2026, 11, 16)
    assert cal.window_p == date(2026, 11, 13)
