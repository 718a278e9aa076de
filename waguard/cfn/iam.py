"""The one IAM policy evaluator: local enforcement (`waguard.roles`) and the report's access matrix
(`waguard.report.access`) both decide with it, so the report cannot claim an access the local API refuses.

Identity-policy evaluation as IAM does it for one principal: an explicit `Deny` that applies wins, else an
`Allow` that applies, else the request is refused (implicit deny). A statement applies when its `Action`
(or `NotAction`), its `Resource` (or `NotResource`) and every one of its `Condition` blocks match the
request. `*` and `?` are wildcards; actions match case-insensitively, resources case-sensitively.

Conditions: the String*, Numeric*, Date*, Bool, Arn*, IpAddress/NotIpAddress and Null operators, the
`...IfExists` suffix and the `ForAnyValue:`/`ForAllValues:` set prefixes, against the request context (keys
case-insensitive). A key absent from the context makes a positive operator false and a negated one true,
as in IAM. An operator this evaluator does not know makes the statement's applicability unknown: such an
Allow never allows and such a Deny always denies (the safe side).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

ALLOW = "Allow"
EXPLICIT_DENY = "ExplicitDeny"
IMPLICIT_DENY = "ImplicitDeny"
INVOKE = "execute-api:Invoke"

ContextValue = str | list[str]


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def value(self, key: str) -> list[str] | None:
        """The context values of a key (names are case-insensitive), or None when absent."""
        wanted = key.lower()
        for name, value in self.context.items():
            if name.lower() == wanted:
                return [value] if isinstance(value, str) else [str(v) for v in value]
        return None


class UnsupportedCondition(ValueError):
    """A condition operator the evaluator does not implement."""


# ---- matching --------------------------------------------------------------------------------------------


@cache
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(patterns: Any, value: str, ignore_case: bool = False) -> bool:
    """`value` matches one of `patterns` (a string or a list), with `*` and `?` wildcards."""
    items = [patterns] if isinstance(patterns, str) else list(patterns or [])
    return any(_pattern(str(p), ignore_case).fullmatch(value) for p in items)


def _element_applies(statement: Mapping[str, Any], key: str, value: str, ignore_case: bool) -> bool:
    if key in statement:
        return wildcard_match(statement[key], value, ignore_case)
    not_key = "Not" + key
    return not_key in statement and not wildcard_match(statement[not_key], value, ignore_case)


# ---- conditions ------------------------------------------------------------------------------------------


def _number(text: str) -> float:
    return float(text)


def _date(text: str) -> float:
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _ip_in(value: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


Match = Callable[[str, str], bool]


def _compare(convert: Callable[[str], float], test: Callable[[float, float], bool]) -> Match:
    def match(value: str, expected: str) -> bool:
        try:
            return test(convert(value), convert(expected))
        except ValueError:
            return False

    return match


# operator -> (does one context value match one policy value, is the operator negated)
_OPERATORS: dict[str, tuple[Match, bool]] = {
    "StringEquals": (lambda v, e: v == e, False),
    "StringNotEquals": (lambda v, e: v == e, True),
    "StringEqualsIgnoreCase": (lambda v, e: v.lower() == e.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda v, e: v.lower() == e.lower(), True),
    "StringLike": (lambda v, e: wildcard_match(e, v), False),
    "StringNotLike": (lambda v, e: wildcard_match(e, v), True),
    "NumericEquals": (_compare(_number, lambda a, b: a == b), False),
    "NumericNotEquals": (_compare(_number, lambda a, b: a == b), True),
    "NumericLessThan": (_compare(_number, lambda a, b: a < b), False),
    "NumericLessThanEquals": (_compare(_number, lambda a, b: a <= b), False),
    "NumericGreaterThan": (_compare(_number, lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_compare(_number, lambda a, b: a >= b), False),
    "DateEquals": (_compare(_date, lambda a, b: a == b), False),
    "DateNotEquals": (_compare(_date, lambda a, b: a == b), True),
    "DateLessThan": (_compare(_date, lambda a, b: a < b), False),
    "DateLessThanEquals": (_compare(_date, lambda a, b: a <= b), False),
    "DateGreaterThan": (_compare(_date, lambda a, b: a > b), False),
    "DateGreaterThanEquals": (_compare(_date, lambda a, b: a >= b), False),
    "Bool": (lambda v, e: v.lower() == e.lower(), False),
    "ArnEquals": (lambda v, e: wildcard_match(e, v), False),
    "ArnLike": (lambda v, e: wildcard_match(e, v), False),
    "ArnNotEquals": (lambda v, e: wildcard_match(e, v), True),
    "ArnNotLike": (lambda v, e: wildcard_match(e, v), True),
    "IpAddress": (_ip_in, False),
    "NotIpAddress": (_ip_in, True),
}


def _texts(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return ["true" if v is True else "false" if v is False else str(v) for v in items]


def _key_matches(operator: str, key: str, expected: list[str], request: Request) -> bool:
    """One key of one condition operator against the request context."""
    set_op, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists") and op != "IfExists"
    op = op.removesuffix("IfExists") if if_exists else op
    values = request.value(key)
    if op == "Null":
        return (values is None) == (expected[0].lower() == "true")
    if op not in _OPERATORS or set_op not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedCondition(operator)
    match, negated = _OPERATORS[op]
    if values is None:
        return if_exists or negated or set_op == "ForAllValues"

    def one(value: str) -> bool:
        hit = any(match(value, e) for e in expected)
        return not hit if negated else hit

    if set_op == "ForAllValues":
        return all(one(v) for v in values)
    return any(one(v) for v in values)


def condition_matches(condition: Mapping[str, Any] | None, request: Request) -> bool:
    """Every operator block and every key in it must match (values of one key: any of them)."""
    for operator, block in (condition or {}).items():
        if not isinstance(block, Mapping):
            raise UnsupportedCondition(str(operator))
        for key, expected in block.items():
            if not _key_matches(str(operator), str(key), _texts(expected), request):
                return False
    return True


# ---- decisions -------------------------------------------------------------------------------------------


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool | None:
    """True/False, or None when a condition uses an operator this evaluator does not know."""
    if not _element_applies(statement, "Action", request.action, ignore_case=True):
        return False
    if not _element_applies(statement, "Resource", request.resource, ignore_case=False):
        return False
    try:
        return condition_matches(statement.get("Condition"), request)
    except UnsupportedCondition:
        return None


def decide(statements: Iterable[Mapping[str, Any]], request: Request) -> str:
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for one request against a principal's identity policies."""
    allow = False
    for statement in statements:
        applies = statement_applies(statement, request)
        effect = statement.get("Effect")
        if effect == "Deny" and applies is not False:
            return EXPLICIT_DENY
        if effect == "Allow" and applies is True:
            allow = True
    return ALLOW if allow else IMPLICIT_DENY


def allowed(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    return decide(statements, request) == ALLOW


def execute_api_arn(region: str, account: str, api_id: str, stage: str, method: str, path: str) -> str:
    """The resource of an `execute-api:Invoke` request."""
    return f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{method.upper()}/{path.lstrip('/')}"


def api_context(account: str, principal_arn: str, source_ip: str = "127.0.0.1") -> dict[str, ContextValue]:
    """The request context of a call through API Gateway (always HTTPS) by an IAM principal."""
    now = datetime.now().astimezone()
    return {
        "aws:SecureTransport": "true",
        "aws:PrincipalAccount": account,
        "aws:PrincipalArn": principal_arn,
        "aws:SourceIp": source_ip,
        "aws:CurrentTime": now.isoformat(),
        "aws:EpochTime": str(int(now.timestamp())),
    }
