"""The console against a scripted API (no stack): each call signed by botocore with the environment's
credentials (session token included) and the region; what it shows for a campaign list (not on every API
yet), a 500, a body that is not JSON, a 404; a page that fails is a 500 page whose log names no data."""

from __future__ import annotations

import http.client
import http.server
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from waguard.console import pages, server
from waguard.console.api import Api, NoCredentials, region_of

CAMPAIGN = {
    "id": "cp_01",
    "name": "Spring sale",
    "status": "running",
    "template": {"name": "spring_offer", "language": "en"},
    "counts": {
        "recipients": 7,
        "pending": 2,
        "sent": 1,
        "delivered": 1,
        "read": 1,
        "failed": 1,
        "skipped": 1,
    },
}


class FakeApi(http.server.ThreadingHTTPServer):
    """Answers `answers[path] = (status, body bytes)`; keeps each request's method, path and headers."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.seen.append((self.command, self.path, dict(self.headers.items())))
                status, body = outer.answers.get(self.path.split("?")[0], (404, b'{"error": "not_found"}'))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEOPERATOR")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "sso-session-token")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")


@pytest.fixture
def fake() -> Iterator[FakeApi]:
    api = FakeApi()
    yield api
    api.shutdown()


@pytest.fixture
def console(env: None, fake: FakeApi) -> Iterator[server.Server]:
    running = server.start(Api(fake.url), 0)
    yield running
    running.shutdown()
    running.server_close()


def get(console: server.Server, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", console.console.port, timeout=10)
    conn.request("GET", path, headers={"Cookie": f"waguard_console={console.console.token}"})
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


def test_every_call_is_signed_by_botocore_with_the_callers_credentials(console: Any, fake: FakeApi) -> None:
    fake.answers["/campaigns"] = (200, json.dumps({"campaigns": []}).encode())
    assert get(console, "/campaigns")[0] == 200
    method, path, headers = fake.seen[-1]
    assert (method, path) == ("GET", "/campaigns")
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEOPERATOR/")
    assert "/eu-west-1/execute-api/aws4_request" in auth
    assert headers["X-Amz-Security-Token"] == "sso-session-token"


def test_campaigns_show_their_counts_and_status(console: Any, fake: FakeApi) -> None:
    fake.answers["/campaigns"] = (200, json.dumps({"campaigns": [CAMPAIGN]}).encode())
    status, body = get(console, "/campaigns")
    assert status == 200
    row = body[body.index('<th scope="row">Spring sale</th>') :].split("</tr>")[0]
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[:3] == ["cp_01", "spring_offer (en)", "running"]
    assert cells[3:] == ["7", "2", "1", "1", "1", "1", "1", "0"]  # recipients ... cancelled


def test_api_errors_are_messages(console: Any, fake: FakeApi) -> None:
    status, body = get(console, "/campaigns")  # the fake knows no campaigns route: 404
    assert status == 200 and "Campaigns are not available on this API (404)." in body
    fake.answers["/templates"] = (500, b'{"error": "internal", "message": "boom"}')
    assert "The API answered 500: internal: boom." in get(console, "/templates")[1]
    fake.answers["/audit/findings"] = (502, b"<html>bad gateway</html>")
    assert "The API answered 502 with a body that is not JSON" in get(console, "/audit")[1]
    fake.answers["/privacy/requests"] = (403, b'{"message": "User: x is not authorized"}')
    status, body = get(console, "/requests")
    assert status == 403 and "Your role may not do this (403 forbidden)." in body


def test_a_failing_page_is_a_500_page_and_the_log_names_no_data(
    console: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(api: Any, query: dict[str, str], form: dict[str, str]) -> Any:
        raise ValueError("+4915112345678")

    monkeypatch.setitem(pages.ROUTES, ("GET", "/contact"), broken)
    status, body = get(console, "/contact?contact=%2B4915112345678")
    assert status == 500 and "unexpected error (ValueError)" in body
    assert "4915112345678" not in body.replace("+4915112345678", "")  # not echoed from the exception
    log = capsys.readouterr().err
    assert "waguard console: error ValueError" in log and "GET /contact 500" in log
    assert "4915112345678" not in log


def test_region_and_credentials_are_required(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert region_of("https://abc123.execute-api.eu-central-1.amazonaws.com/prod") == "eu-central-1"
    assert region_of("http://127.0.0.1:3000") is None
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(NoCredentials, match="region"):
        Api("http://127.0.0.1:3000")
    assert Api("https://abc.execute-api.ap-south-1.amazonaws.com/prod").region == "ap-south-1"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(NoCredentials, match="credentials"):
        Api("https://abc.execute-api.ap-south-1.amazonaws.com/prod")


def test_a_download_name_cannot_reach_the_headers(console: Any, fake: FakeApi) -> None:
    fake.answers["/privacy/requests/dsr_1%0D%0AX-Evil%3A%201/export"] = (200, b'{"ref": "ct_x"}')
    conn = http.client.HTTPConnection("127.0.0.1", console.console.port, timeout=10)
    path = "/requests/export?request=dsr_1%0D%0AX-Evil%3A%201"
    conn.request("GET", path, headers={"Cookie": f"waguard_console={console.console.token}"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("X-Evil") is None
    assert resp.getheader("Content-Disposition") == 'attachment; filename="dsr_1__X-Evil__1-export.json"'
    assert json.loads(resp.read()) == {"ref": "ct_x"}


def test_a_403_is_the_role_unless_the_api_says_otherwise(console: Any, fake: FakeApi) -> None:
    fake.answers["/audit/findings"] = (403, b'{"error": "invalid_signature", "message": "Signature expired"}')
    status, body = get(console, "/audit")
    assert status == 403 and "The API refused the signature: check the credentials and the region" in body
    assert "Your role may not do this" not in body
    fake.answers["/contacts/ct_abc/messages"] = (403, b'{"error": "restricted", "message": "restricted"}')
    fake.answers["/contacts/ct_abc/export"] = (200, b'{"ref": "ct_abc", "restriction": {"restricted": true}}')
    fake.answers["/contacts/ct_abc/consent"] = (200, b'{"contact": "ct_abc", "purposes": {}, "history": []}')
    status, body = get(console, "/contact?contact=ct_abc")
    assert (
        status == 200 and "The contact is restricted: this is withheld while it is (403 restricted)." in body
    )
    assert "Lift restriction" in body and "Your role may not do this" not in body
