"""cdk-nag in one place: the four rule packs and the only way this project acknowledges a finding.

cdk-nag 3 runs as a CDK policy-validation plugin. An acknowledgement is recorded with
`Validations.of(construct).acknowledge(...)` under the pack's namespace (`AwsSolutions::AwsSolutions-L1`),
so the finding is not dropped silently: CDK moves it to `suppressedViolations` in
`cdk.out/validation-report.json`, with the reason and the construct it was acknowledged on.

Rules: acknowledge on the one resource (never a stack or a whole construct tree of unrelated resources),
and give a full-sentence reason a reviewer would accept. Findings that can be fixed are fixed instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from aws_cdk import Acknowledgment, App, CfnResource, Stack, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks
from constructs import IConstruct

PACKS = ("AwsSolutions", "NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321")
_RULE = re.compile(r"^(?P<pack>AwsSolutions|NIST\.800\.53\.R5|HIPAA\.Security|PCI\.DSS\.321)-\w+(\[.+\])?$")
MIN_REASON_CHARS = 40


def attach_packs(app: App) -> None:
    """Run the four packs on every stack of the app at synth time (errors fail the synth)."""
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app),
        NIST80053R5Checks(app),
        HIPAASecurityChecks(app),
        PCIDSS321Checks(app),
    )


def _resource(construct: IConstruct) -> IConstruct:
    """The CloudFormation resource behind an L2 construct (acknowledge there, not on a wider scope)."""
    if isinstance(construct, CfnResource):
        return construct
    child = construct.node.default_child
    return child if child is not None else construct


def acknowledge(construct: IConstruct, reason: str, *rule_ids: str) -> None:
    """Acknowledge the given rule ids (e.g. `AwsSolutions-L1`, `NIST.800.53.R5-LambdaDLQ`) on one resource."""
    text = " ".join(reason.split())
    if len(text) < MIN_REASON_CHARS or not text.endswith("."):
        raise ValueError(f"acknowledgement reason must be a full sentence: {reason!r}")
    target = _resource(construct)
    for rule_id in rule_ids:
        match = _RULE.match(rule_id)
        if not match:
            raise ValueError(f"not a rule id of the attached packs: {rule_id!r}")
        Validations.of(target).acknowledge(Acknowledgment(id=f"{match['pack']}::{rule_id}", reason=text))


# ---- IAM wildcard findings (AwsSolutions-IAM5 reports one finding per wildcard action/resource) ------


def _flatten(node: Any) -> str:
    """cdk-nag's flattenCfnReference: how a resolved ARN appears in a finding id."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, Mapping):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(_flatten(i) for i in items)
        if "Fn::Sub" in node:
            return _flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return _flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_findings(statement: Mapping[str, Any]) -> list[str]:
    """The IAM5 finding ids a resolved Allow statement produces."""
    if statement.get("Effect") != "Allow":
        return []
    found = [f"Action::{a}" for a in _as_list(statement.get("Action", [])) if "*" in a]
    for resource in _as_list(statement.get("Resource", [])):
        flat = _flatten(resource)
        if "*" in flat:
            found.append(f"Resource::{flat}")
    return found


def acknowledge_wildcards(policy: iam.ManagedPolicy, reasons: Mapping[str, str]) -> list[str]:
    """Acknowledge the IAM5 findings of the statements whose Sid is in `reasons`, each with its reason.

    Wildcards in any other statement stay findings. Call once the policy is complete (end of the stack).
    Returns the acknowledged finding ids.
    """
    cfn = policy.node.default_child
    assert isinstance(cfn, iam.CfnManagedPolicy)
    document = Stack.of(policy).resolve(cfn.policy_document)
    done: list[str] = []
    for statement in document.get("Statement", []):
        reason = reasons.get(statement.get("Sid", ""))
        if reason is None:
            continue
        for finding in wildcard_findings(statement):
            if finding not in done:
                acknowledge(cfn, reason, f"AwsSolutions-IAM5[{finding}]")
                done.append(finding)
    missing = set(reasons) - {s.get("Sid", "") for s in document.get("Statement", [])}
    if missing:
        raise ValueError(f"no statements with Sid {sorted(missing)} in {policy.node.path}")
    return done


def each(constructs: Iterable[IConstruct], reason: str, *rule_ids: str) -> None:
    for construct in constructs:
        acknowledge(construct, reason, *rule_ids)
