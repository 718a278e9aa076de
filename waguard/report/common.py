"""Helpers shared by the report's facts: metadata keys, function names, key references, policy
statements, durations.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waguard.cfn import Resource, Template, as_list
from waguard.paths import constants

ROLE_METADATA = "waguard:role"  # personnel policies carry their role name in this metadata key
DATA_CLASS_METADATA = constants().DATA_CLASS_METADATA  # optional: what a resource holds, set by infra
FUNCTION_TAG = "waguard:function"
TABLE_TAG = "waguard:table"
ACK_METADATA = "aws:cdk:acknowledged-rules"
SECONDS_PER_DAY = 86400
SQS_DEFAULT_RETENTION_S = 4 * SECONDS_PER_DAY  # SQS default when MessageRetentionPeriod is absent

# What the queues behind these environment keys carry (labels for the keys named in constants.py).
QUEUE_ENV_HOLDS = {
    "WG_INBOUND_QUEUE_URL": "verified raw webhook bodies (messages, statuses, contact ids) in transit",
    "WG_SEND_QUEUE_URL": "send requests: message ids only",
}


# ---- shared helpers --------------------------------------------------------------------------------


def function_name(fn: Resource) -> str:
    """A function's waguard name: its `waguard:function` tag, else the name its handler follows
    (`handlers.messages_api.handler` -> `messages-api`), else its logical id."""
    tag = fn.tags.get(FUNCTION_TAG)
    if tag:
        return tag
    handler = fn.prop("Handler")
    if isinstance(handler, str) and handler.startswith("handlers.") and handler.count(".") == 2:
        return handler.split(".")[1].replace("_", "-")
    return fn.logical_id


def env_of(fn: Resource) -> dict[str, Any]:
    return fn.prop("Environment", "Variables", default={}) or {}


def deployed_settings(tpl: Template) -> dict[str, Any] | None:
    """`WG_SETTINGS` as the functions receive it (the first function that has it)."""
    for fn in tpl.of_type("AWS::Lambda::Function"):
        raw = env_of(fn).get("WG_SETTINGS")
        if isinstance(raw, str):
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


@dataclass(frozen=True)
class KeyRef:
    """Where a resource's encryption key comes from."""

    kind: str  # "CMK", "AWS managed", "AWS owned", "SSE-S3", "none", "external"
    key_id: str | None = None  # logical id of the template's AWS::KMS::Key
    rotation: bool | None = None
    text: str = ""

    @property
    def is_cmk(self) -> bool:
        return self.kind == "CMK"


def key_ref(tpl: Template, value: Any, absent: str) -> KeyRef:
    """Resolve a KMS key property (key id, ARN, alias, Ref/GetAtt) to the template's key."""
    if value is None:
        return KeyRef(kind=absent, text=absent)
    lid = tpl.target(value)
    res = tpl.get(lid)
    if res is not None and res.type == "AWS::KMS::Alias":
        lid = tpl.target(res.prop("TargetKeyId"))
        res = tpl.get(lid)
    if res is not None and res.type == "AWS::KMS::Key":
        rotation = bool(res.prop("EnableKeyRotation", default=False))
        rot = "rotation on" if rotation else "rotation OFF"
        return KeyRef(
            kind="CMK", key_id=res.logical_id, rotation=rotation, text=f"CMK {res.logical_id} ({rot})"
        )
    text = tpl.render(value)
    if "alias/aws/" in text:
        return KeyRef(kind="AWS managed", text=f"AWS managed key {text}")
    return KeyRef(kind="external", text=f"key {text} (not in this template)")


def policy_statements(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        return []
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict)]


def denies_insecure_transport(statement: dict[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    cond = statement.get("Condition") or {}
    for op, body in cond.items():
        if op.startswith("Bool") and isinstance(body, dict):
            value = body.get("aws:SecureTransport")
            if str(value).lower() == "false":
                return True
        if op.startswith("NumericLessThan") and isinstance(body, dict) and "s3:TlsVersion" in body:
            return True
    return False


def resource_policies(tpl: Template, policy_type: str, target_prop: str) -> dict[str, list[dict[str, Any]]]:
    """target logical id -> statements of the resource policies attached to it."""
    out: dict[str, list[dict[str, Any]]] = {}
    for pol in tpl.of_type(policy_type):
        for target in as_list(pol.prop(target_prop)):
            lid = tpl.target(target)
            if lid:
                out.setdefault(lid, []).extend(policy_statements(pol.prop("PolicyDocument")))
    return out


def seconds_to_days(seconds: Any) -> float | None:
    try:
        return int(seconds) / SECONDS_PER_DAY
    except (TypeError, ValueError):
        return None


def fmt_days(days: float | None) -> str:
    if days is None:
        return "never expires"
    return f"{days:g} days"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
