"""The data-protection report on the real synthesized stack: it names what the template holds, and its
access matrix matches the template's policies (extracted here independently, straight from the JSON)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.config import WaguardConfig
from shared import constants as c
from waguard.cfn import load
from waguard.paths import ROOT
from waguard.report import main
from waguard.report.access import access_matrix

Synth = Any  # the `synth` fixture (tests/report/conftest.py): outdir, template_path, cdk_json, template

pytestmark = pytest.mark.xdist_group("infra")

# The personnel roles' routes, as the product contract states them.
CONTRACT_ROUTES = {
    c.ROLE_SENDER: {
        "POST /messages",
        "GET /messages/{id}",
        "POST /media",
        "GET /templates",
        "POST /templates/sync",
        "POST /campaigns",  # contract (role table): the campaign routes
        "GET /campaigns",
        "GET /campaigns/{id}",
        "GET /campaigns/{id}/recipients",
        "POST /campaigns/{id}/cancel",
        "POST /campaigns/{id}/resume",
    },
    c.ROLE_PRIVACY_OFFICER: {
        "PUT /contacts/{contact}/consent",
        "GET /contacts/{contact}/consent",
        "GET /contacts/{contact}/export",
        "DELETE /contacts/{contact}",
        "GET /media/{id}",
        "GET /audit/findings",
        "POST /audit/run",
        "PUT /contacts/{contact}/restriction",
        "POST /privacy/requests",
        "GET /privacy/requests",
        "GET /privacy/requests/{id}",
        "GET /privacy/requests/{id}/export",
        "POST /privacy/requests/{id}/extend",
        "POST /privacy/requests/{id}/complete",
        "POST /privacy/requests/{id}/reject",
    },
    c.ROLE_AUDITOR: {"GET /audit/findings", "POST /audit/run"},
}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _target(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def _row(md: str, cell: str) -> str:
    rows = [line for line in md.splitlines() if line.startswith("|") and f"| {cell} |" in line]
    assert rows, f"no table row with {cell!r} in the report"
    return rows[0]


def _table_names(template: dict[str, Any]) -> dict[str, str]:
    """Table logical id -> waguard table name, from the functions' WG_*_TABLE environment references."""
    by_env = {env: name for name, env in c.ENV_TABLE.items()}
    names: dict[str, str] = {}
    for res in template["Resources"].values():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        variables = res["Properties"].get("Environment", {}).get("Variables", {})
        for key, value in variables.items():
            if key in by_env and _target(value):
                names[str(_target(value))] = by_env[key]
    return names


def test_every_table_is_named_with_its_retention_and_key(synth: Synth, report_md: str) -> None:
    template = synth.template
    retention = WaguardConfig.from_cdk_json(synth.cdk_json).retention
    names = _table_names(template)
    tables = {lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"}
    assert set(names.values()) == set(c.TABLES), "every waguard table is referenced by a function"
    for lid, res in tables.items():
        row = _row(report_md, lid)
        name = names[lid]
        assert f"| {name} |" in row
        for data_class in c.TABLE_CLASSES[name]:
            assert f"{data_class} {retention[data_class]} days" in row, (lid, data_class, row)
        key = _target(res["Properties"]["SSESpecification"]["KMSMasterKeyId"])
        assert key and key in row, f"{lid}: key {key} not in {row}"
        assert "expires_at on" in row


def test_report_mentions_kms_and_cloudtrail(report_md: str, report_html: str) -> None:
    for text in (report_md, report_html):
        assert "KMS" in text
        assert "CloudTrail" in text


def _allow_triples(template: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(principal, action, resource) of every Allow statement of every identity policy, from the JSON."""
    resources = template["Resources"]
    documents: list[tuple[list[str], dict[str, Any]]] = []
    for lid, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            for inline in props.get("Policies", []):
                documents.append(([lid], inline["PolicyDocument"]))
            for arn in props.get("ManagedPolicyArns", []):
                target = _target(arn)
                if target in resources and resources[target]["Type"] == "AWS::IAM::ManagedPolicy":
                    documents.append(([lid], resources[target]["Properties"]["PolicyDocument"]))
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            holders = [str(_target(x)) for key in ("Roles", "Users", "Groups") for x in props.get(key, [])]
            if not holders and "waguard:role" in res.get("Metadata", {}):
                holders = [lid]
            documents.append((holders, props["PolicyDocument"]))
    triples = set()
    for holders, document in documents:
        for statement in _list(document["Statement"]):
            if statement["Effect"] != "Allow":
                continue
            for holder in holders:
                for action in _list(statement["Action"]):
                    for resource in _list(statement["Resource"]):
                        triples.add(
                            (holder, action, json.dumps(resource, sort_keys=True, separators=(",", ":")))
                        )
    return triples


def test_access_matrix_matches_the_template(synth: Synth, report_md: str) -> None:
    expected = _allow_triples(synth.template)
    assert expected, "the template has identity policies"
    principals = access_matrix(load(synth.template_path))
    actual = {(g.principal, g.action, g.resource_key) for p in principals for g in p.allows}
    assert actual == expected
    sections = _principal_sections(report_md)
    for principal, action, _resource in expected:
        assert action in sections[principal], (principal, action)


def _principal_sections(md: str) -> dict[str, str]:
    """The access matrix's per-principal sections: `#### LogicalId: who` and the table below it."""
    out: dict[str, str] = {}
    for chunk in md.split("\n#### ")[1:]:
        head, _, body = chunk.partition("\n")
        out[head.split(":", 1)[0]] = body.split("\n## ", 1)[0].split("\n### ", 1)[0]
    return out


def test_wildcards_are_flagged(synth: Synth) -> None:
    principals = access_matrix(load(synth.template_path))
    for p in principals:
        for g in p.allows:
            if "*" in g.action or "*" in g.resource:
                assert g.flags, (p.logical_id, g.action, g.resource)


def test_personnel_roles_and_what_each_may_call(report_md: str) -> None:
    for role, routes in CONTRACT_ROUTES.items():
        row = _row(report_md, role)
        may_call = row.split(" | ")[2]
        called = set() if may_call == "no route" else {r.strip() for r in may_call.split(", ")}
        assert called == routes, (role, called)


def test_every_route_with_its_authorization(synth: Synth, report_md: str) -> None:
    methods = [r for r in synth.template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"]
    routes = [line for line in report_md.splitlines() if re.match(r"^\| (GET|POST|PUT|DELETE|PATCH) /", line)]
    assert len(routes) == len([m for m in methods if m["Properties"]["HttpMethod"] != "OPTIONS"])
    for line in routes:
        route = line.split(" | ")[0].removeprefix("| ")
        auth = line.split(" | ")[1]
        assert auth == ("NONE" if route.split(" ")[1].startswith("/webhook") else "AWS_IAM"), line


def test_rule_packs_and_every_acknowledgement_with_its_reason(synth: Synth, report_md: str) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text(encoding="utf-8"))
    plugins = report["pluginReports"]
    assert len(plugins) == 4
    for plugin in plugins:
        row = _row(report_md, plugin["pluginName"])
        assert "| success | 0 |" in row, row
        for suppressed in plugin.get("suppressedViolations", []):
            reason = " ".join(suppressed["reason"].split()).replace("|", "\\|")
            assert reason in report_md, suppressed["acknowledgedId"]


def test_eight_promises(report_md: str) -> None:
    titles = [
        "Encryption",
        "Limited access",
        "Consent",
        "Deletion and retention",
        "GDPR/CCPA",
        "Authentication and access control",
        "Audits and updates",
        "Transparency",
    ]
    for i, title in enumerate(titles, 1):
        assert re.search(rf"^### {i}\. {re.escape(title)}: (kept|gap)$", report_md, re.M), title


def test_the_stack_keeps_all_eight_promises(synth: Synth) -> None:
    from waguard.report import compute, load_inputs, promises

    gaps = {
        p.title: [ch.text for ch in p.checks if ch.ok is False]
        for p in promises(compute(load_inputs(synth.template_path, synth.cdk_json)))
        if not p.kept
    }
    assert not gaps, gaps


def test_html_is_self_contained(report_html: str) -> None:
    assert report_html.startswith("<!DOCTYPE html>")
    assert "<link" not in report_html.lower()
    assert not re.search(r"<script[^>]*\bsrc\s*=", report_html, re.I)
    assert not re.search(r"""\b(src|href)\s*=\s*["']?\s*(https?:)?//""", report_html, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", report_html, re.I)
    assert "@import" not in report_html


def test_cli_writes_md_and_html(synth: Synth, tmp_path: Path) -> None:
    args = ["--template", str(synth.template_path), "--cdk-json", str(synth.cdk_json)]
    assert main([*args, "--format", "md", "--out", str(tmp_path / "r.md")]) == 0
    assert main([*args, "--format", "html", "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.md").read_text().startswith("# waguard data-protection report")
    assert "<title>waguard data-protection report" in (tmp_path / "r.html").read_text()


def test_waguard_report_command(synth: Synth, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("waguard")
    if not script.exists() or importlib.util.find_spec("waguard.cli") is None:
        pytest.skip("the waguard console script (waguard.cli) is not installed in this environment")
    for fmt in ("md", "html"):
        out = tmp_path / f"report.{fmt}"
        proc = subprocess.run(
            [
                str(script),
                "report",
                "--format",
                fmt,
                "--out",
                str(out),
                "--template",
                str(synth.template_path),
                "--cdk-json",
                str(synth.cdk_json),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "CloudTrail" in out.read_text()
    # With no options it reads ./cdk.json and ./cdk.out of the project it runs in (a copy here: the
    # project's own cdk.out is another test worker's to synthesize).
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(synth.cdk_json, project / "cdk.json")
    missing = subprocess.run(
        [str(script), "report"], cwd=project, capture_output=True, text=True, timeout=120, check=False
    )
    assert missing.returncode == 2 and "run `make synth` first" in missing.stderr, missing.stderr
    shutil.copytree(synth.outdir, project / "cdk.out")
    proc = subprocess.run(
        [str(script), "report"], cwd=project, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0 and proc.stdout.startswith("# waguard data-protection report"), proc.stderr
