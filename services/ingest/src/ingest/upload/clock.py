"""The one place the upload and onboarding code reads the wall clock.

An upload's date is the US/Eastern calendar date it was received (csv-format.md §3.4), and the
onboarding checks price against the latest trading day on or before that date. Everything else
takes the date as an argument, so tests pin "today" by patching `eastern_today` here.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")


def eastern_today() -> date:
    """The US/Eastern calendar date now: the upload date of a file received now (csv-format.md §3.4)."""
    return datetime.now(EASTERN).date()
