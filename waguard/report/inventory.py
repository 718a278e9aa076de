"""The data inventory: tables, stores (queues, buckets, log groups, secrets), KMS keys and backups."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from waguard.cfn import Resource, Template, as_list
from waguard.model import secret_fields
from waguard.report.common import (
    DATA_CLASS_METADATA,
    QUEUE_ENV_HOLDS,
    SQS_DEFAULT_RETENTION_S,
    TABLE_TAG,
    KeyRef,
    denies_insecure_transport,
    env_of,
    fmt_days,
    function_name,
    key_ref,
    policy_statements,
    resource_policies,
    seconds_to_days,
)

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
    policies = resource_policies(tpl, "AWS::SQS::QueuePolicy", "Queues")
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
        days = seconds_to_days(seconds)
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
                retention=f"messages {fmt_days(days)}",
                retention_days=days,
                backups="none (transient)",
                tls_only=any(denies_insecure_transport(s) for s in statements),
                notes=notes,
            )
        )
    return out


def _buckets(tpl: Template, backups: dict[str, list[str]]) -> list[StoreFact]:
    policies = resource_policies(tpl, "AWS::S3::BucketPolicy", "Bucket")
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
                tls_only=any(denies_insecure_transport(s) for s in policies.get(b.logical_id, [])),
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
        declared = secret_fields(s.metadata)  # what the functions read of it (placeholders aside)
        if declared:
            unused = sorted(set(fields) - set(declared))
            fields = declared + ([f"(unused placeholders: {', '.join(unused)})"] if unused else [])
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
        for st in policy_statements(k.prop("KeyPolicy")):
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
