"""The demo security master (demo.md §5, §5.1) and the fixture parameters of every demo symbol.

One table drives the seed (security rows), the fixture provider's profiles and the fixture price
generator (final close = the demo entry price of demo.md §3; market and style loadings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Final

# Latent style factors of the fixture market: growth-minus-value, momentum, quality, size, low volatility.
STYLE_KEYS: Final = ("gv", "mom", "qual", "size", "lowvol")


@dataclass(frozen=True)
class DemoSecurity:
    """A listed demo security, its profile and its fixture loadings."""

    symbol: str
    name: str
    security_type: str
    sector: str
    industry: str
    country: str
    exchange: str | None
    close: str  # fixture final close (demo.md §7), exact decimal text
    beta: float  # loading on the fixture market return
    idio: float  # daily idiosyncratic volatility (fraction)
    styles: dict[str, float] = field(default_factory=dict)
    rate: float = 0.0  # return per 1.00 change of the 10-year yield (duration-like, negative for bonds)
    volume: float | None = 1.0e6  # typical daily volume; None for funds and indices
    dividend_yield: float | None = 0.0
    market_cap_bn: float | None = None


def _s(*args: object, **kw: object) -> DemoSecurity:
    return DemoSecurity(*args, **kw)  # type: ignore[arg-type]


TECH, COMM, DISC, FIN, HC, STAPLES, IND, ENERGY, FUND = (
    "Technology",
    "Communication Services",
    "Consumer Discretionary",
    "Financial Services",
    "Healthcare",
    "Consumer Staples",
    "Industrials",
    "Energy",
    "ETF/Fund",
)

_SECURITIES: tuple[DemoSecurity, ...] = (
    # Stocks (24).
    _s("AAPL", "Apple Inc.", "stock", TECH, "Consumer Electronics", "US", "NASDAQ", "225.00", 1.15, 0.012,
       {"gv": 0.4, "mom": 0.2, "qual": 0.3}, volume=5.5e7, dividend_yield=0.0045, market_cap_bn=3400),
    _s("MSFT", "Microsoft Corp.", "stock", TECH, "Software - Infrastructure", "US", "NASDAQ", "420.00", 1.10, 0.011,
       {"gv": 0.4, "qual": 0.4}, volume=2.2e7, dividend_yield=0.0075, market_cap_bn=3100),
    _s("GOOGL", "Alphabet Inc. (Class A)", "stock", COMM, "Internet Content & Information", "US", "NASDAQ",
       "160.00", 1.15, 0.014, {"gv": 0.35, "mom": 0.1}, volume=2.8e7, dividend_yield=0.0045, market_cap_bn=2100),
    _s("AMZN", "Amazon.com Inc.", "stock", DISC, "Internet Retail", "US", "NASDAQ", "170.00", 1.25, 0.016,
       {"gv": 0.5, "mom": 0.2}, volume=4.5e7, dividend_yield=0.0, market_cap_bn=2000),
    _s("NVDA", "NVIDIA Corp.", "stock", TECH, "Semiconductors", "US", "NASDAQ", "700.00", 1.35, 0.024,
       {"gv": 0.7, "mom": 0.8}, volume=4.0e7, dividend_yield=0.0003, market_cap_bn=1750),
    _s("META", "Meta Platforms Inc.", "stock", COMM, "Internet Content & Information", "US", "NASDAQ", "530.00",
       1.30, 0.019, {"gv": 0.5, "mom": 0.4}, volume=1.5e7, dividend_yield=0.0035, market_cap_bn=1340),
    _s("TSLA", "Tesla Inc.", "stock", DISC, "Auto Manufacturers", "US", "NASDAQ", "255.00", 1.35, 0.028,
       {"gv": 0.8, "mom": 0.3}, volume=9.0e7, dividend_yield=0.0, market_cap_bn=810),
    _s("AMD", "Advanced Micro Devices Inc.", "stock", TECH, "Semiconductors", "US", "NASDAQ", "162.00", 1.35, 0.024,
       {"gv": 0.6, "mom": 0.5}, volume=5.0e7, dividend_yield=0.0, market_cap_bn=262),
    _s("JPM", "JPMorgan Chase & Co.", "stock", FIN, "Banks - Diversified", "US", "NYSE", "170.00", 1.05, 0.011,
       {"gv": -0.4, "qual": 0.1}, volume=9.0e6, dividend_yield=0.021, market_cap_bn=490),
    _s("BRK-B", "Berkshire Hathaway Inc. (Class B)", "stock", FIN, "Insurance - Diversified", "US", "NYSE",
       "440.00", 0.90, 0.008, {"gv": -0.4, "qual": 0.4, "lowvol": 0.3}, volume=3.8e6, dividend_yield=0.0,
       market_cap_bn=950),
    _s("V", "Visa Inc. (Class A)", "stock", FIN, "Credit Services", "US", "NYSE", "268.00", 1.00, 0.010,
       {"gv": 0.1, "qual": 0.5}, volume=6.5e6, dividend_yield=0.007, market_cap_bn=540),
    _s("C", "Citigroup Inc.", "stock", FIN, "Banks - Diversified", "US", "NYSE", "55.00", 1.20, 0.015,
       {"gv": -0.6, "size": 0.2}, volume=1.5e7, dividend_yield=0.030, market_cap_bn=105),
    _s("JNJ", "Johnson & Johnson", "stock", HC, "Drug Manufacturers - General", "US", "NYSE", "160.00", 0.90, 0.009,
       {"gv": -0.3, "lowvol": 0.6, "qual": 0.3}, volume=7.0e6, dividend_yield=0.031, market_cap_bn=385),
    _s("UNH", "UnitedHealth Group Inc.", "stock", HC, "Healthcare Plans", "US", "NYSE", "545.00", 0.90, 0.014,
       {"gv": -0.1, "lowvol": 0.3, "qual": 0.2}, volume=3.5e6, dividend_yield=0.015, market_cap_bn=500),
    _s("HD", "The Home Depot Inc.", "stock", DISC, "Home Improvement Retail", "US", "NYSE", "350.00", 1.05, 0.011,
       {"gv": -0.1, "qual": 0.3}, volume=3.5e6, dividend_yield=0.024, market_cap_bn=350),
    _s("PG", "Procter & Gamble Co.", "stock", STAPLES, "Household & Personal Products", "US", "NYSE", "165.00",
       0.90, 0.008, {"gv": -0.3, "lowvol": 0.7}, volume=6.5e6, dividend_yield=0.025, market_cap_bn=390),
    _s("GE", "General Electric (GE Aerospace)", "stock", IND, "Specialty Industrial Machinery", "US", "NYSE",
       "140.00", 1.20, 0.016, {"gv": -0.3, "mom": 0.4}, volume=5.5e6, dividend_yield=0.005, market_cap_bn=152),
    _s("XOM", "Exxon Mobil Corp.", "stock", ENERGY, "Oil & Gas Integrated", "US", "NYSE", "110.00", 0.95, 0.014,
       {"gv": -0.7}, volume=1.6e7, dividend_yield=0.034, market_cap_bn=440),
    _s("F", "Ford Motor Co.", "stock", DISC, "Auto Manufacturers", "US", "NYSE", "12.00", 1.25, 0.018,
       {"gv": -0.5, "size": 0.3}, volume=5.0e7, dividend_yield=0.055, market_cap_bn=48),
    _s("NFLX", "Netflix Inc.", "stock", COMM, "Entertainment", "US", "NASDAQ", "490.00", 1.25, 0.020,
       {"gv": 0.6, "mom": 0.3}, volume=4.0e6, dividend_yield=0.0, market_cap_bn=210),
    _s("SHOP", "Shopify Inc.", "stock", TECH, "Software - Application", "CA", "NYSE", "195.00", 1.35, 0.026,
       {"gv": 0.9, "size": 0.3}, volume=8.0e6, dividend_yield=0.0, market_cap_bn=250),
    _s("ZM", "Zoom Communications Inc.", "stock", TECH, "Software - Application", "US", "NASDAQ", "70.00", 1.20,
       0.024, {"gv": 0.7, "size": 0.4}, volume=3.0e6, dividend_yield=0.0, market_cap_bn=21),
    _s("PTON", "Peloton Interactive Inc.", "stock", DISC, "Leisure", "US", "NASDAQ", "40.00", 1.25, 0.030,
       {"gv": 0.6, "size": 0.8}, volume=1.2e7, dividend_yield=0.0, market_cap_bn=3),
    _s("ROKU", "Roku Inc.", "stock", COMM, "Entertainment", "US", "NASDAQ", "60.00", 1.30, 0.028,
       {"gv": 0.7, "size": 0.5}, volume=4.0e6, dividend_yield=0.0, market_cap_bn=9),
    # ETFs and the DJP ETN (7).
    _s("SPY", "SPDR S&P 500 ETF Trust", "etf", FUND, "Large Blend", "US", "ARCA", "530.00", 1.00, 0.0005,
       volume=7.0e7, dividend_yield=0.012),
    _s("QQQ", "Invesco QQQ Trust", "etf", FUND, "Large Growth", "US", "NASDAQ", "420.00", 1.15, 0.002,
       {"gv": 0.6, "mom": 0.2}, volume=4.0e7, dividend_yield=0.006),
    _s("VTI", "Vanguard Total Stock Market ETF", "etf", FUND, "Large Blend", "US", "ARCA", "250.00", 1.02, 0.0008,
       {"size": 0.15}, volume=3.5e6, dividend_yield=0.013),
    _s("BND", "Vanguard Total Bond Market ETF", "etf", FUND, "Intermediate Core Bond", "US", "NASDAQ", "77.00",
       0.02, 0.0012, rate=-6.0, volume=6.5e6, dividend_yield=0.037),
    _s("VNQ", "Vanguard Real Estate ETF", "etf", FUND, "Real Estate", "US", "ARCA", "95.00", 1.00, 0.009,
       {"gv": -0.2, "lowvol": 0.2}, rate=-4.0, volume=4.0e6, dividend_yield=0.038),
    _s("GLD", "SPDR Gold Shares", "etf", FUND, "Commodities Precious Metals", "US", "ARCA", "219.23", 0.05, 0.009,
       volume=8.0e6, dividend_yield=0.0),
    _s("DJP", "iPath Bloomberg Commodity Index TR ETN", "etf", FUND, "Commodities Broad Basket", "US", "ARCA",
       "30.00", 0.30, 0.011, volume=1.5e5, dividend_yield=0.0),
    # Mutual funds (4): NAV only, no volume.
    _s("FXNAX", "Fidelity U.S. Bond Index Fund", "mutual_fund", FUND, "Large Growth", "US", None, "20.00", 0.02,
       0.0010, rate=-5.5, volume=None, dividend_yield=0.033),
    _s("FCNTX", "Fidelity Contrafund", "mutual_fund", FUND, "Large Blend", "US", None, "15.00", 1.05, 0.004,
       {"gv": 0.4, "mom": 0.2}, volume=None, dividend_yield=0.0005),
    _s("FMAGX", "Fidelity Magellan Fund", "mutual_fund", FUND, "Large Blend", "US", None, "15.00", 1.05, 0.005,
       {"gv": 0.3}, volume=None, dividend_yield=0.002),
    _s("VTIAX", "Vanguard Total International Stock Index Fund (Admiral)", "mutual_fund", FUND,
       "Foreign Large Blend", "US", None, "30.00", 0.90, 0.006, volume=None, dividend_yield=0.030),
    # Factor ETFs not listed above (demo.md §5.1); closes are fixture choices.
    _s("MTUM", "iShares MSCI USA Momentum Factor ETF", "etf", FUND, "Large Growth", "US", "CBOE", "210.00", 1.05,
       0.002, {"gv": 0.3, "mom": 1.0}, volume=1.0e6, dividend_yield=0.008),
    _s("VTV", "Vanguard Value ETF", "etf", FUND, "Large Value", "US", "ARCA", "175.00", 0.90, 0.0015,
       {"gv": -0.5}, volume=2.5e6, dividend_yield=0.022),
    _s("VUG", "Vanguard Growth ETF", "etf", FUND, "Large Growth", "US", "ARCA", "400.00", 1.10, 0.0015,
       {"gv": 0.5}, volume=1.0e6, dividend_yield=0.005),
    _s("QUAL", "iShares MSCI USA Quality Factor ETF", "etf", FUND, "Large Blend", "US", "CBOE", "180.00", 0.95,
       0.0015, {"qual": 1.0, "gv": 0.1}, volume=1.5e6, dividend_yield=0.011),
    _s("IWM", "iShares Russell 2000 ETF", "etf", FUND, "Small Blend", "US", "ARCA", "225.00", 1.15, 0.002,
       {"size": 1.0}, volume=3.0e7, dividend_yield=0.011),
    _s("USMV", "iShares MSCI USA Min Vol Factor ETF", "etf", FUND, "Large Blend", "US", "CBOE", "92.00", 0.80,
       0.0015, {"lowvol": 1.0}, volume=2.0e6, dividend_yield=0.015),
)  # fmt: skip

LISTED: Final = MappingProxyType({s.symbol: s for s in _SECURITIES})

# The Cboe Volatility Index: an option underlying only (demo.md §5); fixture close 18.50.
VIX = DemoSecurity(
    "VIX", "Cboe Volatility Index", "index", "Index", "Volatility Index", "US", "CBOE", "18.50", -5.0, 0.04,
    volume=None, dividend_yield=None,
)  # fmt: skip


@dataclass(frozen=True)
class DemoOption:
    """A rolled demo option contract (demo.md §3.3.3, §4) and its fixture parameters."""

    symbol: str
    underlying: str
    option_type: str
    strike: str
    expiration: date
    close: str
    elasticity: float  # option return per underlying return (sign: calls +, puts -)
    base_iv: float


OPTIONS: Final = (
    DemoOption("SPY270917C00460000", "SPY", "C", "460", date(2027, 9, 17), "7.50", 6.0, 0.18),
    DemoOption("QQQ270820C00420000", "QQQ", "C", "420", date(2027, 8, 20), "7.25", 5.0, 0.22),
    DemoOption("VIX270721C00025000", "VIX", "C", "25", date(2027, 7, 21), "2.75", 1.5, 0.85),
    DemoOption("NVDA271015C00800000", "NVDA", "C", "800", date(2027, 10, 15), "15.00", 3.0, 0.50),
    DemoOption("AAPL270820P00200000", "AAPL", "P", "200", date(2027, 8, 20), "4.25", -4.0, 0.27),
    DemoOption("MSFT270917P00380000", "MSFT", "P", "380", date(2027, 9, 17), "4.75", -4.0, 0.26),
    DemoOption("TSLA270820C00300000", "TSLA", "C", "300", date(2027, 8, 20), "8.50", 2.5, 0.58),
    DemoOption("META270917P00450000", "META", "P", "450", date(2027, 9, 17), "7.25", -3.5, 0.36),
)
OPTION_BY_SYMBOL: Final = MappingProxyType({o.symbol: o for o in OPTIONS})

FACTOR_ETFS: Final = ("SPY", "MTUM", "VTV", "VUG", "QUAL", "IWM", "USMV")
DEMO_LISTED_SYMBOLS: Final = tuple(s for s in LISTED if s not in ("MTUM", "VTV", "VUG", "QUAL", "IWM", "USMV"))

# FRED constant-maturity series and their fixture final values (fractions).
RATE_FINAL: Final = MappingProxyType(
    {"DGS1MO": 0.0440, "DGS3MO": 0.0435, "DGS6MO": 0.0428, "DGS1": 0.0415, "DGS2": 0.0405, "DGS10": 0.0430}
)

ALIASES: Final = MappingProxyType({"BRK.B": "BRK-B"})


def market_cap(sec: DemoSecurity) -> Decimal | None:
    """Market capitalisation in USD (stocks only)."""
    return None if sec.market_cap_bn is None else Decimal(int(sec.market_cap_bn * 1_000_000_000))
