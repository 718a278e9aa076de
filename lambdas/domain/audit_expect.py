"""What the audit expects: the stack's promises, read from its own CloudFormation template.

`expectation(template, physical, ...)` turns the template (the synthesized one for `waguard audit`, the
deployed one, `cloudformation:GetTemplate`, for the auditor function) into a compact JSON document of
what each audited resource must look like, keyed by logical id, with the physical names and ARNs filled
in from `physical` (logical id -> {"Ref": ..., "Arn": ..., ...}). In AWS `physical` comes from
`cloudformation:DescribeStackResources` (`physical_from_stack`); locally from `waguard serve`'s resolver.

The intrinsic functions are evaluated here with a small resolver (Ref, Fn::GetAtt, Fn::Join, Fn::Sub,
Fn::Select, Fn::Split, Fn::ToJsonString): enough for the properties the audit reads. A reference this
resolver cannot evaluate stays as `${...}` text, so it never matches and shows up as a finding rather
than passing silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

Physical = Mapping[str, Mapping[str, str]]
_SUB = re.compile(r"\$\{([^}]*)\}")


class _Resolver:
    def __init__(self, physical: Physical, pseudo: Mapping[str, str]) -> None:
        self.physical = physical
        self.pseudo = pseudo

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        return (self.physical.get(name) or {}).get("Ref", "${" + name + "}")

    def att(self, lid: str, attr: str) -> Any:
        return (self.physical.get(lid) or {}).get(attr, "${" + f"{lid}.{attr}" + "}")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(str(arg))
            if key == "Fn::GetAtt":
                lid, attr = arg.split(".", 1) if isinstance(arg, str) else (arg[0], self(arg[1]))
                return self.att(str(lid), str(attr))
            if key == "Fn::Join":
                return str(arg[0]).join(_text(v) for v in self(arg[1]))
            if key == "Fn::Select":
                items = self(arg[1])
                return items[int(self(arg[0]))]
            if key == "Fn::Split":
                return _text(self(arg[1])).split(str(arg[0]))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::ToJsonString":
                return json.dumps(self(arg), separators=(",", ":"))
        return {k: self(v) for k, v in value.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (
            (arg[0], self(arg[1] if len(arg) > 1 else {})) if isinstance(arg, list) else (arg, {})
        )

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if "." in name and not name.startswith("AWS::"):
                lid, _, attr = name.partition(".")
                return _text(self.att(lid, attr))
            return _text(self.ref(name))

        return _SUB.sub(repl, str(text))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _by_type(template: Mapping[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {
        lid: r
        for lid, r in (template.get("Resources") or {}).items()
        if isinstance(r, dict) and r.get("Type") == rtype
    }


def denies_insecure_transport(policy: Any) -> bool:
    """The policy has a Deny of everything to everyone when `aws:SecureTransport` is false."""
    statements = (policy or {}).get("Statement") or []
    for st in [statements] if isinstance(statements, dict) else statements:
        secure = ((st.get("Condition") or {}).get("Bool") or {}).get("aws:SecureTransport")
        if st.get("Effect") == "Deny" and str(secure).lower() == "false":
            return True
    return False


def expectation(
    template: Mapping[str, Any], physical: Physical, *, region: str, account: str, stack: str
) -> dict[str, Any]:
    """The compact expectation document (see the module docstring)."""
    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack,
    }
    res = _Resolver(physical, pseudo)

    def props(r: dict[str, Any]) -> dict[str, Any]:
        return res(r.get("Properties") or {}) or {}

    exp: dict[str, Any] = {"region": region, "account": account, "stack": stack}
    exp["root"] = f"arn:aws:iam::{account}:root"
    exp["keys"] = [
        {
            "id": lid,
            "key_id": res.ref(lid),
            "arn": res.att(lid, "Arn"),
            "rotation": _true(props(r).get("EnableKeyRotation")),
            "enabled": props(r).get("Enabled", True) is not False,
            "policy": props(r).get("KeyPolicy") or {},
        }
        for lid, r in _by_type(template, "AWS::KMS::Key").items()
    ]
    exp["tables"] = []
    for lid, r in _by_type(template, "AWS::DynamoDB::Table").items():
        p = props(r)
        sse = p.get("SSESpecification") or {}
        ttl = p.get("TimeToLiveSpecification") or {}
        exp["tables"].append(
            {
                "id": lid,
                "name": res.ref(lid),
                "arn": res.att(lid, "Arn"),
                "sse": _true(sse.get("SSEEnabled")),
                "key": sse.get("KMSMasterKeyId"),
                "pitr": _true(
                    (p.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
                ),
                "ttl": ttl.get("AttributeName") if _true(ttl.get("Enabled")) else None,
            }
        )
    exp["queues"] = _queues(template, res, props)
    exp["buckets"] = _buckets(template, res, props)
    exp["trails"] = [
        {
            "id": lid,
            "name": res.ref(lid),
            "bucket": props(r).get("S3BucketName"),
            "validation": _true(props(r).get("EnableLogFileValidation")),
            "logging": _true(props(r).get("IsLogging")),
            "key": props(r).get("KMSKeyId"),
        }
        for lid, r in _by_type(template, "AWS::CloudTrail::Trail").items()
    ]
    exp["buses"] = [
        {"id": lid, "name": res.ref(lid), "key": props(r).get("KmsKeyIdentifier")}
        for lid, r in _by_type(template, "AWS::Events::EventBus").items()
    ]
    exp["functions"] = [
        {
            "id": lid,
            "name": res.ref(lid),
            "runtime": props(r).get("Runtime"),
            "memory": int(props(r).get("MemorySize", 128)),
            "reserved": props(r).get("ReservedConcurrentExecutions"),
            "environment": {
                str(k): _text(v)
                for k, v in ((props(r).get("Environment") or {}).get("Variables") or {}).items()
            },
        }
        for lid, r in _by_type(template, "AWS::Lambda::Function").items()
    ]
    exp["roles"] = sorted(str(res.att(lid, "Arn")) for lid in _by_type(template, "AWS::IAM::Role"))
    return exp


def _queues(template: Mapping[str, Any], res: _Resolver, props: Any) -> list[dict[str, Any]]:
    ssl_only: set[str] = set()
    for r in _by_type(template, "AWS::SQS::QueuePolicy").values():
        p = props(r)
        if denies_insecure_transport(p.get("PolicyDocument")):
            ssl_only.update(str(u) for u in p.get("Queues") or [])
    out = []
    for lid, r in _by_type(template, "AWS::SQS::Queue").items():
        p = props(r)
        redrive = p.get("RedrivePolicy") or {}
        redrive = json.loads(redrive) if isinstance(redrive, str) else redrive
        url = res.ref(lid)
        out.append(
            {
                "id": lid,
                "url": url,
                "arn": res.att(lid, "Arn"),
                "key": p.get("KmsMasterKeyId"),
                "dlq": redrive.get("deadLetterTargetArn"),
                "max_receive": int(redrive.get("maxReceiveCount", 0)),
                "ssl_only": url in ssl_only,
            }
        )
    return out


def _buckets(template: Mapping[str, Any], res: _Resolver, props: Any) -> list[dict[str, Any]]:
    tls_only: set[str] = set()
    for r in _by_type(template, "AWS::S3::BucketPolicy").values():
        p = props(r)
        if denies_insecure_transport(p.get("PolicyDocument")):
            tls_only.add(str(p.get("Bucket")))
    out = []
    for lid, r in _by_type(template, "AWS::S3::Bucket").items():
        p = props(r)
        rules = (p.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration") or [{}]
        default = rules[0].get("ServerSideEncryptionByDefault") or {}
        name = res.ref(lid)
        out.append(
            {
                "id": lid,
                "name": name,
                "sse": default.get("SSEAlgorithm"),
                "key": default.get("KMSMasterKeyID"),
                "versioning": (p.get("VersioningConfiguration") or {}).get("Status") == "Enabled",
                "lifecycle": sorted(
                    str(rule.get("Id", ""))
                    for rule in (p.get("LifecycleConfiguration") or {}).get("Rules") or []
                ),
                "public_access_block": {
                    k: _true(v) for k, v in (p.get("PublicAccessBlockConfiguration") or {}).items()
                },
                "tls_only": name in tls_only,
            }
        )
    return out


# ---- physical values of a deployed stack --------------------------------------------------------------

_ARN = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{id}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/{id}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{id}",
    "AWS::S3::Bucket": "arn:aws:s3:::{id}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{id}",
    "AWS::CloudTrail::Trail": "arn:aws:cloudtrail:{region}:{account}:trail/{id}",
    "AWS::Events::EventBus": "arn:aws:events:{region}:{account}:event-bus/{id}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{id}:*",
}


def physical_from_stack(
    resources: Sequence[Mapping[str, Any]], region: str, account: str
) -> dict[str, dict[str, str]]:
    """`DescribeStackResources` rows -> logical id -> {"Ref", "Arn", ...} as `Ref`/`Fn::GetAtt` give them."""
    out: dict[str, dict[str, str]] = {}
    for row in resources:
        lid, rtype, pid = (
            row["LogicalResourceId"],
            row["ResourceType"],
            str(row.get("PhysicalResourceId") or ""),
        )
        values = {"Ref": pid}
        if rtype == "AWS::SQS::Queue":
            name = pid.rsplit("/", 1)[-1]
            values.update(Arn=f"arn:aws:sqs:{region}:{account}:{name}", QueueName=name, QueueUrl=pid)
        elif rtype == "AWS::KMS::Key":
            values.update(Arn=_ARN[rtype].format(region=region, account=account, id=pid), KeyId=pid)
        elif rtype in _ARN:
            values["Arn"] = _ARN[rtype].format(region=region, account=account, id=pid)
        elif pid.startswith("arn:"):
            values["Arn"] = pid
        out[lid] = values
    return out
