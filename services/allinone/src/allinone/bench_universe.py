"""A generated book for the cycle benchmark: N portfolios × M positions on K synthetic symbols.

Written straight into the tables with COPY (bench set-up, not a product path): stock securities
and ~300 trading days of prices whose returns load on the stored SPY series (betas 0.5–1.6) plus
noise, option contracts (30 % of positions) with a close and an implied volatility on the as-of
date, and portfolios owned by generated users. The daily cycle then computes everything else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import numpy as np

from common.db import asyncpg_dsn

HISTORY_DAYS = 300
SOURCE = "bench"


@dataclass(frozen=True)
class Universe:
    """What was generated."""

    portfolios: int
    positions: int
    stock_symbols: int
    option_contracts: int
    price_rows: int


def _stock_symbols(n: int) -> list[str]:
    # Valid stock tickers (letter + up to 5 alphanumerics) that no real feed or the fixture knows.
    return [f"Q{i:04d}" for i in range(n)]


def _occ(root: str, expiry: date, kind: str, strike: float) -> str:
    return f"{root}{expiry:%y%m%d}{kind}{round(strike * 1000):08d}"


async def generate(
    url: str,
    *,
    as_of: date,
    portfolios: int = 1000,
    positions_per_portfolio: int = 20,
    symbols: int = 2000,
    option_share: float = 0.30,
    seed: int = 11,
) -> Universe:
    """Insert the generated universe into a migrated database that already has the SPY history."""
    rng = np.random.default_rng(seed)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        days = [
            r["trading_date"]
            for r in await conn.fetch(
                "SELECT trading_date FROM marketdata.api_trading_day WHERE trading_date <= $1 "
                "ORDER BY trading_date DESC LIMIT $2",
                as_of,
                HISTORY_DAYS,
            )
        ][::-1]
        spy = {
            r["price_date"]: float(r["adj_close"] or r["close"])
            for r in await conn.fetch(
                "SELECT price_date, adj_close, close FROM marketdata.api_daily_price WHERE symbol = 'SPY' "
                "AND price_date = ANY($1::date[])",
                days,
            )
        }
        if len(spy) < len(days):
            raise RuntimeError("SPY history must be stored before generating the universe")
        spy_closes = np.array([spy[d] for d in days])
        market = np.diff(np.log(spy_closes))

        names = _stock_symbols(symbols)
        betas = rng.uniform(0.5, 1.6, symbols)
        noise = rng.normal(0.0, 0.012, (symbols, market.size))
        log_paths = np.cumsum(betas[:, None] * market[None, :] + noise, axis=1)
        finals = rng.uniform(20.0, 400.0, symbols)
        closes = finals[:, None] * np.exp(
            np.concatenate([np.zeros((symbols, 1)), log_paths], axis=1) - log_paths[:, -1:]
        )
        now = datetime.now(UTC)
        await conn.copy_records_to_table(
            "security",
            schema_name="marketdata",
            columns=[
                "symbol",
                "security_type",
                "name",
                "sector",
                "industry",
                "country",
                "exchange",
                "dividend_yield",
                "enrichment_status",
            ],
            records=[(s, "stock", f"Bench {s}", "Technology", "Software", "US", "NASDAQ", 0.0, "ok") for s in names],
        )
        price_rows = [
            (s, d, Decimal(f"{c:.4f}"), Decimal(f"{c:.4f}"), SOURCE, now)
            for s, row in zip(names, closes, strict=True)
            for d, c in zip(days, row, strict=True)
        ]
        await conn.copy_records_to_table(
            "daily_price",
            schema_name="marketdata",
            columns=["symbol", "price_date", "close", "adj_close", "source", "fetched_at"],
            records=price_rows,
        )

        # Option contracts: one expiry ~9 months out, strikes near the money, calls and puts.
        expiry = date(as_of.year + 1, 8, 20)
        n_options_total = round(portfolios * positions_per_portfolio * option_share)
        n_contracts = max(1, min(n_options_total, symbols // 2))
        underlying_idx = rng.choice(symbols, n_contracts, replace=False)
        kinds = rng.choice(["C", "P"], n_contracts)
        strikes = np.round(finals[underlying_idx] * rng.uniform(0.85, 1.15, n_contracts))
        contracts = [
            _occ(names[u], expiry, k, float(strike))
            for u, k, strike in zip(underlying_idx, kinds, strikes, strict=True)
        ]
        contract_prices = np.maximum(0.5, finals[underlying_idx] * rng.uniform(0.03, 0.12, n_contracts))
        await conn.copy_records_to_table(
            "security",
            schema_name="marketdata",
            columns=[
                "symbol",
                "security_type",
                "name",
                "sector",
                "industry",
                "country",
                "underlying_symbol",
                "option_type",
                "strike_price",
                "expiration_date",
                "multiplier",
                "enrichment_status",
            ],
            records=[
                (
                    c,
                    "option",
                    f"Bench option {c}",
                    "Technology",
                    "Software",
                    "US",
                    names[u],
                    k,
                    Decimal(f"{float(strike):.3f}"),
                    expiry,
                    100,
                    "ok",
                )
                for c, u, k, strike in zip(contracts, underlying_idx, kinds, strikes, strict=True)
            ],
        )
        await conn.copy_records_to_table(
            "daily_price",
            schema_name="marketdata",
            columns=["symbol", "price_date", "close", "adj_close", "implied_volatility", "source", "fetched_at"],
            records=[
                (c, as_of, Decimal(f"{p:.4f}"), Decimal(f"{p:.4f}"), float(rng.uniform(0.2, 0.6)), SOURCE, now)
                for c, p in zip(contracts, contract_prices, strict=True)
            ],
        )

        # Portfolios and positions.
        n_option_positions = round(positions_per_portfolio * option_share)
        n_stock_positions = positions_per_portfolio - n_option_positions
        portfolio_rows: list[tuple[object, ...]] = []
        position_rows: list[tuple[object, ...]] = []
        entry = days[-60]
        for p in range(portfolios):
            pid = uuid.uuid4()
            portfolio_rows.append(
                (pid, uuid.uuid4(), f"Bench portfolio {p:04d}", Decimal("1000000.00"), True, "active", "api")
            )
            for s in rng.choice(symbols, n_stock_positions, replace=False):
                qty = int(rng.integers(10, 2000)) * (1 if rng.random() < 0.75 else -1)
                price = Decimal(f"{closes[s, -60]:.4f}")
                position_rows.append(
                    (
                        uuid.uuid4(),
                        pid,
                        names[s],
                        "stock",
                        "LONG" if qty > 0 else "SHORT",
                        Decimal(qty),
                        1,
                        names[s],
                        None,
                        None,
                        None,
                        price,
                        entry,
                        "api",
                    )
                )
            for c in rng.choice(n_contracts, n_option_positions, replace=False):
                qty = int(rng.integers(1, 50)) * (1 if rng.random() < 0.6 else -1)
                kind = kinds[c]
                ptype = ("L" if qty > 0 else "S") + kind
                position_rows.append(
                    (
                        uuid.uuid4(),
                        pid,
                        contracts[c],
                        "option",
                        ptype,
                        Decimal(qty),
                        100,
                        names[underlying_idx[c]],
                        kind,
                        Decimal(f"{float(strikes[c]):.3f}"),
                        expiry,
                        Decimal(f"{contract_prices[c]:.4f}"),
                        entry,
                        "api",
                    )
                )
        await conn.copy_records_to_table(
            "portfolio",
            schema_name="ingest",
            columns=["id", "user_id", "name", "cash_balance", "is_default", "status", "source"],
            records=portfolio_rows,
        )
        await conn.copy_records_to_table(
            "position",
            schema_name="ingest",
            columns=[
                "id",
                "portfolio_id",
                "symbol",
                "instrument_type",
                "position_type",
                "quantity",
                "multiplier",
                "underlying_symbol",
                "option_type",
                "strike_price",
                "expiration_date",
                "entry_price",
                "entry_date",
                "source",
            ],
            records=position_rows,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return Universe(portfolios, len(position_rows), symbols, n_contracts, len(price_rows) + n_contracts)
