"""The self-audit in the report (contract: Audits): how often the auditor runs, after deploys, its alarm,
from the template; and the last run's findings when the caller asks for them (`waguard report
--aws-endpoint URL` reads a local stack's audit table, `--audit-aws` the deployed one with the caller's
credentials). Without either the report stays a function of the template and cdk.json alone."""

from __future__ import annotations

from typing import Any

from waguard.cfn import Template
from waguard.report.document import Badge, Bullets, Cell, Document, Heading, Para, Table


def _auditor(tpl: Template) -> str | None:
    tag = "waguard:function"
    for lid, resource in tpl.by_id("AWS::Lambda::Function").items():
        if resource.tags.get(tag) == "auditor":
            return lid
    return None


def _targets(resource: Any, lid: str) -> bool:
    return any(lid in str(t.get("Arn")) for t in resource.properties.get("Targets") or [])


def facts(tpl: Template) -> list[list[Any]]:
    """(setting, value) rows of the self-audit as the template declares it."""
    lid = _auditor(tpl)
    if lid is None:
        return [["auditor function", Badge("none in the template", "gap")]]
    rules = [r for r in tpl.by_id("AWS::Events::Rule").values() if _targets(r, lid)]
    schedule = [
        str(r.properties["ScheduleExpression"]) for r in rules if r.properties.get("ScheduleExpression")
    ]
    after_deploy = any(
        "aws.cloudformation" in str((r.properties.get("EventPattern") or {}).get("source")) for r in rules
    )
    alarmed = any(
        a.properties.get("MetricName") == "AuditFindings"
        for a in tpl.by_id("AWS::CloudWatch::Alarm").values()
    )
    return [
        ["auditor function", lid],
        ["schedule", ", ".join(schedule) or Badge("none", "gap")],
        ["after each deploy", Badge("yes", "ok") if after_deploy else Badge("no", "gap")],
        ["findings alarmed (AuditFindings)", Badge("yes", "ok") if alarmed else Badge("no", "gap")],
    ]


def summary(tpl: Template) -> tuple[bool, str]:
    """Whether the template checks itself (a scheduled auditor, after deploys, alarmed), in words."""
    rows = facts(tpl)
    kept = len(rows) == 4 and not any(isinstance(v, Badge) and v.kind == "gap" for _, v in rows)
    words = "; ".join(f"{k} {v.text if isinstance(v, Badge) else v}" for k, v in rows)
    return kept, "self-audit against this template (waguard audit, the auditor function): " + words


def extend(doc: Document, tpl: Template, last_run: dict[str, Any] | None, asked: str | None) -> None:
    """Add the self-audit to the report's audit section."""
    section = next((s for s in doc.sections if s.anchor == "audit"), None)
    if section is None:
        return
    section.blocks.append(Heading("Self-audit: the deployed stack against this template"))
    section.blocks.append(Table(["setting", "value"], facts(tpl)))
    if asked is None:
        section.blocks.append(
            Para(
                "Last run: not read (`waguard report --aws-endpoint URL` reads a local stack's, "
                "`--audit-aws` the deployed stack's; `GET /audit/findings` answers it too)."
            )
        )
        return
    if last_run is None:
        section.blocks.append(Bullets([Badge(f"no audit run kept at {asked}", "gap")]))
        return
    findings = last_run.get("findings") or []
    badge = Badge(f"{len(findings)} findings", "ok" if not findings else "gap")
    section.blocks.append(
        Para(f"Last run {last_run.get('run_at')} ({asked}, trigger {last_run.get('trigger')}):")
    )
    section.blocks.append(Bullets([badge]))
    if findings:
        rows: list[list[Cell]] = [
            [str(f.get("check")), str(f.get("resource")), str(f.get("detail"))] for f in findings
        ]
        section.blocks.append(Table(["check", "resource", "detail"], rows))
