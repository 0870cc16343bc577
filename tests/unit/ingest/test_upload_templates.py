"""CSV templates (api.md #65): example rows pass validation on any download date."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from ingest.csv_format import CheckContext, Security, SecurityLookup, validate
from ingest.upload_templates import TEMPLATES, file_name, monthly_expiry, render, third_friday

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "csv"


def lookup() -> SecurityLookup:
    doc = json.loads((FIXTURES / "demo_security_master.json").read_text())
    secs = {
        s["symbol"]: Security(s["symbol"], s["security_type"], s["sector"], s["industry"]) for s in doc["securities"]
    }
    return SecurityLookup(secs, doc["aliases"], frozenset(secs))


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("today", [date(2026, 11, 25), date(2027, 7, 1), date(2031, 2, 28)])
def test_template_rows_pass_validation(name: str, today: date) -> None:
    text = render(name, today)
    lines = text.strip().split("\n")
    assert lines[0] == "ticker,quantity,entry_price,entry_date,tags"
    assert 2 <= len(lines) - 1 <= 4
    result = validate(text.encode(), CheckContext(upload_date=today), lookup())
    errors = [i for i in result.issues if i.severity == "error"]
    assert errors == [] and result.rows_valid == len(lines) - 1


def test_on_the_demo_date_the_options_template_uses_the_demo_contracts_without_warnings() -> None:
    text = render("options", date(2026, 11, 25))
    assert "TSLA270820C00300000" in text and "SPY270917C00460000" in text and "MSFT270917P00380000" in text
    result = validate(text.encode(), CheckContext(upload_date=date(2026, 11, 25)), lookup())
    assert result.issues == []
    assert result.positions_by_type() == {"LONG": 1, "SHORT": 0, "LC": 1, "LP": 0, "SC": 1, "SP": 1}


def test_expiries_roll_forward_by_whole_years_to_stay_60_days_out() -> None:
    assert third_friday(2027, 8) == date(2027, 8, 20) and third_friday(2027, 9) == date(2027, 9, 17)
    assert monthly_expiry(date(2027, 7, 1), 8) == date(2028, 8, 18)
    assert monthly_expiry(date(2027, 6, 1), 8) == date(2027, 8, 20)
    assert file_name("long_short") == "sigmasight_long_short_template.csv"
