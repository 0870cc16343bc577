"""The handles every marketdata module works with (built once in main.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from common.bus import Bus
from common.db import Database
from common.service import Plumbing
from marketdata.history_memo import AmpleHistory
from marketdata.settings import Settings

if TYPE_CHECKING:
    from marketdata.providers.base import MarketDataProvider


@dataclass
class MarketDataContext:
    """Settings, database, bus, plumbing, the configured price provider and what this process
    learnt about stored price history (`AmpleHistory`)."""

    settings: Settings
    db: Database
    bus: Bus
    plumbing: Plumbing
    provider: MarketDataProvider
    ample_history: AmpleHistory = field(default_factory=AmpleHistory)
