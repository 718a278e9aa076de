"""Create the stack's data resources on the local AWS endpoint, exactly as the template declares them.

moto's CloudFormation skips several of these types and ignores SSE/TTL/PITR, so the local runtime makes
the API calls itself: KMS keys (rotation), aliases, DynamoDB tables (keys, GSIs, billing, CMK SSE, TTL,
point-in-time recovery, deletion protection), SQS queues (CMK, timeouts, redrive to the DLQ), queue
policies and the one secret. `check` then reads everything back and refuses any difference.
`discover` finds the same resources on an endpoint where `waguard serve` already created them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from waguard import aws, materialize_audit, model
from waguard.cfn import Physical, Resolver, Template, TemplateError, physical_name

LOGICAL_ID_TAG = "waguard:logical-id"

# Contract variable -> secret field (docs/design.md "The secrets"); each secret of the template gets the
# fields its `waguard:secret-fields` metadata declares, nothing else.
SECRET_ENV = {
    "WA_APP_SECRET": "app_secret",
    "WA_VERIFY_TOKEN": "verify_token",
    "WA_ACCESS_TOKEN": "access_token",
    "WG_CONTACT_KEY": "contact_key",
}

SUPPORTED = (
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::SecretsManager::Secret",
    "AWS::Events::EventBus",
    "AWS::Events::Rule",
    "AWS::S3::Bucket",
    *materialize_audit.TYPES,
)


class MaterializeError(RuntimeError):
    """The local resources could not be created, or differ from the template."""


def local_secrets(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The secret's values from the environment, each generated when unset (printed by `serve`)."""
    source = os.environ if env is None else env
    return {name: source.get(name) or secrets.token_urlsafe(24) for name in SECRET_ENV}


# ---- dependency order ------------------------------------------------------------------------------


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and isinstance(arg, str):
                yield arg
            elif key == "Fn::GetAtt":
                yield arg.split(".", 1)[0] if isinstance(arg, str) else arg[0]
            elif key == "Fn::Sub":
                text = arg[0] if isinstance(arg, list) else arg
                for name in _sub_names(text):
                    yield name.split(".", 1)[0]
        for item in value.values():
            yield from _references(item)


def _sub_names(text: str) -> list[str]:
    return [m for m in re.findall(r"\$\{([^!}][^}]*)\}", text) if not m.startswith("AWS::")]


def creation_order(tpl: Template, res: Resolver) -> list[str]:
    """The supported resources, each after those it references (skipping any whose Condition is false)."""
    wanted = {
        lid: r.raw
        for lid, r in tpl.resources.items()
        if r.type in SUPPORTED and (not r.raw.get("Condition") or res.condition(r.raw["Condition"]))
    }
    deps: dict[str, set[str]] = {}
    for lid, resource in wanted.items():
        refs = set(_references(resource.get("Properties", {})))
        depends = resource.get("DependsOn") or []
        refs.update([depends] if isinstance(depends, str) else depends)
        deps[lid] = {d for d in refs if d in wanted and d != lid}
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(wanted):
        ready = sorted(lid for lid in wanted if lid not in done and deps[lid] <= done)
        if not ready:
            raise TemplateError(f"circular references among {sorted(set(wanted) - done)}")
        order.extend(ready)
        done.update(ready)
    return order


# ---- creation --------------------------------------------------------------------------------------


class Materializer:
    def __init__(self, tpl: Template, endpoint: str, secret_values: dict[str, str] | None = None) -> None:
        self.tpl = tpl
        self.res = Resolver(tpl)
        self.endpoint = endpoint
        self.secret_values = secret_values if secret_values is not None else local_secrets()
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws.client(service, self.endpoint, self.tpl.region)
        return self._clients[service]

    def props(self, lid: str) -> dict[str, Any]:
        return self.res.resolve(self.tpl.props(lid)) or {}

    def run(self) -> dict[str, Physical]:
        creators: dict[str, Callable[[str], Physical | None]] = {
            "AWS::KMS::Key": self._key,
            "AWS::KMS::Alias": self._alias,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::SQS::QueuePolicy": self._queue_policy,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Events::EventBus": self._event_bus,
            "AWS::Events::Rule": self._rule,
            "AWS::S3::Bucket": self._bucket,
            **materialize_audit.creators(self),
        }
        for lid in creation_order(self.tpl, self.res):
            try:
                phys = creators[self.tpl.resources[lid].type](lid)
            except Exception as exc:
                if isinstance(exc, (MaterializeError, TemplateError)):
                    raise
                raise MaterializeError(f"creating {lid}: {type(exc).__name__}: {exc}") from exc
            if phys is not None:
                self.res.physical[lid] = phys
        return dict(self.res.physical)

    # -- KMS ----------------------------------------------------------------------------------------
    def _key(self, lid: str) -> Physical:
        p = self.props(lid)
        args: dict[str, Any] = {
            "Description": str(p.get("Description", "")),
            "KeyUsage": p.get("KeyUsage", "ENCRYPT_DECRYPT"),
            "KeySpec": p.get("KeySpec", "SYMMETRIC_DEFAULT"),
            "Tags": [{"TagKey": LOGICAL_ID_TAG, "TagValue": lid}]
            + [{"TagKey": t["Key"], "TagValue": str(t["Value"])} for t in p.get("Tags") or []],
        }
        # The key policy is kept as the template says (the audit compares it); moto does not enforce it.
        if p.get("KeyPolicy"):
            args["Policy"] = json.dumps(p["KeyPolicy"])
        kms = self.client("kms")
        meta = kms.create_key(**args)["KeyMetadata"]
        if p.get("EnableKeyRotation"):
            period = p.get("RotationPeriodInDays")
            kms.enable_key_rotation(
                KeyId=meta["KeyId"], **({"RotationPeriodInDays": int(period)} if period else {})
            )
        if p.get("Enabled") is False:
            kms.disable_key(KeyId=meta["KeyId"])
        return Physical(meta["KeyId"], {"Arn": meta["Arn"], "KeyId": meta["KeyId"]})

    def _alias(self, lid: str) -> Physical:
        p = self.props(lid)
        self.client("kms").create_alias(AliasName=p["AliasName"], TargetKeyId=p["TargetKeyId"])
        return Physical(p["AliasName"])

    # -- DynamoDB -----------------------------------------------------------------------------------
    def _table(self, lid: str) -> Physical:
        p = self.props(lid)
        name = self.res.standin(lid).ref
        billing = p.get("BillingMode", "PROVISIONED")
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": p["KeySchema"],
            "AttributeDefinitions": p["AttributeDefinitions"],
            "BillingMode": billing,
        }
        if billing == "PROVISIONED":
            args["ProvisionedThroughput"] = _throughput(p.get("ProvisionedThroughput"))
        index_keys = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput", "OnDemandThroughput")
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if p.get(kind):
                args[kind] = [{k: v for k, v in ix.items() if k in index_keys} for ix in p[kind]]
                if kind == "GlobalSecondaryIndexes" and billing == "PROVISIONED":
                    for ix in args[kind]:
                        ix["ProvisionedThroughput"] = _throughput(ix.get("ProvisionedThroughput"))
        sse = p.get("SSESpecification") or {}
        if _true(sse.get("SSEEnabled")):
            args["SSESpecification"] = {"Enabled": True, "SSEType": sse.get("SSEType", "KMS")}
            if sse.get("KMSMasterKeyId"):
                args["SSESpecification"]["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
        if p.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
        if "DeletionProtectionEnabled" in p:
            args["DeletionProtectionEnabled"] = _true(p["DeletionProtectionEnabled"])
        if p.get("TableClass"):
            args["TableClass"] = p["TableClass"]
        if p.get("Tags"):
            args["Tags"] = [{"Key": t["Key"], "Value": str(t["Value"])} for t in p["Tags"]]
        ddb = self.client("dynamodb")
        table = ddb.create_table(**args)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification") or {}
        if _true(ttl.get("Enabled")):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        pitr = p.get("PointInTimeRecoverySpecification") or {}
        if _true(pitr.get("PointInTimeRecoveryEnabled")):
            spec: dict[str, Any] = {"PointInTimeRecoveryEnabled": True}
            if pitr.get("RecoveryPeriodInDays"):
                spec["RecoveryPeriodInDays"] = int(pitr["RecoveryPeriodInDays"])
            ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification=spec)
        attrs = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attrs["StreamArn"] = table["LatestStreamArn"]
        return Physical(name, attrs)

    # -- SQS ----------------------------------------------------------------------------------------
    _QUEUE_ATTRIBUTES = (
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "SqsManagedSseEnabled",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "RedrivePolicy",
        "RedriveAllowPolicy",
    )

    def _queue(self, lid: str) -> Physical:
        p = self.props(lid)
        name = self.res.standin(lid).attrs["QueueName"]
        attributes = {k: _attr_text(p[k]) for k in self._QUEUE_ATTRIBUTES if k in p}
        args: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if p.get("Tags"):
            args["tags"] = {t["Key"]: str(t["Value"]) for t in p["Tags"]}
        sqs = self.client("sqs")
        url = sqs.create_queue(**args)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Physical(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _queue_policy(self, lid: str) -> None:
        p = self.props(lid)
        for url in p.get("Queues") or []:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(p.get("PolicyDocument") or {})}
            )

    # -- S3 -----------------------------------------------------------------------------------------
    def _bucket(self, lid: str) -> Physical:
        """The bucket with its default encryption, versioning, public access block and lifecycle."""
        p = self.props(lid)
        phys = self.res.standin(lid)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=phys.ref, CreateBucketConfiguration={"LocationConstraint": self.tpl.region})
        encryption = p.get("BucketEncryption") or {}
        if encryption:
            rules = []
            for rule in encryption.get("ServerSideEncryptionConfiguration") or []:
                default = dict(rule.get("ServerSideEncryptionByDefault") or {})
                if "KMSMasterKeyID" in default:
                    default["KMSMasterKeyID"] = _attr_text(default["KMSMasterKeyID"])
                rules.append(
                    {
                        "ApplyServerSideEncryptionByDefault": default,
                        "BucketKeyEnabled": _true(rule.get("BucketKeyEnabled")),
                    }
                )
            s3.put_bucket_encryption(Bucket=phys.ref, ServerSideEncryptionConfiguration={"Rules": rules})
        if (p.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=phys.ref, VersioningConfiguration={"Status": "Enabled"})
        if p.get("PublicAccessBlockConfiguration"):
            block = {k: _true(v) for k, v in p["PublicAccessBlockConfiguration"].items()}
            s3.put_public_access_block(Bucket=phys.ref, PublicAccessBlockConfiguration=block)
        rules = [_lifecycle_rule(r) for r in (p.get("LifecycleConfiguration") or {}).get("Rules") or []]
        if rules:
            s3.put_bucket_lifecycle_configuration(Bucket=phys.ref, LifecycleConfiguration={"Rules": rules})
        return phys

    # -- EventBridge --------------------------------------------------------------------------------
    def _event_bus(self, lid: str) -> Physical:
        # The bus's KMS key and dead-letter queue are AWS's delivery machinery; moto keeps events in
        # memory. The rules on it and their SQS targets are what routes events locally.
        standin = self.res.standin(lid)
        key = self.props(lid).get("KmsKeyIdentifier")
        bus = self.client("events").create_event_bus(
            Name=standin.ref, **({"KmsKeyIdentifier": str(key)} if key else {})
        )
        return Physical(standin.ref, {"Arn": bus["EventBusArn"], "Name": standin.ref})

    def _rule(self, lid: str) -> Physical:
        p = self.props(lid)
        name = self.res.standin(lid).ref
        events = self.client("events")
        args: dict[str, Any] = {"Name": name, "State": p.get("State", "ENABLED")}
        if p.get("EventBusName"):
            args["EventBusName"] = str(p["EventBusName"])
        if p.get("EventPattern"):
            args["EventPattern"] = json.dumps(p["EventPattern"])
        if p.get("ScheduleExpression"):  # run by `waguard serve`'s scheduler (waguard/schedules.py)
            args["ScheduleExpression"] = str(p["ScheduleExpression"])
        arn = events.put_rule(**args)["RuleArn"]
        # Only queue targets exist locally (moto delivers to SQS, not to API destinations or Lambda);
        # `waguard serve --forward-events` adds the local stand-in of the API destination.
        queue_targets = [
            {"Id": str(t["Id"]), "Arn": str(t["Arn"])}
            for t in p.get("Targets") or []
            if str(t.get("Arn", "")).startswith("arn:aws:sqs:")
        ]
        if queue_targets:
            events.put_targets(
                Rule=name, EventBusName=args.get("EventBusName", "default"), Targets=queue_targets
            )
        return Physical(name, {"Arn": arn})

    # -- Secrets Manager ----------------------------------------------------------------------------
    def _secret(self, lid: str) -> Physical:
        p = self.props(lid)
        name = secret_name(self.tpl, self.res, lid)
        args: dict[str, Any] = {"Name": name, "SecretString": self._secret_string(lid, p)}
        if p.get("KmsKeyId"):
            args["KmsKeyId"] = p["KmsKeyId"]
        if p.get("Description"):
            args["Description"] = p["Description"]
        if p.get("Tags"):
            args["Tags"] = [{"Key": t["Key"], "Value": str(t["Value"])} for t in p["Tags"]]
        arn = self.client("secretsmanager").create_secret(**args)["ARN"]
        return Physical(arn, {"Id": arn})

    def _secret_string(self, lid: str, p: dict[str, Any]) -> str:
        """The template's value (or its generator's JSON template), with the fields this secret declares
        in `waguard:secret-fields` set from the local secrets; a secret that declares none is kept."""
        declared = model.secret_fields(self.tpl.resources[lid].metadata)
        if "SecretString" in p and not declared:
            return str(self.res.resolve(p["SecretString"]))
        text = p.get("SecretString") or (p.get("GenerateSecretString") or {}).get("SecretStringTemplate")
        try:
            base = dict(json.loads(str(self.res.resolve(text)))) if text else {}
        except (ValueError, TypeError):
            base = {}
        values = {field: self.secret_values[env] for env, field in SECRET_ENV.items()}
        base.update({field: values[field] for field in declared})
        return json.dumps(base)


def secret_name(tpl: Template, res: Resolver, lid: str) -> str:
    name = tpl.props(lid).get("Name")
    return str(res.resolve(name)) if name else physical_name(tpl, lid, 256)


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _attr_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    out: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule.get("Status", "Enabled")}
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpiredObjectDeleteMarker" in rule and "Days" not in expiration:  # S3 refuses both in one rule
        expiration["ExpiredObjectDeleteMarker"] = _true(rule["ExpiredObjectDeleteMarker"])
    if expiration:
        out["Expiration"] = expiration
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return out


def _throughput(value: Any) -> dict[str, int]:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }


def materialize(
    tpl: Template, endpoint: str, secret_values: dict[str, str] | None = None, verify: bool = True
) -> dict[str, Physical]:
    """Create every supported resource; return logical id -> physical values. Verifies by default."""
    physical = Materializer(tpl, endpoint, secret_values).run()
    if verify:
        problems = check(tpl, endpoint, physical)
        if problems:
            raise MaterializeError(
                "the local resources differ from the template:\n  " + "\n  ".join(problems)
            )
    return physical


# ---- verification ----------------------------------------------------------------------------------


def check(tpl: Template, endpoint: str, physical: dict[str, Physical]) -> list[str]:
    """Read the created resources back and list every difference from the template (empty: all good)."""
    res = Resolver(tpl, physical)
    problems: list[str] = []
    ddb = aws.client("dynamodb", endpoint, tpl.region)
    kms = aws.client("kms", endpoint, tpl.region)
    sqs = aws.client("sqs", endpoint, tpl.region)

    def key_arn(key: str) -> str:
        return str(kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"])

    for lid in tpl.by_id("AWS::DynamoDB::Table"):
        if lid not in physical:
            continue
        p = res.resolve(tpl.props(lid)) or {}
        name = physical[lid].ref
        table = ddb.describe_table(TableName=name)["Table"]
        sse = p.get("SSESpecification") or {}
        got_sse = table.get("SSEDescription") or {}
        if _true(sse.get("SSEEnabled")):
            if got_sse.get("Status") != "ENABLED" or got_sse.get("SSEType") != sse.get("SSEType", "KMS"):
                problems.append(f"{lid}: SSE is {got_sse or 'off'}, template says {sse}")
            elif sse.get("KMSMasterKeyId") and got_sse.get("KMSMasterKeyArn") != key_arn(
                sse["KMSMasterKeyId"]
            ):
                problems.append(f"{lid}: SSE key {got_sse.get('KMSMasterKeyArn')} is not the template's key")
        want_ttl = p.get("TimeToLiveSpecification") or {}
        got_ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if _true(want_ttl.get("Enabled")) != (got_ttl.get("TimeToLiveStatus") == "ENABLED") or (
            _true(want_ttl.get("Enabled")) and got_ttl.get("AttributeName") != want_ttl.get("AttributeName")
        ):
            problems.append(f"{lid}: TTL is {got_ttl}, template says {want_ttl}")
        want_pitr = _true((p.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled"))
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        got_pitr = (
            backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") == "ENABLED"
        )
        if want_pitr != got_pitr:
            problems.append(f"{lid}: point-in-time recovery is {got_pitr}, template says {want_pitr}")
        if _true(p.get("DeletionProtectionEnabled")) != bool(table.get("DeletionProtectionEnabled")):
            problems.append(f"{lid}: deletion protection differs from the template")
        want_gsis = {ix["IndexName"] for ix in p.get("GlobalSecondaryIndexes") or []}
        got_gsis = {ix["IndexName"] for ix in table.get("GlobalSecondaryIndexes") or []}
        if want_gsis != got_gsis:
            problems.append(f"{lid}: indexes {sorted(got_gsis)}, template says {sorted(want_gsis)}")
    for lid in tpl.by_id("AWS::SQS::Queue"):
        if lid not in physical:
            continue
        p = res.resolve(tpl.props(lid)) or {}
        got = sqs.get_queue_attributes(QueueUrl=physical[lid].ref, AttributeNames=["All"])["Attributes"]
        if p.get("KmsMasterKeyId") and (
            not got.get("KmsMasterKeyId") or key_arn(got["KmsMasterKeyId"]) != key_arn(p["KmsMasterKeyId"])
        ):
            problems.append(f"{lid}: queue key {got.get('KmsMasterKeyId')} is not the template's key")
        if p.get("RedrivePolicy"):
            want = (
                p["RedrivePolicy"] if isinstance(p["RedrivePolicy"], dict) else json.loads(p["RedrivePolicy"])
            )
            have = json.loads(got.get("RedrivePolicy") or "{}")
            if have.get("deadLetterTargetArn") != want.get("deadLetterTargetArn") or int(
                have.get("maxReceiveCount", 0)
            ) != int(want.get("maxReceiveCount", 0)):
                problems.append(f"{lid}: redrive policy {have}, template says {want}")
        for attr in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if attr in p and str(got.get(attr)) != str(p[attr]):
                problems.append(f"{lid}: {attr} is {got.get(attr)}, template says {p[attr]}")
    return problems


# ---- discovery (a running `waguard serve`) ---------------------------------------------------------


def discover(tpl: Template, endpoint: str) -> dict[str, Physical]:
    """The physical values of the resources `waguard serve` created on `endpoint` from this template."""
    res = Resolver(tpl)
    physical: dict[str, Physical] = {}
    kms = aws.client("kms", endpoint, tpl.region)
    keys: dict[str, dict[str, Any]] = {}
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            tags = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
            for tag in tags:
                if tag["TagKey"] == LOGICAL_ID_TAG:
                    keys[tag["TagValue"]] = key
    ddb = aws.client("dynamodb", endpoint, tpl.region)
    sqs = aws.client("sqs", endpoint, tpl.region)
    sm = aws.client("secretsmanager", endpoint, tpl.region)
    for lid in creation_order(tpl, res):
        rtype = tpl.resources[lid].type
        try:
            if rtype == "AWS::KMS::Key":
                key = keys[lid]
                physical[lid] = Physical(key["KeyId"], {"Arn": key["KeyArn"], "KeyId": key["KeyId"]})
            elif rtype == "AWS::KMS::Alias":
                physical[lid] = Physical(str(res.resolve(tpl.props(lid)["AliasName"])))
            elif rtype == "AWS::DynamoDB::Table":
                name = res.standin(lid).ref
                table = ddb.describe_table(TableName=name)["Table"]
                physical[lid] = Physical(name, {"Arn": table["TableArn"]})
            elif rtype == "AWS::SQS::Queue":
                name = res.standin(lid).attrs["QueueName"]
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
                physical[lid] = Physical(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})
            elif rtype == "AWS::SecretsManager::Secret":
                arn = sm.describe_secret(SecretId=secret_name(tpl, res, lid))["ARN"]
                physical[lid] = Physical(arn, {"Id": arn})
            elif rtype in ("AWS::Events::EventBus", "AWS::Events::Rule"):
                physical[lid] = res.standin(lid)
            elif rtype == "AWS::S3::Bucket":
                physical[lid] = res.standin(lid)
                aws.client("s3", endpoint, tpl.region).head_bucket(Bucket=physical[lid].ref)
            elif rtype == "AWS::CloudTrail::Trail":
                physical[lid] = materialize_audit.trail_physical(Materializer(tpl, endpoint, {}), lid)
            elif rtype in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::Lambda::Function"):
                physical[lid] = res.standin(lid)
        except Exception as exc:  # a missing key, a ResourceNotFound, ...: one clear message
            raise MaterializeError(
                f"{lid} ({rtype}) was not found at {endpoint}: "
                f"is `waguard serve` running from this template? ({type(exc).__name__})"
            ) from exc
        res.physical.update(physical)
    return physical
