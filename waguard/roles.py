"""Local principals: the administrator key and one generated key per personnel role, and IAM evaluation of
the roles' `execute-api:Invoke` permissions against a request's execute-api ARN.

Evaluation follows IAM: an explicit Deny wins, then any Allow; otherwise the request is refused.
`*` and `?` are wildcards in actions (case-insensitive) and resources. A statement with a Condition
cannot be evaluated locally: it never allows and always denies (the safe side).
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from functools import cache
from typing import Any

from waguard import aws
from waguard.cfn import ACCOUNT
from waguard.model import RoleSpec

ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:user/admin"
ADMIN_ID = "AIDAWAGUARDLOCALADMIN"


@dataclass(frozen=True)
class Principal:
    access_key: str
    secret_key: str
    user_arn: str
    caller: str
    role: str | None = None  # None: the administrator, allowed everything (like an admin IAM user)
    statements: tuple[dict[str, Any], ...] = ()

    def identity(self) -> dict[str, Any]:
        """The requestContext.identity fields API Gateway fills for an IAM-authenticated caller."""
        return {
            "accessKey": self.access_key,
            "accountId": ACCOUNT,
            "caller": self.caller,
            "user": self.caller,
            "userArn": self.user_arn,
        }


def administrator() -> Principal:
    return Principal(aws.ACCESS_KEY, aws.SECRET_KEY, ADMIN_ARN, ADMIN_ID)


def _access_key_id() -> str:
    alphabet = string.ascii_uppercase + "234567"
    return "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))


def role_principal(spec: RoleSpec) -> Principal:
    """A fresh key pair acting as the role (an assumed-role session named `local`)."""
    role_id = "AROA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(17))
    return Principal(
        access_key=_access_key_id(),
        secret_key=secrets.token_urlsafe(30),
        user_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/waguard-{spec.role}/local",
        caller=f"{role_id}:local",
        role=spec.role,
        statements=spec.statements,
    )


def execute_api_arn(region: str, api_id: str, stage: str, method: str, path: str) -> str:
    return f"arn:aws:execute-api:{region}:{ACCOUNT}:{api_id}/{stage}/{method.upper()}/{path.lstrip('/')}"


@cache
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _matches(patterns: Any, value: str, ignore_case: bool) -> bool:
    items = [patterns] if isinstance(patterns, str) else list(patterns or [])
    return any(_pattern(str(p), ignore_case).fullmatch(value) for p in items)


def _applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        action_ok = _matches(statement["Action"], action, True)
    else:
        action_ok = "NotAction" in statement and not _matches(statement["NotAction"], action, True)
    if "Resource" in statement:
        resource_ok = _matches(statement["Resource"], resource, False)
    else:
        resource_ok = "NotResource" in statement and not _matches(statement["NotResource"], resource, False)
    return action_ok and resource_ok


def allowed(principal: Principal, resource_arn: str, action: str = "execute-api:Invoke") -> bool:
    if principal.role is None:
        return True
    allow = False
    for statement in principal.statements:
        if not _applies(statement, action, resource_arn):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow" and not statement.get("Condition"):
            allow = True
    return allow
