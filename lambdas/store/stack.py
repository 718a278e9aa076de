"""The stack's own template and physical resource ids, for the audit (`domain.audit_runs`).

In AWS: CloudFormation's `GetTemplate` (the processed template CloudFormation deployed) and
`ListStackResources` of the stack named in `WG_STACK_NAME`. Locally (`waguard serve`, where moto has no
such stack): the JSON file `WG_AUDIT_SOURCE` names, which `serve` writes from the same synthesized
template and the resources it created.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from shared import constants as c
from shared.settings import require_env


@dataclass(frozen=True)
class StackSource:
    template: dict[str, Any]
    region: str
    account: str
    stack: str
    resources: list[dict[str, Any]]  # ListStackResources rows (AWS)
    physical: dict[str, dict[str, str]] | None = None  # logical id -> {"Ref", "Arn", ...} (local)


@cache
def client(service: str) -> Any:
    import boto3

    return boto3.client(service)


def reset() -> None:
    client.cache_clear()


def source() -> StackSource:
    local = os.environ.get(c.ENV_AUDIT_SOURCE)
    if local:
        with open(local, encoding="utf-8") as handle:
            doc = json.load(handle)
        return StackSource(doc["template"], doc["region"], doc["account"], doc["stack"], [], doc["physical"])
    stack = require_env(c.ENV_STACK_NAME)
    region = os.environ.get("AWS_REGION") or client("cloudformation").meta.region_name
    account = str(client("sts").get_caller_identity()["Account"])
    body = client("cloudformation").get_template(StackName=stack, TemplateStage="Processed")["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else dict(body)
    rows: list[dict[str, Any]] = []
    for page in client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack):
        rows.extend(page["StackResourceSummaries"])
    return StackSource(template, region, account, stack, rows)
