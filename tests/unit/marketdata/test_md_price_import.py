"""#76 file validation: all or nothing, with a row-level report (pure, no database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from marketdata.price_import import MAX_REPORTED_ERRORS, ImportRejected, parse_price_csv

TODAY = date(2026, 11, 25)


def _parse(text: str, source: str = "file"):
    return parse_price_csv(text.encode(), today=TODAY, source=source)


def _errors(text: str) -> list[dict]:
    with pytest.raises(ImportRejected) as info:
        _parse(text)
    return info.value.report.details()


def test_a_clean_file_becomes_copy_records_with_case_insensitive_headers() -> None:
    parsed = _parse(
        "Symbol,DATE,Close,Open,High,Low,Volume,Implied_Volatility,Dividend\n"
        "brk.b,2026-11-23,439.12,440.70,442.18,438.44,3102900,,\n"
        "ACME,2026-11-24,10.123456,,,,,0.45,0.25\n"
    )
    assert parsed.symbols == ["ACME", "BRK-B"]
    assert (parsed.first_date, parsed.last_date) == (date(2026, 11, 23), date(2026, 11, 24))
    assert parsed.has_dividends
    brk, acme = parsed.records
    assert brk == (
        "BRK-B", date(2026, 11, 23), Decimal("440.7000"), Decimal("442.1800"), Decimal("438.4400"),
        Decimal("439.1200"), Decimal("439.1200"), 3102900, None, None, "file",
    )  # fmt: skip
    # 4-dp prices (half-even), close used as adjusted close, IV as a fraction, dividend per share
    assert acme[5] == Decimal("10.1235") and acme[6] == Decimal("10.1235")
    assert acme[8] == 0.45 and acme[9] == Decimal("0.250000")


def test_every_problem_is_reported_with_its_row_and_nothing_is_accepted() -> None:
    details = _errors(
        "symbol,date,close,high,low,volume,implied_volatility,colour\n"
        "AAPL,2026-11-20,225,226,224,100,0.3,red\n"  # row 2: fine apart from the unknown column
        "AAPL,2026-11-20,225,226,224,100,0.3,red\n"  # row 3: duplicate (symbol, date)
        "AAPL,2026-13-01,225,,,,,\n"  # row 4: bad date
        "MSFT,2026-11-30,420,,,,,\n"  # row 5: future
        "MSFT,2026-11-20,-1,,,,,\n"  # row 6: non-positive price
        "MSFT,2026-11-19,abc,,,,,\n"  # row 7: not a number
        ",2026-11-19,1,,,,,\n"  # row 8: missing symbol
        "NVDA,2026-11-19,700,690,710,12.5,,\n"  # row 9: high < low, fractional volume
        "NVDA,2026-11-18,700,,,,-0.2,\n"  # row 10: IV out of range
        "NVDA,2026-11-17,,,,,,\n"  # row 11: close missing
        "1BAD,2026-11-17,5,,,,,\n"  # row 12: malformed symbol
    )
    found = {(d["row"], d["field"]) for d in details}
    assert (1, "colour") in found
    assert (3, "date") in found
    assert (4, "date") in found
    assert (5, "date") in found
    assert (6, "close") in found
    assert (7, "close") in found
    assert (8, "symbol") in found
    assert (9, "high") in found and (9, "volume") in found
    assert (10, "implied_volatility") in found
    assert (11, "close") in found
    assert (12, "symbol") in found
    assert not any(d["row"] == 2 for d in details)
    by_key = {(d["row"], d["field"]): d for d in details}
    assert by_key[(3, "date")]["issue"] == "duplicate (symbol, date): first seen on row 2"
    assert by_key[(6, "close")]["value"] == "-1"
    assert "future" in by_key[(5, "date")]["issue"]
    assert [d["row"] for d in details] == sorted(d["row"] for d in details)  # file order


def test_missing_required_columns_and_duplicate_columns_are_header_errors() -> None:
    details = _errors("Symbol,Close,close\nAAPL,1,2\n")
    assert {(d["row"], d["field"], d["issue"]) for d in details} >= {
        (1, "date", "required column is missing"),
        (1, "close", "duplicate column"),
    }


def test_duplicates_are_detected_after_canonicalisation() -> None:
    details = _errors("symbol,date,close\nBRK.B,2026-11-20,440\nbrk-b,2026-11-20,441\n")
    assert details == [
        {
            "row": 3,
            "field": "date",
            "issue": "duplicate (symbol, date): first seen on row 2",
            "value": "BRK-B 2026-11-20",
        }
    ]


@pytest.mark.parametrize(
    ("content", "issue"),
    [
        (b"", "the file is empty"),
        (b"symbol,date,close\n", "the file has no data rows"),
        (b"\xff\xfe\x00bad", "not UTF-8 text"),
    ],
)
def test_unreadable_files_are_rejected(content: bytes, issue: str) -> None:
    with pytest.raises(ImportRejected) as info:
        parse_price_csv(content, today=TODAY, source="file")
    assert any(issue in d["issue"] for d in info.value.report.details())


def test_the_report_is_capped_and_says_how_many_errors_were_left_out() -> None:
    rows = "".join(f"AAPL,2026-11-{(i % 20) + 1:02d},-{i + 1}\n" for i in range(MAX_REPORTED_ERRORS + 50))
    with pytest.raises(ImportRejected) as info:
        _parse("symbol,date,close\n" + rows)
    details = info.value.report.details()
    assert len(details) == MAX_REPORTED_ERRORS + 1
    assert details[-1]["field"] == "file" and "more error(s) not listed" in details[-1]["issue"]
    assert info.value.report.total > MAX_REPORTED_ERRORS


def test_source_label_is_stored_on_every_record() -> None:
    parsed = _parse("symbol,date,close\nAAPL,2026-11-24,225\n", source="vendor_x")
    assert parsed.records[0][-1] == "vendor_x"
