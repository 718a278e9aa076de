"""The audit's IAM check: no principal beyond the template's own roles (and the account root in key
policies) may decrypt with the stack's keys or read its tables.

What it evaluates: every IAM role and user of the account that is not one of the template's roles (AWS
service-linked roles, path `/aws-service-role/`, are AWS's own and skipped), with the policies attached
to it and its inline policies (group policies are not read), for `kms:Decrypt` on each key and
`dynamodb:GetItem`/`Query`/`Scan` on each table; and each key policy's `AWS` principals for
`kms:Decrypt`. "May" is the safe side of the question: an Allow counts whatever its conditions say
(a condition only narrows when a call is allowed, it does not make the grant go away), and only a Deny
without conditions takes one away. Resource policies of tables are not read (the stack declares none).

`may` is the evaluator the deployed function uses (wildcards in Action/NotAction and
Resource/NotResource, as above); `waguard audit` passes the local runtime's one IAM evaluator
(`waguard.cfn.iam`) with the same reading of conditions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache
from typing import Any
from urllib.parse import unquote

Statement = Mapping[str, Any]
Evaluator = Callable[[Sequence[Statement], str, str], bool]

DECRYPT = "kms:Decrypt"
TABLE_READS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan")
SERVICE_LINKED_PATH = "/aws-service-role/"


@cache
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _matches(patterns: Any, value: str, ignore_case: bool) -> bool:
    items = [patterns] if isinstance(patterns, str) else list(patterns or [])
    return any(_pattern(str(p), ignore_case).fullmatch(value) for p in items)


def _element(statement: Statement, key: str, value: str, ignore_case: bool) -> bool:
    if key in statement:
        return _matches(statement[key], value, ignore_case)
    return f"Not{key}" in statement and not _matches(statement[f"Not{key}"], value, ignore_case)


def may(statements: Sequence[Statement], action: str, resource: str) -> bool:
    """An Allow applies (conditions assumed met) and no unconditional Deny does."""
    allowed = False
    for st in statements:
        if not (_element(st, "Action", action, True) and _element(st, "Resource", resource, False)):
            continue
        if st.get("Effect") == "Deny" and not st.get("Condition"):
            return False
        allowed = allowed or st.get("Effect") == "Allow"
    return allowed


def statements_of(document: Any) -> list[Statement]:
    """A policy document (a dict, or the URL-encoded JSON text IAM answers) -> its statements."""
    if isinstance(document, str):
        document = json.loads(unquote(document))
    items = (document or {}).get("Statement") or []
    return [items] if isinstance(items, dict) else list(items)


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key) or []


def _policies(iam: Any, kind: str, name: str) -> list[Statement]:
    """The statements of every policy attached to a role or user, and of its inline policies."""
    out: list[Statement] = []
    for attached in _pages(
        iam, f"list_attached_{kind}_policies", "AttachedPolicies", **{f"{kind.title()}Name": name}
    ):
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(
            PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
        )
        out.extend(statements_of(version["PolicyVersion"]["Document"]))
    for policy_name in _pages(iam, f"list_{kind}_policies", "PolicyNames", **{f"{kind.title()}Name": name}):
        getter = getattr(iam, f"get_{kind}_policy")
        out.extend(
            statements_of(
                getter(**{f"{kind.title()}Name": name, "PolicyName": policy_name})["PolicyDocument"]
            )
        )
    return out


def _principals(iam: Any, own: set[str]) -> Iterator[tuple[str, list[Statement]]]:
    for role in _pages(iam, "list_roles", "Roles"):
        if role["Arn"] in own or str(role.get("Path", "")).startswith(SERVICE_LINKED_PATH):
            continue
        yield f"role {role['RoleName']}", _policies(iam, "role", role["RoleName"])
    for user in _pages(iam, "list_users", "Users"):
        yield f"user {user['UserName']}", _policies(iam, "user", user["UserName"])


def _aws_principals(statement: Statement) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    value = (principal or {}).get("AWS") if isinstance(principal, dict) else None
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def outsiders(
    clients: Callable[[str], Any], exp: Mapping[str, Any], evaluate: Evaluator = may
) -> list[dict[str, str]]:
    """Findings (check `iam`) for every outsider that may decrypt with a key or read a table."""
    own = set(exp.get("roles") or [])
    findings: list[dict[str, str]] = []
    keys: Iterable[Mapping[str, Any]] = exp.get("keys") or []
    tables: Iterable[Mapping[str, Any]] = exp.get("tables") or []
    for who, statements in _principals(clients("iam"), own):
        if not statements:
            continue
        for key in keys:
            if evaluate(statements, DECRYPT, str(key["arn"])):
                findings.append(
                    {"check": "iam", "resource": key["id"], "detail": f"{who} may {DECRYPT} with the key"}
                )
        for table in tables:
            reads = [a for a in TABLE_READS if evaluate(statements, a, str(table["arn"]))]
            if reads:
                findings.append(
                    {"check": "iam", "resource": table["id"], "detail": f"{who} may {', '.join(reads)}"}
                )
    kms = clients("kms")
    allowed = own | {str(exp.get("root"))}
    for key in keys:
        policy = json.loads(kms.get_key_policy(KeyId=key["key_id"], PolicyName="default")["Policy"])
        for st in statements_of(policy):
            strangers = [p for p in _aws_principals(st) if p not in allowed]
            if (
                strangers
                and st.get("Effect") == "Allow"
                and may([{**st, "Resource": "*"}], DECRYPT, str(key["arn"]))
            ):
                detail = f"the key policy lets {', '.join(sorted(strangers))} {DECRYPT}"
                findings.append({"check": "iam", "resource": key["id"], "detail": detail})
    return findings
