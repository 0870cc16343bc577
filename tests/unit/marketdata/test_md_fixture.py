"""The offline fixture market (demo.md §7): exact closes, length, determinism, plausible loadings."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date, timedelta

import numpy as np
import pytest

from marketdata import calendar
from marketdata.fixture import FIXTURE_HISTORY_DAYS, bond_market_holidays, generate_market, market_for

END = date(2026, 11, 24)

# demo.md §3 entry prices (= fixture closes, META 530, GLD 219.23) and §7 VIX / option closes.
EXPECTED_CLOSES = {
    "AAPL": 225.00, "MSFT": 420.00, "AMZN": 170.00, "GOOGL": 160.00, "TSLA": 255.00, "NVDA": 700.00,
    "JNJ": 160.00, "JPM": 170.00, "V": 268.00, "FXNAX": 20.00, "FCNTX": 15.00, "FMAGX": 15.00,
    "VTIAX": 30.00, "VTI": 250.00, "BND": 77.00, "VNQ": 95.00, "SPY": 530.00, "QQQ": 420.00,
    "BRK-B": 440.00, "META": 530.00, "UNH": 545.00, "HD": 350.00, "PG": 165.00, "GLD": 219.23,
    "DJP": 30.00, "AMD": 162.00, "NFLX": 490.00, "SHOP": 195.00, "ZM": 70.00, "PTON": 40.00,
    "ROKU": 60.00, "XOM": 110.00, "F": 12.00, "GE": 140.00, "C": 55.00,
    "VIX": 18.50,
    "SPY270917C00460000": 7.50, "QQQ270820C00420000": 7.25, "VIX270721C00025000": 2.75,
    "NVDA271015C00800000": 15.00, "AAPL270820P00200000": 4.25, "MSFT270917P00380000": 4.75,
    "TSLA270820C00300000": 8.50, "META270917P00450000": 7.25,
}  # fmt: skip
STOCKS = [
    "AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "AMD", "JPM", "BRK-B", "V", "C", "JNJ", "UNH", "HD",
    "PG", "GE", "XOM", "F", "NFLX", "SHOP", "ZM", "PTON", "ROKU",
]  # fmt: skip
EQUITY_FUNDS = ["QQQ", "VTI", "VNQ", "FCNTX", "FMAGX", "VTIAX"]
STYLE_ETFS = ["MTUM", "VTV", "VUG", "QUAL", "IWM", "USMV"]


@pytest.fixture(scope="module")
def fm():
    return market_for(END)


def _returns(close: np.ndarray) -> np.ndarray:
    return close[1:] / close[:-1] - 1.0


def _beta(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1))


def _digest(market) -> str:
    h = hashlib.sha256()
    h.update(",".join(d.isoformat() for d in market.dates).encode())
    for symbol in sorted(market.series):
        s = market.series[symbol]
        for arr in (s.open, s.high, s.low, s.close, s.volume, s.implied_volatility):
            h.update(b"-" if arr is None else np.ascontiguousarray(arr).tobytes())
    for series_id in sorted(market.rates):
        h.update(np.ascontiguousarray(market.rates[series_id]).tobytes())
    return h.hexdigest()


def test_two_generations_are_byte_identical() -> None:
    assert _digest(generate_market(END)) == _digest(generate_market(END))


def test_generation_does_not_depend_on_python_hash_randomisation(fm) -> None:
    code = (
        "from datetime import date; import sys; sys.path.insert(0, 'tests/unit/marketdata');"
        "from test_md_fixture import _digest; from marketdata.fixture import generate_market;"
        "print(_digest(generate_market(date(2026, 11, 24))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=os.getcwd()
    )
    assert out.stdout.strip() == _digest(fm)


def test_every_demo_symbol_and_option_ends_at_its_exact_demo_close(fm) -> None:
    for symbol, expected in EXPECTED_CLOSES.items():
        assert fm.series[symbol].close[-1] == pytest.approx(expected, abs=1e-9), symbol
        assert f"{fm.series[symbol].close[-1]:.2f}" == f"{expected:.2f}"


def test_factor_etfs_have_plausible_closes(fm) -> None:
    for symbol in STYLE_ETFS:
        assert 50 < fm.series[symbol].close[-1] < 500


def test_history_is_at_least_three_years_of_trading_days_ending_on_the_end_date(fm) -> None:
    assert len(fm.dates) == FIXTURE_HISTORY_DAYS >= 756
    assert fm.dates[-1] == END
    assert all(calendar.is_trading_day(d) for d in fm.dates[:: max(1, len(fm.dates) // 50)])
    assert fm.dates == tuple(calendar.trading_days(fm.dates[0], END))
    for s in fm.series.values():
        assert len(s.close) == len(fm.dates)


def test_bars_are_consistent_and_positive(fm) -> None:
    for symbol, s in fm.series.items():
        assert (s.close > 0).all(), symbol
        if s.high is not None:
            assert (s.high >= np.maximum(s.open, s.close) - 1e-9).all(), symbol
            assert (s.low <= np.minimum(s.open, s.close) + 1e-9).all(), symbol
            assert (s.low > 0).all(), symbol
    assert fm.series["FXNAX"].volume is None and fm.series["VIX"].volume is None
    assert fm.series["AAPL"].volume is not None and (fm.series["AAPL"].volume > 0).all()


def test_market_loadings_are_plausible(fm) -> None:
    spy = _returns(fm.series["SPY"].close)
    for symbol in STOCKS + EQUITY_FUNDS:
        beta = _beta(_returns(fm.series[symbol].close), spy)
        assert 0.8 <= beta <= 1.5, (symbol, beta)
    for symbol in ("BND", "GLD", "FXNAX"):
        assert abs(_beta(_returns(fm.series[symbol].close), spy)) < 0.3, symbol
    assert _beta(_returns(fm.series["VIX"].close), spy) < -1.0


def test_style_etfs_load_on_the_market_and_keep_their_own_factor(fm) -> None:
    spy = _returns(fm.series["SPY"].close)
    residuals = {}
    for symbol in STYLE_ETFS:
        r = _returns(fm.series[symbol].close)
        b = _beta(r, spy)
        assert 0.75 <= b <= 1.25, (symbol, b)
        residuals[symbol] = r - b * spy
        # the orthogonalised factor keeps real variance (≥ 0.15 % a day) and is uncorrelated with the market
        assert residuals[symbol].std() > 0.0015, symbol
        assert abs(np.corrcoef(residuals[symbol], spy)[0, 1]) < 1e-8
    corr = np.corrcoef(np.array([residuals[s] for s in STYLE_ETFS]))
    # value and growth residuals are strongly negatively correlated, as in real data (calculations.md §4.3)
    assert corr[STYLE_ETFS.index("VTV"), STYLE_ETFS.index("VUG")] < -0.6
    assert np.linalg.cond(corr) < 100


def test_options_carry_a_plausible_vendor_implied_volatility(fm) -> None:
    expected_centre = {
        "SPY270917C00460000": 0.18, "QQQ270820C00420000": 0.22, "VIX270721C00025000": 0.85,
        "NVDA271015C00800000": 0.50, "AAPL270820P00200000": 0.27, "MSFT270917P00380000": 0.26,
        "TSLA270820C00300000": 0.58, "META270917P00450000": 0.36,
    }  # fmt: skip
    for symbol, centre in expected_centre.items():
        iv = fm.series[symbol].implied_volatility
        assert iv is not None and np.isfinite(iv).all()
        assert 0.5 * centre < float(np.median(iv)) < 1.6 * centre, symbol
        assert (iv >= 0.05).all() and (iv <= 3.0).all()


def test_rates_are_fractions_with_small_moves_and_gaps_only_on_bond_holidays(fm) -> None:
    closed = bond_market_holidays(fm.dates[0], END)
    expected_gaps = {d for d in fm.dates if d in closed}
    assert expected_gaps  # Columbus and Veterans days fall on NYSE sessions in the window
    for series_id in ("DGS1MO", "DGS3MO", "DGS6MO", "DGS1", "DGS2", "DGS10"):
        values = fm.rates[series_id]
        gaps = {fm.dates[i] for i in np.flatnonzero(np.isnan(values))}
        assert gaps == expected_gaps, series_id
        present = values[~np.isnan(values)]
        assert present.min() > 0.02 and present.max() < 0.07, series_id
        assert np.abs(np.diff(present)).max() < 0.003, series_id  # < 30 bp a day
        assert np.round(present, 4).tolist() == present.tolist()  # FRED 2-dp percent = 4-dp fraction
    assert 0.04 <= fm.rates["DGS10"][-1] <= 0.045


def test_bond_market_holidays_are_columbus_and_observed_veterans_day() -> None:
    days = bond_market_holidays(date(2023, 1, 1), date(2026, 12, 31))
    assert date(2026, 10, 12) in days and date(2026, 11, 11) in days
    assert date(2023, 11, 10) in days  # Veterans Day 2023 fell on a Saturday: observed Friday
    assert date(2023, 11, 11) not in days


def test_end_date_must_be_a_trading_day() -> None:
    with pytest.raises(ValueError, match="not an NYSE trading day"):
        generate_market(date(2026, 11, 26))


def test_a_different_end_date_moves_the_whole_series(fm) -> None:
    other = market_for(END - timedelta(days=7))
    assert other.dates[-1] == date(2026, 11, 17)
    assert other.series["SPY"].close[-1] == 530.0
