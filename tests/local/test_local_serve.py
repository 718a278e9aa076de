"""`waguard serve` and `waguard invoke` as a user runs them: subprocesses, the real template and handlers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdas.shared import constants as c
from waguard import aws, paths

pytestmark = pytest.mark.xdist_group("local")

SECRETS = {
    "WA_APP_SECRET": "local-test-app-secret",
    "WA_VERIFY_TOKEN": "local-test-verify-token",
    "WA_ACCESS_TOKEN": "local-test-access-token",
    "WA_PHONE_NUMBER_ID": "106540352242922",
}
READY = re.compile(r"^waguard: aws (http://\S+) region=(\S+)$")

if not (paths.ROOT / "app.py").exists() or not (paths.LAMBDAS / "handlers" / "webhook.py").exists():
    pytest.skip("the CDK app and the handlers are not there yet", allow_module_level=True)


def waguard_command() -> list[str]:
    script = Path(sys.executable).parent / "waguard"
    return [str(script)] if script.exists() else [sys.executable, "-m", "waguard.cli"]


def run_waguard(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*waguard_command(), *args], cwd=paths.ROOT, env=child_env(**env), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WA_"))}
    return {**env, **SECRETS, "PYTHONUNBUFFERED": "1", **extra}


class Serve:
    def __init__(self, tmp: Path) -> None:
        self.port, self.aws_port = aws.free_port(), aws.free_port()
        self.lines: list[str] = []
        self.ready = threading.Event()
        cmd = [*waguard_command(), "serve", "--port", str(self.port), "--aws-port", str(self.aws_port)]
        cmd += ["--log-dir", str(tmp / "logs")]
        self.proc = subprocess.Popen(
            cmd, cwd=paths.ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY.match(line.strip()):
                self.ready.set()

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.5):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("serve did not become ready:\n" + "\n".join(self.lines[-30:]))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.pump.join(10)  # every line serve printed is read before anyone looks at the last one
        return self.proc.returncode


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    stack = Serve(tmp_path_factory.mktemp("serve"))
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_serve_prints_the_ready_lines_secrets_and_role_keys(serve: Serve) -> None:
    lines = serve.lines
    assert f"waguard: api http://127.0.0.1:{serve.port}" in lines
    assert f"waguard: aws http://127.0.0.1:{serve.aws_port} region=eu-central-1" in lines
    assert "waguard: secret WA_APP_SECRET=local-test-app-secret" in lines
    assert "waguard: secret WA_VERIFY_TOKEN=local-test-verify-token" in lines
    assert "waguard: env WA_PHONE_NUMBER_ID=106540352242922" in lines
    roles = {
        m.group(1): (m.group(2), m.group(3))
        for m in map(re.compile(r"^waguard: role (\S+) (\S+) (\S+)$").match, lines)
        if m
    }
    assert set(roles) == {"sender", "agent", "privacy-officer", "auditor"}
    assert not any("warning" in line or "error" in line for line in lines), lines


def test_the_webhook_handshake_answers_through_the_whole_stack(serve: Serve) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": SECRETS["WA_VERIFY_TOKEN"],
        "hub.challenge": "1158201444",
    }
    status, body = get(f"http://127.0.0.1:{serve.port}/webhook?{urllib.parse.urlencode(query)}")
    assert (status, body) == (200, "1158201444")
    query["hub.verify_token"] = "wrong"
    status, _ = get(f"http://127.0.0.1:{serve.port}/webhook?{urllib.parse.urlencode(query)}")
    assert status == 403


def test_business_routes_refuse_unsigned_requests(serve: Serve) -> None:
    status, body = get(f"http://127.0.0.1:{serve.port}/contacts/4915112345678/export")
    assert status == 403 and json.loads(body)["error"] == "forbidden"


def test_the_aws_endpoint_holds_the_templates_tables(serve: Serve) -> None:
    ddb = aws.client("dynamodb", f"http://127.0.0.1:{serve.aws_port}", "eu-central-1")
    names = ddb.list_tables()["TableNames"]
    assert len(names) == len(c.TABLE_SPECS)
    for name in names:
        table = ddb.describe_table(TableName=name)["Table"]
        assert table["SSEDescription"]["Status"] == "ENABLED"
        assert (
            ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]["TimeToLiveStatus"]
            == "ENABLED"
        )


def handshake_event(token: str) -> dict:
    return {
        "resource": "/webhook",
        "path": "/webhook",
        "httpMethod": "GET",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"},
        "multiValueQueryStringParameters": {},
        "pathParameters": None,
        "requestContext": {
            "resourcePath": "/webhook",
            "httpMethod": "GET",
            "stage": "prod",
            "requestId": "r1",
        },
        "body": None,
        "isBase64Encoded": False,
    }


def test_invoke_against_the_running_stack(serve: Serve, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps(handshake_event(SECRETS["WA_VERIFY_TOKEN"])))
    proc = run_waguard(
        "invoke", "webhook", "--event", str(event), "--aws-endpoint", f"http://127.0.0.1:{serve.aws_port}"
    )
    assert proc.returncode == 0, proc.stderr
    response = json.loads(proc.stdout)
    assert response["statusCode"] == 200 and response["body"] == "42"


def test_invoke_on_a_private_endpoint_and_its_failures(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps(handshake_event(SECRETS["WA_VERIFY_TOKEN"])))
    proc = run_waguard("invoke", "webhook", "--event", str(event))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["body"] == "42"
    proc = run_waguard("invoke", "nope", "--event", str(event))
    assert proc.returncode == 2 and "no function 'nope'" in proc.stderr


def test_serve_refuses_a_busy_port_at_once(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_waguard("serve", "--port", str(port), "--aws-port", str(aws.free_port()), timeout=60)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_serve_refuses_a_schedule_period_for_a_function_without_a_schedule() -> None:
    ports = ("--port", str(aws.free_port()), "--aws-port", str(aws.free_port()))
    proc = run_waguard("serve", *ports, timeout=120, WAGUARD_SCHEDULE_SECONDS="campaign=3")  # not "campaigns"
    assert proc.returncode == 1
    assert (
        "WAGUARD_SCHEDULE_SECONDS: no function of the template runs on a schedule: ['campaign']"
        in proc.stderr
    )


def test_sigterm_stops_everything_and_exits_0(serve: Serve) -> None:
    """The module's stack, stopped by this last test of the module (the fixture's stop is then a no-op)."""
    stack = serve
    workers = _descendants(stack.proc.pid)
    assert len(workers) >= 5  # one process per function at least (and the server they fork from)
    assert stack.stop() == 0
    assert stack.lines[-1].startswith("waguard: stopped")
    time.sleep(0.5)
    assert not [pid for pid in workers if _alive(pid)]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/webhook", timeout=2)


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=False)
    children: dict[int, list[int]] = {}
    for line in out.stdout.splitlines():
        child, parent = (int(x) for x in line.split())
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False
