"""ProForma modelling: modeling_session, modeling_trade (data-model.md §4.10-4.11) and their published views.

Additions to data-model.md, all needed to answer api.md #53-#58 from the session alone:
* modeling_session.base_cash_balance: the cash frozen with the base positions (equity = cash + Σ MV);
* modeling_session.impacts_as_of_date / impacts_calculated_at / impacts_error: what the last calculation
  was run for and why it failed;
* modeling_trade keeps the instrument (underlying, option fields, multiplier) so a trade list can be
  exported without reading the security master again; price_source also allows 'model' (an option
  contract without a stored quote is priced by the greeks engine);
* `ingest.api_modeling_session` / `ingest.api_modeling_trade`: the read contract of the stress
  service's trade export (api.md #69). A trade removed from a session is deleted, so it never appears;
  `trade_no` numbers the remaining trades 1..n in insertion order. Sides use the order-ticket
  vocabulary: stocks BUY / SELL / SELL_SHORT / BUY_TO_COVER; options open with BUY or SELL and close
  with SELL or BUY (`open_close` says which).

Revision ID: ingest_0004
Revises: ingest_0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ingest_0004"
down_revision: str | None = "ingest_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATEMENTS = [
    """
CREATE TABLE ingest.modeling_session (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                uuid NOT NULL,
    portfolio_id           uuid NOT NULL REFERENCES ingest.portfolio (id) ON DELETE CASCADE,
    name                   text NOT NULL,
    description            text,
    status                 text NOT NULL DEFAULT 'active',
    base_as_of_date        date NOT NULL,
    base_cash_balance      numeric(20,2) NOT NULL,
    base_positions         jsonb NOT NULL,
    trade_version          integer NOT NULL DEFAULT 0,
    impacts_status         text NOT NULL DEFAULT 'none',
    impacts                jsonb,
    impacts_trade_version  integer,
    impacts_as_of_date     date,
    impacts_calculated_at  timestamptz,
    impacts_error          text,
    last_job_id            uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    last_activity_at       timestamptz NOT NULL DEFAULT now(),
    saved_at               timestamptz,
    expires_at             timestamptz,
    CONSTRAINT modeling_session_name_check CHECK (char_length(name) BETWEEN 1 AND 255),
    CONSTRAINT modeling_session_status_check CHECK (status IN ('active', 'saved', 'cancelled', 'expired')),
    CONSTRAINT modeling_session_impacts_status_check CHECK (
        impacts_status IN ('none', 'pending', 'ready', 'stale', 'failed')),
    CONSTRAINT modeling_session_expiry_check CHECK (status <> 'active' OR expires_at IS NOT NULL),
    CONSTRAINT modeling_session_saved_check CHECK ((status = 'saved') = (saved_at IS NOT NULL))
)
""",
    "CREATE INDEX modeling_session_user_active_idx ON ingest.modeling_session (user_id, status) "
    "WHERE status = 'active'",
    "CREATE INDEX modeling_session_expiry_idx ON ingest.modeling_session (expires_at) WHERE status = 'active'",
    "CREATE INDEX modeling_session_user_idx ON ingest.modeling_session (user_id, created_at DESC)",
    "CREATE INDEX modeling_session_portfolio_idx ON ingest.modeling_session (portfolio_id)",
    """
CREATE TABLE ingest.modeling_trade (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id         uuid NOT NULL REFERENCES ingest.modeling_session (id) ON DELETE CASCADE,
    seq                integer NOT NULL,
    ticker             varchar(21) NOT NULL,
    instrument_type    text NOT NULL,
    underlying_symbol  varchar(12) NOT NULL,
    option_type        char(1),
    strike_price       numeric(12,3),
    expiration_date    date,
    multiplier         smallint NOT NULL,
    side               text NOT NULL,
    position_ref       uuid,
    action             text,
    quantity           numeric(18,4) NOT NULL,
    requested_amount   numeric(20,2),
    price              numeric(18,4) NOT NULL,
    price_source       text NOT NULL,
    quantity_before    numeric(18,4) NOT NULL,
    quantity_after     numeric(18,4) NOT NULL,
    tags               text[] NOT NULL DEFAULT '{}'::text[],
    note               varchar(255),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT modeling_trade_seq_uq UNIQUE (session_id, seq),
    CONSTRAINT modeling_trade_instrument_type_check CHECK (instrument_type IN ('stock', 'option')),
    CONSTRAINT modeling_trade_instrument_check CHECK (
        (instrument_type = 'stock' AND multiplier = 1 AND option_type IS NULL AND strike_price IS NULL
         AND expiration_date IS NULL)
        OR (instrument_type = 'option' AND option_type IN ('C', 'P') AND strike_price > 0
         AND expiration_date IS NOT NULL AND quantity = trunc(quantity))),
    CONSTRAINT modeling_trade_side_check CHECK (side IN ('buy', 'sell', 'short', 'cover')),
    CONSTRAINT modeling_trade_action_check CHECK (action IS NULL OR action IN ('reduce', 'increase', 'close')),
    CONSTRAINT modeling_trade_quantity_check CHECK (quantity > 0),
    CONSTRAINT modeling_trade_amount_check CHECK (requested_amount IS NULL OR requested_amount > 0),
    CONSTRAINT modeling_trade_price_check CHECK (price > 0),
    CONSTRAINT modeling_trade_price_source_check CHECK (price_source IN ('user', 'last_close', 'model')),
    CONSTRAINT modeling_trade_note_check CHECK (note IS NULL OR char_length(note) <= 255)
)
""",
    # Published views (docs/contracts.md): columns are only ever added.
    """
CREATE VIEW ingest.api_modeling_session AS
SELECT s.id, s.portfolio_id, s.user_id, s.name,
       CASE WHEN s.status = 'active' AND s.expires_at <= now() THEN 'expired' ELSE s.status END AS status,
       s.created_at, s.updated_at
FROM ingest.modeling_session s
""",
    """
CREATE VIEW ingest.api_modeling_trade AS
SELECT t.id, t.session_id,
       CAST(row_number() OVER (PARTITION BY t.session_id ORDER BY t.seq) AS integer) AS trade_no,
       CAST(t.ticker AS text) AS symbol,
       CAST(t.underlying_symbol AS text) AS underlying_symbol,
       CASE t.instrument_type WHEN 'option' THEN 'OPT' ELSE 'CS' END AS security_type,
       CASE t.option_type WHEN 'C' THEN 'call' WHEN 'P' THEN 'put' END AS option_type,
       CAST(t.strike_price AS numeric) AS strike,
       t.expiration_date AS expiry_date,
       CASE
           WHEN t.side = 'buy' THEN 'BUY'
           WHEN t.side = 'sell' THEN 'SELL'
           WHEN t.side = 'short' AND t.instrument_type = 'stock' THEN 'SELL_SHORT'
           WHEN t.side = 'short' THEN 'SELL'
           WHEN t.instrument_type = 'stock' THEN 'BUY_TO_COVER'
           ELSE 'BUY'
       END AS side,
       CAST(t.quantity AS numeric) AS quantity,
       CAST(t.price AS numeric) AS price,
       CASE WHEN t.side IN ('buy', 'short') THEN 'O' ELSE 'C' END AS open_close,
       NULLIF(array_to_string(t.tags, ', '), '') AS tag,
       t.created_at
FROM ingest.modeling_trade t
""",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS ingest.api_modeling_trade")
    op.execute("DROP VIEW IF EXISTS ingest.api_modeling_session")
    op.execute("DROP TABLE IF EXISTS ingest.modeling_trade")
    op.execute("DROP TABLE IF EXISTS ingest.modeling_session")
