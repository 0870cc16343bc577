"""Marketdata settings: provider selection, unprefixed API keys, scheduler default per mode."""

from __future__ import annotations

from datetime import date

import pytest

from marketdata.providers import build_provider
from marketdata.providers.fixture import FixtureProvider
from marketdata.providers.yfinance_provider import YFinanceProvider
from marketdata.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MARKETDATA_PROVIDER", "MARKETDATA_FIXTURE_END_DATE", "MARKETDATA_SCHEDULER_ENABLED", "POLYGON_API_KEY",
        "FMP_API_KEY", "FRED_API_KEY", "SIGMASIGHT_MODE",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_without_configuration_the_offline_fixture_is_used() -> None:
    settings = Settings(_env_file=None)
    assert settings.provider_name == "fixture" and settings.fixture_mode
    assert settings.fixture_end_date == date(2026, 11, 24)
    provider = build_provider(settings)
    assert isinstance(provider, FixtureProvider) and provider.name == "fixture"


def test_provider_and_fixture_end_date_come_from_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETDATA_PROVIDER", "yfinance")
    monkeypatch.setenv("MARKETDATA_FIXTURE_END_DATE", "2026-11-20")
    settings = Settings(_env_file=None)
    assert settings.provider_name == "yfinance" and not settings.fixture_mode
    assert settings.fixture_end_date == date(2026, 11, 20)
    assert isinstance(build_provider(settings), YFinanceProvider)
    monkeypatch.setenv("MARKETDATA_PROVIDER", "")
    assert Settings(_env_file=None).provider_name == "fixture"


def test_api_keys_are_read_unprefixed_and_only_mark_providers_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYGON_API_KEY", "pk")
    monkeypatch.setenv("FRED_API_KEY", "fk")
    settings = Settings(_env_file=None)
    assert settings.live_keys == {"polygon": True, "fmp": False, "fred": True}
    assert settings.provider_name == "fixture"  # no Polygon/FRED client in v1


def test_scheduler_defaults_to_on_in_allinone_and_off_in_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None, mode="allinone").scheduler_on is True
    assert Settings(_env_file=None, mode="distributed").scheduler_on is False
    monkeypatch.setenv("MARKETDATA_SCHEDULER_ENABLED", "true")
    assert Settings(_env_file=None, mode="distributed").scheduler_on is True
