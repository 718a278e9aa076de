"""`waguard console` over plain HTTP (no browser): the printed URL and the loopback-only bind, the token
(401 without it, then an HttpOnly SameSite=Strict cookie), the CSP and the other headers, the CSRF and Host
checks, a 403 from the API shown as "Your role may not do this", the campaigns page following what the
API answers, credentials from a profile, an unreachable API, and a log without personal data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.scenario.console_util import Console, start_console
from tests.scenario.util import unique_phone
from waguard import aws
from waguard.demo import Client, LocalStack, inbound_text, wait_for


@pytest.fixture(scope="module")
def officer(stack: LocalStack) -> Iterator[Console]:
    console = start_console(stack, stack.roles["privacy-officer"])
    yield console
    assert console.stop() == 0


@pytest.fixture(scope="module")
def sender(stack: LocalStack) -> Iterator[Console]:
    console = start_console(stack, stack.roles["sender"])
    yield console
    assert console.stop() == 0


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # LISTEN
                found.add(address)
    return found


def test_prints_the_url_and_listens_on_loopback_only(officer: Console) -> None:
    assert officer.url == f"http://127.0.0.1:{officer.port}/?token={officer.token}"
    assert len(officer.token) >= 32
    assert listening_addresses(officer.port) == {"0100007F"}  # 127.0.0.1, nothing else


def test_without_the_token_401_then_the_cookie(officer: Console) -> None:
    for path in ("/", "/requests", "/contact", "/audit", "/campaigns"):
        page = officer.fetch("GET", path, cookie=False)
        assert page.status == 401, path
        assert "Not signed in" in page.body
    assert (
        officer.fetch("GET", "/requests", cookie=False, headers={"Cookie": "waguard_console=x"}).status == 401
    )
    assert officer.fetch("GET", "/?token=" + "x" * len(officer.token), cookie=False).status == 401
    assert officer.fetch("POST", "/audit/run", form={"csrf": officer.csrf()}, cookie=False).status == 401

    login = officer.fetch("GET", f"/?token={officer.token}", cookie=False)
    assert login.status == 303
    assert login.headers["location"] == "/requests"  # the token leaves the address bar
    cookie = login.headers["set-cookie"]
    assert cookie.startswith(f"waguard_console={officer.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = officer.fetch("GET", "/requests")
    assert page.status == 200
    assert "<h1>Privacy requests</h1>" in page.body


def test_strict_csp_and_nothing_from_another_origin(officer: Console) -> None:
    for path in ("/requests", "/contact", "/audit", "/templates", "/campaigns"):
        page = officer.fetch("GET", path)
        csp = page.headers["content-security-policy"]
        assert csp.startswith("default-src 'none';")
        assert "script-src" not in csp and "unsafe-inline" not in csp
        assert "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.body and " style=" not in page.body and "<style" not in page.body
        assert re.findall(r'(?:href|src|action)="([^"]*)"', page.body)
        for target in re.findall(r'(?:href|src|action)="([^"]*)"', page.body):
            assert target.startswith("/"), (path, target)  # same origin only
    css = officer.fetch("GET", "/console.css", cookie=False)
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")


def test_forms_need_the_csrf_value_and_the_host_must_be_the_console(officer: Console, client: Client) -> None:
    phone = unique_phone()
    form = {"contact": phone, "type": "access", "law": "gdpr"}
    assert officer.fetch("POST", "/requests", form=form).status == 403  # no CSRF value
    assert officer.fetch("POST", "/requests", form={**form, "csrf": "0" * 64}).status == 403
    evil = {"Origin": "http://evil.example"}
    assert (
        officer.fetch("POST", "/requests", form={**form, "csrf": officer.csrf()}, headers=evil).status == 403
    )
    listed = client.requests("open", key=("testing", "testing")).json()["requests"]
    assert not [r for r in listed if r.get("channel") == "console-csrf"]
    assert officer.fetch("GET", "/requests", headers={"Host": "evil.example"}).status == 400

    made = officer.fetch(
        "POST", "/requests", form={**form, "channel": "console-csrf", "csrf": officer.csrf()}
    )
    assert made.status == 200
    found = re.search(r"Request (dsr_\S+) opened, due (\d{4}-\d\d-\d\d)\.", made.body)
    assert found, made.body
    stored = client.privacy_request(found.group(1)).json()
    assert stored["channel"] == "console-csrf" and stored["due_at"][:10] == found.group(2)


def test_the_queue_marks_overdue_requests(officer: Console, client: Client) -> None:
    phone = unique_phone()
    late = (datetime.now(UTC) - timedelta(days=70)).isoformat()
    opened = client.open_request({"contact": phone, "type": "access", "law": "gdpr", "received_at": late})
    assert opened.status == 201, opened.text
    request = opened.json()
    page = officer.fetch("GET", "/requests").body
    row = re.search(rf"<tr class=\"overdue\">\s*<th scope=\"row\">{request['id']}</th>.*?</tr>", page, re.S)
    assert row, page
    assert "Overdue" in row.group(0) and request["due_at"][:10] in row.group(0)
    assert phone not in "\n".join(officer.log)


def test_a_403_from_the_api_is_shown_as_such(sender: Console, stack: LocalStack) -> None:
    for path in ("/requests", "/audit", f"/contact?contact={unique_phone()}"):
        page = sender.fetch("GET", path)
        assert page.status == 403, path
        assert "Your role may not do this" in page.body
        assert "<nav" in page.body  # the console still works: a page, not a crash
    run = sender.fetch("POST", "/audit/run", form={"csrf": sender.csrf()})
    assert run.status == 403 and "Your role may not do this" in run.body
    templates = sender.fetch("GET", "/templates")  # the sender may read the registry
    assert templates.status == 200 and "<h1>Templates</h1>" in templates.body
    assert "<caption>Template registry</caption>" in templates.body


def test_campaigns_shows_what_the_api_answers(sender: Console, stack: LocalStack) -> None:
    answer = stack.client().request("GET", "/campaigns", key=stack.roles["sender"])
    page = sender.fetch("GET", "/campaigns")
    assert "<h1>Campaigns</h1>" in page.body
    if answer.status == 404:  # campaigns not deployed on this API
        assert "Campaigns are not available on this API (404)." in page.body
    else:
        assert answer.status == 200
        for campaign in answer.json()["campaigns"]:
            assert campaign["id"] in page.body


def test_the_privacy_officer_reads_the_audit(officer: Console) -> None:
    page = officer.fetch("GET", "/audit")
    assert page.status == 200 and "<h1>Audit</h1>" in page.body
    assert "Last run:" in page.body or "No audit has run yet (404)." in page.body
    ran = officer.fetch("POST", "/audit/run", form={"csrf": officer.csrf()})
    assert ran.status == 200 and "The audit ran." in ran.body and "findings." in ran.body


def test_lookup_and_the_log_hold_no_personal_data(officer: Console, client: Client) -> None:
    phone = unique_phone()
    assert client.deliver(inbound_text(phone, "hello")).status == 200
    wait_for(lambda: client.export(phone).status == 200)
    ref = client.export(phone).json()["ref"]
    page = officer.fetch("GET", f"/contact?contact=%2B{phone}")
    assert page.status == 200 and ref in page.body
    assert "Your role may not do this" in page.body  # the officer may not read the conversation
    assert officer.log and all(phone not in line and ref not in line for line in officer.log)


def test_credentials_from_a_profile(stack: LocalStack, tmp_path: Path) -> None:
    access, secret = stack.roles["privacy-officer"]
    (tmp_path / "credentials").write_text(
        f"[officer]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n"
    )
    (tmp_path / "config").write_text(f"[profile officer]\nregion = {stack.region}\n")
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
    }
    console = start_console(stack, None, profile="officer", env_extra={**env, "AWS_REGION": ""})
    try:
        assert console.fetch("GET", "/requests").status == 200
    finally:
        assert console.stop() == 0


def test_an_unreachable_api_is_a_message(stack: LocalStack) -> None:
    console = start_console(stack, stack.roles["privacy-officer"], api=f"http://127.0.0.1:{aws.free_port()}")
    try:
        page = console.fetch("GET", "/requests")
        assert page.status == 502 and "The API could not be reached (ConnectionRefusedError)." in page.body
    finally:
        assert console.stop() == 0
