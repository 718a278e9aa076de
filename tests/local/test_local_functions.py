"""Function workers (one process per execution environment) and SQS event source mappings."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.local.conftest import HANDLERS
from waguard import aws, materialize, model, pollers, runtime
from waguard.cfn import Resolver
from waguard.workers import FunctionPool, InvocationError, WorkerConfig, function_env

pytestmark = pytest.mark.xdist_group("local")


def _config(name: str, handler: str, timeout: int, env: dict[str, str], log: Path) -> WorkerConfig:
    return WorkerConfig(
        name=name,
        handler=handler,
        function_name=f"Waguard-{name}",
        arn=f"arn:aws:lambda:eu-central-1:123456789012:function:Waguard-{name}",
        timeout=timeout,
        memory=256,
        env=env,
        code_paths=(HANDLERS,),
        log_path=str(log),
    )


@pytest.fixture
def echo_pool(tmp_path: Path):
    env = function_env(
        {"WG_MESSAGES_TABLE": "t1", "POWERTOOLS_SERVICE_NAME": "waguard"},
        function_name="Waguard-echo",
        handler="echo_handlers.echo",
        memory=256,
        region="eu-central-1",
        endpoint="http://127.0.0.1:1",
        overrides={"WA_PHONE_NUMBER_ID": "123"},
        source={"PATH": "/usr/bin", "AWS_PROFILE": "dev", "SECRET_STUFF": "x", "WA_RETRY_BASE_SECONDS": "1"},
    )
    pool = FunctionPool(_config("echo", "echo_handlers.echo", 2, env, tmp_path / "echo.log"), 1).start()
    yield pool
    pool.close()


def test_a_worker_has_the_functions_environment_and_a_lambda_context(echo_pool) -> None:
    seen = echo_pool.invoke({"hello": "world"})
    assert seen["event"] == {"hello": "world"}
    assert seen["sys_path0"] == HANDLERS
    env = seen["env"]
    assert env["WG_MESSAGES_TABLE"] == "t1"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_DEFAULT_REGION"] == "eu-central-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "Waguard-echo"
    assert env["WA_PHONE_NUMBER_ID"] == "123" and env["WA_RETRY_BASE_SECONDS"] == "1"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert "AWS_PROFILE" not in env  # nothing else of the developer's environment leaks in
    ctx = seen["context"]
    assert ctx["function_name"] == "Waguard-echo" and ctx["memory_limit_in_mb"] == 256
    assert ctx["invoked_function_arn"].endswith(":function:Waguard-echo")
    assert 0 < ctx["remaining"] <= 2000 and ctx["aws_request_id"]


def test_errors_timeouts_and_crashes(echo_pool, tmp_path: Path) -> None:
    with pytest.raises(InvocationError) as err:
        echo_pool.invoke({"action": "raise"})
    assert (err.value.error_type, err.value.message) == ("ValueError", "asked to fail")
    first = echo_pool.invoke({})["pid"]
    assert echo_pool.invoke({})["pid"] == first  # warm: the same environment serves again
    with pytest.raises(InvocationError) as err:
        echo_pool.invoke({"action": "sleep", "seconds": 30})
    assert err.value.error_type == "Sandbox.Timedout"
    with pytest.raises(InvocationError) as err:
        echo_pool.invoke({"action": "exit"})
    assert err.value.error_type == "Runtime.ExitError"
    assert echo_pool.invoke({})["pid"] != first  # replaced after the timeout and the crash
    log = (tmp_path / "echo.log").read_text()
    assert "START RequestId:" in log and "REPORT RequestId:" in log and "echo handler ran" in log
    assert "ValueError: asked to fail" in log


def test_a_handler_that_cannot_be_imported_fails_each_invocation(tmp_path: Path) -> None:
    cfg = _config("broken", "no_such_module.handler", 3, {}, tmp_path / "broken.log")
    pool = FunctionPool(cfg, 1).start()
    try:
        assert pool.init_error and pool.init_error["errorType"] == "Runtime.ImportModuleError"
        with pytest.raises(InvocationError, match="ImportModuleError"):
            pool.invoke({})
    finally:
        pool.close()


# ---- event source mappings ---------------------------------------------------------------------------


def test_sqs_event_has_lambdas_shape() -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "hi",
        "MD5OfBody": "49f68a5c8493ec2c0bf489821c21fc3b",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": "x"},
            "b": {"DataType": "Binary", "BinaryValue": b"\x01"},
        },
    }
    (record,) = pollers.sqs_event([message], "arn:aws:sqs:eu-central-1:1:q", "eu-central-1")["Records"]
    assert record["messageId"] == "m1" and record["receiptHandle"] == "r1" and record["body"] == "hi"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["messageAttributes"]["kind"]["stringValue"] == "x"
    assert record["messageAttributes"]["b"]["binaryValue"] == "AQ=="
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(":q")
    assert record["awsRegion"] == "eu-central-1" and record["md5OfBody"]


def test_partial_batch_response_rules() -> None:
    batch = [{"MessageId": "a"}, {"MessageId": "b"}]
    assert pollers.succeeded(batch, None, True) == batch
    assert pollers.succeeded(batch, {"batchItemFailures": []}, True) == batch
    assert pollers.succeeded(batch, {"batchItemFailures": [{"itemIdentifier": "a"}]}, True) == [
        {"MessageId": "b"}
    ]
    assert pollers.succeeded(batch, {"batchItemFailures": [{"itemIdentifier": "zzz"}]}, True) == []
    assert pollers.succeeded(batch, {"batchItemFailures": [{}]}, True) == []
    assert pollers.succeeded(batch, {"batchItemFailures": [{"itemIdentifier": "a"}]}, False) == batch


def test_a_poller_delivers_sqs_events_and_deletes_only_the_successes(tpl, endpoint, tmp_path: Path) -> None:
    physical = materialize.materialize(tpl, endpoint, materialize.local_secrets())
    res = Resolver(tpl, physical)
    (mapping,) = model.mappings(tpl, res, model.functions(tpl, res))
    batch_log = tmp_path / "batch.jsonl"
    cfg = runtime.worker_configs(
        tpl, physical, endpoint, {"BATCH_LOG": str(batch_log)}, tmp_path, code_paths=(HANDLERS,)
    )["batch"]
    pool = FunctionPool(cfg, 1).start()
    sqs = aws.client("sqs", endpoint, tpl.region)
    for body in ("ok-1", "fail", "ok-2"):
        sqs.send_message(
            QueueUrl=mapping.queue_url,
            MessageBody=body,
            MessageAttributes={"kind": {"DataType": "String", "StringValue": body}},
        )
    poller = pollers.Poller(mapping, pool.invoke, endpoint, tpl.region)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(_lines(batch_log)) < 3:
            poller.poll_once()
        records = _lines(batch_log)
        assert sorted(r["body"] for r in records) == ["fail", "ok-1", "ok-2"]
        assert all(r["eventSourceARN"] == mapping.queue_arn for r in records)
        assert {r["messageAttributes"]["kind"]["stringValue"] for r in records} == {"ok-1", "fail", "ok-2"}
        # Only "fail" is left: it comes back after the queue's 2 s visibility timeout, received a 2nd time.
        again = sqs.receive_message(
            QueueUrl=mapping.queue_url, WaitTimeSeconds=5, VisibilityTimeout=0, AttributeNames=["All"]
        )["Messages"]
        assert [m["Body"] for m in again] == ["fail"]
        assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"

        # A batch whose invocation fails is deleted not at all.
        sqs.send_message(QueueUrl=mapping.queue_url, MessageBody="raise")
        time.sleep(2.1)
        seen = 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not seen:
            seen = poller.poll_once()
        assert seen
        time.sleep(2.1)
        left = sqs.receive_message(QueueUrl=mapping.queue_url, WaitTimeSeconds=2, MaxNumberOfMessages=10)
        assert "raise" in [m["Body"] for m in left.get("Messages", [])]
    finally:
        poller.stop()
        pool.close()


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
