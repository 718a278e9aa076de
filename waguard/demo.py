"""`make demo`: start the local stack and play a whole conversation through the contract's HTTP API.

Everything goes over HTTP exactly as a user's systems would: Meta's side is simulated by signing webhook
deliveries with the app secret; the business side signs requests with SigV4. The `Client` and
`LocalStack` classes here are also what the scenario tests drive.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from waguard import aws
from waguard import report as report_mod
from waguard.paths import ROOT


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def sign_webhook(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Client:
    """HTTP client of the local API: SigV4 for business routes, Meta's HMAC for the webhook."""

    api: str
    region: str
    app_secret: str
    verify_token: str
    key: tuple[str, str] = aws.ADMIN_KEY

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        sign: bool = True,
        key: tuple[str, str] | None = None,
    ) -> Reply:
        url = self.api + path
        hdrs = {"content-type": "application/json", **(headers or {})}
        if sign:
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials

            access, secret = key or self.key
            aws_req = AWSRequest(method=method, url=url, data=body or b"", headers=hdrs)
            SigV4Auth(Credentials(access, secret), "execute-api", self.region).add_auth(aws_req)
            hdrs = dict(aws_req.headers.items())
        req = urllib.request.Request(url, data=body, method=method, headers=hdrs)  # noqa: S310 - local URL
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
                return Reply(resp.status, resp.read(), dict(resp.headers.items()))
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.read(), dict(err.headers.items()))

    # ---- Meta's side -------------------------------------------------------------------------------
    def handshake(self, token: str | None = None, challenge: str = "1158201444") -> Reply:
        query = urllib.parse.urlencode(
            {
                "hub.mode": "subscribe",
                "hub.verify_token": token or self.verify_token,
                "hub.challenge": challenge,
            }
        )
        return self.request("GET", "/webhook?" + query, sign=False)

    def deliver(self, payload: dict[str, Any] | bytes, signature: str | None = None) -> Reply:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sig = signature if signature is not None else sign_webhook(body, self.app_secret)
        headers = {"X-Hub-Signature-256": sig} if sig else {}
        return self.request("POST", "/webhook", body=body, headers=headers, sign=False)

    # ---- business side -----------------------------------------------------------------------------
    def send(self, payload: dict[str, Any], idempotency_key: str | None = None, **kw: Any) -> Reply:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.request("POST", "/messages", json.dumps(payload).encode(), headers=headers, **kw)

    def message(self, message_id: str, **kw: Any) -> Reply:
        return self.request("GET", f"/messages/{urllib.parse.quote(message_id, safe='')}", **kw)

    def set_consent(self, contact: str, purpose: str, status: str, source: str, **kw: Any) -> Reply:
        body = json.dumps({"purpose": purpose, "status": status, "source": source}).encode()
        return self.request("PUT", f"/contacts/{urllib.parse.quote(contact, safe='')}/consent", body, **kw)

    def consent(self, contact: str, **kw: Any) -> Reply:
        return self.request("GET", f"/contacts/{urllib.parse.quote(contact, safe='')}/consent", **kw)

    def export(self, contact: str, **kw: Any) -> Reply:
        return self.request("GET", f"/contacts/{urllib.parse.quote(contact, safe='')}/export", **kw)

    def conversation(self, contact: str, query: str = "", **kw: Any) -> Reply:
        path = f"/contacts/{urllib.parse.quote(contact, safe='')}/messages" + (f"?{query}" if query else "")
        return self.request("GET", path, **kw)

    def upload(self, data: bytes, content_type: str, **kw: Any) -> Reply:
        return self.request("POST", "/media", data, headers={"content-type": content_type}, **kw)

    def media(self, media_id: str, **kw: Any) -> Reply:
        return self.request("GET", f"/media/{urllib.parse.quote(media_id, safe='')}", **kw)

    def erase(self, contact: str, **kw: Any) -> Reply:
        return self.request("DELETE", f"/contacts/{urllib.parse.quote(contact, safe='')}", **kw)

    def templates(self, status: str | None = None, **kw: Any) -> Reply:
        return self.request(
            "GET", "/templates" + (f"?status={urllib.parse.quote(status)}" if status else ""), **kw
        )

    def sync_templates(self, **kw: Any) -> Reply:
        return self.request("POST", "/templates/sync", b"", **kw)

    def create_template(self, body: dict[str, Any], **kw: Any) -> Reply:
        return self.request("POST", "/templates", json.dumps(body).encode(), **kw)

    # ---- privacy operations ------------------------------------------------------------------------
    def open_request(self, body: dict[str, Any], **kw: Any) -> Reply:
        return self.request("POST", "/privacy/requests", json.dumps(body).encode(), **kw)

    def requests(self, status: str | None = None, **kw: Any) -> Reply:
        return self.request("GET", "/privacy/requests" + (f"?status={status}" if status else ""), **kw)

    def privacy_request(self, request_id: str, suffix: str = "", **kw: Any) -> Reply:
        path = f"/privacy/requests/{urllib.parse.quote(request_id, safe='')}{suffix}"
        return self.request("GET", path, **kw)

    def act(self, request_id: str, action: str, body: dict[str, Any] | None = None, **kw: Any) -> Reply:
        path = f"/privacy/requests/{urllib.parse.quote(request_id, safe='')}/{action}"
        return self.request("POST", path, json.dumps(body).encode() if body is not None else None, **kw)

    def restrict(self, contact: str, restricted: bool, reason: str | None = None, **kw: Any) -> Reply:
        body = {"restricted": restricted, **({"reason": reason} if reason else {})}
        path = f"/contacts/{urllib.parse.quote(contact, safe='')}/restriction"
        return self.request("PUT", path, json.dumps(body).encode(), **kw)


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll until `check()` returns something truthy; the queues are asynchronous, as in AWS."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("the local stack did not reach the expected state in time")
        time.sleep(interval)


# ---- Meta webhook bodies ---------------------------------------------------------------------------
PHONE_NUMBER_ID = "106540352242922"


def envelope(value: dict[str, Any], field_name: str = "messages") -> dict[str, Any]:
    base = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": {**base, **value}, "field": field_name}]}],
    }


def inbound_text(wa_id: str, text: str, wamid: str | None = None, name: str = "Demo User") -> dict[str, Any]:
    wamid = wamid or "wamid." + secrets.token_hex(16)
    return envelope(
        {
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": wamid,
                    "timestamp": str(int(time.time())),
                    "type": "text",
                    "text": {"body": text},
                }
            ],
        }
    )


def status_update(
    wa_id: str, wamid: str, status: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    st: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": wa_id,
    }
    if errors:
        st["errors"] = errors
    return envelope({"statuses": [st]})


# ---- the local stack as a subprocess ---------------------------------------------------------------
@dataclass
class LocalStack:
    """`waguard serve` in a subprocess with known secrets and free ports."""

    env_extra: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    api: str = ""
    aws: str = ""
    region: str = ""
    roles: dict[str, tuple[str, str]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    forward_events: str = ""
    events_key: str = ""

    def start(self, timeout: float = 240.0) -> LocalStack:
        self.secrets = {
            "WA_APP_SECRET": "demo-app-secret-" + secrets.token_hex(8),
            "WA_VERIFY_TOKEN": "demo-verify-" + secrets.token_hex(4),
            "WA_ACCESS_TOKEN": "demo-access-" + secrets.token_hex(8),
            "WA_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        }
        env = {
            **os.environ,
            **self.secrets,
            "WA_RETRY_BASE_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
            **self.env_extra,
        }
        cmd = [
            sys.executable,
            "-m",
            "waguard.cli",
            "serve",
            "--port",
            str(aws.free_port()),
            "--aws-port",
            str(aws.free_port()),
            *(["--forward-events", self.forward_events] if self.forward_events else []),
        ]
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                if m := re.match(r"waguard: api (\S+)", line):
                    self.api = m.group(1)
                elif m := re.match(r"waguard: aws (\S+) region=(\S+)", line):
                    self.aws, self.region = m.group(1), m.group(2)
                elif m := re.match(r"waguard: role (\S+) (\S+) (\S+)", line):
                    self.roles[m.group(1)] = (m.group(2), m.group(3))
                elif m := re.match(r"waguard: events-key (\S+)", line):
                    self.events_key = m.group(1)
                if self.api and self.aws:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("waguard serve did not start:\n" + "\n".join(self.lines[-40:]))
        time.sleep(0.3)  # let the role lines that follow the ready lines arrive
        return self

    def client(self) -> Client:
        return Client(self.api, self.region, self.secrets["WA_APP_SECRET"], self.secrets["WA_VERIFY_TOKEN"])

    def stop(self) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None


# ---- the demo conversation -------------------------------------------------------------------------
CUSTOMER = "4915112345678"
NEIGHBOUR = "4915112345679"


def _step(n: int, title: str) -> None:
    print(f"\n== {n}. {title}", flush=True)


def _show(label: str, reply: Reply) -> None:
    body = reply.text
    print(f"   {label}: HTTP {reply.status} {body[:300]}", flush=True)


def _expect(reply: Reply, status: int, what: str) -> Reply:
    if reply.status != status:
        raise SystemExit(f"demo: {what}: expected HTTP {status}, got {reply.status}: {reply.text[:500]}")
    return reply


def _message_status(client: Client, message_id: str, wanted: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        reply = client.message(message_id)
        body = reply.json() if reply.status == 200 else {}
        return body if body.get("status") == wanted else None

    return wait_for(check)


def _bot_answers(client: Client, bot: Any) -> None:
    print("\n   The business's bot hears it through an event and answers by contact reference:")
    answered = wait_for(lambda: bot.answered[:1], timeout=60)[0]
    detail = answered["event"]["detail"]
    shown = {"detail-type": answered["event"]["detail-type"], "contact": detail["contact"],
             "message": detail["message"]}  # fmt: skip
    print(f"   event: {json.dumps(shown, ensure_ascii=False)[:300]}")
    if answered["status"] != 202:
        raise SystemExit(f"demo: the bot's answer was refused: {answered['status']} {answered['reply']}")
    _message_status(client, answered["reply"]["id"], "sent")
    print(
        f"   POST /messages to {detail['contact'][:12]}... as agent: 202, then sent (the bot holds no number)"
    )


def _data_request(client: Client) -> dict[str, Any]:
    """The customer writes MY DATA: the access request it opened (answered at once with its id)."""
    _expect(client.deliver(inbound_text(CUSTOMER, "MY DATA")), 200, "MY DATA")
    ref = _expect(client.export(CUSTOMER), 200, "export").json()["ref"]

    def opened() -> dict[str, Any] | None:
        found = [r for r in client.requests("open").json().get("requests", []) if r["contact"] == ref]
        return found[0] if found else None

    request: dict[str, Any] = wait_for(opened)
    _show("GET /privacy/requests?status=open", client.privacy_request(request["id"]))
    return request


def _campaign(client: Client, template: dict[str, Any]) -> None:
    """A small campaign to the customer (who wrote STOP: skipped) and a consented neighbour (sent)."""
    _expect(client.set_consent(NEIGHBOUR, "marketing", "granted", "web_form"), 200, "neighbour's opt-in")
    body = {
        "name": "Demo offers",
        "template": template,
        "audience": {"contacts": [{"to": CUSTOMER}, {"to": NEIGHBOUR}]},
    }
    created = _expect(client.request("POST", "/campaigns", json.dumps(body).encode()), 202, "campaign")
    _show("POST /campaigns", created)
    path = f"/campaigns/{created.json()['id']}"

    def completed() -> dict[str, Any] | None:
        view: dict[str, Any] = client.request("GET", path).json()
        return view if view.get("status") == "completed" else None

    view = wait_for(completed, timeout=60)
    counts = view["counts"]
    print(
        f"   {view['id']}: {view['status']}; recipients {counts['recipients']}, sent "
        f"{counts['sent'] + counts['delivered'] + counts['read']}, skipped {counts['skipped']} "
        f"(no_consent {counts['skipped_by']['no_consent']})"
    )
    _show(f"GET {path}/recipients", client.request("GET", path + "/recipients"))


def play(client: Client, bot: Any = None) -> None:
    """The whole conversation, each step printed; raises SystemExit on any unexpected answer. With `bot`
    (a `waguard.bot.Bot` receiving the forwarded events), the business's bot answers the question."""
    _step(1, "Meta verifies the webhook (subscription handshake)")
    _show("GET /webhook", _expect(client.handshake(challenge="demo-challenge-42"), 200, "handshake"))
    _show("GET /webhook with a wrong token", _expect(client.handshake(token="wrong"), 403, "bad handshake"))  # noqa: S106

    _step(2, "The customer writes in (a signed inbound text)")
    hello = inbound_text(CUSTOMER, "Hallo! Is my order #1042 ready? 📦")
    _show("POST /webhook", _expect(client.deliver(hello), 200, "inbound"))
    _show("POST /webhook, unsigned", _expect(client.deliver(hello, signature=""), 401, "unsigned"))
    wait_for(lambda: client.export(CUSTOMER).status == 200)
    print("   stored: the message is in the contact's export (encrypted at rest)")
    if bot is not None:
        _bot_answers(client, bot)

    _step(3, "The customer opts in to marketing (recorded by the business)")
    _show(
        "PUT consent",
        _expect(client.set_consent(CUSTOMER, "marketing", "granted", "web_form"), 200, "opt-in"),
    )

    _step(4, "The business replies inside the 24-hour service window")
    reply = _expect(
        client.send({"to": "+" + CUSTOMER, "purpose": "service", "text": {"body": "Yes, it ships today."}}),
        202,
        "reply",
    )
    _show("POST /messages", reply)
    message_id = reply.json()["id"]
    sent = _message_status(client, message_id, "sent")
    print(f"   GET /messages/{message_id}: sent, wamid recorded")

    _step(5, "Meta reports delivery and read (status webhooks)")
    for status in ("delivered", "read"):
        _expect(client.deliver(status_update(CUSTOMER, sent["wamid"], status)), 200, status)
    _message_status(client, message_id, "read")
    _expect(client.deliver(status_update(CUSTOMER, sent["wamid"], "delivered")), 200, "late status")
    time.sleep(1)
    _show("GET /messages/{id} after a late 'delivered'", client.message(message_id))
    print("   statuses never move backwards")

    _step(6, "A marketing template, with consent (the registry, synced from Meta, says what it needs)")
    listed = _expect(client.templates(), 200, "templates").json()["templates"]
    print("   GET /templates: " + ", ".join(f"{t['name']} ({t['category']}, {t['status']})" for t in listed))
    spring = {"name": "spring_sale", "language": {"code": "en_US"}}
    mismatch = client.send({"to": CUSTOMER, "purpose": "utility", "template": spring})
    _show("POST /messages (a marketing template declared utility)", _expect(mismatch, 400, "mismatch"))
    promo = {
        "to": CUSTOMER,
        "purpose": "marketing",
        "template": spring,
    }
    tpl = _expect(client.send(promo), 202, "template")
    _message_status(client, tpl.json()["id"], "sent")
    _show("POST /messages (template)", tpl)

    _step(7, "The customer writes STOP")
    _expect(client.deliver(inbound_text(CUSTOMER, "  Stop! ")), 200, "stop")

    def revoked() -> bool:
        body = client.consent(CUSTOMER).json()
        return body.get("purposes", {}).get("marketing", {}).get("status") == "revoked"

    wait_for(revoked)
    _show("GET consent", client.consent(CUSTOMER))

    _step(8, "The next marketing template is refused before anything is sent")
    _show("POST /messages (template)", _expect(client.send(promo), 403, "refused template"))

    _step(9, "A campaign: one approved template to a list, each recipient gated (the STOP is skipped)")
    _campaign(client, spring)

    _step(
        10, "The customer asks for their data over WhatsApp: MY DATA opens a tracked request (GDPR Art. 15)"
    )
    request = _data_request(client)
    print(f"   {request['id']}: {request['type']}, channel {request['channel']}, due {request['due_at']}")
    done = _expect(client.act(request["id"], "complete"), 200, "complete the request")
    _show(f"POST /privacy/requests/{request['id']}/complete", done)
    export = _expect(client.privacy_request(request["id"], "/export"), 200, "the request's export").json()
    counts = f"{len(export.get('messages', []))} messages, {len(export.get('consent', []))} consent events"
    print(f"   export kept with the request for 30 days: {counts}, each with the date it will be deleted")

    _step(11, "The customer asks to be forgotten (GDPR Art. 17)")
    _show("DELETE /contacts/{contact}", _expect(client.erase(CUSTOMER), 200, "erase"))
    _show("GET export after erasure", _expect(client.export(CUSTOMER), 404, "export after erasure"))
    _show("POST /messages (template) after erasure", _expect(client.send(promo), 403, "suppressed"))
    print("\nDemo complete: every step answered as the contract says.")


def main(argv: list[str] | None = None) -> int:
    from waguard.bot import Bot

    print("Starting the local stack (moto, the functions, the API, a fake Graph API)...", flush=True)
    bot = Bot().start()
    stack = LocalStack(forward_events=bot.url).start()
    try:
        print(f"   api {stack.api}  aws {stack.aws}  region {stack.region}")
        print(f"   business events forwarded to the demo bot at {bot.url}")
        client = stack.client()
        bot.attach(client, stack.roles["agent"], stack.events_key)
        play(client, bot)
    finally:
        stack.stop()
        bot.shutdown()
    report = ROOT / "cdk.out" / "report.html"
    report_mod.main(["--format", "html", "--out", str(report)])
    print(f"\nData-protection report written to {report.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
