"""Report formatters (users.md §4): the Markdown keeps the seven headings in order and shows the JSON's
numbers, the CSV has the §4.7 header and sums to the JSON totals, the what-changed split adds up, a
missing engine reads "Not available", the correlations carry the stored clusters and the symmetric
pairwise matrix (top 3 clusters in the Markdown), and the PDF opens with one image per chart and the
same numbers."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pypdf
import pytest
from tests.unit.stress.report_builders import CALC_ID, cluster_member, report_inputs

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


def test_json_correlations_hold_the_stored_clusters_and_the_symmetric_matrix() -> None:
    c = orjson.loads(files_of(("json",))["json"])["correlations"]
    assert c["correlation_threshold"] == 0.7 and c["concentration_net"] == 0.578947
    assert c["clusters"] == [
        {
            "cluster_number": 1,
            "nickname": "Core",
            "nickname_source": "tag",
            "avg_correlation": 0.823456,
            "gross": "190000.00",
            "net": "110000.00",
            "share_of_gross": 1.0,
            "members": [
                {
                    "symbol": "AAA",
                    "exposure": "150000.00",
                    "share_of_gross": 0.7895,
                    "correlation_to_cluster": 0.823456,
                },
                {
                    "symbol": "BBB",
                    "exposure": "-40000.00",
                    "share_of_gross": 0.2105,
                    "correlation_to_cluster": 0.823456,
                },
            ],
        }
    ]
    assert c["matrix"] == {"symbols": ["AAA", "BBB"], "values": [[1.0, 0.823456], [0.823456, 1.0]]}


def test_matrix_is_in_code_point_order_with_null_for_short_overlaps() -> None:
    pairs = {
        "calculation_id": CALC_ID,
        "symbols_1": ["BRK-B", "BRK-B", "BRKA"],
        "symbols_2": ["BRKA", "QQQ", "QQQ"],
        "correlations": [0.9512345, None, -0.25],
    }
    c = orjson.loads(files_of(("json",), correlation_pairs=pairs)["json"])["correlations"]
    assert c["matrix"]["symbols"] == ["BRK-B", "BRKA", "QQQ"]
    assert c["matrix"]["values"] == [[1.0, 0.951234, None], [0.951234, 1.0, -0.25], [None, -0.25, 1.0]]
    empty = orjson.loads(files_of(("json",), correlation_pairs=None)["json"])["correlations"]
    assert empty["matrix"] == {"symbols": [], "values": []}


def four_clusters() -> list[dict]:
    """Four stored clusters of two members each, numbered by descending gross."""
    rows = []
    for n, (a, b, share) in enumerate(
        (("AAA", "BBB", 0.4), ("CCC", "DDD", 0.3), ("EEE", "FFF", 0.2), ("GGG", "HHH", 0.1)), 1
    ):
        extra = {
            "gross": Decimal(share * 500_000).quantize(Decimal("0.01")),
            "share_of_gross": share,
            "avg_correlation": 0.9 - n / 100,
        }
        rows += [
            cluster_member(n, f"Group {n}", a, "1000.00", share / 2, 0.8, **extra),
            cluster_member(n, f"Group {n}", b, "1000.00", share / 2, 0.8, **extra),
        ]
    return rows


def test_markdown_lists_the_top_three_clusters_with_their_members_and_the_json_numbers() -> None:
    out = files_of(("md", "json"), correlation_clusters=four_clusters())
    doc, text = orjson.loads(out["json"]), out["md"].decode()
    section = text[text.index("### Correlations") : text.index("### Value at risk")]
    assert "not available" not in section.lower()
    for k in doc["correlations"]["clusters"][:3]:
        members = ", ".join(m["symbol"] for m in k["members"])
        row = f"| {k['cluster_number']} | {k['nickname']} | {members} | {usd(k['gross'])} | {usd(k['net'])} | "
        assert row + f"{k['share_of_gross'] * 100:.2f}% | {k['avg_correlation']:.6f} |" in section
    assert "Group 4" not in section and "1 more cluster(s) in the JSON export" in section
    assert "matrix of the 2 included underlyings is in the JSON export" in section
    none = files_of(("md",), correlation_clusters=[])["md"].decode()
    assert "Top clusters: none (no group of 2 or more positions correlated at 0.70 or more)." in none


def test_each_cluster_above_a_quarter_of_the_book_raises_its_own_flag() -> None:
    doc = orjson.loads(files_of(("json",), correlation_clusters=four_clusters())["json"])
    flagged = [f for f in doc["attention_flags"] if f["rule"] == "correlation_clusters"]
    assert [(f["value"], f["threshold"]) for f in flagged] == [(0.4, 0.25), (0.3, 0.25)]
    assert flagged[0]["message"].startswith("correlation cluster 'Group 1' (AAA, BBB) holds 40.0% of the gross")
    missing = orjson.loads(files_of(("json",), correlation=None)["json"])
    assert not [f for f in missing["attention_flags"] if f["rule"] == "correlation_clusters"]


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
        *(k["gross"] for k in doc["correlations"]["clusters"]),
    ):
        assert usd(value) in text, value
    cluster = doc["correlations"]["clusters"][0]
    assert "Top clusters" in text and cluster["nickname"] in text and f"{cluster['avg_correlation']:.6f}" in text
    for heading in markdown.HEADINGS:
        assert re.search(rf"^{re.escape(heading)}$", text, re.MULTILINE), heading
