"""`waguard report --ropa`: the records of processing (GDPR Art. 30) from the synthesized template, one per
purpose, the same rows in json, md and csv; retention and region follow cdk.json through the template."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.report.conftest import Synth
from waguard.report import compute, load_inputs, ropa
from waguard.report import main as report_main

PURPOSES = [
    "customer service conversations",
    "marketing",
    "utility notifications",
    "authentication codes",
    "data-subject requests",
    "security and audit logging",
]
FIELDS = [
    "purpose",
    "data_subjects",
    "data_categories",
    "recipients",
    "transfers",
    "retention_days",
    "measures",
]


def records(template: Path, cdk_json: Path) -> list[dict[str, Any]]:
    return json.loads(ropa.render(compute(load_inputs(template, cdk_json)), "json"))["records"]


def by_purpose(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["purpose"]: r for r in rows}


def test_one_record_per_purpose_with_the_processors_and_the_deployments_retention(synth: Synth) -> None:
    rows = records(synth.template_path, synth.cdk_json)
    assert [r["purpose"] for r in rows] == PURPOSES
    assert all(list(r) == FIELDS for r in rows)
    cdk = json.loads(synth.cdk_json.read_text())["context"]["waguard"]
    found = by_purpose(rows)
    conversations = found["customer service conversations"]
    assert any(r.startswith("Meta Platforms") and "processor" in r for r in conversations["recipients"])
    assert any(
        r.startswith("Amazon Web Services") and cdk["region"] in r for r in conversations["recipients"]
    )
    assert conversations["retention_days"]["messages"] == cdk["retentionDays"]["messages"]
    assert (
        found["data-subject requests"]["retention_days"]["privacyRequests"]
        == cdk["retentionDays"]["privacyRequests"]
    )
    assert not any("Meta" in r for r in found["data-subject requests"]["recipients"])
    logging = found["security and audit logging"]["retention_days"]
    assert logging["audit"] == cdk["retentionDays"]["audit"] and logging["logs"] == cdk["logRetentionDays"]
    for row in rows:
        assert all(isinstance(v, int) for v in row["retention_days"].values())
        assert any("TLS policy" in m for m in row["measures"]), row["purpose"]
        assert any("CloudTrail" in m and "log file validation" in m for m in row["measures"]), row["purpose"]
        assert f"AWS region {cdk['region']}" in row["transfers"][0]
    assert any("crypto-shreds" in m for m in conversations["measures"])


def test_md_and_csv_carry_the_same_rows(
    synth: Synth, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = records(synth.template_path, synth.cdk_json)
    args = ["--ropa", "--template", str(synth.template_path), "--cdk-json", str(synth.cdk_json)]
    assert report_main([*args, "--format", "csv", "--out", str(tmp_path / "ropa.csv")]) == 0
    table = list(csv.reader(io.StringIO((tmp_path / "ropa.csv").read_text())))
    assert table[0] == FIELDS and [t[0] for t in table[1:]] == PURPOSES
    assert table[1][5] == "; ".join(f"{k}: {v}" for k, v in rows[0]["retention_days"].items())
    assert report_main([*args, "--format", "md"]) == 0
    md = capsys.readouterr().out
    lines = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| purpose")]
    assert [line.split(" | ")[0][2:] for line in lines] == PURPOSES
    assert all(f"## {p}" in md for p in PURPOSES)
    with pytest.raises(SystemExit):
        report_main([*args, "--format", "html"])  # the report's format, not the records'


def test_retention_and_region_follow_cdk_json(tmp_path: Path) -> None:
    """Synthesized with other values, the records show them (read back from the template and assembly)."""
    from infra.application import build_app
    from infra.config import CONTEXT_KEY, load_cdk_context
    from waguard.paths import ROOT

    context = load_cdk_context(ROOT / "cdk.json")
    settings = context[CONTEXT_KEY]
    changed = {
        "region": "eu-west-3",
        "retentionDays": {
            **settings["retentionDays"],
            "messages": 30,
            "statuses": 30,
            "media": 30,
            "privacyRequests": 730,
        },
    }
    outdir = tmp_path / "cdk.out"
    app, _stack, _cfg = build_app(str(outdir), changed, checks=False)
    app.synth()
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {**context, CONTEXT_KEY: {**settings, **changed}}}))
    found = by_purpose(records(outdir / "Waguard.template.json", cdk_json))
    conversations = found["customer service conversations"]
    assert (
        conversations["retention_days"]["messages"] == 30 and conversations["retention_days"]["media"] == 30
    )
    assert found["data-subject requests"]["retention_days"]["privacyRequests"] == 730
    assert any("eu-west-3" in r for r in conversations["recipients"])
    assert conversations["transfers"][0] == "stored and processed in AWS region eu-west-3 only"
