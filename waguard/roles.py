"""Local principals: the administrator key and one generated key per personnel role, and the decision on a
request's `execute-api:Invoke` by the one IAM evaluator (`waguard.cfn.iam`), which the report's access
matrix uses too.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from waguard import aws
from waguard.cfn import ACCOUNT, iam
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
        user_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_arn(spec.role).rsplit('/', 1)[-1]}/local",
        caller=f"{role_id}:local",
        role=spec.role,
        statements=spec.statements,
    )


def execute_api_arn(region: str, api_id: str, stage: str, method: str, path: str) -> str:
    return iam.execute_api_arn(region, ACCOUNT, api_id, stage, method, path)


def role_arn(role: str) -> str:
    """The IAM role a personnel role's sessions assume (`aws:PrincipalArn` of their requests)."""
    return f"arn:aws:iam::{ACCOUNT}:role/waguard-{role}"


def allowed(principal: Principal, resource_arn: str, action: str = iam.INVOKE) -> bool:
    """The administrator may do anything; a role what its policies allow for a call through the API."""
    if principal.role is None:
        return True
    context = iam.api_context(ACCOUNT, role_arn(principal.role))
    return iam.allowed(principal.statements, iam.Request(action, resource_arn, context))
