"""`waguard report --ropa`: the records of processing activities (GDPR Art. 30) from the synthesized
template and cdk.json, rendered through Jinja2 templates (`templates/ropa.md.j2`, `ropa.csv.j2`; json is
the records themselves).

One record per purpose. What a purpose is for, whom it concerns and which data classes it uses is
declared here (`PURPOSES`); everything that depends on the deployment is read from the template: the
retention of each data class (the functions' `WG_SETTINGS`), the region (the cloud assembly), the Graph
API endpoint Meta is reached at, whether events leave to the business's own endpoint, and the technical
measures (each table's key, TTL and point-in-time recovery, the trail, the API's TLS policy and web ACL,
crypto-shredding keys). A measure the template lacks is not listed.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from waguard.report.inputs import Facts

META = "Meta Platforms Ireland Ltd (WhatsApp Business Platform, Cloud API): processor"
AWS = "Amazon Web Services EMEA SARL (hosting: DynamoDB, S3, SQS, Lambda, KMS, EventBridge): processor"


@dataclass(frozen=True)
class Purpose:
    name: str
    data_subjects: tuple[str, ...]
    data_categories: tuple[str, ...]
    classes: tuple[str, ...]  # the data classes it stores (constants.DATA_CLASSES)
    via_meta: bool = True  # its messages travel through Meta's platform
    to_business: bool = True  # its events reach the business's own applications


LOGGING = "security and audit logging"
PURPOSES: tuple[Purpose, ...] = (
    Purpose(
        "customer service conversations",
        ("customers and prospects who write to the business on WhatsApp",),
        ("WhatsApp number or business-scoped user id", "message content and media", "message status"),
        ("messages", "statuses", "contacts", "media", "idempotency", "operational", "keys"),
    ),
    Purpose(
        "marketing",
        ("contacts who granted marketing consent",),
        ("WhatsApp number", "consent history and evidence", "template messages sent and their status"),
        ("consent", "suppression", "messages", "statuses", "contacts", "keys"),
    ),
    Purpose(
        "utility notifications",
        ("customers who granted utility consent",),
        ("WhatsApp number", "consent history", "template messages sent and their status"),
        ("consent", "messages", "statuses", "contacts", "keys"),
    ),
    Purpose(
        "authentication codes",
        ("users who verify themselves through WhatsApp",),
        ("WhatsApp number", "consent history", "one-time codes sent and their status"),
        ("consent", "messages", "statuses", "contacts", "keys"),
    ),
    Purpose(
        "data-subject requests",
        ("contacts who exercise their rights (access, erasure, restriction, objection)",),
        ("contact reference (pseudonym)", "request type, law, dates and outcome", "erasure receipts"),
        ("privacyRequests", "audit", "suppression"),
        via_meta=False,
    ),
    Purpose(
        LOGGING,
        ("staff and systems calling the API", "contacts, by pseudonym only"),
        ("IAM principal", "route and outcome", "pseudonymous subject", "CloudTrail management events"),
        ("audit",),
        via_meta=False,
        to_business=False,
    ),
)


def _retention(facts: Facts) -> dict[str, int]:
    """Days per data class as the deployed functions have them (the template), else as cdk.json says."""
    deployed = (facts.deployed or {}).get("retention_days")
    source = deployed if isinstance(deployed, dict) else facts.inputs.retention
    return {str(k): int(v) for k, v in source.items()}


def _log_days(facts: Facts) -> dict[str, int]:
    """The longest retention of the stack's log groups and of the trail's bucket lifecycle (days)."""
    tpl = facts.inputs.template
    logs = [
        int(r.properties["RetentionInDays"])
        for r in tpl.of_type("AWS::Logs::LogGroup")
        if isinstance(r.properties.get("RetentionInDays"), int)
    ]
    out = {"logs": max(logs)} if logs else {}
    trail_buckets = {t.bucket for t in facts.trails if t.bucket}
    expiry = [
        int(rule["ExpirationInDays"])
        for r in tpl.of_type("AWS::S3::Bucket")
        if r.logical_id in trail_buckets
        for rule in (r.properties.get("LifecycleConfiguration") or {}).get("Rules", [])
        if isinstance(rule.get("ExpirationInDays"), int)
    ]
    if expiry:
        out["trail"] = max(expiry)
    return out


def _region(facts: Facts) -> str:
    return facts.inputs.region or str(facts.inputs.settings.get("region") or "unknown")


def _events_endpoint(facts: Facts) -> bool:
    return bool(facts.inputs.template.of_type("AWS::Events::ApiDestination"))


def _measures(facts: Facts, classes: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for table in facts.inventory.tables:
        if not set(table.classes) & set(classes):
            continue
        key = f"{table.key.kind} {table.key.key_id or ''}".strip()
        parts = [f"{table.name or table.logical_id} table: encrypted with {key}"]
        if table.key.rotation:
            parts.append("key rotation on")
        if table.ttl_enabled:
            parts.append(f"TTL on {table.ttl_attribute}")
        if table.pitr:
            parts.append(f"point-in-time recovery {table.pitr_days or 35} days")
        out.append(", ".join(p.strip() for p in parts))
    if "keys" in classes and any(t.name == "keys" for t in facts.inventory.tables):
        out.append("per-contact data keys: erasure crypto-shreds every copy, backups included")
    for api in facts.exposure.apis:
        if api.security_policy:
            out.append(f"API {api.name}: TLS policy {api.security_policy}, IAM (SigV4) on business routes")
    if facts.exposure.route_wafs and any(facts.exposure.route_wafs.values()):
        out.append("web application firewall (WAFv2) in front of the API")
    for trail in facts.trails:
        if trail.logging:
            validation = ", log file validation" if trail.log_validation else ""
            out.append(f"CloudTrail {trail.logical_id}: encrypted with {trail.key.kind}{validation}")
    return out


def records(facts: Facts) -> list[dict[str, Any]]:
    """The records of processing, one per purpose."""
    retention = _retention(facts)
    region = _region(facts)
    graph = str((facts.deployed or {}).get("graph_api_url") or "the Graph API")
    forwards = _events_endpoint(facts)
    logged = _log_days(facts)
    out = []
    for purpose in PURPOSES:
        recipients = [AWS + f" in {region}"]
        transfers = [f"stored and processed in AWS region {region} only"]
        if purpose.via_meta:
            recipients.insert(0, META + f", reached at {graph}")
            transfers.append(
                "messages pass through Meta's WhatsApp platform, which may process them outside the EEA "
                "under Meta's data processing terms"
            )
        if purpose.to_business:
            recipients.append(
                "the business's own applications through its event bus"
                + (" and its HTTPS events endpoint" if forwards else "")
            )
        out.append(
            {
                "purpose": purpose.name,
                "data_subjects": list(purpose.data_subjects),
                "data_categories": list(purpose.data_categories),
                "recipients": recipients,
                "transfers": transfers,
                "retention_days": {
                    **{c: retention[c] for c in purpose.classes if c in retention},
                    **(logged if purpose.name == LOGGING else {}),
                },
                "measures": _measures(facts, purpose.classes),
            }
        )
    return out


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def _csv_row(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([_cell(v) for v in values])
    return buffer.getvalue()


FIELDS = (
    "purpose",
    "data_subjects",
    "data_categories",
    "recipients",
    "transfers",
    "retention_days",
    "measures",
)


def render(facts: Facts, fmt: str = "md") -> str:
    """The records as `json`, `md` or `csv` (the same rows)."""
    from waguard.report.render import environment

    rows = records(facts)
    if fmt == "json":
        return json.dumps({"records": rows}, indent=2, ensure_ascii=False) + "\n"
    env = environment()
    env.filters.update(
        ropa_cell=_cell, csv_row=_csv_row, ropa_values=lambda record, fields: [record[f] for f in fields]
    )
    template = env.get_template(f"ropa.{fmt}.j2")
    return template.render(records=rows, fields=FIELDS, region=_region(facts), stack=facts.inputs.stack)
