"""Request bodies of the ProForma routes (api.md #53-#58, the suggestions route of §6 row 14).

Money, prices and quantities accept a JSON string or number (api.md §2.7); unknown fields are rejected.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_TRADES_PER_REQUEST = 50
Side = Literal["buy", "sell", "short", "cover"]
Action = Literal["reduce", "increase", "close"]
Goal = Literal["neutralize_beta", "neutralize_factor", "reduce_stress_loss", "reduce_delta"]

Quantity = Field(None, gt=0, max_digits=18, decimal_places=4, description="> 0 shares or contracts (qty)")


class CreateSessionRequest(BaseModel):
    """#53 body."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"portfolio_id": None, "name": "Hedge the beta"}]}
    )

    portfolio_id: UUID | None = Field(None, description="Default: the caller's default portfolio")
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2000)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class TradeRequest(BaseModel):
    """One hypothetical trade (#55): a ticker or option contract with a side, or a base position with an action."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"ticker": "QQQ", "side": "short", "amount": 250000, "tag": "Index Hedge"},
                {"position_id": "0b8e6f3e-3a53-5d0f-9a55-0c6a2f0e9d11", "action": "reduce", "quantity": 300},
                {"ticker": "SPY271217P00500000", "side": "buy", "quantity": 10},
                {
                    "underlying": "SPY",
                    "option_type": "P",
                    "strike_price": 500,
                    "expiration_date": "2027-12-17",
                    "side": "buy",
                    "quantity": 10,
                },
            ]
        },
    )

    ticker: str | None = Field(None, min_length=1, max_length=32, description="Stock ticker or OCC option symbol")
    underlying: str | None = Field(None, min_length=1, max_length=12, description="Option by its fields: underlying")
    option_type: Literal["C", "P"] | None = None
    strike_price: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=3)
    expiration_date: date | None = None
    side: Side | None = Field(None, description="With a ticker: buy | sell (reduces a long) | short | cover")
    quantity: Decimal | None = Quantity
    amount: Decimal | None = Field(
        None, gt=0, max_digits=20, decimal_places=2, description="Target |market value| in USD; sized down"
    )
    price: Decimal | None = Field(
        None, gt=0, max_digits=18, decimal_places=4, description="Default: latest close (options: model price)"
    )
    position_id: UUID | None = Field(None, description="A position of the session (from the base portfolio)")
    action: Action | None = Field(None, description="With position_id: reduce | increase (alias add) | close")
    tags: list[str] | None = Field(None, max_length=20)
    tag: str | None = Field(None, min_length=1, max_length=60)
    note: str | None = Field(None, max_length=255)

    @field_validator("side", "action", "option_type", mode="before")
    @classmethod
    def _case(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        lowered = value.strip().lower()
        return {"add": "increase"}.get(lowered, lowered) if lowered not in ("c", "p") else lowered.upper()

    @model_validator(mode="after")
    def _shape(self) -> TradeRequest:
        option_fields = (self.underlying, self.option_type, self.strike_price, self.expiration_date)
        structured = any(v is not None for v in option_fields)
        forms = sum([self.ticker is not None, structured, self.position_id is not None])
        if forms != 1:
            raise ValueError("give exactly one of ticker, the option fields, or position_id")
        if structured and any(v is None for v in option_fields):
            raise ValueError("an option by its fields needs underlying, option_type, strike_price and expiration_date")
        if self.position_id is not None:
            if self.action is None or self.side is not None:
                raise ValueError("a trade on position_id takes an action (reduce | increase | close), not a side")
        elif self.side is None or self.action is not None:
            raise ValueError("a trade on a ticker takes a side (buy | sell | short | cover), not an action")
        sized = (self.quantity is not None) + (self.amount is not None)
        if self.action == "close":
            if sized:
                raise ValueError("close takes neither quantity nor amount")
        elif sized != 1:
            raise ValueError("give exactly one of quantity or amount")
        return self

    def tag_names(self) -> list[str]:
        """`tags` and `tag` together, in order, without repeats."""
        names = [*(self.tags or []), *([self.tag] if self.tag else [])]
        return list(dict.fromkeys(n.strip() for n in names if n.strip()))


class TradeBatchRequest(BaseModel):
    """#55 body with several trades (all or nothing)."""

    model_config = ConfigDict(extra="forbid")

    trades: list[TradeRequest] = Field(min_length=1, max_length=MAX_TRADES_PER_REQUEST)


class CalculateRequest(BaseModel):
    """#56 body (optional)."""

    model_config = ConfigDict(extra="forbid")

    as_of_date: date | None = Field(None, description="Factor model and market data date; default: the base date")


class SaveRequest(BaseModel):
    """#58 body (optional)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2000)


class SuggestionRequest(BaseModel):
    """Body of POST /modeling/sessions/{id}/suggestions (api.md §6 row 14)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"goal": "neutralize_beta"},
                {"goal": "neutralize_factor", "factor": "size"},
                {"goal": "reduce_stress_loss", "target_pct": 0.5},
                {"goal": "reduce_delta", "underlying": "NVDA", "target_pct": 1.0},
            ]
        },
    )

    goal: Goal
    factor: str | None = Field(None, description="neutralize_factor: a factor code with an ETF proxy")
    scenario_id: str | None = Field(None, description="reduce_stress_loss: default the worst scenario")
    underlying: str | None = Field(None, description="reduce_delta: hedge one underlying with its own stock")
    target_pct: float | None = Field(
        None, gt=0, le=1, description="Fraction to remove: default 1 (neutralise), 0.5 for reduce_stress_loss"
    )

    @model_validator(mode="after")
    def _goal_fields(self) -> SuggestionRequest:
        if (self.goal == "neutralize_factor") != (self.factor is not None):
            raise ValueError("factor is required for neutralize_factor and only allowed there")
        if self.scenario_id is not None and self.goal != "reduce_stress_loss":
            raise ValueError("scenario_id only applies to reduce_stress_loss")
        if self.underlying is not None and self.goal != "reduce_delta":
            raise ValueError("underlying only applies to reduce_delta")
        return self
