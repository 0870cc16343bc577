"""OpenAPI descriptions and documented errors of the ProForma routes (kept out of the router for size)."""

from __future__ import annotations

from typing import Any

from common.schemas import error_responses

M_TEXT = (
    "`M` = {equity, market_value: {long, short, gross, net}, exposure: {long, short, gross, net}, notional, "
    "greeks: {dollar_delta, dollar_gamma_1pct, theta, vega, rho}, factors: [{code, name, beta, beta_gross, "
    "exposure_dollar, status}], risk: {annualized_volatility, var_95_1d, var_99_1d, es_95_1d, "
    "var_95_1d_parametric}, stress: [{scenario_id, name, correlated_pnl, direct_pnl}] (5 worst), concentration: "
    "{top5_weight, effective_positions}, position_count}. Money is USD as 2-dp strings; market_value is the "
    "capital view (signed q·m·P), exposure the delta-adjusted view (options q·m·Δ·S), notional unsigned; "
    "beta = exposure_dollar / equity. "
)


def _doc(description: str, *errors: int, extra: dict[int | str, Any] | None = None) -> dict[str, Any]:
    responses: dict[int | str, Any] = dict(error_responses(*errors))
    responses.update(extra or {})
    return {"description": description, "responses": responses}


CREATE = _doc(
    "Copies the portfolio's open positions with their current valuation and the cash balance (the frozen "
    '"before" state). Nothing ever changes the live portfolio. `portfolio_id` defaults to the caller\'s default '
    "portfolio. Limits: 10 active sessions per user (409 SESSION_LIMIT); a session expires after 24 h without "
    "activity. 409 INVALID_STATE for a portfolio still onboarding or archived, 409 NOT_READY before its first "
    "valuation.",
    401,
    404,
    409,
    422,
)
LIST = _doc(
    "The caller's sessions, newest first, without their base figures: filter by `portfolio_id` (404 for another "
    "user's portfolio) and `status` (active, saved, cancelled, expired; comma-separated). Paginated "
    "(`limit` ≤ 500, `offset`).",
    401,
    404,
    422,
)
CANCEL = _doc(
    "Cancels an active session without saving it: it stops counting toward the 10-session limit and stays "
    "readable with `status: cancelled`. 204; 409 SESSION_NOT_ACTIVE for a saved, cancelled or expired session.",
    401,
    404,
    409,
    422,
)
READ = _doc(
    "The session (base figures, status, trade_version, impacts_status none | pending | ready | stale | failed), "
    "its trades in order with the net position around each, and the last calculation job. `include=positions` "
    "adds the pro-forma positions (positions are netted per symbol; an option new to the session shows its "
    "delta-adjusted exposure only in the impacts). Reading counts as activity.",
    401,
    404,
    422,
)
TRADE_EXAMPLES: dict[str, Any] = {
    "amount": {"value": {"ticker": "QQQ", "side": "short", "amount": 250000, "tag": "Index Hedge"}},
    "position": {"value": {"position_id": "0b8e6f3e-3a53-5d0f-9a55-0c6a2f0e9d11", "action": "reduce", "quantity": 300}},
    "option": {"value": {"ticker": "SPY271217P00500000", "side": "buy", "quantity": 10}},
    "several": {"value": {"trades": [{"ticker": "SPY", "side": "short", "quantity": 100}]}},
}
TRADES = _doc(
    'One trade (body = Trade) or several (`{"trades": [Trade, …]}`, ≤ 50; all or nothing). A Trade names a stock '
    "ticker or OCC option symbol (or the option's underlying, option_type, strike_price, expiration_date) with a "
    "`side`: buy (opens/adds to a long), sell (reduces a long; more than held → 422 OVERSELL), short (opens/adds "
    "to a short), cover (reduces a short; more → 422 OVERCOVER); or a session `position_id` with an `action`: "
    "reduce | increase (alias add) | close. Size by `quantity` (shares or whole contracts) or `amount` (dollars "
    "of |market value|: quantity = floor(amount / (price × multiplier))). `price` defaults to the base position's "
    "valuation price, else the latest close on or before the session date, else (options) the greeks engine's "
    "model price; 422 NO_PRICE when there is none. 422 UNKNOWN_SYMBOL for a symbol outside the security master; "
    "409 SESSION_NOT_ACTIVE, 409 TRADE_LIMIT (200 per session). 201 lists the new trades with the net position "
    "before and after each.",
    401,
    404,
    409,
    422,
)
REMOVE = _doc(
    "Removes one trade; the later trades are re-booked on the new net positions (a `close` closes what is left). "
    "409 INVALID_STATE when a later trade would become invalid (e.g. a sell of shares the removed trade bought); "
    "404 TRADE_NOT_FOUND. The impacts become stale.",
    401,
    404,
    409,
    422,
)
CALC = _doc(
    "Starts a `modeling.calculate` job (202 JobAccepted, result_url = the impacts). The job values both books and "
    "asks the engines over request/reply (rpc.greeks.evaluate, rpc.factors.evaluate, rpc.stress.evaluate; nothing "
    "is stored by them). `as_of_date` (default: the session's base date) selects the factor model and market "
    "data. `Prefer: wait=N` (N ≤ 10) answers 200 with the impacts when the job finishes in time. 422 without "
    "trades; 409 SESSION_NOT_ACTIVE.",
    401,
    404,
    409,
    422,
    extra={200: {"description": "Prefer: wait=N and the job finished: the impacts (#57)"}},
)
IMPACTS = _doc(
    "{session_id, trade_version, calculated_at, stale, as_of, model_date, before: M, after: M, change: M "
    "(after − before; stress rows compare the same scenario), changes_summary, warnings}. " + M_TEXT + "404 "
    "NOT_CALCULATED before the first calculation; a result older than the trades comes back with `stale: true`.",
    401,
    404,
    422,
)
SAVE = _doc(
    "Freezes the session with its trades and impacts as a named read-only scenario (`status: saved`, no expiry). "
    "The live portfolio is unchanged. 409 IMPACTS_STALE unless the impacts of the current trades are ready; "
    "409 SESSION_NOT_ACTIVE.",
    401,
    404,
    409,
    422,
)
SUGGEST = _doc(
    "Proposes sized hedge trades for one goal and computes each one's impact through the same engines: "
    "`neutralize_beta` (SPY: H = −t·X_market / β_SPY), `neutralize_factor` (the factor's ETF proxy: H = −t·X_f / "
    "β_proxy,f), `reduce_stress_loss` (SPY or a style ETF: the smallest hedge lifting the worst correlated scenario "
    "P&L, or `scenario_id`'s, to (1 − t) of the loss; default t = 0.5) and `reduce_delta` (SPY for the book, or "
    "`underlying`'s own stock: H = −t·dollar delta). Shares = round(H / price). `target_pct` t defaults to 1. Each "
    "suggestion has `trades` ready to post to #55 and `impact` {before, after, change} in the M format of #57. "
    "Nothing is stored. 422 UNKNOWN_FACTOR / FACTOR_UNAVAILABLE (no tradable proxy, e.g. interest_rate).",
    401,
    404,
    409,
    422,
)
