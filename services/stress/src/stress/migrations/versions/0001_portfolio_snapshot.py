"""Plumbing tables and the portfolio snapshot table of the stress schema (data-model.md §8.6).

Revision ID: stress_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from common.migrations import create_plumbing

revision = "stress_0001"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(20, 2)


def upgrade() -> None:
    create_plumbing("stress")
    op.create_table(
        "portfolio_snapshot",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("portfolio_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("snapshot_date", sa.Date, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("run_id", pg.UUID(as_uuid=True)),
        sa.Column("equity", MONEY, nullable=False),
        sa.Column("cash_balance", MONEY, nullable=False),
        sa.Column("cash_unknown", sa.Boolean, nullable=False),
        sa.Column("long_mv", MONEY, nullable=False),
        sa.Column("short_mv", MONEY, nullable=False),
        sa.Column("gross_mv", MONEY, nullable=False),
        sa.Column("net_mv", MONEY, nullable=False),
        sa.Column("long_exposure", MONEY),
        sa.Column("short_exposure", MONEY),
        sa.Column("gross_exposure", MONEY),
        sa.Column("net_exposure", MONEY),
        sa.Column("notional", MONEY, nullable=False),
        sa.Column("gross_leverage", sa.Float),
        sa.Column("net_leverage", sa.Float),
        sa.Column("unrealized_pnl_total", MONEY),
        sa.Column("daily_pnl", MONEY),
        sa.Column("realized_pnl_day", MONEY),
        sa.Column("cumulative_pnl", MONEY),
        sa.Column("net_flows", MONEY, nullable=False, server_default="0"),
        sa.Column("daily_return", sa.Float),
        sa.Column("cumulative_return", sa.Float),
        sa.Column("dollar_delta", MONEY),
        sa.Column("dollar_gamma_1pct", MONEY),
        sa.Column("theta", sa.Float),
        sa.Column("vega", sa.Float),
        sa.Column("rho", sa.Float),
        sa.Column("num_positions", sa.Integer, nullable=False),
        sa.Column("num_long", sa.Integer, nullable=False),
        sa.Column("num_short", sa.Integer, nullable=False),
        sa.Column("num_stocks", sa.Integer, nullable=False),
        sa.Column("num_options", sa.Integer, nullable=False),
        sa.Column("counts_by_type", pg.JSONB),
        sa.Column("market_beta_ex_ante", sa.Float),
        sa.Column("market_exposure", MONEY),
        sa.Column("factor_exposures", pg.JSONB),
        sa.Column("var_95_1d", MONEY),
        sa.Column("var_99_1d", MONEY),
        sa.Column("es_95_1d", MONEY),
        sa.Column("es_99_1d", MONEY),
        sa.Column("worst_stress_pnl", MONEY),
        sa.Column("worst_stress_id", sa.Text),
        sa.Column("positions_unpriced", sa.Integer),
        sa.Column("positions_stale", sa.Integer),
        sa.Column("options_without_greeks", sa.Integer),
        sa.Column("beta_coverage", sa.Float),
        sa.Column("annualized_volatility", sa.Float),
        sa.Column("max_drawdown", sa.Float),
        sa.Column("inputs_status", sa.Text, nullable=False),
        sa.Column("engine_version", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # Its index serves every time-series read (#22, #23, #21 MTD/YTD) and is the upsert target.
        sa.UniqueConstraint("portfolio_id", "snapshot_date", name="portfolio_snapshot_portfolio_date_uq"),
        sa.CheckConstraint("source IN ('batch','backfill')", name="portfolio_snapshot_source_check"),
        sa.CheckConstraint("inputs_status IN ('complete','partial')", name="portfolio_snapshot_inputs_status_check"),
        # Capital view (calculations.md §2.3, §2.5): long ≥ 0, short ≤ 0, gross = long + |short|, net = long + short.
        sa.CheckConstraint(
            "long_mv >= 0 AND short_mv <= 0 AND gross_mv = long_mv - short_mv AND net_mv = long_mv + short_mv",
            name="portfolio_snapshot_mv_check",
        ),
        # Directional view: same identities on dollar_exposure.
        sa.CheckConstraint(
            "long_exposure >= 0 AND short_exposure <= 0 AND gross_exposure = long_exposure - short_exposure"
            " AND net_exposure = long_exposure + short_exposure",
            name="portfolio_snapshot_exposure_check",
        ),
        sa.CheckConstraint("notional >= 0", name="portfolio_snapshot_notional_check"),
        sa.CheckConstraint(
            "num_long >= 0 AND num_short >= 0 AND num_stocks >= 0 AND num_options >= 0"
            " AND num_long + num_short = num_positions AND num_stocks + num_options = num_positions",
            name="portfolio_snapshot_counts_check",
        ),
        sa.CheckConstraint(
            "positions_unpriced >= 0 AND positions_stale >= 0 AND options_without_greeks >= 0",
            name="portfolio_snapshot_quality_counts_check",
        ),
        sa.CheckConstraint("max_drawdown <= 0", name="portfolio_snapshot_max_drawdown_check"),
        schema="stress",
    )
    # Published view (data-model.md §9, docs/contracts.md): all columns of portfolio_snapshot.
    op.execute("CREATE VIEW stress.api_snapshot AS SELECT * FROM stress.portfolio_snapshot")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS stress.api_snapshot")
    op.drop_table("portfolio_snapshot", schema="stress")
