"""The resources `waguard audit` reads besides the data ones, created on the local AWS endpoint as the
template declares them: IAM roles and their customer-managed policies, the functions' configurations
(moto Lambda: runtime, memory, reserved concurrency, environment; the code runs in `waguard serve`'s
workers, the Lambda entry is what the audit reads), bucket policies, and the trail (logging, log-file
validation, its bucket and key). Names and ARNs are the resolver's stand-ins, so every reference in the
template (a key policy naming a role, a function's role) resolves to what exists here.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from typing import TYPE_CHECKING, Any

from waguard.cfn import Physical

if TYPE_CHECKING:
    from waguard.materialize import Materializer

TYPES = (
    "AWS::IAM::Role",
    "AWS::IAM::ManagedPolicy",
    "AWS::Lambda::Function",
    "AWS::S3::BucketPolicy",
    "AWS::CloudTrail::Trail",
)


@functools.cache
def _placeholder_code() -> bytes:
    """A zip the local Lambda entry holds (the real code runs in the workers, never here)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "waguard serve runs this function's code in its own workers.\n")
    return buffer.getvalue()


def role(m: Materializer, lid: str) -> Physical:
    p = m.props(lid)
    phys = m.res.standin(lid)
    iam = m.client("iam")
    iam.create_role(
        RoleName=phys.ref,
        AssumeRolePolicyDocument=json.dumps(p.get("AssumeRolePolicyDocument") or {}),
        Description=str(p.get("Description", ""))[:1000],
        **({"MaxSessionDuration": int(p["MaxSessionDuration"])} if p.get("MaxSessionDuration") else {}),
    )
    for index, policy in enumerate(p.get("Policies") or []):
        iam.put_role_policy(
            RoleName=phys.ref,
            PolicyName=str(policy.get("PolicyName") or f"inline{index}"),
            PolicyDocument=json.dumps(policy.get("PolicyDocument") or {}),
        )
    for arn in p.get("ManagedPolicyArns") or []:
        if str(arn).startswith("arn:aws:iam::aws:"):  # AWS managed: attached when moto knows it
            try:
                iam.attach_role_policy(RoleName=phys.ref, PolicyArn=str(arn))
            except Exception:  # noqa: S112 - an AWS managed policy moto does not carry
                continue
    return phys


def managed_policy(m: Materializer, lid: str) -> Physical:
    p = m.props(lid)
    phys = m.res.standin(lid)
    name = phys.ref.rsplit("/", 1)[-1]
    iam = m.client("iam")
    iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(p.get("PolicyDocument") or {}))
    for role_name in p.get("Roles") or []:
        iam.attach_role_policy(RoleName=str(role_name), PolicyArn=phys.ref)
    for user in p.get("Users") or []:
        iam.attach_user_policy(UserName=str(user), PolicyArn=phys.ref)
    return phys


def function(m: Materializer, lid: str) -> Physical:
    p = m.props(lid)
    phys = m.res.standin(lid)
    variables = {str(k): _text(v) for k, v in ((p.get("Environment") or {}).get("Variables") or {}).items()}
    lam = m.client("lambda")
    lam.create_function(
        FunctionName=phys.ref,
        Runtime=str(p.get("Runtime", "")),
        Role=str(p["Role"]),
        Handler=str(p.get("Handler", "")),
        Code={"ZipFile": _placeholder_code()},
        Description=str(p.get("Description", ""))[:256],
        Timeout=int(p.get("Timeout", 3)),
        MemorySize=int(p.get("MemorySize", 128)),
        Environment={"Variables": variables},
        Architectures=[str(a) for a in p.get("Architectures") or ["x86_64"]],
    )
    if p.get("ReservedConcurrentExecutions") is not None:
        lam.put_function_concurrency(
            FunctionName=phys.ref, ReservedConcurrentExecutions=int(p["ReservedConcurrentExecutions"])
        )
    return phys


def bucket_policy(m: Materializer, lid: str) -> None:
    p = m.props(lid)
    m.client("s3").put_bucket_policy(
        Bucket=str(p["Bucket"]), Policy=json.dumps(p.get("PolicyDocument") or {})
    )


def trail(m: Materializer, lid: str) -> Physical:
    p = m.props(lid)
    phys = trail_physical(m, lid)
    ct = m.client("cloudtrail")
    args: dict[str, Any] = {
        "Name": phys.ref,
        "S3BucketName": str(p["S3BucketName"]),
        "IncludeGlobalServiceEvents": _true(p.get("IncludeGlobalServiceEvents", True)),
        "IsMultiRegionTrail": _true(p.get("IsMultiRegionTrail")),
        "EnableLogFileValidation": _true(p.get("EnableLogFileValidation")),
    }
    for key, arg in (
        ("KMSKeyId", "KmsKeyId"),
        ("CloudWatchLogsLogGroupArn", "CloudWatchLogsLogGroupArn"),
        ("CloudWatchLogsRoleArn", "CloudWatchLogsRoleArn"),
        ("S3KeyPrefix", "S3KeyPrefix"),
    ):
        if p.get(key):
            args[arg] = str(p[key])
    ct.create_trail(**args)
    if _true(p.get("IsLogging")):
        ct.start_logging(Name=phys.ref)
    return phys


def trail_physical(m: Materializer, lid: str) -> Physical:
    from waguard.cfn import physical_name

    name = str(m.props(lid).get("TrailName") or physical_name(m.tpl, lid, 128))
    return Physical(name, {"Arn": f"arn:aws:cloudtrail:{m.tpl.region}:{m.tpl.account}:trail/{name}"})


def creators(m: Materializer) -> dict[str, Any]:
    return {
        "AWS::IAM::Role": lambda lid: role(m, lid),
        "AWS::IAM::ManagedPolicy": lambda lid: managed_policy(m, lid),
        "AWS::Lambda::Function": lambda lid: function(m, lid),
        "AWS::S3::BucketPolicy": lambda lid: bucket_policy(m, lid),
        "AWS::CloudTrail::Trail": lambda lid: trail(m, lid),
    }


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)
