"""Statements behind a report's one data read (users.md §4.8), each for many portfolios at once.

Only published views are read (docs/contracts.md): ingest.api_*, marketdata.api_*, greeks.api_*,
factors.api_*, gateway.api_user and this service's own stress.api_* views, so storage changes behind
them do not break reports. `:ids` is a uuid[] of portfolios, `:d` the report date.
"""

from __future__ import annotations

import sqlalchemy as sa

PORTFOLIOS = """
    SELECT p.id, p.user_id, p.name, p.status, p.cash_balance, {owner}
    FROM ingest.api_portfolio p {owner_join}
    WHERE p.id = ANY(CAST(:ids AS uuid[]))
"""
OWNER_COLUMNS = "u.full_name AS owner_name, u.email AS owner_email"
OWNER_JOIN = "LEFT JOIN gateway.api_user u ON u.id = p.user_id"
NO_OWNER = "NULL::text AS owner_name, NULL::text AS owner_email"

# Positions held on :d ("held at date D", docs/contracts.md) with that day's valuation, Greeks, market
# beta, classification and tags; a held position without a valuation row comes back unpriced.
POSITIONS = sa.text(
    """
    SELECT p.portfolio_id, p.id AS position_id, p.symbol, p.instrument_type, p.position_type,
           coalesce(v.quantity, p.quantity) AS quantity, p.multiplier, p.underlying_symbol, p.option_type,
           p.strike_price, p.expiration_date, p.entry_price, p.entry_date, p.cost_basis,
           v.last_price, v.price_date, v.price_source, v.underlying_price, v.market_value, v.dollar_exposure,
           v.notional, v.unrealized_pnl, v.daily_pnl, v.position_id IS NOT NULL AS valued,
           g.delta, g.gamma, g.theta, g.vega, g.rho, g.dollar_delta, g.dollar_gamma_1pct, g.implied_volatility,
           g.iv_source, g.status AS greek_status,
           s.security_type, coalesce(s.name, us.name) AS name, us.sector, us.industry,
           fe.beta AS market_beta, fe.exposure_dollar AS market_exposure, fe.quality_flag AS beta_quality,
           ub.r_squared, t.tags, t.strategy
    FROM ingest.api_position p
    LEFT JOIN ingest.api_position_valuation v ON v.position_id = p.id AND v.valuation_date = :d
    LEFT JOIN greeks.api_position_greek g ON g.position_id = p.id AND g.calculation_date = :d
    LEFT JOIN marketdata.api_security s ON s.symbol = p.symbol
    LEFT JOIN marketdata.api_security us ON us.symbol = p.underlying_symbol
    LEFT JOIN factors.api_position_factor_exposure fe
           ON fe.position_id = p.id AND fe.calculation_date = :d AND fe.factor_code = 'market'
    LEFT JOIN factors.api_underlying_beta ub
           ON ub.symbol = p.underlying_symbol AND ub.calculation_date = :d AND ub.factor_code = 'market'
    LEFT JOIN LATERAL (
        SELECT array_agg(pt.name ORDER BY pt.name) FILTER (WHERE pt.tag_type <> 'strategy') AS tags,
               min(pt.name) FILTER (WHERE pt.tag_type = 'strategy') AS strategy
        FROM ingest.api_position_tag pt WHERE pt.position_id = p.id
    ) t ON true
    WHERE p.portfolio_id = ANY(CAST(:ids AS uuid[])) AND p.entry_date <= :d
      AND (p.status = 'open' OR p.exit_date > :d)
    ORDER BY p.portfolio_id, abs(v.dollar_exposure) DESC NULLS LAST, p.symbol, p.id
    """
)

# The book of the previous snapshot date (what-changed decomposition): quantity, market value,
# exposure and market beta of each position valued that day.
PREVIOUS_POSITIONS = sa.text(
    """
    SELECT v.portfolio_id, v.position_id, v.symbol, v.quantity, v.last_price, v.market_value, v.dollar_exposure,
           fe.beta AS market_beta
    FROM ingest.api_position_valuation v
    LEFT JOIN factors.api_position_factor_exposure fe
           ON fe.position_id = v.position_id AND fe.calculation_date = v.valuation_date AND fe.factor_code = 'market'
    WHERE v.portfolio_id = ANY(CAST(:ids AS uuid[])) AND v.valuation_date = :d
    """
)

SNAPSHOT_COLUMNS = (
    "snapshot_date, equity, cash_balance, cash_unknown, long_mv, short_mv, gross_mv, net_mv, long_exposure, "
    "short_exposure, gross_exposure, net_exposure, notional, gross_leverage, net_leverage, daily_pnl, "
    "daily_return, cumulative_return, market_beta_ex_ante, market_exposure, var_95_1d, var_99_1d, "
    "worst_stress_pnl, worst_stress_id, positions_unpriced, positions_stale, options_without_greeks, "
    "inputs_status, flags"
)

# Snapshots up to :d since the earlier of 1 January and 150 calendar days back (YTD return and the last
# 90 trading days), plus the date of each portfolio's first snapshot (partial periods).
SNAPSHOTS = sa.text(
    f"""
    SELECT q.pid AS portfolio_id, s.*,
           (SELECT min(f.snapshot_date) FROM stress.api_snapshot f WHERE f.portfolio_id = q.pid) AS first_date
    FROM unnest(CAST(:ids AS uuid[])) AS q(pid)
    JOIN LATERAL (
        SELECT {SNAPSHOT_COLUMNS} FROM stress.api_snapshot
        WHERE portfolio_id = q.pid AND snapshot_date <= :d
          AND snapshot_date >= least(date_trunc('year', CAST(:d AS date))::date, CAST(:d AS date) - 150)
        ORDER BY snapshot_date
    ) s ON true
    ORDER BY q.pid, s.snapshot_date
    """
)

FACTORS = sa.text(
    """
    SELECT e.portfolio_id, e.factor_code, d.name, d.proxy, d.display_order, e.exposure_dollar, e.beta,
           e.beta_gross, e.status, e.coverage_pct, e.positions_default
    FROM factors.api_portfolio_factor_exposure e
    JOIN factors.api_factor_definition d ON d.code = e.factor_code
    WHERE e.portfolio_id = ANY(CAST(:ids AS uuid[])) AND e.calculation_date = :d
    ORDER BY e.portfolio_id, d.display_order, e.factor_code
    """
)

FACTOR_WINDOW = sa.text(
    """
    SELECT observations, window_start_date, window_end_date, lookback_days
    FROM factors.api_factor_matrix WHERE calculation_date = :d AND basis = 'model'
    ORDER BY lookback_days DESC LIMIT 1
    """
)

STRESS_RUNS = sa.text(
    """
    SELECT DISTINCT ON (portfolio_id) id, portfolio_id, calculation_date, trigger, partial, scenarios_run
    FROM stress.api_stress_run
    WHERE portfolio_id = ANY(CAST(:ids AS uuid[])) AND calculation_date = :d
    ORDER BY portfolio_id, (trigger = 'batch') DESC, created_at DESC
    """
)

RISK_METRICS = sa.text(
    """
    SELECT portfolio_id, var_95_hist, var_99_hist, es_95_hist, es_99_hist, var_window_start_date,
           var_window_end_date, var_observations, ex_ante_volatility, realized_volatility, beta_ex_ante,
           beta_realized, max_drawdown, sharpe_ratio, series_type, data_status, flags
    FROM stress.api_risk_metric
    WHERE portfolio_id = ANY(CAST(:ids AS uuid[])) AND calculation_date = :d
    """
)

CORRELATIONS = sa.text(
    """
    SELECT DISTINCT ON (portfolio_id) portfolio_id, id AS calculation_id, calculation_date, duration_days,
           average_correlation, weighted_average_correlation, effective_positions_corr, effective_positions_hhi,
           concentration_gross, concentration_net, data_quality, correlation_threshold, nodes_included,
           nodes_excluded, window_start_date, window_end_date, flags
    FROM factors.api_correlation_calculation
    WHERE portfolio_id = ANY(CAST(:ids AS uuid[])) AND calculation_date <= :d
    ORDER BY portfolio_id, calculation_date DESC, created_at DESC, id DESC
    """
)

# The stored clusters of the chosen calculations (`:calcs` uuid[]), one row per member: clusters by
# number (descending gross), members by descending |exposure| as GET /risk/correlations/positions/metrics.
CORRELATION_CLUSTERS = sa.text(
    """
    SELECT calculation_id, cluster_number, threshold, nickname, nickname_source, avg_correlation, gross, net,
           share_of_gross, member_symbol, member_exposure, member_share_of_gross, correlation_to_cluster
    FROM factors.api_correlation_cluster
    WHERE calculation_id = ANY(CAST(:calcs AS uuid[]))
    ORDER BY calculation_id, cluster_number, abs(member_exposure) DESC NULLS LAST, member_symbol
    """
)

# The pairs of the chosen calculations folded back into one row of parallel arrays per calculation
# (the aggregates of one group read its rows in the same order, so the arrays stay aligned): a few
# rows instead of k(k-1)/2 per portfolio for the batch path.
CORRELATION_PAIRS = sa.text(
    """
    SELECT calculation_id, array_agg(CAST(symbol_1 AS text)) AS symbols_1,
           array_agg(CAST(symbol_2 AS text)) AS symbols_2, array_agg(correlation) AS correlations
    FROM factors.api_pairwise_correlation
    WHERE calculation_id = ANY(CAST(:calcs AS uuid[]))
    GROUP BY calculation_id
    """
)
