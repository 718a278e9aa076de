"""Business numbers in cdk.json (issue 17): `phoneNumbers` [{id, label}], the first the default; the older
single `phoneNumberId` still accepted; what the runtime reads from them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.application import CDK_JSON
from infra.config import CONTEXT_KEY, ConfigError, WaguardConfig, load_cdk_context
from lambdas.shared import constants as c

pytestmark = pytest.mark.xdist_group("infra")


def raw(**changes: Any) -> dict[str, Any]:
    settings = copy.deepcopy(load_cdk_context(CDK_JSON)[CONTEXT_KEY])
    settings.pop("phoneNumbers", None)
    settings.pop("phoneNumberId", None)
    settings.update(changes)
    return settings


TWO = [{"id": "111000111000111", "label": "support"}, {"id": "222000222000222", "label": "sales"}]


def test_several_numbers_first_is_default_and_the_runtime_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import settings as runtime

    cfg = WaguardConfig.from_context(raw(phoneNumbers=TWO))
    assert cfg.business_numbers == ("111000111000111", "222000222000222")
    assert [n.label for n in cfg.phone_numbers] == ["support", "sales"]
    monkeypatch.setenv(c.ENV_SETTINGS, cfg.settings_json())
    monkeypatch.delenv(c.ENV_PHONE_NUMBER_ID, raising=False)
    runtime.reset()
    try:
        parsed = runtime.get_settings()
    finally:
        runtime.reset()
    assert parsed.phone_number_ids == ("111000111000111", "222000222000222")
    assert parsed.phone_number_id == "111000111000111"


def test_the_older_single_phone_number_id_is_still_accepted() -> None:
    cfg = WaguardConfig.from_context(raw(phoneNumberId="333000333000333"))
    assert cfg.business_numbers == ("333000333000333",)
    assert cfg.settings().phone_numbers[0].id == "333000333000333"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({}, "phoneNumbers lists at least one"),
        ({"phoneNumbers": []}, "phoneNumbers lists at least one"),
        ({"phoneNumbers": TWO, "phoneNumberId": "1"}, "not both"),
        ({"phoneNumbers": [TWO[0], {"id": TWO[0]["id"], "label": "again"}]}, "each id once"),
        ({"phoneNumbers": [{"id": "12 34", "label": "x"}]}, "phoneNumbers.0.id"),
    ],
)
def test_bad_number_lists_are_refused_naming_the_key(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        WaguardConfig.from_context(raw(**changes))


def test_a_local_comma_separated_list_overrides_and_a_settings_document_of_one_number_parses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared import settings as runtime
    from shared.settings_contract import SettingsDocument

    doc = WaguardConfig.from_context(raw(phoneNumbers=TWO)).settings().model_dump(mode="json")
    doc.pop("phone_numbers")
    doc["phone_number_id"] = "444000444000444"  # a document written before several numbers
    assert [n.id for n in SettingsDocument.model_validate(doc).phone_numbers] == ["444000444000444"]
    monkeypatch.setenv(c.ENV_SETTINGS, WaguardConfig.from_context(raw(phoneNumbers=TWO)).settings_json())
    monkeypatch.setenv(c.ENV_PHONE_NUMBER_ID, " 555, 666 ,555,")
    runtime.reset()
    try:
        assert runtime.get_settings().phone_number_ids == ("555", "666")
    finally:
        runtime.reset()
