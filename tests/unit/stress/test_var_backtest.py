"""VaR backtest known answers: exceptions of realised P&L against the previous day's VaR and
Kupiec's POF test (LR and χ²(1) p-value computed independently, to 6 significant digits)."""

from __future__ import annotations

import numpy as np
import pytest

from stress.compute.backtest import kupiec_pof, var_backtest


def realised_with_exceptions(t: int, var: float, exception_days: list[int]) -> np.ndarray:
    """Daily P&L: small gains and losses inside the VaR, and losses beyond it on `exception_days`."""
    pnl = np.where(np.arange(t) % 3 == 0, -0.6 * var, 0.3 * var)
    pnl[exception_days] = -1.25 * var
    return pnl


@pytest.mark.parametrize(
    ("exceptions", "observations", "alpha", "lr", "p_value", "result"),
    [
        # 250 days at 99 %: 8 exceptions is the textbook rejection (Basel "yellow zone"), 4 is accepted.
        (8, 250, 0.99, 7.733551, 0.00542041, "reject"),
        (4, 250, 0.99, 0.769138, 0.380484, "accept"),
        (20, 250, 0.95, 4.03952, 0.0444464, "reject"),
        (6, 252, 0.95, 4.477057, 0.0343528, "reject"),
    ],
)
def test_kupiec_pof_known_answers(
    exceptions: int, observations: int, alpha: float, lr: float, p_value: float, result: str
) -> None:
    got_lr, got_p = kupiec_pof(exceptions, observations, alpha)
    assert got_lr == pytest.approx(lr, rel=1e-6)
    assert got_p == pytest.approx(p_value, rel=1e-5)
    assert (got_p < 0.05) == (result == "reject")


def test_backtest_counts_exceptions_of_realised_pnl_and_tests_them() -> None:
    t = 250
    var99 = np.full(t, 10_000.0)
    var95 = np.full(t, 7_000.0)
    days99 = [10, 40, 77, 101, 150, 180, 222, 249]
    pnl = realised_with_exceptions(t, 10_000.0, days99)
    bt = var_backtest(var95, var99, pnl)
    level95, level99 = bt.levels
    # At 99 %: the 8 losses of 12,500 beat the VaR of 10,000; the 6,000 losses do not.
    assert (level99.exceptions, level99.observations) == (8, 250)
    assert level99.exception_rate == pytest.approx(0.032) and level99.expected_exceptions == pytest.approx(2.5)
    assert level99.kupiec_lr == pytest.approx(7.733551, rel=1e-6)
    assert level99.p_value == pytest.approx(0.00542041, rel=1e-5) and level99.result == "reject"
    # At 95 % (VaR 7,000) the same 8 days are the only exceptions: 8 of 250 vs 12.5 expected.
    assert level95.exceptions == 8 and level95.result == "accept"
    assert level95.kupiec_lr == pytest.approx(kupiec_pof(8, 250, 0.95)[0])
    assert (bt.start_index, bt.end_index, bt.status) == (0, 249, "ok")


def test_backtest_uses_only_the_last_252_days_with_both_a_forecast_and_a_pnl() -> None:
    t = 300
    var = np.full(t, 1_000.0)
    var[:20] = np.nan  # no stored VaR in the first days
    pnl = realised_with_exceptions(t, 1_000.0, [5, 30, 299])
    pnl[100] = np.nan  # no snapshot that day
    bt = var_backtest(var, var, pnl)
    level = bt.levels[1]
    # 279 usable days, the last 252 of them: day 30 falls outside, day 5 has no forecast.
    assert level.observations == 252 and level.exceptions == 1
    assert bt.end_index == 299 and bt.start_index == 299 - 252
