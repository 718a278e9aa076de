"""Handlers of the local runtime's tests (imported by worker processes from this directory)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

COLD_START_PID = os.getpid()


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An API proxy handler that answers with what it received."""
    if event.get("action") == "raise":
        raise ValueError("asked to fail")
    if event.get("action") == "sleep":
        time.sleep(float(event.get("seconds", 10)))
    if event.get("action") == "exit":
        os._exit(3)
    print("echo handler ran", flush=True)
    seen = {
        "event": event,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("WG_", "AWS_", "WA_", "POWERTOOLS_"))},
        "sys_path0": sys.path[0],
        "pid": os.getpid(),
        "context": {
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
            "remaining": context.get_remaining_time_in_millis(),
        },
    }
    return seen


def batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An SQS batch handler: bodies "fail" are reported as item failures, "raise" fails the whole batch."""
    failures = []
    for record in event["Records"]:
        if record["body"] == "raise":
            raise RuntimeError("the whole batch fails")
        if record["body"] == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
    with open(os.environ["BATCH_LOG"], "a", encoding="utf-8") as out:
        import json

        for record in event["Records"]:
            out.write(json.dumps(record) + "\n")
    return {"batchItemFailures": failures}


def api(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An API proxy handler that answers like the real ones (statusCode, headers, body)."""
    import base64
    import json

    if event.get("path", "").endswith("/binary"):
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(b"\x00\x01\xff").decode(),
            "isBase64Encoded": True,
        }
    if event.get("path", "").endswith("/crash"):
        raise RuntimeError("handler bug")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Echo": "1"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": json.dumps(event),
    }
