"""The contract's local overrides of WG_SETTINGS come from one table (shared.settings.OVERRIDES)."""

from __future__ import annotations

import pytest

from shared import constants as c
from shared import settings
from tests.conftest import settings_json


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(c.ENV_SETTINGS, settings_json())
    for key, _ in settings.OVERRIDES.values():
        monkeypatch.delenv(key, raising=False)
    settings.reset()
    yield monkeypatch
    settings.reset()


def test_without_overrides_the_settings_are_cdk_jsons(configured) -> None:
    got = settings.get_settings()
    assert got.graph_api_url.startswith("http") and not got.graph_api_url.endswith("/")
    assert got.phone_number_ids and got.retry_base_seconds > 0


@pytest.mark.parametrize(
    ("key", "raw", "field", "value"),
    [
        (c.ENV_RETRY_BASE_SECONDS, "1", "retry_base_seconds", 1.0),
        (c.ENV_RETRY_BASE_SECONDS, "0", "retry_base_seconds", 0.0),  # a set zero is a value, not unset
        (c.ENV_GRAPH_API_URL, "http://127.0.0.1:9/", "graph_api_url", "http://127.0.0.1:9"),
        (c.ENV_GRAPH_API_VERSION, "v99.0", "graph_api_version", "v99.0"),
        (c.ENV_PHONE_NUMBER_ID, " 111, 222,111 ", "phone_number_ids", ("111", "222")),
    ],
)
def test_each_override_wins_when_set(configured, key: str, raw: str, field: str, value: object) -> None:
    configured.setenv(key, raw)
    assert getattr(settings.get_settings(), field) == value


def test_an_empty_number_list_keeps_the_configured_numbers(configured) -> None:
    configured_numbers = settings.get_settings().phone_number_ids
    settings.reset()
    configured.setenv(c.ENV_PHONE_NUMBER_ID, " , ")
    assert settings.get_settings().phone_number_ids == configured_numbers


def test_every_override_names_a_settings_field_and_a_contract_variable() -> None:
    fields = set(settings.Settings.__dataclass_fields__)
    assert set(settings.OVERRIDES) <= fields
    assert all(key.startswith("WA_") for key, _ in settings.OVERRIDES.values())


def test_the_marketing_cap_parses_n_per_d_days() -> None:
    from shared.settings import ConfigurationError, parse_cap

    assert parse_cap("3/7") == (3, 7)
    assert parse_cap("0/7") is None and parse_cap("none") is None
    for bad in ("3/0", "-1/7", "x/7"):
        with pytest.raises((ConfigurationError, ValueError)):
            parse_cap(bad)
