"""The audit trail: CloudTrail trails, their buckets, keys and data-event selectors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from waguard.cfn import Template, as_list
from waguard.report.common import KeyRef, key_ref

# ---- audit trail -------------------------------------------------------------------------------------


@dataclass
class TrailFact:
    logical_id: str
    logging: bool
    multi_region: bool
    global_events: bool
    log_validation: bool
    key: KeyRef
    bucket: str | None
    log_group: str | None
    management_events: str
    data_events: list[str]
    covered: set[str]  # logical ids of resources whose data events are recorded
    all_tables: bool
    organization: bool


def _selector_text(tpl: Template, selector: dict[str, Any]) -> str:
    parts = []
    for fs in as_list(selector.get("FieldSelectors")):
        for op in ("Equals", "StartsWith", "EndsWith", "NotEquals", "NotStartsWith", "NotEndsWith"):
            if fs.get(op):
                values = ", ".join(tpl.render(v) for v in as_list(fs[op]))
                parts.append(f"{fs.get('Field')} {op} [{values}]")
    name = selector.get("Name")
    return (f"{name}: " if name else "") + "; ".join(parts)


def audit_trails(tpl: Template) -> list[TrailFact]:
    out = []
    for t in tpl.of_type("AWS::CloudTrail::Trail"):
        data_events: list[str] = []
        covered: set[str] = set()
        all_tables = False
        management = "none"
        for sel in as_list(t.prop("EventSelectors")):
            if sel.get("IncludeManagementEvents", True):
                management = f"{sel.get('ReadWriteType', 'All')}"
            for dr in as_list(sel.get("DataResources")):
                values = as_list(dr.get("Values"))
                data_events.append(
                    f"{dr.get('Type')} ({sel.get('ReadWriteType', 'All')}): "
                    + ", ".join(tpl.render(v) for v in values)
                )
                for v in values:
                    covered.update(tpl.refs(v))
                    text = tpl.render(v)
                    if dr.get("Type") == "AWS::DynamoDB::Table" and re.fullmatch(
                        r"arn:[^:]+:dynamodb(:[^:]*)*:?", text
                    ):
                        all_tables = True
        if not t.prop("EventSelectors") and not t.prop("AdvancedEventSelectors"):
            management = "All"
        for sel in as_list(t.prop("AdvancedEventSelectors")):
            fields = {fs.get("Field"): fs for fs in as_list(sel.get("FieldSelectors"))}
            category = as_list((fields.get("eventCategory") or {}).get("Equals"))
            if "Management" in category:
                ro = as_list((fields.get("readOnly") or {}).get("Equals"))
                management = "ReadOnly" if ro == ["true"] else "WriteOnly" if ro == ["false"] else "All"
                continue
            data_events.append(_selector_text(tpl, sel))
            types = as_list((fields.get("resources.type") or {}).get("Equals"))
            arn = fields.get("resources.ARN")
            if arn is None:
                if "AWS::DynamoDB::Table" in types:
                    all_tables = True
            else:
                for op in ("Equals", "StartsWith"):
                    for v in as_list(arn.get(op)):
                        covered.update(tpl.refs(v))
                        if op == "StartsWith" and re.fullmatch(
                            r"arn:[^:]+:dynamodb:[^:]*:[^:]*:table/?", tpl.render(v)
                        ):
                            all_tables = True
        out.append(
            TrailFact(
                logical_id=t.logical_id,
                logging=bool(t.prop("IsLogging")),
                multi_region=bool(t.prop("IsMultiRegionTrail", default=False)),
                global_events=bool(t.prop("IncludeGlobalServiceEvents", default=True)),
                log_validation=bool(t.prop("EnableLogFileValidation", default=False)),
                key=key_ref(tpl, t.prop("KMSKeyId"), "SSE-S3"),
                bucket=tpl.target(t.prop("S3BucketName")),
                log_group=tpl.target(t.prop("CloudWatchLogsLogGroupArn")),
                management_events=management,
                data_events=data_events,
                covered=covered,
                all_tables=all_tables,
                organization=bool(t.prop("IsOrganizationTrail", default=False)),
            )
        )
    return out
