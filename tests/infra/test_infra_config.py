"""WaguardConfig: the cdk.json settings are validated before anything is built."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.application import CDK_JSON, build_app
from infra.config import CONTEXT_KEY, ConfigError, WaguardConfig, load_cdk_context
from lambdas.shared import constants as c

pytestmark = pytest.mark.xdist_group("infra")
ROOT = Path(__file__).resolve().parents[2]


def raw() -> dict[str, Any]:
    return copy.deepcopy(load_cdk_context(CDK_JSON)[CONTEXT_KEY])


def with_retention(**days: int) -> dict[str, Any]:
    settings = raw()
    settings["retentionDays"].update(days)
    return settings


def test_cdk_json_is_valid() -> None:
    cfg = WaguardConfig.from_cdk_json(CDK_JSON)
    assert cfg.region in cfg.allowed_regions


def test_region_outside_allow_list_is_refused() -> None:
    settings = raw()
    settings["region"] = "us-east-1"
    with pytest.raises(ConfigError, match=r"region 'us-east-1' is not in allowedRegions"):
        WaguardConfig.from_context(settings)


def test_build_app_refuses_region_before_building_a_stack() -> None:
    with pytest.raises(ConfigError, match="allowedRegions"):
        build_app(None, {"region": "ap-southeast-2"}, checks=False)


def test_synth_exits_with_clear_error_for_region_outside_allow_list(tmp_path: Path) -> None:
    settings = raw()
    settings["region"] = "us-west-2"
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({CONTEXT_KEY: settings}),
        "CDK_OUTDIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "region 'us-west-2' is not in allowedRegions" in done.stderr
    assert not (tmp_path / "Waguard.template.json").exists()


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ({"messages": 0}, r"retentionDays.messages=0 is outside 1..3650"),
        ({"messages": 3651}, r"retentionDays.messages=3651 is outside 1..3650"),
        ({"audit": -5}, r"retentionDays.audit=-5 is outside"),
        ({"idempotency": 8}, r"retentionDays.idempotency=8 is outside 1..7"),
        ({"operational": 30}, r"retentionDays.operational=30 is outside 1..7"),
        ({"consent": 30}, r"consent must be >= retentionDays.messages"),
        ({"suppression": 364}, r"suppression must be at least 365"),
        ({"keys": 2000}, r"'keys' is computed"),
        ({"chats": 10}, r"unknown \['chats'\]"),
    ],
)
def test_retention_bounds_are_enforced(days: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WaguardConfig.from_context(with_retention(**days))


def test_missing_data_class_is_refused() -> None:
    settings = raw()
    del settings["retentionDays"]["statuses"]
    with pytest.raises(ConfigError, match=r"missing \['statuses'\]"):
        WaguardConfig.from_context(settings)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("sendRatePerSecond", 0, "sendRatePerSecond"),
        ("sendRatePerSecond", 1001, "sendRatePerSecond"),
        ("logRetentionDays", 100, "logRetentionDays"),
        ("logRetentionDays", 30, "at least 365"),
        ("graphApiUrl", "http://graph.facebook.com", "graphApiUrl"),
        ("graphApiVersion", "25", "graphApiVersion"),
        ("stage", "prod stage", "stage"),
        ("maxSendAttempts", 0, "maxSendAttempts"),
        ("unknownSetting", 1, "unknownSetting"),
    ],
)
def test_other_bounds(key: str, value: Any, message: str) -> None:
    settings = raw()
    settings[key] = value
    with pytest.raises(ConfigError, match=message):
        WaguardConfig.from_context(settings)


def test_missing_context_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no 'waguard' object"):
        WaguardConfig.from_context(None)


def test_keys_retention_is_max_plus_seven() -> None:
    cfg = WaguardConfig.from_context(with_retention(consent=2000, suppression=1500))
    assert cfg.retention[c.CLASS_KEYS] == 2007
    base = WaguardConfig.from_cdk_json(CDK_JSON)
    assert base.retention[c.CLASS_KEYS] == max(base.retention_days.values()) + 7


def test_settings_json_has_the_design_shape() -> None:
    settings = raw()
    cfg = WaguardConfig.from_context(settings)
    out = json.loads(cfg.settings_json())
    assert set(out) == {
        "retention_days",
        "keep",
        "opt_out_keywords",
        "opt_in_keywords",
        "stop_confirmation",
        "service_window_hours",
        "send_rate_per_second",
        "max_send_attempts",
        "retry_base_seconds",
        "graph_api_url",
        "graph_api_version",
        "phone_numbers",
        "business_account_id",
        "privacy_law",
        "privacy_notice",
        "campaign_rate_per_second",
        "marketing_frequency_cap",
    }
    assert out["campaign_rate_per_second"] == settings["campaignRatePerSecond"] == 40
    assert out["marketing_frequency_cap"] is None
    assert set(out["retention_days"]) == set(c.DATA_CLASSES)
    assert {k: v for k, v in out["retention_days"].items() if k != c.CLASS_KEYS} == settings["retentionDays"]
    assert out["keep"] == {"profile_name": False, "contact_cards": False, "locations": False}
    assert out["opt_out_keywords"] == settings["optOutKeywords"]
    assert "ARRÊT" in out["opt_out_keywords"]
    assert out["opt_in_keywords"] == ["START", "UNSTOP"]
    assert out["stop_confirmation"] == settings["stopConfirmationText"]
    assert out["send_rate_per_second"] == settings["sendRatePerSecond"]
    assert out["max_send_attempts"] == settings["maxSendAttempts"]
    assert out["retry_base_seconds"] == settings["retryBaseSeconds"]
    assert out["graph_api_url"] == settings["graphApiUrl"]
    assert out["graph_api_version"] == settings["graphApiVersion"]
    assert out["phone_numbers"] == settings["phoneNumbers"]
    assert out["business_account_id"] == settings["businessAccountId"]
    assert out["service_window_hours"] == 24
    assert cfg.settings_json().isascii()


def test_runtime_settings_parse_what_infra_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import settings as runtime

    monkeypatch.setenv(c.ENV_SETTINGS, WaguardConfig.from_cdk_json(CDK_JSON).settings_json())
    for key in (
        c.ENV_GRAPH_API_URL,
        c.ENV_GRAPH_API_VERSION,
        c.ENV_PHONE_NUMBER_ID,
        c.ENV_RETRY_BASE_SECONDS,
    ):
        monkeypatch.delenv(key, raising=False)
    runtime.reset()
    try:
        parsed = runtime.get_settings()
        assert parsed.retention_days[c.CLASS_KEYS] == WaguardConfig.from_cdk_json(CDK_JSON).retention["keys"]
        assert "ARRÊT" in parsed.opt_out_keywords
    finally:
        runtime.reset()


def test_privacy_settings_and_the_privacy_requests_retention() -> None:
    """Issue 24: `privacyRequests` defaults to 1095 days when cdk.json predates it; `privacyLaw` is gdpr or
    ccpa; `privacyNotice` reaches the runtime with its version."""
    settings = raw()
    del settings["retentionDays"]["privacyRequests"]
    assert WaguardConfig.from_context(settings).retention[c.CLASS_PRIVACY_REQUESTS] == 1095
    settings["retentionDays"]["privacyRequests"] = 730
    settings["privacyNotice"] = {"version": "v3", "text": "How we use your data: https://example.com/p"}
    settings["privacyLaw"] = "ccpa"
    out = json.loads(WaguardConfig.from_context(settings).settings_json())
    assert out["retention_days"]["privacyRequests"] == 730
    assert out["privacy_law"] == "ccpa" and out["privacy_notice"] == settings["privacyNotice"]
    settings["privacyLaw"] = "lgpd"
    with pytest.raises(ConfigError, match="privacyLaw"):
        WaguardConfig.from_context(settings)
