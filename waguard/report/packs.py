"""The rule packs: cdk-nag's validation report and the app's acknowledgements."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from waguard.cfn import Template, as_list
from waguard.report.common import ACK_METADATA

# ---- rule packs ----------------------------------------------------------------------------------------


@dataclass
class Ack:
    """One acknowledgement (suppression) of a rule-pack finding, with its reason."""

    id: str  # as written: "AwsSolutions::AwsSolutions-IAM5[Action::kms:GenerateDataKey*]" or unprefixed
    reason: str
    at_path: str  # construct path where it was declared
    at_resource: str | None  # logical id at that path, when it is a resource
    packs: list[str] = field(default_factory=list)  # packs whose findings it suppressed
    suppressed: int = 0  # how many findings it suppressed (validation report)

    @property
    def rule(self) -> str:
        return self.id.split("::", 1)[1] if "::" in self.id.split("[", 1)[0] else self.id


@dataclass
class Finding:
    pack: str
    rule: str
    description: str
    severity: str
    resources: list[str]  # logical ids (or construct paths)


@dataclass
class PackFact:
    name: str
    conclusion: str
    open: list[Finding]
    suppressed: int


@dataclass
class RulePacks:
    found: bool  # a validation report exists
    source: str
    packs: list[PackFact]
    acks: list[Ack]


def _lid(tpl: Template, path: str) -> str:
    res = tpl.by_construct_path(path)
    return res.logical_id if res else path


def rule_packs(tpl: Template, cdk_out: Path, stack: str) -> RulePacks:
    """Packs, counts and acknowledgements from cdk-nag's validation report and the cloud assembly."""
    report_path = cdk_out / "validation-report.json"
    acks: dict[tuple[str, str], Ack] = {}

    def ack_for(ack_id: str, reason: str, path: str) -> Ack:
        path = path.strip("/")
        key = (ack_id, path)
        if key not in acks:
            res = tpl.by_construct_path(path)
            acks[key] = Ack(
                id=ack_id, reason=reason, at_path=path, at_resource=res.logical_id if res else None
            )
        return acks[key]

    # 1. Every acknowledgement declared in the app (cloud assembly metadata), whatever it matched.
    metadata_file = cdk_out / f"{stack}.metadata.json"
    if metadata_file.exists():
        meta = json.loads(metadata_file.read_text(encoding="utf-8"))
        for path, entries in meta.items():
            for entry in as_list(entries):
                if isinstance(entry, dict) and entry.get("type") == ACK_METADATA:
                    for raw_id, reason in (entry.get("data") or {}).items():
                        ack_id = raw_id.removeprefix("Annotation::")
                        ack_for(ack_id, str(reason), path)
    # 2. cdk-nag v2-style suppressions written into the template metadata.
    for res, value in tpl.iter_metadata("cdk_nag"):
        for rule in as_list((value or {}).get("rules_to_suppress")):
            if isinstance(rule, dict) and rule.get("id"):
                if not any(a.rule == rule["id"] or a.id == rule["id"] for a in acks.values()):
                    ack_for(str(rule["id"]), str(rule.get("reason", "")), tpl.path_of(res))
    packs: list[PackFact] = []
    if report_path.exists():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        for plugin in as_list(report.get("pluginReports")):
            name = str(plugin.get("pluginName") or (plugin.get("summary") or {}).get("pluginName"))
            conclusion = str(plugin.get("conclusion") or (plugin.get("summary") or {}).get("status"))
            open_findings = [
                Finding(
                    pack=name,
                    rule=str(v.get("ruleName")),
                    description=str(v.get("description", "")),
                    severity=str(v.get("severity", "")),
                    resources=[
                        _lid(tpl, c.get("constructPath", "")) for c in as_list(v.get("violatingConstructs"))
                    ],
                )
                for v in as_list(plugin.get("violations"))
            ]
            suppressed = as_list(plugin.get("suppressedViolations"))
            for s in suppressed:
                ack = ack_for(
                    str(s.get("acknowledgedId", s.get("ruleName"))),
                    str(s.get("reason", "")),
                    str(s.get("acknowledgedAt", "")),
                )
                if name not in ack.packs:
                    ack.packs.append(name)
                ack.suppressed += max(1, len(as_list(s.get("violatingConstructs"))))
            packs.append(
                PackFact(name=name, conclusion=conclusion, open=open_findings, suppressed=len(suppressed))
            )
    for ack in acks.values():
        if not ack.packs and "::" in ack.id.split("[", 1)[0]:
            ack.packs.append(ack.id.split("::", 1)[0])
    ordered = sorted(acks.values(), key=lambda a: (a.rule, a.at_path))
    return RulePacks(found=report_path.exists(), source=str(report_path), packs=packs, acks=ordered)
