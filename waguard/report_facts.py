"""Facts for the data-protection report, computed from the synthesized template, cdk.json and cdk-nag's
validation report: the data inventory, the access matrix, the API exposure, the audit trail and the
rule packs. Each function takes the `Template` model and returns plain dataclasses; nothing is
hand-written, so the report cannot drift from what deploys.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waguard import model, roles
from waguard.cfn import Resolver, Resource, Template, as_list, canonical

ROLE_METADATA = "waguard:role"  # personnel policies carry their role name in this metadata key
DATA_CLASS_METADATA = "waguard:data-class"  # optional: what a resource holds, set by infra
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


# ---- data inventory -----------------------------------------------------------------------------------


@dataclass
class TableFact:
    logical_id: str
    name: str | None  # waguard table name (constants.TABLES) when known
    classes: tuple[str, ...]
    retention: dict[str, int | None]  # data class -> days (cdk.json; keys computed)
    key: KeyRef
    ttl_attribute: str | None
    ttl_enabled: bool
    pitr: bool
    pitr_days: int | None
    deletion_protection: bool
    billing: str
    indexes: list[str]
    stream: str | None
    backup_plans: list[str] = field(default_factory=list)


@dataclass
class StoreFact:
    """A queue, bucket, log group or secret."""

    kind: str
    logical_id: str
    holds: str
    key: KeyRef
    retention: str
    retention_days: float | None  # None: kept until deleted (no expiry)
    backups: str
    tls_only: bool | None = None  # queues and buckets: a policy denies aws:SecureTransport=false
    public_access_blocked: bool | None = None
    access_log_destination: bool = False  # a bucket receiving S3 server access logs (S3 allows only SSE-S3)
    notes: list[str] = field(default_factory=list)


@dataclass
class KeyFact:
    logical_id: str
    rotation: bool
    rotation_days: int | None
    aliases: list[str]
    description: str
    pending_window_days: int | None
    used_by: list[str]
    key_policy_principals: list[str]


@dataclass
class Inventory:
    tables: list[TableFact]
    stores: list[StoreFact]
    keys: list[KeyFact]
    unmapped_tables: list[str]  # template tables with no waguard table name
    backups: list[BackupFact] = field(default_factory=list)


def _table_names(tpl: Template, env_tables: dict[str, str]) -> dict[str, str]:
    """logical id -> waguard table name, from the function environments (`WG_CONTACTS_TABLE: {Ref}`),
    the `waguard:table` tag, or the logical id's prefix, in that order."""
    by_env = {env: name for name, env in env_tables.items()}
    names: dict[str, str] = {}
    for fn in tpl.of_type("AWS::Lambda::Function"):
        for env, value in env_of(fn).items():
            if env in by_env:
                lid = tpl.target(value)
                if lid and tpl.resources[lid].type == "AWS::DynamoDB::Table":
                    names.setdefault(lid, by_env[env])
    wanted = set(env_tables)
    for table in tpl.of_type("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
        if table.logical_id in names:
            continue
        tag = table.tags.get(TABLE_TAG)
        if tag in wanted:
            names[table.logical_id] = tag
            continue
        for name in sorted(wanted, key=len, reverse=True):
            if table.logical_id.lower().startswith(name.lower()) and name not in names.values():
                names[table.logical_id] = name
                break
    return names


def _policy_statements(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        return []
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict)]


def _denies_insecure_transport(statement: dict[str, Any]) -> bool:
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


def _resource_policies(tpl: Template, policy_type: str, target_prop: str) -> dict[str, list[dict[str, Any]]]:
    """target logical id -> statements of the resource policies attached to it."""
    out: dict[str, list[dict[str, Any]]] = {}
    for pol in tpl.of_type(policy_type):
        for target in as_list(pol.prop(target_prop)):
            lid = tpl.target(target)
            if lid:
                out.setdefault(lid, []).extend(_policy_statements(pol.prop("PolicyDocument")))
    return out


def _days(seconds: Any) -> float | None:
    try:
        return int(seconds) / SECONDS_PER_DAY
    except (TypeError, ValueError):
        return None


def _fmt_days(days: float | None) -> str:
    if days is None:
        return "never expires"
    return f"{days:g} days"


@dataclass
class BackupFact:
    """An AWS Backup plan: its rules, vault and the resources selected into it."""

    plan: str
    rules: list[str]
    retention_days: int | None  # longest DeleteAfterDays of its rules (None: kept until deleted)
    vaults: list[str]
    vault_keys: list[KeyRef]
    resources: list[str]


def backup_plans(tpl: Template) -> list[BackupFact]:
    vault_keys = {
        v.logical_id: key_ref(tpl, v.prop("EncryptionKeyArn"), "AWS managed")
        for v in tpl.of_type("AWS::Backup::BackupVault")
    }
    selected: dict[str, list[str]] = {}
    for sel in tpl.of_type("AWS::Backup::BackupSelection"):
        plan_id = tpl.target(sel.prop("BackupPlanId"))
        for res in as_list(sel.prop("BackupSelection", "Resources")):
            for lid in tpl.refs(res):
                if plan_id:
                    selected.setdefault(plan_id, []).append(lid)
    out = []
    for plan in tpl.of_type("AWS::Backup::BackupPlan"):
        rules: list[str] = []
        days: list[int] = []
        vaults: list[str] = []
        for rule in as_list(plan.prop("BackupPlan", "BackupPlanRule")):
            keep = (rule.get("Lifecycle") or {}).get("DeleteAfterDays")
            vault = tpl.target(rule.get("TargetBackupVault"))
            if vault:
                vaults.append(vault)
            if keep is not None:
                days.append(int(keep))
            rules.append(
                f"{rule.get('RuleName')}: {tpl.render(rule.get('ScheduleExpression')) or 'on demand'}, "
                f"kept {f'{keep} days' if keep is not None else 'until deleted'}, vault {vault}"
            )
        no_expiry = any(
            (r.get("Lifecycle") or {}).get("DeleteAfterDays") is None
            for r in as_list(plan.prop("BackupPlan", "BackupPlanRule"))
        )
        out.append(
            BackupFact(
                plan=plan.logical_id,
                rules=rules,
                retention_days=None if no_expiry or not days else max(days),
                vaults=sorted(set(vaults)),
                vault_keys=[vault_keys[v] for v in sorted(set(vaults)) if v in vault_keys],
                resources=selected.get(plan.logical_id, []),
            )
        )
    return out


def _backup_plans(tpl: Template) -> dict[str, list[str]]:
    """resource logical id -> AWS Backup plans that include it."""
    out: dict[str, list[str]] = {}
    for plan in backup_plans(tpl):
        for lid in plan.resources:
            out.setdefault(lid, []).append(plan.plan)
    return out


def inventory(
    tpl: Template,
    table_classes: dict[str, tuple[str, ...]],
    retention: dict[str, int],
    env_tables: dict[str, str],
) -> Inventory:
    names = _table_names(tpl, env_tables)
    backups = _backup_plans(tpl)
    tables: list[TableFact] = []
    for t in tpl.of_type("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
        name = names.get(t.logical_id)
        classes = tuple(table_classes.get(name, ())) if name else ()
        sse = t.prop("SSESpecification") or {}
        if sse.get("SSEEnabled") is True or str(sse.get("SSEEnabled")).lower() == "true":
            if sse.get("KMSMasterKeyId") is not None:
                key = key_ref(tpl, sse.get("KMSMasterKeyId"), "AWS managed")
            else:
                key = KeyRef(kind="AWS managed", text="AWS managed key (aws/dynamodb)")
        else:
            key = KeyRef(kind="AWS owned", text="AWS owned key (default)")
        ttl = t.prop("TimeToLiveSpecification") or {}
        pitr = t.prop("PointInTimeRecoverySpecification") or {}
        stream = t.prop("StreamSpecification", "StreamViewType")
        tables.append(
            TableFact(
                logical_id=t.logical_id,
                name=name,
                classes=classes,
                retention={cls: retention.get(cls) for cls in classes},
                key=key,
                ttl_attribute=ttl.get("AttributeName"),
                ttl_enabled=bool(ttl.get("Enabled")),
                pitr=bool(pitr.get("PointInTimeRecoveryEnabled")),
                pitr_days=pitr.get("RecoveryPeriodInDays"),
                deletion_protection=bool(t.prop("DeletionProtectionEnabled", default=False)),
                billing=str(t.prop("BillingMode", default="PROVISIONED")),
                indexes=[str(g.get("IndexName")) for g in as_list(t.prop("GlobalSecondaryIndexes"))],
                stream=str(stream) if stream else None,
                backup_plans=backups.get(t.logical_id, []),
            )
        )
    unmapped = [t.logical_id for t in tables if t.name is None]
    return Inventory(
        tables=tables,
        stores=_queues(tpl) + _buckets(tpl, backups) + _log_groups(tpl) + _secrets(tpl),
        keys=_keys(tpl),
        unmapped_tables=unmapped,
        backups=backup_plans(tpl),
    )


def _holds_override(res: Resource) -> str | None:
    value = res.metadata.get(DATA_CLASS_METADATA)
    if value is None:
        return None
    return ", ".join(str(v) for v in as_list(value))


def _queues(tpl: Template) -> list[StoreFact]:
    policies = _resource_policies(tpl, "AWS::SQS::QueuePolicy", "Queues")
    holds: dict[str, str] = {}
    for fn in tpl.of_type("AWS::Lambda::Function"):
        for env, value in env_of(fn).items():
            lid = tpl.target(value)
            if env in QUEUE_ENV_HOLDS and lid:
                holds.setdefault(lid, QUEUE_ENV_HOLDS[env])
    dlq_of: dict[str, tuple[str, Any]] = {}
    for q in tpl.of_type("AWS::SQS::Queue"):
        redrive = q.prop("RedrivePolicy") or {}
        dlq = tpl.target(redrive.get("deadLetterTargetArn"))
        if dlq:
            dlq_of[dlq] = (q.logical_id, redrive.get("maxReceiveCount"))
    out = []
    for q in tpl.of_type("AWS::SQS::Queue"):
        if q.prop("KmsMasterKeyId") is not None:
            key = key_ref(tpl, q.prop("KmsMasterKeyId"), "none")
        elif q.prop("SqsManagedSseEnabled") is False:
            key = KeyRef(kind="none", text="not encrypted")
        else:
            key = KeyRef(kind="SSE-SQS", text="SQS-managed SSE")
        seconds = q.prop("MessageRetentionPeriod", default=SQS_DEFAULT_RETENTION_S)
        days = _days(seconds)
        notes = []
        redrive = q.prop("RedrivePolicy") or {}
        if redrive:
            dlq = tpl.target(redrive.get("deadLetterTargetArn"))
            notes.append(f"dead-letter queue {dlq} after {redrive.get('maxReceiveCount')} receives")
        if q.logical_id in dlq_of:
            src, _count = dlq_of[q.logical_id]
            what = f"dead letters of {src}"
        else:
            what = holds.get(q.logical_id, "queue messages")
        statements = policies.get(q.logical_id, [])
        out.append(
            StoreFact(
                kind="queue",
                logical_id=q.logical_id,
                holds=_holds_override(q) or what,
                key=key,
                retention=f"messages {_fmt_days(days)}",
                retention_days=days,
                backups="none (transient)",
                tls_only=any(_denies_insecure_transport(s) for s in statements),
                notes=notes,
            )
        )
    return out


def _buckets(tpl: Template, backups: dict[str, list[str]]) -> list[StoreFact]:
    policies = _resource_policies(tpl, "AWS::S3::BucketPolicy", "Bucket")
    trail_buckets = {tpl.target(t.prop("S3BucketName")) for t in tpl.of_type("AWS::CloudTrail::Trail")}
    log_targets: dict[str, str] = {}
    for b in tpl.of_type("AWS::S3::Bucket"):
        dest = tpl.target(b.prop("LoggingConfiguration", "DestinationBucketName"))
        if dest:
            log_targets.setdefault(dest, b.logical_id)
    out = []
    for b in tpl.of_type("AWS::S3::Bucket"):
        enc = as_list(b.prop("BucketEncryption", "ServerSideEncryptionConfiguration"))
        default = (
            enc[0].get("ServerSideEncryptionByDefault") if enc and isinstance(enc[0], dict) else None
        ) or {}
        algo = default.get("SSEAlgorithm")
        if algo in ("aws:kms", "aws:kms:dsse"):
            key = key_ref(tpl, default.get("KMSMasterKeyID"), "AWS managed")
            if default.get("KMSMasterKeyID") is None:
                key = KeyRef(kind="AWS managed", text="AWS managed key (aws/s3)")
        else:
            key = KeyRef(kind="SSE-S3", text="SSE-S3 (AES256, S3-managed)")
        rules = [
            r for r in as_list(b.prop("LifecycleConfiguration", "Rules")) if r.get("Status") == "Enabled"
        ]
        expirations = [r["ExpirationInDays"] for r in rules if "ExpirationInDays" in r]
        parts = []
        if expirations:
            parts.append(f"objects expire after {min(expirations)} days")
        noncurrent = [
            r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
            or r.get("NoncurrentVersionExpirationInDays")
            for r in rules
        ]
        noncurrent = [n for n in noncurrent if n]
        if noncurrent:
            parts.append(f"old versions after {min(noncurrent)} days")
        for r in rules:
            for tr in as_list(r.get("Transitions")):
                parts.append(f"to {tr.get('StorageClass')} after {tr.get('TransitionInDays')} days")
        versioned = b.prop("VersioningConfiguration", "Status") == "Enabled"
        pab = b.prop("PublicAccessBlockConfiguration") or {}
        blocked = all(
            pab.get(k) is True
            for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        )
        notes = []
        if b.prop("ObjectLockEnabled"):
            notes.append("object lock on")
        if b.prop("LoggingConfiguration"):
            notes.append(
                f"access logs to {tpl.target(b.prop('LoggingConfiguration', 'DestinationBucketName'))}"
            )
        if b.logical_id in trail_buckets:
            what = "CloudTrail log files (audit evidence)"
        elif b.logical_id in log_targets:
            what = f"server access logs of {log_targets[b.logical_id]}"
            if key.kind == "SSE-S3":
                notes.append("S3 server access logging delivers only to SSE-S3 buckets")
        else:
            what = "objects"
        backup = "versioning on" if versioned else "no versioning"
        if backups.get(b.logical_id):
            backup += f"; AWS Backup {', '.join(backups[b.logical_id])}"
        out.append(
            StoreFact(
                kind="bucket",
                logical_id=b.logical_id,
                holds=_holds_override(b) or what,
                key=key,
                retention="; ".join(parts) if parts else "no lifecycle expiry",
                retention_days=float(min(expirations)) if expirations else None,
                backups=backup,
                tls_only=any(_denies_insecure_transport(s) for s in policies.get(b.logical_id, [])),
                public_access_blocked=blocked,
                access_log_destination=b.logical_id in log_targets,
                notes=notes,
            )
        )
    return out


def _log_groups(tpl: Template) -> list[StoreFact]:
    users: dict[str, str] = {}
    for fn in tpl.of_type("AWS::Lambda::Function"):
        lid = tpl.target(fn.prop("LoggingConfig", "LogGroup"))
        if lid:
            users[lid] = f"logs of function {function_name(fn)}"
    for trail in tpl.of_type("AWS::CloudTrail::Trail"):
        lid = tpl.target(trail.prop("CloudWatchLogsLogGroupArn"))
        if lid:
            users[lid] = f"CloudTrail events of {trail.logical_id}"
    for stage in tpl.of_type("AWS::ApiGateway::Stage"):
        lid = tpl.target(stage.prop("AccessLogSetting", "DestinationArn"))
        if lid:
            users[lid] = f"API access logs of stage {stage.prop('StageName')}"
    for wl in tpl.of_type("AWS::WAFv2::LoggingConfiguration"):
        for dest in as_list(wl.prop("LogDestinationConfigs")):
            lid = tpl.target(dest)
            if lid:
                users[lid] = "WAF request logs"
    functions = {function_name(fn): fn for fn in tpl.of_type("AWS::Lambda::Function")}
    out = []
    for lg in tpl.of_type("AWS::Logs::LogGroup"):
        days = lg.prop("RetentionInDays")
        what = users.get(lg.logical_id)
        if what is None:
            name = tpl.render(lg.prop("LogGroupName")) if lg.prop("LogGroupName") else ""
            what = f"log group {name}" if name else "log events"
            for fname in functions:
                if name.endswith("/" + fname) or fname in name:
                    what = f"logs of function {fname}"
                    break
        out.append(
            StoreFact(
                kind="log group",
                logical_id=lg.logical_id,
                holds=_holds_override(lg) or what,
                key=key_ref(tpl, lg.prop("KmsKeyId"), "CloudWatch-managed"),
                retention=f"{days} days" if days else "never expires",
                retention_days=float(days) if days else None,
                backups="n/a",
                notes=[f"deletion policy {lg.raw.get('DeletionPolicy', 'Delete')}"],
            )
        )
    return out


def _secrets(tpl: Template) -> list[StoreFact]:
    rotations = {tpl.target(r.prop("SecretId")) for r in tpl.of_type("AWS::SecretsManager::RotationSchedule")}
    out = []
    for s in tpl.of_type("AWS::SecretsManager::Secret"):
        gen = s.prop("GenerateSecretString") or {}
        fields: list[str] = []
        template = gen.get("SecretStringTemplate")
        if isinstance(template, str):
            try:
                fields = sorted(json.loads(template))
            except ValueError:
                fields = []
        if gen.get("GenerateStringKey"):
            fields.append(str(gen["GenerateStringKey"]))
        what = "secret fields: " + ", ".join(fields) if fields else "secret value"
        out.append(
            StoreFact(
                kind="secret",
                logical_id=s.logical_id,
                holds=_holds_override(s) or what,
                key=key_ref(tpl, s.prop("KmsKeyId"), "AWS managed"),
                retention="lives with the stack",
                retention_days=None,
                backups="n/a",
                notes=["rotation scheduled" if s.logical_id in rotations else "no rotation schedule"]
                + (
                    [f"replicated to {len(as_list(s.prop('ReplicaRegions')))} regions"]
                    if s.prop("ReplicaRegions")
                    else []
                ),
            )
        )
    return out


def _keys(tpl: Template) -> list[KeyFact]:
    aliases: dict[str, list[str]] = {}
    for a in tpl.of_type("AWS::KMS::Alias"):
        lid = tpl.target(a.prop("TargetKeyId"))
        if lid:
            aliases.setdefault(lid, []).append(str(a.prop("AliasName")))
    used_by: dict[str, list[str]] = {}
    for res in tpl.resources.values():
        if res.type in ("AWS::KMS::Key", "AWS::KMS::Alias") or res.type.startswith("AWS::IAM::"):
            continue
        for lid in tpl.refs(res.properties):
            if tpl.resources[lid].type == "AWS::KMS::Key":
                used_by.setdefault(lid, []).append(res.logical_id)
    out = []
    for k in tpl.of_type("AWS::KMS::Key"):
        principals: list[str] = []
        for st in _policy_statements(k.prop("KeyPolicy")):
            if st.get("Effect") != "Allow":
                continue
            principal = st.get("Principal")
            if isinstance(principal, dict):
                for kind, values in principal.items():
                    for v in as_list(values):
                        text = tpl.render(v)
                        principals.append(f"{kind}:{text}" if kind != "AWS" else text)
            elif principal is not None:
                principals.append(tpl.render(principal))
        out.append(
            KeyFact(
                logical_id=k.logical_id,
                rotation=bool(k.prop("EnableKeyRotation", default=False)),
                rotation_days=k.prop("RotationPeriodInDays"),
                aliases=aliases.get(k.logical_id, []),
                description=str(k.prop("Description", default="")),
                pending_window_days=k.prop("PendingWindowInDays"),
                used_by=sorted(set(used_by.get(k.logical_id, []))),
                key_policy_principals=sorted(set(principals)),
            )
        )
    return out


# ---- access matrix ----------------------------------------------------------------------------------

IDENTITY_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy")
PRINCIPAL_TYPES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")


@dataclass(frozen=True)
class Grant:
    """One (action, resource) pair of one identity-policy statement, for one principal."""

    principal: str  # logical id of the role/user/group, or of an unattached personnel policy
    policy: str  # logical id of the policy resource, or "<role>:inline:<name>"
    effect: str
    action: str
    resource: str  # rendered
    resource_key: str  # canonical JSON of the template value (for comparisons)
    condition: str
    flags: tuple[str, ...]
    acknowledged: str | None = None  # reason of the rule-pack acknowledgement covering a wildcard


@dataclass
class Principal:
    logical_id: str
    kind: str  # "function role", "personnel role", "service role", "user", "group"
    label: str
    assumed_by: list[str]
    personnel_role: str | None
    aws_managed: list[str]
    grants: list[Grant] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)  # personnel: "METHOD /path" it may call

    @property
    def allows(self) -> list[Grant]:
        return [g for g in self.grants if g.effect == "Allow"]


def wildcard_flags(action: str, resource: str) -> tuple[str, ...]:
    flags = []
    if action == "*" or action.endswith(":*"):
        flags.append("all actions")
    elif "*" in action:
        flags.append("action wildcard")
    if resource == "*":
        flags.append("any resource")
    elif "*" in resource:
        flags.append("resource wildcard")
    return tuple(flags)


def _attachments(tpl: Template) -> dict[str, list[tuple[str, list[dict[str, Any]]]]]:
    """principal logical id -> [(policy label, statements)]; unattached personnel policies map to
    themselves."""
    out: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
    for p in tpl.of_type(*PRINCIPAL_TYPES):
        for inline in as_list(p.prop("Policies")):
            if isinstance(inline, dict):
                label = f"{p.logical_id}:inline:{inline.get('PolicyName')}"
                out.setdefault(p.logical_id, []).append(
                    (label, _policy_statements(inline.get("PolicyDocument")))
                )
        for arn in as_list(p.prop("ManagedPolicyArns")):
            lid = tpl.target(arn)
            if lid and tpl.resources[lid].type == "AWS::IAM::ManagedPolicy":
                mp = tpl.resources[lid]
                out.setdefault(p.logical_id, []).append((lid, _policy_statements(mp.prop("PolicyDocument"))))
    for pol in tpl.of_type(*IDENTITY_POLICY_TYPES):
        holders: list[str] = []
        for key in ("Roles", "Users", "Groups"):
            for ref in as_list(pol.prop(key)):
                lid = tpl.target(ref)
                if lid:
                    holders.append(lid)
        role_name = pol.prop("RoleName")
        if role_name is not None and tpl.target(role_name):
            holders.append(str(tpl.target(role_name)))
        statements = _policy_statements(pol.prop("PolicyDocument"))
        if not holders and ROLE_METADATA in pol.metadata:
            holders = [pol.logical_id]
        for holder in dict.fromkeys(holders):
            entries = out.setdefault(holder, [])
            if all(label != pol.logical_id for label, _ in entries):
                entries.append((pol.logical_id, statements))
    return out


def _aws_managed(tpl: Template, p: Resource) -> list[str]:
    names = []
    for arn in as_list(p.prop("ManagedPolicyArns")):
        if tpl.target(arn) is None:
            text = tpl.render(arn)
            names.append(text.split(":policy/", 1)[-1] if ":policy/" in text else text)
    return names


def access_matrix(tpl: Template, acks: list[Ack] | None = None) -> list[Principal]:
    """Every IAM principal of the template with every action it may (or may not) take on which
    resources, from the identity policies attached to it."""
    attachments = _attachments(tpl)
    fn_by_role: dict[str, list[str]] = {}
    for fn in tpl.of_type("AWS::Lambda::Function"):
        lid = tpl.target(fn.prop("Role"))
        if lid:
            fn_by_role.setdefault(lid, []).append(function_name(fn))
    users: dict[str, str] = {}
    for trail in tpl.of_type("AWS::CloudTrail::Trail"):
        lid = tpl.target(trail.prop("CloudWatchLogsRoleArn"))
        if lid:
            users[lid] = f"CloudTrail {trail.logical_id} -> CloudWatch Logs"
    for acc in tpl.of_type("AWS::ApiGateway::Account"):
        lid = tpl.target(acc.prop("CloudWatchRoleArn"))
        if lid:
            users[lid] = "API Gateway -> CloudWatch Logs (account setting)"
    personnel_of: dict[str, str] = {}
    for pol in tpl.of_type("AWS::IAM::ManagedPolicy"):
        role = pol.metadata.get(ROLE_METADATA)
        if role:
            personnel_of[pol.logical_id] = str(role)
            for ref in as_list(pol.prop("Roles")):
                lid = tpl.target(ref)
                if lid:
                    personnel_of[lid] = str(role)

    for holder, entries in attachments.items():
        for label, _statements in entries:
            role = personnel_of.get(label) if label in tpl.resources else None
            if role and holder != label:
                personnel_of.setdefault(holder, role)

    principals: list[Principal] = []
    candidates = [p.logical_id for p in tpl.of_type(*PRINCIPAL_TYPES)]
    candidates += [lid for lid in attachments if lid not in candidates]
    for lid in candidates:
        res = tpl.resources[lid]
        assumed: list[str] = []
        for st in _policy_statements(res.prop("AssumeRolePolicyDocument")):
            principal = st.get("Principal")
            if isinstance(principal, dict):
                for kind, values in principal.items():
                    assumed += [f"{kind}:{tpl.render(v)}" for v in as_list(values)]
            elif principal is not None:
                assumed.append(tpl.render(principal))
        personnel = personnel_of.get(lid)
        if lid in fn_by_role:
            kind, label = "function role", "function " + ", ".join(fn_by_role[lid])
        elif personnel:
            kind, label = "personnel role", f"personnel role {personnel}"
        elif res.type == "AWS::IAM::User":
            kind, label = "user", f"user {lid}"
        elif res.type == "AWS::IAM::Group":
            kind, label = "group", f"group {lid}"
        else:
            kind, label = "service role", users.get(lid) or _custom_resource_label(tpl, lid) or f"role {lid}"
        principal = Principal(
            logical_id=lid,
            kind=kind,
            label=label,
            assumed_by=assumed,
            personnel_role=personnel,
            aws_managed=_aws_managed(tpl, res) if res.type in PRINCIPAL_TYPES else [],
        )
        for policy_label, statements in attachments.get(lid, []):
            for st in statements:
                principal.grants.extend(_grants(tpl, lid, policy_label, st, acks or []))
        principals.append(principal)
    by_role = role_routes(tpl, api_routes(tpl))
    for p in principals:
        if p.personnel_role:
            p.routes = by_role.get(p.personnel_role, [])
    order = {"function role": 0, "personnel role": 1, "service role": 2, "user": 3, "group": 4}
    principals.sort(key=lambda p: (order.get(p.kind, 9), p.label))
    return principals


def _custom_resource_label(tpl: Template, role_lid: str) -> str | None:
    for fn in tpl.of_type("AWS::Lambda::Function", "AWS::Lambda::SingletonFunction"):
        if tpl.target(fn.prop("Role")) == role_lid:
            return f"provider function {fn.logical_id} (CDK custom resource)"
    return None


def _grants(tpl: Template, principal: str, policy: str, st: dict[str, Any], acks: list[Ack]) -> list[Grant]:
    effect = str(st.get("Effect", "Allow"))
    actions = [str(a) for a in as_list(st.get("Action"))] or [
        "NOT " + ", ".join(str(a) for a in as_list(st.get("NotAction")))
    ]
    resources = as_list(st.get("Resource")) or [{"NotResource": st.get("NotResource")}]
    condition = condition_text(tpl, st["Condition"]) if st.get("Condition") else ""
    policy_res = tpl.get(policy)
    out = []
    for action in actions:
        for resource in resources:
            text = (
                tpl.render(resource)
                if not (isinstance(resource, dict) and "NotResource" in resource)
                else ("NOT " + tpl.render(resource["NotResource"]))
            )
            flags = wildcard_flags(action, text) if effect == "Allow" else ()
            ack = None
            if flags and policy_res is not None:
                ack = _wildcard_ack(tpl, policy_res, action, resource, acks)
            out.append(
                Grant(
                    principal=principal,
                    policy=policy,
                    effect=effect,
                    action=action,
                    resource=text,
                    resource_key=canonical(resource),
                    condition=condition,
                    flags=flags,
                    acknowledged=ack,
                )
            )
    return out


def condition_text(tpl: Template, condition: Any) -> str:
    """`{"StringEquals": {"kms:ViaService": "sqs..."}}` -> `kms:ViaService StringEquals sqs...`."""
    if not isinstance(condition, dict):
        return tpl.render(condition)
    parts = []
    for op, body in condition.items():
        if isinstance(body, dict):
            for key, value in body.items():
                parts.append(f"{key} {op} {', '.join(tpl.render(v) for v in as_list(value))}")
        else:
            parts.append(f"{op} {tpl.render(body)}")
    return "; ".join(parts)


def _wildcard_ack(tpl: Template, policy: Resource, action: str, resource: Any, acks: list[Ack]) -> str | None:
    """The reason of an acknowledgement (cdk-nag IAM5 finding) that covers this wildcard, if any."""
    findings = {f"Action::{action}", f"Resource::{tpl.render(resource, style='nag')}"}
    for ack in acks:
        m = re.match(r"^(?:[^:]+::)?[A-Za-z0-9.]+-IAM5\[(.+)\]$", ack.id)
        if not m or m.group(1) not in findings:
            continue
        path = tpl.path_of(policy)
        if ack.at_path and not (path == ack.at_path or path.startswith(ack.at_path + "/")):
            continue
        return ack.reason
    return None


@dataclass(frozen=True)
class Route:
    api: str
    method: str
    path: str
    authorization: str
    api_key_required: bool
    validator: str | None
    integration: str
    resource_id: str


def api_routes(tpl: Template) -> list[Route]:
    """Every REST API method (API Gateway v1) and HTTP API route (v2)."""
    resources = {r.logical_id: r for r in tpl.of_type("AWS::ApiGateway::Resource")}

    def path_of(ref: Any) -> str:
        parts: list[str] = []
        lid = tpl.target(ref)
        seen = set()
        while lid in resources and lid not in seen:
            seen.add(lid)
            res = resources[lid]
            parts.append(str(res.prop("PathPart")))
            lid = tpl.target(res.prop("ParentId"))
        return "/" + "/".join(reversed(parts))

    fn_names = {fn.logical_id: function_name(fn) for fn in tpl.of_type("AWS::Lambda::Function")}
    routes = []
    for m in tpl.of_type("AWS::ApiGateway::Method"):
        method = str(m.prop("HttpMethod"))
        if method == "OPTIONS" and m.prop("AuthorizationType", default="NONE") == "NONE":
            kind = m.prop("Integration", "Type")
            if kind == "MOCK":
                continue  # CORS preflight
        uri = m.prop("Integration", "Uri")
        targets = [fn_names[x] for x in tpl.refs(uri) if x in fn_names]
        integration = ", ".join(targets) or str(m.prop("Integration", "Type", default="none"))
        routes.append(
            Route(
                api=str(tpl.target(m.prop("RestApiId"))),
                method=method,
                path=path_of(m.prop("ResourceId")),
                authorization=str(m.prop("AuthorizationType", default="NONE")),
                api_key_required=bool(m.prop("ApiKeyRequired", default=False)),
                validator=tpl.target(m.prop("RequestValidatorId")),
                integration=integration,
                resource_id=m.logical_id,
            )
        )
    for r in tpl.of_type("AWS::ApiGatewayV2::Route"):
        key = str(r.prop("RouteKey", default="$default"))
        method, _, path = key.partition(" ")
        target = [fn_names[x] for x in tpl.refs(r.prop("Target")) if x in fn_names]
        routes.append(
            Route(
                api=str(tpl.target(r.prop("ApiId"))),
                method=method if path else "ANY",
                path=path or key,
                authorization=str(r.prop("AuthorizationType", default="NONE")),
                api_key_required=bool(r.prop("ApiKeyRequired", default=False)),
                validator=None,
                integration=", ".join(target) or "integration",
                resource_id=r.logical_id,
            )
        )
    routes.sort(key=lambda r: (r.path, r.method))
    return routes


def _stage_names(tpl: Template, res: Resolver) -> dict[str, str]:
    """API logical id -> the name of its (first) stage."""
    out: dict[str, str] = {}
    for stage in tpl.of_type("AWS::ApiGateway::Stage"):
        api = tpl.target(stage.prop("RestApiId"))
        if api and api not in out:
            out[api] = str(res.resolve(stage.prop("StageName")))
    return out


def sample_path(path: str) -> str:
    """A concrete request path for a route (`/contacts/{contact}` -> `/contacts/x`)."""
    return re.sub(r"\{[^}]+\}", "x", path)


def role_routes(tpl: Template, routes: list[Route]) -> dict[str, list[str]]:
    """Personnel role -> `METHOD /path` of the IAM-authorized routes it may invoke, decided as the local API
    decides (`waguard.roles.allowed`: the role's resolved policies through the one IAM evaluator)."""
    res = Resolver(tpl)
    stages = _stage_names(tpl, res)
    out: dict[str, list[str]] = {}
    for role, spec in model.roles(tpl, res).items():
        principal = roles.role_principal(spec)
        out[role] = [
            f"{r.method} {r.path}"
            for r in routes
            if r.authorization == "AWS_IAM"
            and roles.allowed(
                principal,
                roles.execute_api_arn(
                    tpl.region, str(res.ref(r.api)), stages.get(r.api, "prod"), r.method, sample_path(r.path)
                ),
            )
        ]
    return out


# ---- exposure ---------------------------------------------------------------------------------------


@dataclass
class Throttle:
    rate: float | None
    burst: int | None
    source: str


@dataclass
class WafFact:
    logical_id: str
    default_action: str
    rules: list[str]
    logging: bool
    rate_limit: int | None


@dataclass
class StageFact:
    logical_id: str
    api: str
    name: str
    tracing: bool
    access_logs: str | None
    logging_level: str | None
    data_trace: bool
    cache_encrypted: bool | None
    throttle: Throttle | None
    method_throttles: dict[tuple[str, str], Throttle]
    wafs: list[WafFact]


@dataclass
class ApiFact:
    logical_id: str
    name: str
    endpoint: str
    security_policy: str | None
    execute_api_disabled: bool
    resource_policy: list[str]
    stages: list[StageFact]
    min_compression: Any = None


@dataclass
class Exposure:
    apis: list[ApiFact]
    routes: list[Route]
    route_throttle: dict[str, Throttle | None]  # route resource id -> effective throttle
    route_wafs: dict[str, list[str]]  # route resource id -> web ACL logical ids
    domains: list[str]  # custom domain names with their TLS policy


def _waf_facts(tpl: Template) -> dict[str, WafFact]:
    logged = {tpl.target(c.prop("ResourceArn")) for c in tpl.of_type("AWS::WAFv2::LoggingConfiguration")}
    out = {}
    for acl in tpl.of_type("AWS::WAFv2::WebACL"):
        rules = []
        rate = None
        for rule in as_list(acl.prop("Rules")):
            stmt = rule.get("Statement") or {}
            action = next(iter((rule.get("Action") or rule.get("OverrideAction") or {"": ""}).keys()), "")
            if "RateBasedStatement" in stmt:
                limit = stmt["RateBasedStatement"].get("Limit")
                window = stmt["RateBasedStatement"].get("EvaluationWindowSec", 300)
                rate = int(limit) if rate is None else min(rate, int(limit))
                rules.append(f"{rule.get('Name')}: rate limit {limit} per {window}s per IP ({action})")
            elif "ManagedRuleGroupStatement" in stmt:
                g = stmt["ManagedRuleGroupStatement"]
                rules.append(f"{rule.get('Name')}: managed rules {g.get('VendorName')}/{g.get('Name')}")
            else:
                kinds = ", ".join(stmt.keys()) or "statement"
                rules.append(f"{rule.get('Name')}: {kinds} ({action})")
        default = next(iter((acl.prop("DefaultAction") or {}).keys()), "?")
        out[acl.logical_id] = WafFact(
            logical_id=acl.logical_id,
            default_action=default,
            rules=rules,
            logging=acl.logical_id in logged,
            rate_limit=rate,
        )
    return out


def _throttle(settings: dict[str, Any], source: str) -> Throttle | None:
    rate, burst = settings.get("ThrottlingRateLimit"), settings.get("ThrottlingBurstLimit")
    if rate is None and burst is None:
        return None
    return Throttle(rate=rate, burst=burst, source=source)


def exposure(tpl: Template) -> Exposure:
    wafs = _waf_facts(tpl)
    assoc: dict[str, list[str]] = {}  # stage or api logical id -> acl ids
    for a in tpl.of_type("AWS::WAFv2::WebACLAssociation"):
        acl = tpl.target(a.prop("WebACLArn"))
        for lid in tpl.refs(a.prop("ResourceArn")):
            if acl:
                assoc.setdefault(lid, []).append(acl)
    stages_by_api: dict[str, list[StageFact]] = {}
    for s in tpl.of_type("AWS::ApiGateway::Stage"):
        api = str(tpl.target(s.prop("RestApiId")))
        default: Throttle | None = None
        per_method: dict[tuple[str, str], Throttle] = {}
        level, data_trace, cache_enc = None, False, None
        for ms in as_list(s.prop("MethodSettings")):
            path = str(ms.get("ResourcePath", "/*")).replace("~1", "/")
            method = str(ms.get("HttpMethod", "*"))
            th = _throttle(ms, f"stage {s.prop('StageName')} {method} {path}")
            if path == "/*" and method == "*":
                default = th
                level = ms.get("LoggingLevel")
                data_trace = bool(ms.get("DataTraceEnabled"))
                cache_enc = ms.get("CacheDataEncrypted")
            elif th:
                per_method[(method, path)] = th
        acls = [wafs[x] for x in dict.fromkeys(assoc.get(s.logical_id, []) + assoc.get(api, [])) if x in wafs]
        stages_by_api.setdefault(api, []).append(
            StageFact(
                logical_id=s.logical_id,
                api=api,
                name=str(s.prop("StageName")),
                tracing=bool(s.prop("TracingEnabled", default=False)),
                access_logs=tpl.target(s.prop("AccessLogSetting", "DestinationArn")),
                logging_level=level,
                data_trace=data_trace,
                cache_encrypted=cache_enc,
                throttle=default,
                method_throttles=per_method,
                wafs=acls,
            )
        )
    for s in tpl.of_type("AWS::ApiGatewayV2::Stage"):
        api = str(tpl.target(s.prop("ApiId")))
        th = _throttle(s.prop("DefaultRouteSettings") or {}, f"stage {s.prop('StageName')} default")
        stages_by_api.setdefault(api, []).append(
            StageFact(
                s.logical_id,
                api,
                str(s.prop("StageName")),
                False,
                tpl.target(s.prop("AccessLogSettings", "DestinationArn")),
                None,
                False,
                None,
                th,
                {},
                [wafs[x] for x in assoc.get(s.logical_id, []) if x in wafs],
            )
        )
    plans: dict[str, Throttle] = {}
    for plan in tpl.of_type("AWS::ApiGateway::UsagePlan"):
        th = _throttle(plan.prop("Throttle") or {}, f"usage plan {plan.logical_id}")
        for stage in as_list(plan.prop("ApiStages")):
            api_id = tpl.target(stage.get("ApiId"))
            if api_id and th:
                plans[api_id] = th
    apis = []
    for api_res in tpl.of_type("AWS::ApiGateway::RestApi", "AWS::ApiGatewayV2::Api"):
        api_policy = [
            f"{ps.get('Effect')} {', '.join(map(str, as_list(ps.get('Action'))))}"
            for ps in _policy_statements(api_res.prop("Policy"))
        ]
        if api_res.type == "AWS::ApiGateway::RestApi":
            endpoint = ", ".join(map(str, as_list(api_res.prop("EndpointConfiguration", "Types"))))
            endpoint = endpoint or "EDGE (default)"
        else:
            endpoint = str(api_res.prop("ProtocolType"))
        apis.append(
            ApiFact(
                logical_id=api_res.logical_id,
                name=str(api_res.prop("Name", default=api_res.logical_id)),
                endpoint=endpoint,
                security_policy=api_res.prop("SecurityPolicy"),
                execute_api_disabled=bool(api_res.prop("DisableExecuteApiEndpoint", default=False)),
                resource_policy=api_policy,
                stages=stages_by_api.get(api_res.logical_id, []),
            )
        )
    routes = api_routes(tpl)
    route_throttle: dict[str, Throttle | None] = {}
    route_wafs: dict[str, list[str]] = {}
    for r in routes:
        stages = stages_by_api.get(r.api, [])
        effective: Throttle | None = None
        acl_ids: list[str] = []
        for stage_fact in stages:
            throttles = stage_fact.method_throttles
            specific = throttles.get((r.method, r.path)) or throttles.get(("*", r.path))
            effective = effective or specific or stage_fact.throttle
            acl_ids += [w.logical_id for w in stage_fact.wafs]
        route_throttle[r.resource_id] = effective or plans.get(r.api)
        route_wafs[r.resource_id] = sorted(set(acl_ids))
    domains = []
    for d in tpl.of_type("AWS::ApiGateway::DomainName", "AWS::ApiGatewayV2::DomainName"):
        tls = d.prop("SecurityPolicy") or d.prop("DomainNameConfigurations")
        domains.append(f"{d.logical_id}: {tpl.render(d.prop('DomainName'))} TLS policy {tpl.render(tls)}")
    return Exposure(
        apis=apis, routes=routes, route_throttle=route_throttle, route_wafs=route_wafs, domains=domains
    )


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
