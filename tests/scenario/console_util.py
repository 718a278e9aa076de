"""`waguard console` run as a user runs it (the real command, in its own process, credentials from the
environment or a profile), and a small HTTP client of it that keeps the cookie by hand."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from waguard import aws
from waguard.demo import LocalStack
from waguard.paths import ROOT

URL_LINE = re.compile(r"waguard: console (http://127\.0\.0\.1:(\d+)/\?token=(\S+))")


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Console:
    """One `waguard console` process; `lines` is what it wrote to stderr (its log)."""

    proc: subprocess.Popen[str]
    url: str
    port: int
    token: str
    log: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def fetch(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        cookie: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Page:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        hdrs = dict(headers or {})
        if cookie:
            hdrs["Cookie"] = f"waguard_console={self.token}"
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        page = Page(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode())
        conn.close()
        return page

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.fetch("GET", "/audit").body)
        assert found, "the console's forms carry the CSRF value"
        return found.group(1)


def start_console(
    stack: LocalStack,
    key: tuple[str, str] | None,
    profile: str | None = None,
    env_extra: dict[str, str] | None = None,
    api: str | None = None,
) -> Console:
    """`waguard console --api ... --port P` signed with `key` from the environment (or `profile`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_REGION"] = stack.region
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    if key is not None:
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = key
    env.update(env_extra or {})
    port = aws.free_port()
    cmd = [
        str(Path(sys.executable).parent / "waguard"),
        "console",
        "--api",
        api or stack.api,
        "--port",
        str(port),
    ]
    if profile:
        cmd += ["--profile", profile]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    found = URL_LINE.search(line)
    if not found:
        proc.kill()
        raise AssertionError(f"waguard console printed {line!r}; stderr: {proc.stderr.read()}")
    console = Console(proc, found.group(1), int(found.group(2)), found.group(3))
    stderr = proc.stderr

    def pump() -> None:
        for text in stderr:
            console.log.append(text.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return console
