"""The audit: the live resources read through boto3 and compared with the expectation (`audit_expect`).

`run(clients, expectation, may)` reads every audited resource with read-only calls (Describe/Get/List)
and returns findings `{"check", "resource", "detail"}` (resource: the template's logical id), empty when
the stack is as its template says. `clients(service)` gives a boto3 client; `may(statements, action,
resource)` is the IAM evaluator of the IAM check (`audit_iam`). One module for `waguard audit`, the
auditor function and `POST /audit/run`; it never changes anything.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

from domain import audit_iam
from domain.audit_expect import denies_insecure_transport

Clients = Callable[[str], Any]
Finding = dict[str, str]

# Environment values that look like credentials: by name (a secret, token, password or key that is not an
# ARN or a reference), or by shape (AWS access keys, Meta tokens, PEM blocks, long random strings).
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_?KEY", re.I)
_SECRET_VALUE = re.compile(
    r"AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|EAA[A-Za-z0-9]{30,}|-----BEGIN [A-Z ]*PRIVATE KEY"
)
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")


def secret_looking(name: str, value: str) -> bool:
    """An environment value that should be a Secrets Manager reference, not the secret itself."""
    if _SECRET_VALUE.search(value):
        return True
    if not value or value.lower() in ("true", "false"):
        return False
    if _SECRET_NAME.search(name):
        return not (value.startswith("arn:") or value.startswith("https://"))
    # a long random-looking token (letters and digits mixed) in any variable
    return (
        bool(_TOKEN.fullmatch(value))
        and any(ch.isdigit() for ch in value)
        and any(ch.isalpha() for ch in value)
    )


class _Audit:
    def __init__(self, clients: Clients, exp: dict[str, Any]) -> None:
        self.clients = clients
        self.exp = exp
        self.findings: list[Finding] = []
        self._key_arns: dict[str, str] = {}

    def add(self, check: str, resource: str, detail: str) -> None:
        self.findings.append({"check": check, "resource": resource, "detail": detail})

    def key_arn(self, key: Any) -> str:
        """A key id, alias or ARN -> the key's ARN (what the live side and the template name may differ)."""
        text = str(key or "")
        if not text:
            return ""
        if text not in self._key_arns:
            try:
                self._key_arns[text] = str(self.clients("kms").describe_key(KeyId=text)["KeyMetadata"]["Arn"])
            except Exception:  # an unknown key: compare the text as it is
                self._key_arns[text] = text
        return self._key_arns[text]

    def guarded(self, check: str, resource: str, fn: Callable[[], None]) -> None:
        """Run one resource's checks; a resource that cannot be read is a finding, not a crash."""
        try:
            fn()
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
            self.add(check, resource, f"could not be read ({code})")

    # -- tables -------------------------------------------------------------------------------------
    def table(self, t: dict[str, Any]) -> None:
        ddb = self.clients("dynamodb")
        sse = ddb.describe_table(TableName=t["name"])["Table"].get("SSEDescription") or {}
        if t["sse"] and sse.get("Status") != "ENABLED":
            self.add("table-encryption", t["id"], "server-side encryption with the stack's key is off")
        elif t["key"] and self.key_arn(sse.get("KMSMasterKeyArn")) != self.key_arn(t["key"]):
            self.add(
                "table-encryption",
                t["id"],
                f"encrypted with {sse.get('KMSMasterKeyArn')}, not the template's key",
            )
        backups = ddb.describe_continuous_backups(TableName=t["name"])["ContinuousBackupsDescription"]
        pitr = (backups.get("PointInTimeRecoveryDescription") or {}).get(
            "PointInTimeRecoveryStatus"
        ) == "ENABLED"
        if pitr != t["pitr"]:
            self.add(
                "table-pitr",
                t["id"],
                f"point-in-time recovery is {_on(pitr)}, template says {_on(t['pitr'])}",
            )
        ttl = ddb.describe_time_to_live(TableName=t["name"])["TimeToLiveDescription"]
        live_ttl = (
            ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") else None
        )
        if live_ttl != t["ttl"]:
            self.add("table-ttl", t["id"], f"TTL attribute is {live_ttl!r}, template says {t['ttl']!r}")

    # -- keys ---------------------------------------------------------------------------------------
    def key(self, k: dict[str, Any]) -> None:
        kms = self.clients("kms")
        meta = kms.describe_key(KeyId=k["key_id"])["KeyMetadata"]
        if meta.get("KeyState") == "PendingDeletion":
            self.add("key-deletion", k["id"], f"scheduled for deletion on {meta.get('DeletionDate')}")
        elif k["enabled"] and not meta.get("Enabled"):
            self.add("key-enabled", k["id"], f"the key is {meta.get('KeyState')}")
        rotating = bool(kms.get_key_rotation_status(KeyId=k["key_id"]).get("KeyRotationEnabled"))
        if rotating != k["rotation"]:
            self.add(
                "key-rotation",
                k["id"],
                f"automatic rotation is {_on(rotating)}, template says {_on(k['rotation'])}",
            )
        live = json.loads(kms.get_key_policy(KeyId=k["key_id"], PolicyName="default")["Policy"])
        if canonical(live) != canonical(k["policy"]):
            self.add("key-policy", k["id"], "the key policy differs from the template's")

    # -- queues -------------------------------------------------------------------------------------
    def queue(self, q: dict[str, Any]) -> None:
        attrs = self.clients("sqs").get_queue_attributes(QueueUrl=q["url"], AttributeNames=["All"])[
            "Attributes"
        ]
        if q["key"] and self.key_arn(attrs.get("KmsMasterKeyId")) != self.key_arn(q["key"]):
            self.add(
                "queue-encryption",
                q["id"],
                f"encrypted with {attrs.get('KmsMasterKeyId') or 'no key'}, not the template's key",
            )
        policy = json.loads(attrs.get("Policy") or "{}")
        if q["ssl_only"] and not denies_insecure_transport(policy):
            self.add("queue-ssl-only", q["id"], "the queue policy no longer denies requests without TLS")
        if q["dlq"]:
            redrive = json.loads(attrs.get("RedrivePolicy") or "{}")
            if (
                redrive.get("deadLetterTargetArn") != q["dlq"]
                or int(redrive.get("maxReceiveCount", 0)) != q["max_receive"]
            ):
                self.add(
                    "queue-redrive", q["id"], f"redrive policy {redrive or 'none'} is not the template's"
                )

    # -- buckets ------------------------------------------------------------------------------------
    def bucket(self, b: dict[str, Any]) -> None:
        s3 = self.clients("s3")
        try:
            block = s3.get_public_access_block(Bucket=b["name"])["PublicAccessBlockConfiguration"]
        except Exception:  # NoSuchPublicAccessBlockConfiguration: nothing blocked
            block = {}
        opened = sorted(k for k, v in b["public_access_block"].items() if v and not block.get(k))
        if opened:
            self.add(
                "bucket-public-access", b["id"], "public access is no longer blocked: " + ", ".join(opened)
            )
        self._bucket_encryption(b)
        if b["tls_only"]:
            try:
                policy = json.loads(s3.get_bucket_policy(Bucket=b["name"])["Policy"])
            except Exception:  # NoSuchBucketPolicy
                policy = {}
            if not denies_insecure_transport(policy):
                self.add(
                    "bucket-tls-only", b["id"], "the bucket policy no longer denies requests without TLS"
                )
        status = s3.get_bucket_versioning(Bucket=b["name"]).get("Status")
        if b["versioning"] and status != "Enabled":
            self.add("bucket-versioning", b["id"], f"versioning is {status or 'off'}, template says Enabled")
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=b["name"]).get("Rules") or []
        except Exception:  # NoSuchLifecycleConfiguration
            rules = []
        live = sorted(str(r.get("ID", "")) for r in rules if r.get("Status") == "Enabled")
        if live != b["lifecycle"]:
            self.add("bucket-lifecycle", b["id"], f"lifecycle rules {live}, template says {b['lifecycle']}")

    def _bucket_encryption(self, b: dict[str, Any]) -> None:
        try:
            rules = self.clients("s3").get_bucket_encryption(Bucket=b["name"])[
                "ServerSideEncryptionConfiguration"
            ]["Rules"]
        except Exception:  # ServerSideEncryptionConfigurationNotFoundError
            rules = []
        default = (rules[0].get("ApplyServerSideEncryptionByDefault") or {}) if rules else {}
        if b["sse"] and default.get("SSEAlgorithm") != b["sse"]:
            self.add(
                "bucket-encryption",
                b["id"],
                f"default encryption is {default.get('SSEAlgorithm') or 'off'}, template says {b['sse']}",
            )
        elif b["key"] and self.key_arn(default.get("KMSMasterKeyID")) != self.key_arn(b["key"]):
            self.add("bucket-encryption", b["id"], "default encryption does not use the template's key")

    # -- the trail, the bus, functions --------------------------------------------------------------
    def trail(self, t: dict[str, Any]) -> None:
        ct = self.clients("cloudtrail")
        live = ct.get_trail(Name=t["name"])["Trail"]
        if t["logging"] and not ct.get_trail_status(Name=t["name"]).get("IsLogging"):
            self.add("trail-logging", t["id"], "the trail is not logging")
        if t["validation"] and not live.get("LogFileValidationEnabled"):
            self.add("trail-validation", t["id"], "log-file validation is off")
        if t["bucket"] and live.get("S3BucketName") != t["bucket"]:
            self.add(
                "trail-bucket",
                t["id"],
                f"logs go to {live.get('S3BucketName')}, not to the template's bucket",
            )
        if t["key"] and self.key_arn(live.get("KmsKeyId")) != self.key_arn(t["key"]):
            self.add("trail-bucket", t["id"], "log files are not encrypted with the template's key")

    def bus(self, b: dict[str, Any]) -> None:
        live = self.clients("events").describe_event_bus(Name=b["name"])
        if b["key"] and self.key_arn(live.get("KmsKeyIdentifier")) != self.key_arn(b["key"]):
            self.add(
                "bus-key",
                b["id"],
                f"events are encrypted with {live.get('KmsKeyIdentifier') or 'an AWS owned key'}, "
                "not the template's key",
            )

    def function(self, f: dict[str, Any]) -> None:
        lam = self.clients("lambda")
        cfg = lam.get_function_configuration(FunctionName=f["name"])
        if f["runtime"] and cfg.get("Runtime") != f["runtime"]:
            self.add(
                "function-runtime", f["id"], f"runtime {cfg.get('Runtime')}, template says {f['runtime']}"
            )
        if int(cfg.get("MemorySize", 0)) != f["memory"]:
            self.add(
                "function-memory",
                f["id"],
                f"memory {cfg.get('MemorySize')} MB, template says {f['memory']} MB",
            )
        if f["reserved"] is not None:
            reserved = lam.get_function_concurrency(FunctionName=f["name"]).get(
                "ReservedConcurrentExecutions"
            )
            if reserved is None or int(reserved) != int(f["reserved"]):
                self.add(
                    "function-concurrency",
                    f["id"],
                    f"reserved concurrency {reserved}, template says {f['reserved']}",
                )
        variables = (cfg.get("Environment") or {}).get("Variables") or {}
        declared = f.get("environment") or {}
        changed = {n: str(v) for n, v in variables.items() if declared.get(n) != str(v)}
        for name in sorted(n for n, v in changed.items() if secret_looking(n, v)):
            self.add(
                "function-secret-env", f["id"], f"environment variable {name} holds a secret-looking value"
            )


def run(clients: Clients, exp: dict[str, Any], may: audit_iam.Evaluator = audit_iam.may) -> list[Finding]:
    """Every check of the contract's list against the live resources; the findings, in a stable order."""
    audit = _Audit(clients, exp)
    checks: tuple[tuple[str, str, Callable[[dict[str, Any]], None]], ...] = (
        ("keys", "key-enabled", audit.key),
        ("tables", "table-encryption", audit.table),
        ("queues", "queue-encryption", audit.queue),
        ("buckets", "bucket-encryption", audit.bucket),
        ("trails", "trail-logging", audit.trail),
        ("buses", "bus-key", audit.bus),
        ("functions", "function-runtime", audit.function),
    )
    for kind, check, fn in checks:
        for item in exp.get(kind) or []:
            audit.guarded(check, item["id"], functools.partial(fn, item))
    audit.guarded("iam", "account", lambda: audit.findings.extend(audit_iam.outsiders(clients, exp, may)))
    return audit.findings


def canonical(value: Any) -> Any:
    """A policy in a form where equal policies compare equal: one-item lists as their item, lists of
    strings sorted, statements in a stable order."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        if len(items) == 1:
            return items[0]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def _on(flag: bool) -> str:
    return "on" if flag else "off"
