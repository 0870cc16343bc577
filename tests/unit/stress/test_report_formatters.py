"""Report formatters (users.md §4): the Markdown keeps the seven headings in order and shows the JSON's
numbers, the CSV has the §4.7 header and sums to the JSON totals, the what-changed split adds up, a
missing engine reads "Not available", and the PDF opens with one image per chart and the same numbers."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pypdf
import pytest
from tests.unit.stress.report_builders import report_inputs

from stress.reports import markdown
from stress.reports.positions_table import CSV_COLUMNS
from stress.reports.render import build_files, file_name, slug

GENERATED = datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC)
ALL = ("summary", "exposures", "positions", "greeks", "factors", "correlations", "stress", "performance")


def files_of(formats: tuple[str, ...], sections: tuple[str, ...] = ALL, **overrides: object) -> dict[str, bytes]:
    _, made = build_files(report_inputs(**overrides), formats, sections, GENERATED)
    return {f.file_name.rsplit(".", 1)[1]: f.data for f in made}


def usd(value: str) -> str:
    """A JSON money string as the Markdown writes it."""
    d = Decimal(value)
    return f"{'-' if d < 0 else ''}${abs(d):,.2f}"


def test_file_names_follow_the_portfolio_slug_and_date() -> None:
    assert slug("Demo High Net Worth Investor Portfolio") == "demo-high-net-worth-investor-portfolio"
    assert file_name("Demo Long/Short Book", "json", "2026-11-24") == "demo-long-short-book_data_2026-11-24.json"
    _, made = build_files(report_inputs(), ("md", "json", "csv"), ALL, GENERATED)
    assert [(f.file_name, f.content_type) for f in made] == [
        ("demo-long-short-book_report_2026-11-24.md", "text/markdown"),
        ("demo-long-short-book_data_2026-11-24.json", "application/json"),
        ("demo-long-short-book_positions_2026-11-24.csv", "text/csv"),
    ]


def test_markdown_keeps_the_seven_headings_in_order_and_states_fixture_data_first() -> None:
    text = files_of(("md",))["md"].decode()
    assert text.splitlines()[0] == markdown.FIXTURE_LINE
    positions = [text.index(f"\n## {h}\n") for h in markdown.HEADINGS]
    assert positions == sorted(positions)
    narrow = files_of(("md",), ("summary",))["md"].decode()
    assert all(f"\n## {h}\n" in narrow for h in markdown.HEADINGS)
    assert "section not requested" in narrow


def test_live_report_does_not_claim_fixture_data() -> None:
    text = files_of(("md",), data_source="live")["md"].decode()
    assert text.startswith("# Portfolio report: Demo Long/Short Book") and "Fixture" not in text


def test_markdown_headline_numbers_equal_the_json() -> None:
    out = files_of(("md", "json"))
    doc, text = orjson.loads(out["json"]), out["md"].decode()
    ex = doc["exposures"]["exposure"]
    assert doc["portfolio"]["equity"] == "75000.00" and ex["gross"] == "190000.00" and ex["net"] == "110000.00"
    assert f"- Equity: {usd(doc['portfolio']['equity'])}" in text
    assert f"- Gross exposure: {usd(ex['gross'])}; net exposure: {usd(ex['net'])}" in text
    assert f"- Portfolio beta vs SPY: {doc['risk_metrics']['portfolio_beta']:.4f}" in text
    for side in ("long", "short", "gross", "net"):
        assert usd(doc["exposures"]["market_value"][side]) in text
    # Fractions of equity rounded as GET /api/v1/portfolio does (4 dp).
    assert ex["gross_pct"] == pytest.approx(190000 / 75000, abs=5e-5) and ex["net_pct"] == 1.4667


def test_csv_has_the_documented_header_one_row_per_position_and_matches_the_json() -> None:
    out = files_of(("csv", "json"))
    doc = orjson.loads(out["json"])
    rows = list(csv.DictReader(io.StringIO(out["csv"].decode())))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == doc["portfolio"]["position_count"] == 3
    gross = sum(abs(Decimal(r["dollar_exposure"])) for r in rows)
    assert gross == Decimal(doc["exposures"]["exposure"]["gross"])
    assert sum(Decimal(r["market_value"]) for r in rows) == Decimal(doc["exposures"]["market_value"]["net"])
    stock = next(r for r in rows if r["symbol"] == "AAA")
    assert stock["delta"] == "" and stock["strike_price"] == "" and stock["tags"] == "Core"
    option = next(r for r in rows if r["position_type"] == "LC")
    assert (
        option["option_type"] == "call" and option["days_to_expiry"] == "20" and option["strategy_tag"] == "AAA overlay"
    )


def test_what_changed_splits_add_up_to_each_change() -> None:
    doc = orjson.loads(files_of(("json",))["json"])
    rows = {m["metric"]: m for m in doc["changes"]["metrics"]}
    for name in ("equity", "net_market_value", "net_exposure", "gross_exposure", "beta_adjusted_exposure"):
        row = rows[name]
        assert sum(Decimal(v) for v in row["parts"].values()) == Decimal(row["change"]), name
    # AAA 800 → 1000 shares at 98 → 100, BBB −500 at 81 → 80, 10 calls opened (MV 5,000; exposure 50,000).
    assert rows["equity"]["parts"] == {"market": "2100.00", "other": "0.00", "positions": "25000.00"}
    assert rows["net_exposure"]["parts"] == {"market": "2100.00", "positions": "70000.00"}
    assert rows["beta_adjusted_exposure"]["parts"] == {
        "market": "2360.00",
        "beta_update": "8000.00",
        "positions": "84000.00",
    }
    assert rows["var_95_1d"]["parts"] is None and rows["var_95_1d"]["change"] == "500.00"
    assert doc["changes"]["positions_opened"] == 1 and doc["changes"]["from_date"] == "2026-11-23"


def test_a_missing_engine_reads_not_available_with_its_reason() -> None:
    out = files_of(("md", "json"), correlation=None, stress_run=None, stress_results=[])
    doc, text = orjson.loads(out["json"]), out["md"].decode()
    assert doc["data_quality"]["engines"]["correlations"]["status"] == "missing"
    assert doc["correlations"] is None and doc["risk_metrics"]["average_correlation"] is None
    section = text[text.index("### Correlations") : text.index("### Value at risk")]
    assert "Not available: no position correlations calculated" in section
    assert "Not available: no stress run stored for 2026-11-24" in text


def test_attention_flags_carry_the_number_behind_them() -> None:
    doc = orjson.loads(files_of(("json",))["json"])
    flags = {(f["rule"], f["message"].split()[0]) for f in doc["attention_flags"]}
    assert ("option_expiry", "AAA261218C00100000") in flags and ("position_concentration", "AAA") in flags
    expiry = next(f for f in doc["attention_flags"] if f["rule"] == "option_expiry")
    assert expiry["value"] == 20 and expiry["threshold"] == 30


def test_pdf_opens_with_one_image_per_chart_and_the_json_numbers() -> None:
    out = files_of(("pdf", "json"))
    doc = orjson.loads(out["json"])
    reader = pypdf.PdfReader(io.BytesIO(out["pdf"]))
    images = {
        ref.idnum
        for page in reader.pages
        for ref in (page["/Resources"].get("/XObject") or {}).values()
        if ref.get_object().get("/Subtype") == "/Image"
    }
    assert len(images) == 4  # exposure breakdown, factor exposures, stress results, history
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert text.splitlines()[0] == markdown.FIXTURE_LINE.strip("*")
    for value in (
        doc["portfolio"]["equity"],
        doc["exposures"]["exposure"]["gross"],
        doc["exposures"]["exposure"]["net"],
        *(f["exposure_dollar"] for f in doc["factor_exposures"]),
        *(s["correlated_impact"] for s in doc["stress_tests"] if s["correlated_impact"]),
    ):
        assert usd(value) in text, value
    for heading in markdown.HEADINGS:
        assert re.search(rf"^{re.escape(heading)}$", text, re.MULTILINE), heading
