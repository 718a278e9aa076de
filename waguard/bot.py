"""A small bot for `make demo`: a business application built on waguard's events and API.

It listens for the events `waguard serve --forward-events URL` forwards (as the deployed API destination
would), checks the `X-Waguard-Events-Key` header, and answers every question a contact asks (a text
with a `?`) through `POST /messages`, signed with the `agent` role's key and addressed by the contact
reference from the event. It never sees a phone number: point `--forward-events` at your own app the
same way.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from waguard import aws

ANSWER = "Thanks for asking! A colleague will confirm the details in a minute."


class Bot(ThreadingHTTPServer):
    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__((host, aws.free_port()), _Handler)
        self.client: Any = None
        self.agent_key: tuple[str, str] | None = None
        self.events_key = ""
        self.heard: list[dict[str, Any]] = []
        self.answered: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/events"

    def start(self) -> Bot:
        threading.Thread(target=self.serve_forever, name="demo-bot", daemon=True).start()
        return self

    def attach(self, client: Any, agent_key: tuple[str, str], events_key: str) -> None:
        self.client, self.agent_key, self.events_key = client, agent_key, events_key

    def on_event(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.heard.append(event)
        if event.get("detail-type") != "message.received" or self.client is None:
            return
        detail = event.get("detail") or {}
        text = str((detail.get("message") or {}).get("text") or "")
        if "?" not in text:
            return
        reply = self.client.send(
            {"to": detail["contact"], "purpose": "service", "text": {"body": ANSWER}}, key=self.agent_key
        )
        with self.lock:
            self.answered.append({"event": event, "status": reply.status, "reply": reply.json()})


class _Handler(BaseHTTPRequestHandler):
    server: Bot

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self.server.events_key or self.headers.get("X-Waguard-Events-Key") != self.server.events_key:
            self.send_response(401)
            self.end_headers()
            return
        self.server.on_event(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass
