"""`waguard audit`: the deployed (or local) resources checked against the synthesized template.

The checks are the Lambda code's (`domain.audit_checks`, the auditor function runs the same); this module
supplies what they need on this side: the synthesized template from cdk.out, the physical values (from
`waguard serve`'s endpoint through `materialize.discover` and the template resolver, or from
CloudFormation's `DescribeStackResources` with the caller's AWS credentials), and the IAM evaluator of
the local runtime (`waguard.cfn.iam`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from waguard import aws, paths
from waguard.cfn import Physical, Resolver, Template, TemplateError, ensure_synthesized, iam, load


def may(statements: Sequence[Mapping[str, Any]], action: str, resource: str) -> bool:
    """The audit's reading of "may" (domain.audit_iam) with the one IAM evaluator: an Allow counts
    whatever its conditions, a Deny only when it has none."""
    kept = [
        {k: v for k, v in st.items() if k != "Condition"}
        for st in statements
        if not (st.get("Effect") == "Deny" and st.get("Condition"))
    ]
    return iam.allowed(kept, iam.Request(action, resource))


def local_physical(tpl: Template, endpoint: str) -> dict[str, dict[str, str]]:
    """Logical id -> {"Ref", "Arn", ...} of every resource, as `waguard serve` created or stands it in."""
    from waguard import materialize

    return physical_values(tpl, materialize.discover(tpl, endpoint))


def physical_values(tpl: Template, physical: Mapping[str, Physical]) -> dict[str, dict[str, str]]:
    """Logical id -> {"Ref", "Arn", ...} of every resource: the created ones, the others' stand-ins."""
    res = Resolver(tpl, dict(physical))
    out: dict[str, dict[str, str]] = {}
    for lid in tpl.resources:
        try:
            phys = res.phys(lid)
            values = {"Ref": str(phys.ref), **{k: str(v) for k, v in phys.attrs.items()}}
            values.setdefault("Arn", str(res.get_att(lid, "Arn")))
        except TemplateError:
            continue
        out[lid] = values
    return out


def write_source(tpl: Template, physical: Mapping[str, Physical], path: Any) -> None:
    """The file the local auditor function reads instead of CloudFormation (constants.ENV_AUDIT_SOURCE)."""
    doc = {
        "template": tpl.raw,
        "physical": physical_values(tpl, physical),
        "region": tpl.region,
        "account": tpl.account,
        "stack": tpl.stack,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")


def expectation(tpl: Template, physical: Mapping[str, Mapping[str, str]], account: str | None = None) -> Any:
    paths.ensure_lambdas_on_path()
    from domain import audit_expect

    return audit_expect.expectation(
        tpl.raw, physical, region=tpl.region, account=account or tpl.account, stack=tpl.stack
    )


def run_local(tpl: Template, endpoint: str) -> list[dict[str, str]]:
    """The findings against a running `waguard serve` (its AWS endpoint)."""
    paths.ensure_lambdas_on_path()
    from domain import audit_checks

    exp = expectation(tpl, local_physical(tpl, endpoint))
    return audit_checks.run(lambda service: aws.client(service, endpoint, tpl.region), exp, may)


def run_aws(tpl: Template) -> list[dict[str, str]]:
    """The findings against the deployed stack, with the caller's AWS credentials."""
    import boto3

    paths.ensure_lambdas_on_path()
    from domain import audit_checks, audit_expect

    session = boto3.session.Session(region_name=tpl.region)
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service)
        return clients[service]

    account = str(client("sts").get_caller_identity()["Account"])
    rows: list[dict[str, Any]] = []
    for page in client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=tpl.stack):
        rows.extend(page["StackResourceSummaries"])
    physical = audit_expect.physical_from_stack(rows, tpl.region, account)
    return audit_checks.run(client, expectation(tpl, physical, account), may)


def last_run(tpl: Template, endpoint: str | None) -> dict[str, Any] | None:
    """The newest run the auditor kept in the audit table (a local stack's, or the deployed one's)."""
    import boto3
    from boto3.dynamodb.conditions import Key

    c = paths.constants()
    if endpoint:
        table = local_physical(tpl, endpoint)
        resource = boto3.resource(
            "dynamodb",
            endpoint_url=endpoint,
            region_name=tpl.region,
            aws_access_key_id=aws.ACCESS_KEY,
            aws_secret_access_key=aws.SECRET_KEY,
        )
    else:
        session = boto3.session.Session(region_name=tpl.region)
        rows: list[dict[str, Any]] = []
        for page in (
            session.client("cloudformation")
            .get_paginator("list_stack_resources")
            .paginate(StackName=tpl.stack)
        ):
            rows.extend(page["StackResourceSummaries"])
        table = {r["LogicalResourceId"]: {"Ref": r.get("PhysicalResourceId", "")} for r in rows}
        resource = session.resource("dynamodb")
    lid = _audit_table(tpl)
    answer = resource.Table(table[lid]["Ref"]).query(
        KeyConditionExpression=Key(c.PK).eq("AUDITRUN"), ScanIndexForward=False, Limit=1
    )
    items = answer.get("Items") or []
    return dict(items[0]) if items else None


def _audit_table(tpl: Template) -> str:
    """The audit table's logical id: what the functions' environment names as the audit table."""
    key = paths.constants().ENV_TABLE[paths.constants().TABLE_AUDIT]
    for fn in tpl.by_id("AWS::Lambda::Function").values():
        ref = ((fn.properties.get("Environment") or {}).get("Variables") or {}).get(key)
        if isinstance(ref, dict) and "Ref" in ref:
            return str(ref["Ref"])
    raise TemplateError("no function names the audit table")


def render(findings: list[dict[str, str]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"findings": findings}, indent=2)
    lines = [f"FINDING {f['check']} {f['resource']}: {f['detail']}" for f in findings]
    lines.append(f"{len(findings)} finding" + ("" if len(findings) == 1 else "s"))
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="waguard audit",
        description="Check the deployed (or local) resources against the synthesized template; "
        "exit 1 on drift.",
    )
    parser.add_argument(
        "--aws-endpoint", default=None, help="the AWS endpoint of a running `waguard serve` (default: AWS)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output (default text)")
    args = parser.parse_args(argv)
    try:
        tpl = load(ensure_synthesized())
        findings = run_local(tpl, args.aws_endpoint) if args.aws_endpoint else run_aws(tpl)
    except Exception as exc:  # no template, no credentials, an endpoint that is not waguard's
        print(f"waguard audit: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    out(render(findings, args.format))
    return 1 if findings else 0
