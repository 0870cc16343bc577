"""The stress-scenario catalogue (calculations.md §6.1, demo.md §6) and its validation.

Eighteen built-in scenarios in five categories. Shocks are fractional factor moves over the
scenario horizon in the factor space of calculations.md §4.1: `market` = SPY total return, style
codes = market-neutral style returns, `interest_rate` = change of the 10-year yield (0.01 = +100 bp).
Keys are factor-registry codes; `validate_shocks` is the one validator for the seed, for stored
scenarios at load and for custom scenarios sent to the API.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from common.ids import stable_id
from stress.compute.scenarios import MODEL_FACTORS, RATE
from stress.models_scenarios import stress_scenario

# |shock| bounds (calculations.md §6.1 `stress_magnitude_cap`, data-model.md §8.1).
RETURN_SHOCK_LIMIT = 1.0
RATE_SHOCK_LIMIT = 0.05
IV_SHIFT_LIMIT = 1.0
SEVERITY_ORDER: dict[str, int] = {"mild": 0, "moderate": 1, "severe": 2, "extreme": 3}
CATEGORIES: tuple[str, ...] = ("market", "rates", "rotation", "volatility", "historical")


@dataclass(frozen=True)
class Scenario:
    """One catalogue entry (a row of stress.stress_scenario)."""

    key: str
    name: str
    category: str
    severity: str
    shocks: Mapping[str, float]
    description: str
    display_order: int
    option_iv_shift: float = 0.0
    historical_start_date: date | None = None
    historical_end_date: date | None = None
    is_active: bool = True
    is_builtin: bool = True
    id: Any = field(default=None)

    @property
    def scenario_id(self) -> Any:
        """Deterministic row id, equal in every installation."""
        return self.id if self.id is not None else stable_id("stress_scenario", self.key)


def _s(
    order: int,
    key: str,
    name: str,
    category: str,
    severity: str,
    shocks: dict[str, float],
    description: str,
    period: tuple[date, date] | None = None,
) -> Scenario:
    return Scenario(
        key=key,
        name=name,
        category=category,
        severity=severity,
        shocks=shocks,
        description=description,
        display_order=order,
        historical_start_date=period[0] if period else None,
        historical_end_date=period[1] if period else None,
    )


CATALOGUE: tuple[Scenario, ...] = (
    _s(1, "market_up_10", "Market Rally 10%", "market", "moderate", {"market": 0.10},
       "The S&P 500 (SPY) rises 10%; every underlying moves by its market beta."),
    _s(2, "market_down_10", "Market Decline 10%", "market", "moderate", {"market": -0.10},
       "The S&P 500 (SPY) falls 10%; equals the −10% market-risk scenario."),
    _s(3, "market_crash_35", "Market Crash 35%", "market", "severe", {"market": -0.35},
       "A 35% equity crash; high-beta names hit the −100% floor first."),
    _s(4, "market_rally_25", "Market Rally 25%", "market", "severe", {"market": 0.25},
       "A 25% broad rally; short books and short calls suffer."),
    _s(5, "rates_up_25bp", "Rates Up 25bp", "rates", "mild", {"interest_rate": 0.0025},
       "The 10-year Treasury yield rises 25 basis points."),
    _s(6, "rates_down_25bp", "Rates Down 25bp", "rates", "mild", {"interest_rate": -0.0025},
       "The 10-year Treasury yield falls 25 basis points."),
    _s(7, "rates_up_100bp", "Rates Up 100bp", "rates", "moderate", {"interest_rate": 0.01},
       "The 10-year Treasury yield rises 100 basis points."),
    _s(8, "rates_down_100bp", "Rates Down 100bp", "rates", "moderate", {"interest_rate": -0.01},
       "The 10-year Treasury yield falls 100 basis points."),
    _s(9, "rate_spike_300bp", "Rate Spike 300bp", "rates", "severe", {"interest_rate": 0.03},
       "A 300 basis-point jump in the 10-year Treasury yield."),
    _s(10, "value_rotation_20", "Value Rotation 20%", "rotation", "moderate", {"value": 0.20, "growth": -0.10},
       "Value beats its market-implied return by 20% while growth lags by 10% (market-neutral moves)."),
    _s(11, "growth_rally_15", "Growth Rally 15%", "rotation", "moderate", {"growth": 0.15, "momentum": 0.10},
       "Growth outperforms by 15% and momentum by 10%, relative to the market."),
    _s(12, "small_cap_outperformance_10", "Small Cap Outperformance 10%", "rotation", "mild", {"size": 0.10},
       "Small caps (IWM) beat their market-implied return by 10%."),
    _s(13, "quality_flight_12", "Flight to Quality 12%", "rotation", "mild", {"quality": 0.12, "market": -0.05},
       "Quality outperforms by 12% as the market slips 5%."),
    _s(14, "vix_spike_150", "VIX Spike 150%", "volatility", "severe", {"low_volatility": -0.25, "market": -0.15},
       "A volatility shock: the market falls 15% and low-volatility stocks lag by 25%. No implied-volatility "
       "shift is applied to options (option_iv_shift 0)."),
    _s(15, "liquidity_crisis", "Liquidity Crisis", "volatility", "severe",
       {"market": -0.20, "low_volatility": -0.30, "quality": 0.15, "size": -0.10},
       "A funding squeeze: the market falls 20%, low-volatility and small caps lag, quality outperforms."),
    _s(16, "financial_crisis_2008", "2008 Financial Crisis Replay (2008-09-15 → 2009-03-15)", "historical", "extreme",
       {"market": -0.45, "value": -0.30, "size": -0.25, "quality": 0.20, "low_volatility": -0.35},
       "Replay of Lehman to the March 2009 low. Style shocks are relative to the market.",
       (date(2008, 9, 15), date(2009, 3, 15))),
    _s(17, "covid_crash_2020", "COVID-19 Crash Replay (2020-02-19 → 2020-03-23)", "historical", "extreme",
       {"market": -0.35, "growth": 0.15, "value": -0.40, "size": -0.30, "quality": 0.10},
       "Replay of the February–March 2020 crash. Style shocks are relative to the market.",
       (date(2020, 2, 19), date(2020, 3, 23))),
    _s(18, "dotcom_crash_2000", "Dot-Com Crash Replay (2000-03-10 → 2002-10-09)", "historical", "extreme",
       {"market": -0.45, "growth": -0.60, "value": 0.20, "momentum": -0.50, "quality": 0.15},
       "Replay of the 2000–2002 technology bust. Style shocks are relative to the market.",
       (date(2000, 3, 10), date(2002, 10, 9))),
)  # fmt: skip


@dataclass(frozen=True)
class ShockIssue:
    """One problem with a scenario's shocks: `code` is UNKNOWN_FACTOR or VALIDATION_ERROR."""

    code: str
    factor: str
    issue: str
    value: Any


def validate_shocks(
    shocks: Mapping[str, Any], active_codes: Iterable[str] = MODEL_FACTORS, iv_shift: float = 0.0
) -> list[ShockIssue]:
    """Problems with `shocks` (empty when valid): keys must be active registry codes, return shocks
    within [−1, 1], `interest_rate` within ±0.05, `option_iv_shift` within ±1."""
    active = set(active_codes)
    issues: list[ShockIssue] = []
    if not shocks:
        issues.append(ShockIssue("VALIDATION_ERROR", "", "at least one factor shock is required", {}))
    for code, raw in shocks.items():
        if code not in active:
            issues.append(
                ShockIssue("UNKNOWN_FACTOR", code, f"not an active factor; use one of {', '.join(sorted(active))}", raw)
            )
            continue
        value = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else math.nan
        if not math.isfinite(value):
            issues.append(ShockIssue("VALIDATION_ERROR", code, "must be a finite number", raw))
        elif code == RATE and abs(value) > RATE_SHOCK_LIMIT:
            issues.append(ShockIssue("VALIDATION_ERROR", code, "yield change must be within ±0.05 (±500 bp)", raw))
        elif code != RATE and abs(value) > RETURN_SHOCK_LIMIT:
            issues.append(ShockIssue("VALIDATION_ERROR", code, "return shock must be within [−1, 1]", raw))
    if not math.isfinite(iv_shift) or abs(iv_shift) > IV_SHIFT_LIMIT:
        issues.append(ShockIssue("VALIDATION_ERROR", "option_iv_shift", "must be within ±1.0", iv_shift))
    return issues


def scenario_row(scenario: Scenario) -> dict[str, Any]:
    """The stress.stress_scenario values of a catalogue entry."""
    return {
        "id": scenario.scenario_id,
        "scenario_key": scenario.key,
        "name": scenario.name,
        "description": scenario.description,
        "category": scenario.category,
        "severity": scenario.severity,
        "shocks": dict(scenario.shocks),
        "option_iv_shift": scenario.option_iv_shift,
        "historical_start_date": scenario.historical_start_date,
        "historical_end_date": scenario.historical_end_date,
        "is_active": scenario.is_active,
        "is_builtin": scenario.is_builtin,
        "display_order": scenario.display_order,
    }


async def active_factor_codes(session: AsyncSession) -> set[str]:
    """Active registry codes with a return series (factors.api_factor_definition); the model set when unseeded."""
    present = (await session.execute(sa.text("SELECT to_regclass('factors.api_factor_definition')"))).scalar()
    if present is None:
        return set(MODEL_FACTORS)
    rows = (
        await session.execute(
            sa.text(
                "SELECT code FROM factors.api_factor_definition WHERE is_active AND calculation_method = 'regression'"
            )
        )
    ).all()
    return {r.code for r in rows} if rows else set(MODEL_FACTORS)


async def seed_scenarios(db: Database, scenarios: Iterable[Scenario] = CATALOGUE) -> int:
    """Validate the catalogue against the factor registry and upsert it by scenario_key; returns the count."""
    entries = list(scenarios)
    async with db.transaction() as session:
        codes = await active_factor_codes(session)
        problems = {
            s.key: [f"{i.factor}: {i.issue}" for i in validate_shocks(s.shocks, codes, s.option_iv_shift)]
            for s in entries
        }
        problems = {k: v for k, v in problems.items() if v}
        if problems:
            raise ValueError(f"invalid stress scenarios: {problems}")
        stmt = pg.insert(stress_scenario).values([scenario_row(s) for s in entries])
        updated: dict[str, Any] = {
            col: stmt.excluded[col]
            for col in (
                "name",
                "description",
                "category",
                "severity",
                "shocks",
                "option_iv_shift",
                "historical_start_date",
                "historical_end_date",
                "is_active",
                "is_builtin",
                "display_order",
            )
        }
        updated["updated_at"] = sa.func.now()
        await session.execute(stmt.on_conflict_do_update(index_elements=["scenario_key"], set_=updated))
        count = (await session.execute(sa.select(sa.func.count()).select_from(stress_scenario))).scalar_one()
    return int(count)
