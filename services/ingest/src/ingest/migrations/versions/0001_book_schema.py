"""Ingest book schema: portfolio, position, position_valuation, tag, position_tag and the api_* views.

Revision ID: ingest_0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

from common.migrations import create_plumbing

revision: str = "ingest_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _cents(expr: str) -> str:
    """`expr` rounded to cents half-even (PostgreSQL round() rounds half away from zero)."""
    v = f"(({expr}) * 100)"
    return f"(CASE WHEN abs({v} - trunc({v})) = 0.5 THEN (trunc({v}) + mod(trunc({v}), 2)) ELSE round({v}) END) / 100"


TABLES = f"""
CREATE TABLE ingest.portfolio (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL,
    name            text NOT NULL,
    description     text,
    currency        char(3) NOT NULL DEFAULT 'USD',
    cash_balance    numeric(20,2) NOT NULL DEFAULT 0,
    is_default      boolean NOT NULL DEFAULT false,
    status          text NOT NULL,
    onboarded_at    timestamptz,
    is_demo_seed    boolean NOT NULL DEFAULT false,
    source          text NOT NULL DEFAULT 'api',
    valuation_date  date,
    valued_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    CONSTRAINT portfolio_name_check CHECK (char_length(name) BETWEEN 1 AND 255),
    CONSTRAINT portfolio_currency_check CHECK (currency = 'USD'),
    CONSTRAINT portfolio_cash_check CHECK (cash_balance >= 0),
    CONSTRAINT portfolio_status_check CHECK (status IN ('onboarding', 'active', 'archived')),
    CONSTRAINT portfolio_source_check CHECK (source IN ('csv', 'seed', 'api'))
);
CREATE UNIQUE INDEX portfolio_user_name_uq ON ingest.portfolio (user_id, lower(name)) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX portfolio_user_default_uq ON ingest.portfolio (user_id) WHERE is_default AND deleted_at IS NULL;
CREATE INDEX portfolio_user_idx ON ingest.portfolio (user_id) WHERE deleted_at IS NULL;
CREATE INDEX portfolio_active_idx ON ingest.portfolio (status) WHERE status = 'active' AND deleted_at IS NULL;

CREATE TABLE ingest.position (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    portfolio_id      uuid NOT NULL REFERENCES ingest.portfolio (id),
    symbol            varchar(21) NOT NULL,
    instrument_type   text NOT NULL,
    position_type     text NOT NULL,
    quantity          numeric(18,4) NOT NULL,
    multiplier        smallint NOT NULL,
    underlying_symbol varchar(12) NOT NULL,
    option_type       char(1),
    strike_price      numeric(12,3),
    expiration_date   date,
    entry_price       numeric(18,4) NOT NULL,
    entry_date        date NOT NULL,
    cost_basis        numeric(20,2) GENERATED ALWAYS AS ({_cents("quantity * entry_price * multiplier")}) STORED,
    status            text NOT NULL DEFAULT 'open',
    closed_at         timestamptz,
    closed_reason     text,
    exit_price        numeric(18,4),
    realized_pnl      numeric(20,2),
    exit_date         date,
    source            text NOT NULL,
    upload_id         uuid,
    last_price        numeric(18,4),
    price_date        date,
    price_source      text,
    underlying_price  numeric(18,4),
    market_value      numeric(20,2),
    dollar_exposure   numeric(20,2),
    notional          numeric(20,2),
    unrealized_pnl    numeric(20,2),
    daily_pnl         numeric(20,2),
    valuation_date    date,
    valued_at         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT position_quantity_nonzero_check CHECK (quantity <> 0),
    CONSTRAINT position_instrument_type_check CHECK (instrument_type IN ('stock', 'option')),
    CONSTRAINT position_type_check CHECK (position_type IN ('LONG', 'SHORT', 'LC', 'LP', 'SC', 'SP')),
    CONSTRAINT position_direction_check CHECK ((position_type IN ('LONG', 'LC', 'LP')) = (quantity > 0)),
    CONSTRAINT position_instrument_check CHECK (
        (instrument_type = 'stock' AND position_type IN ('LONG', 'SHORT') AND multiplier = 1
         AND option_type IS NULL AND strike_price IS NULL AND expiration_date IS NULL
         AND underlying_symbol = symbol)
        OR (instrument_type = 'option' AND position_type IN ('LC', 'LP', 'SC', 'SP') AND multiplier = 100
         AND option_type IS NOT NULL AND strike_price IS NOT NULL AND expiration_date IS NOT NULL)),
    CONSTRAINT position_option_type_check CHECK (option_type IS NULL OR option_type IN ('C', 'P')),
    CONSTRAINT position_option_side_check CHECK (
        instrument_type = 'stock' OR (position_type IN ('LC', 'SC')) = (option_type = 'C')),
    CONSTRAINT position_option_contract_check CHECK (
        instrument_type = 'stock' OR (quantity = trunc(quantity) AND entry_date <= expiration_date)),
    CONSTRAINT position_strike_check CHECK (strike_price IS NULL OR strike_price > 0),
    CONSTRAINT position_entry_price_check CHECK (entry_price > 0),
    CONSTRAINT position_status_check CHECK (status IN ('open', 'closed')),
    CONSTRAINT position_closed_reason_check CHECK (closed_reason IS NULL OR closed_reason IN
        ('replaced', 'archived', 'demo_reset', 'manual', 'expired', 'exercised', 'assigned')),
    CONSTRAINT position_source_check CHECK (source IN ('csv', 'seed', 'api')),
    CONSTRAINT position_price_source_check CHECK (price_source IS NULL OR price_source IN ('close', 'stale', 'model'))
);
CREATE UNIQUE INDEX position_open_uq ON ingest.position (portfolio_id, symbol, entry_date) WHERE status = 'open';
CREATE INDEX position_portfolio_status_idx ON ingest.position (portfolio_id, status);
CREATE INDEX position_portfolio_type_idx ON ingest.position (portfolio_id, position_type) WHERE status = 'open';
CREATE INDEX position_underlying_open_idx ON ingest.position (underlying_symbol) WHERE status = 'open';
CREATE INDEX position_expiration_open_idx ON ingest.position (expiration_date)
    WHERE instrument_type = 'option' AND status = 'open';
CREATE INDEX position_symbol_open_idx ON ingest.position (symbol) WHERE status = 'open';
CREATE INDEX position_upload_idx ON ingest.position (upload_id);

CREATE TABLE ingest.position_valuation (
    position_id      uuid NOT NULL REFERENCES ingest.position (id) ON DELETE CASCADE,
    valuation_date   date NOT NULL,
    portfolio_id     uuid NOT NULL,
    last_price       numeric(18,4),
    underlying_price numeric(18,4),
    price_date       date,
    price_source     text,
    market_value     numeric(20,2),
    dollar_exposure  numeric(20,2),
    notional         numeric(20,2),
    unrealized_pnl   numeric(20,2),
    daily_pnl        numeric(20,2),
    quantity         numeric(18,4),
    delta            double precision,
    flags            text[] NOT NULL DEFAULT '{{}}'::text[],
    run_id           uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (position_id, valuation_date),
    CONSTRAINT position_valuation_price_source_check CHECK (
        price_source IS NULL OR price_source IN ('close', 'stale', 'model'))
);
CREATE INDEX position_valuation_portfolio_date_idx ON ingest.position_valuation (portfolio_id, valuation_date);

CREATE TABLE ingest.tag (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL,
    name        text NOT NULL,
    name_key    text GENERATED ALWAYS AS (lower(name)) STORED,
    tag_type    text NOT NULL DEFAULT 'regular',
    color       char(7) NOT NULL DEFAULT '#6B7280',
    description varchar(255),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    CONSTRAINT tag_name_check CHECK (
        name ~ '^[A-Za-z0-9 _.&/-]{{1,50}}$' AND name = btrim(name) AND position('  ' in name) = 0),
    CONSTRAINT tag_type_check CHECK (tag_type IN ('regular', 'strategy')),
    CONSTRAINT tag_color_check CHECK (color ~ '^#[0-9A-Fa-f]{{6}}$')
);
CREATE UNIQUE INDEX tag_user_name_uq ON ingest.tag (user_id, name_key) WHERE deleted_at IS NULL;
CREATE INDEX tag_user_type_idx ON ingest.tag (user_id, tag_type) WHERE deleted_at IS NULL;
CREATE INDEX tag_deleted_idx ON ingest.tag (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE ingest.position_tag (
    position_id uuid NOT NULL REFERENCES ingest.position (id) ON DELETE CASCADE,
    tag_id      uuid NOT NULL REFERENCES ingest.tag (id) ON DELETE CASCADE,
    source      text NOT NULL DEFAULT 'api',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (position_id, tag_id),
    CONSTRAINT position_tag_source_check CHECK (source IN ('csv', 'api', 'seed'))
);
CREATE INDEX position_tag_tag_idx ON ingest.position_tag (tag_id);
"""

# Published views (docs/contracts.md): columns are only ever added.
VIEWS = """
CREATE VIEW ingest.api_portfolio AS
SELECT pf.id, pf.user_id, pf.name, pf.description, pf.status, pf.currency, pf.cash_balance,
       pf.is_default, pf.is_demo_seed,
       pf.cash_balance + COALESCE(mv.total, 0) AS equity,
       pf.valued_at, pf.created_at, pf.updated_at
FROM ingest.portfolio pf
LEFT JOIN LATERAL (
    SELECT sum(p.market_value) AS total
    FROM ingest.position p
    WHERE p.portfolio_id = pf.id AND p.status = 'open'
) mv ON true
WHERE pf.deleted_at IS NULL;

CREATE VIEW ingest.api_position AS
SELECT p.id, p.portfolio_id, pf.user_id, p.symbol, p.instrument_type, p.position_type, p.quantity,
       p.multiplier, p.underlying_symbol, p.option_type, p.strike_price, p.expiration_date,
       p.entry_price, p.entry_date, p.cost_basis, p.status, p.closed_at, p.exit_price, p.exit_date,
       p.realized_pnl, p.last_price, p.price_date, p.price_source, p.underlying_price,
       p.market_value, p.dollar_exposure, p.notional, p.unrealized_pnl, p.daily_pnl, p.valued_at,
       p.created_at
FROM ingest.position p
JOIN ingest.portfolio pf ON pf.id = p.portfolio_id;

CREATE VIEW ingest.api_open_position AS
SELECT * FROM ingest.api_position WHERE status = 'open';

CREATE VIEW ingest.api_position_valuation AS
SELECT v.position_id, v.valuation_date, v.portfolio_id, p.symbol, p.underlying_symbol,
       p.instrument_type, p.position_type, COALESCE(v.quantity, p.quantity) AS quantity,
       p.multiplier, v.last_price, v.underlying_price, v.price_date, v.price_source,
       v.market_value, v.dollar_exposure, v.notional, v.unrealized_pnl, v.daily_pnl, v.run_id
FROM ingest.position_valuation v
JOIN ingest.position p ON p.id = v.position_id;

CREATE VIEW ingest.api_position_tag AS
SELECT pt.position_id, pt.tag_id, t.name, t.tag_type
FROM ingest.position_tag pt
JOIN ingest.tag t ON t.id = pt.tag_id
WHERE t.deleted_at IS NULL;
"""


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


def upgrade() -> None:
    create_plumbing("ingest")
    for statement in _statements(TABLES) + _statements(VIEWS):
        op.execute(statement)


def downgrade() -> None:
    for view in ("api_position_tag", "api_position_valuation", "api_open_position", "api_position", "api_portfolio"):
        op.execute(f"DROP VIEW IF EXISTS ingest.{view}")
    for table in ("position_tag", "tag", "position_valuation", "position", "portfolio"):
        op.execute(f"DROP TABLE IF EXISTS ingest.{table}")
    for table in ("processed_event", "outbox", "job"):
        op.execute(f"DROP TABLE IF EXISTS ingest.{table}")
