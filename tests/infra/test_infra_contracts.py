"""The contracts between the stack and the runtime, each defined once: the `WG_SETTINGS` document infra
writes is the one the runtime parses, and every alarm on a custom metric watches a metric the runtime
emits, under the names in shared/constants.py."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import ROOT, WaguardConfig
from lambdas.shared import constants as c
from shared import settings
from shared.settings import ConfigurationError
from tests.infra.support import Synth

pytestmark = pytest.mark.xdist_group("infra")


def _metric_constants() -> dict[str, str]:
    return {k: v for k, v in vars(c).items() if k.startswith("METRIC_") and isinstance(v, str)}


def emitted_metrics() -> set[str]:
    """Metric names the runtime emits: the names in modules that call Powertools' `add_metric`, whether a
    literal, a dict key counted into it, or a `constants.METRIC_*` reference."""
    names: set[str] = set()
    known = _metric_constants()
    for path in (ROOT / "lambdas").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "add_metric"
        ]
        if not calls:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in known.values():
                names.add(str(node.value))
            if isinstance(node, ast.Attribute) and node.attr in known:
                names.add(known[node.attr])
    return names


def test_every_alarm_on_a_custom_metric_watches_a_metric_the_runtime_emits(synth: Synth) -> None:
    alarms = [
        r["Properties"]
        for r in synth.resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == c.METRICS_NAMESPACE
    ]
    watched = {a["MetricName"] for a in alarms}
    assert watched == {
        c.METRIC_GRAPH_AUTH_ERRORS,
        c.METRIC_GRAPH_THROTTLED,
        c.METRIC_UNKNOWN_BUSINESS_NUMBER,
        c.METRIC_AUDIT_FINDINGS,
        c.METRIC_PRIVACY_OVERDUE,
    }
    assert all(a["Dimensions"] == [{"Name": "service", "Value": c.SERVICE_NAME}] for a in alarms)
    emitted = emitted_metrics()
    assert watched <= emitted, f"alarmed but never emitted: {sorted(watched - emitted)}"
    assert set(_metric_constants().values()) <= emitted  # every named metric is really emitted


def _function_settings(synth: Synth) -> list[str]:
    return [
        r["Properties"]["Environment"]["Variables"][c.ENV_SETTINGS]
        for r in synth.resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and c.ENV_SETTINGS in r["Properties"].get("Environment", {}).get("Variables", {})
    ]


def test_the_settings_infra_writes_are_the_settings_the_runtime_parses(
    synth: Synth, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = WaguardConfig.from_cdk_json(ROOT / "cdk.json")
    documents = _function_settings(synth)
    assert documents and set(documents) == {cfg.settings_json()}
    for key in (
        c.ENV_RETRY_BASE_SECONDS,
        c.ENV_GRAPH_API_URL,
        c.ENV_GRAPH_API_VERSION,
        c.ENV_PHONE_NUMBER_ID,
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(c.ENV_SETTINGS, documents[0])
    settings.reset()
    try:
        parsed = settings.get_settings()
    finally:
        settings.reset()
    assert parsed.retention_days == cfg.retention
    assert parsed.opt_out_keywords == tuple(cfg.opt_out_keywords)
    assert parsed.keep_profile_name == cfg.keep.profile_name
    assert parsed.send_rate_per_second == cfg.send_rate_per_second
    assert parsed.retry_base_seconds == cfg.retry_base_seconds
    assert parsed.graph_api_url == cfg.graph_api_url.rstrip("/")
    assert parsed.phone_number_ids == cfg.business_numbers
    assert json.loads(documents[0])["keep"] == cfg.settings().keep.model_dump()


@pytest.mark.parametrize(
    "change,field",
    [
        ({"send_rate_per_second": "fast"}, "send_rate_per_second"),
        ({"retention_days": None}, "retention_days"),
        ({"opt_in_keywords": "START"}, "opt_in_keywords"),
    ],
)
def test_a_malformed_settings_document_is_a_configuration_error_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], field: str
) -> None:
    document = json.loads(WaguardConfig.from_cdk_json(ROOT / "cdk.json").settings_json())
    monkeypatch.setenv(c.ENV_SETTINGS, json.dumps({**document, **change}))
    settings.reset()
    try:
        with pytest.raises(ConfigurationError, match=field):
            settings.get_settings()
    finally:
        settings.reset()


def test_runtime_settings_never_import_pydantic_at_import_time() -> None:
    source = Path(settings.__file__).read_text(encoding="utf-8")
    top_level = [n for n in ast.parse(source).body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert not any("pydantic" in ast.unparse(n) or "settings_contract" in ast.unparse(n) for n in top_level)
