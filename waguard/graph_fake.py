"""A strict local fake of the WhatsApp Cloud API `POST /{version}/{phone_number_id}/messages`.

The local stack's default Graph API and the tests'. It refuses what Meta refuses (with Meta's error
shape), answers what Meta answers, and can be scripted:

- `POST /_fake/script` with a list (or `{"responses": [...]}`) of responses consumed in order before the
  normal behaviour. Each entry is one of
  `{"status": 400, "body": {...}}` (that answer verbatim),
  `{"code": 130429}` (Meta's error body for that code, with its usual HTTP status; `"title"`,
  `"status"` and `"details"` override), `{"delay": 1.5}` (wait, then behave normally), or a delay
  combined with either of the first two.
- `GET /_fake/calls`: every call received (method, path, headers, body, and the answer's status and
  response, with monotonic `started`/`finished` times), oldest first.
- `POST /_fake/reset`: forget calls and script.
- Media: `POST /_fake/media` `{"id", "mime_type", "data_b64"}` (or `server.add_media(...)`, also with a
  chunk generator for large media) makes `GET /{version}/{media-id}` answer Meta's
  `{"url", "mime_type", "sha256", "file_size", "id", "messaging_product"}`; the URL serves the bytes.
  Both need `Authorization: Bearer <token>` (the expected token when one is set): 401 otherwise.
  `POST /_fake/media-failures` `{"count": n}` (or `server.fail_media(n)`): the next n media lookups
  answer 500 (Meta's error 2), for retry tests.
- Templates: the WABA `server.waba` lists, takes and enforces templates (`waguard.graph_fake_templates`).
- Uploads: `POST /{version}/{phone_number_id}/media` (multipart form, checked by `waguard.graph_fake_media`)
  answers `{"id"}` and serves the media like any other; a send by `{"id": ...}` must name such an id, of
  a type Meta accepts for the message type. `server.calls("/media")` lists the uploads (never the bytes).

Every `/messages` body is also checked against Meta's published OpenAPI file when it is present
(`waguard.meta_schema`: `../shared/meta/`, `allOf` merged, relaxed where Meta's examples are looser) and
refused with Meta's error 100 when it does not conform. A read receipt (`"status": "read"`) is checked
against Meta's mark-as-read schema and answered `{"success": true}`.

The same is available in-process on the server object: `server.script([...])`, `server.calls()`,
`server.reset()`. Nothing is ever printed: no tokens, no bodies (HTTP access logging is off).

`python -m waguard.graph_fake [--host H] [--port P] [--token T]` runs it standalone.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from waguard import graph_fake_media as media_upload
from waguard import graph_fake_templates as waba_templates

MAX_BODY_BYTES = 1024 * 1024
TEXT_MAX_CHARS = 4096
_PATH = re.compile(r"^/(v\d+\.\d+)/([0-9A-Za-z_-]{1,64})/messages$")
_MEDIA_PATH = re.compile(r"^/(v\d+\.\d+)/([0-9A-Za-z_.-]{1,128})$")
_MEDIA_URL = re.compile(r"^/_media/([0-9a-f]{32})$")
_UPLOAD_PATH = re.compile(r"^/(v\d+\.\d+)/([0-9A-Za-z_-]{1,64})/media$")
MEDIA_CHUNK = 1024 * 1024
MESSAGE_TYPES = (
    "text",
    "template",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "reaction",
)

# Meta's error codes with their usual HTTP status and title (Cloud API error codes reference).
ERRORS: dict[int, tuple[int, str]] = {
    0: (401, "AuthException"),
    1: (500, "API Unknown"),
    2: (503, "API Service"),
    3: (403, "API Method"),
    4: (400, "API Too Many Calls"),
    10: (403, "Permission Denied"),
    100: (400, "Invalid parameter"),
    190: (401, "Access token has expired"),
    200: (403, "API Permission"),
    80007: (400, "Rate limit issues"),
    130429: (400, "Rate limit hit"),
    131000: (500, "Something went wrong"),
    131005: (403, "Access denied"),
    131008: (400, "Required parameter is missing"),
    131009: (400, "Parameter value is not valid"),
    131026: (400, "Message Undeliverable"),
    131047: (400, "Re-engagement message"),
    131049: (400, "Meta chose not to deliver."),
    131050: (400, "Unable to deliver the message: the user stopped marketing messages from the business"),
    131056: (400, "(Business Account, Consumer Account) pair rate limit hit"),
    131057: (503, "Account in maintenance mode"),
    132000: (400, "Template Param Count Mismatch"),
    132001: (404, "Template does not exist"),
    132012: (400, "Parameter format does not match format in the created template"),
}


def fbtrace_id() -> str:
    return "A" + secrets.token_urlsafe(16)


def error_body(code: int, message: str = "", details: str = "", title: str = "") -> dict[str, Any]:
    """Meta's Graph API error shape."""
    known = ERRORS.get(code, (400, "Error"))[1]
    error: dict[str, Any] = {
        "message": message or f"(#{code}) {title or known}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details or (title or known)},
        "fbtrace_id": fbtrace_id(),
    }
    if title:
        error["error_user_title"] = title
    return {"error": error}


def scripted_error(
    code: int, status: int | None = None, title: str = "", details: str = ""
) -> dict[str, Any]:
    """A script entry answering Meta's error `code` (HTTP status as Meta usually sends it)."""
    return {
        "status": status or ERRORS.get(code, (400, ""))[0],
        "body": error_body(code, title=title, details=details),
    }


def _invalid(details: str, message: str = "(#100) Invalid parameter") -> tuple[int, dict[str, Any]]:
    return 400, error_body(100, message=message, details=details)


def is_read_receipt(payload: Any) -> bool:
    return isinstance(payload, dict) and "status" in payload


def conforms(payload: Any) -> tuple[int, dict[str, Any]] | None:
    """None when Meta's published schema (if present) accepts the body; else Meta's 400 error 100."""
    from waguard import meta_schema

    schema = meta_schema.load()
    if schema is None:
        return None
    errors = schema.read_errors(payload) if is_read_receipt(payload) else schema.message_errors(payload)
    if errors:
        return _invalid("; ".join(errors[:3]), "(#100) Invalid parameter")
    return None


def validate_read(payload: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """A mark-as-read request: `messaging_product`, `status` "read", a wamid."""
    if payload.get("messaging_product") != "whatsapp":
        return _invalid("messaging_product must be 'whatsapp'")
    if payload.get("status") != "read":
        return _invalid("status must be 'read'")
    if not str(payload.get("message_id") or "").startswith("wamid."):
        return _invalid("message_id must be a WhatsApp message id", "(#100) Invalid parameter")
    return conforms(payload)


def validate(payload: Any) -> tuple[int, dict[str, Any]] | None:
    """None when Meta would accept the send request; else its (HTTP status, error body)."""
    if is_read_receipt(payload):
        return validate_read(payload)
    refused = _validate_send(payload)
    return refused or conforms(payload)


def _validate_send(payload: Any) -> tuple[int, dict[str, Any]] | None:
    if not isinstance(payload, dict):
        return _invalid("The request body must be a JSON object")
    if payload.get("messaging_product") != "whatsapp":
        return _invalid(
            "messaging_product must be 'whatsapp'", "(#100) The parameter messaging_product is required."
        )
    to, recipient = payload.get("to"), payload.get("recipient")
    if not (isinstance(to, str) and to.strip()) and not (isinstance(recipient, str) and recipient.strip()):
        return _invalid("The parameter to is required", "(#100) The parameter to is required.")
    if payload.get("recipient_type", "individual") != "individual":
        return _invalid("recipient_type must be 'individual'")
    kind = payload.get("type", "text")
    if kind not in MESSAGE_TYPES:
        return _invalid(f"Invalid message type; expected one of {', '.join(MESSAGE_TYPES)}")
    obj = payload.get(kind)
    if not isinstance(obj, dict):
        return _invalid(f"The parameter {kind} is required", f"(#100) The parameter {kind} is required.")
    if kind == "text":
        body = obj.get("body")
        if not isinstance(body, str) or not body:
            return _invalid(
                "The parameter text['body'] is required", "(#100) The parameter text['body'] is required."
            )
        if len(body) > TEXT_MAX_CHARS:
            return _invalid(f"Param text['body'] must be at most {TEXT_MAX_CHARS} characters long.")
        if "preview_url" in obj and not isinstance(obj["preview_url"], bool):
            return _invalid("Param text['preview_url'] must be a boolean")
    elif kind == "template":
        name = obj.get("name")
        language = obj.get("language")
        if not isinstance(name, str) or not name:
            return _invalid("The parameter template['name'] is required")
        if (
            not isinstance(language, dict)
            or not isinstance(language.get("code"), str)
            or not language["code"]
        ):
            return _invalid("The parameter template['language']['code'] is required")
        components = obj.get("components")
        if components is not None and not (
            isinstance(components, list) and all(isinstance(x, dict) and "type" in x for x in components)
        ):
            return _invalid("Param template['components'] must be a list of components with a type")
    return None


def _refused_media(payload: Any, known: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
    problem = media_upload.check_send_by_id(payload, known)
    return _invalid(problem) if problem else None


def accepted(payload: dict[str, Any]) -> dict[str, Any]:
    """Meta's success answer: the contact as sent and a new wamid (a read receipt: `success`)."""
    if is_read_receipt(payload):
        return {"success": True}
    to = payload.get("to")
    contact = (
        {"input": to, "wa_id": to} if to else {"input": payload["recipient"], "user_id": payload["recipient"]}
    )
    message: dict[str, Any] = {"id": "wamid." + secrets.token_urlsafe(36)}
    if payload.get("type") == "template":
        message["message_status"] = "accepted"
    return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}


class FakeGraph(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], expected_token: str | None = None, waba_id: str | None = None
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.expected_token = expected_token
        self.waba = waba_templates.Waba(waba_id)
        self.base_url = ""
        self._lock = threading.Lock()
        self._script: deque[dict[str, Any]] = deque()
        self._calls: list[dict[str, Any]] = []
        self._media: dict[str, dict[str, Any]] = {}
        self._media_urls: dict[str, str] = {}
        self._media_failures = 0

    def shutdown(self) -> None:
        """Stop serving and close the listening socket."""
        super().shutdown()
        self.server_close()

    # ---- in-process control ------------------------------------------------------------------------
    def script(self, responses: list[dict[str, Any]]) -> None:
        with self._lock:
            self._script.extend(dict(r) for r in responses)

    def calls(self, path_suffix: str = "/messages") -> list[dict[str, Any]]:
        """Calls received (control endpoints excluded), oldest first."""
        with self._lock:
            return [dict(call) for call in self._calls if call["path"].endswith(path_suffix)]

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._calls.clear()
            self._media.clear()
            self._media_urls.clear()
            self._media_failures = 0
        self.waba.reset()

    def add_media(
        self,
        media_id: str,
        mime_type: str,
        data: bytes | None = None,
        *,
        chunks: Callable[[], Iterable[bytes]] | None = None,
        size: int = 0,
        sha256: str = "",
    ) -> None:
        """Serve media `media_id`: `data`, or (large media) `chunks()` of `size` bytes in total."""
        import hashlib

        if data is not None:
            size, sha256 = len(data), hashlib.sha256(data).hexdigest()
            chunks = lambda: [data]  # noqa: E731
        if chunks is None:
            raise ValueError("data or chunks")
        url_id = secrets.token_hex(16)
        with self._lock:
            self._media[media_id] = {"mime": mime_type, "size": size, "sha256": sha256, "chunks": chunks}
            self._media_urls[url_id] = media_id

    def fail_media(self, count: int = 1) -> None:
        with self._lock:
            self._media_failures += count

    def _media_lookup(self, media_id: str) -> tuple[dict[str, Any] | None, str, bool]:
        with self._lock:
            entry = self._media.get(media_id)
            url_id = next((u for u, m in self._media_urls.items() if m == media_id), "")
            fail = self._media_failures > 0
            if fail:
                self._media_failures -= 1
            return entry, url_id, fail

    def _record(self, call: dict[str, Any]) -> None:
        with self._lock:
            self._calls.append(call)

    def _next_scripted(self) -> dict[str, Any] | None:
        with self._lock:
            return self._script.popleft() if self._script else None


class _Handler(BaseHTTPRequestHandler):
    server: FakeGraph
    _call: dict[str, Any] | None = None
    protocol_version = "HTTP/1.1"
    server_version = "FakeGraph/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # never log: tokens and bodies
        return

    def _send(self, status: int, body: Any) -> None:
        call = getattr(self, "_call", None)
        if call is not None:  # what was answered, for the tests (e.g. the wamid handed out)
            with self.server._lock:
                call["status"], call["response"], call["finished"] = status, body, time.monotonic()
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        if status != 200:
            self.send_header("WWW-Authenticate", 'OAuth "Facebook Platform" "invalid_request"')
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        limit = media_upload.UPLOAD_MAX_BYTES if _UPLOAD_PATH.match(self.path) else MAX_BODY_BYTES
        return self.rfile.read(min(length, limit)) if length > 0 else b""

    def do_GET(self) -> None:
        self._call = None
        if self.path == "/_fake/calls":
            with self.server._lock:
                self._send(200, list(self.server._calls))
            return
        if self.path == "/_fake/health":
            self._send(200, {"ok": True})
            return
        if waba_templates.LIST_PATH.match(waba_templates.path_of(self.path)[0]):
            waba_templates.serve(self, None)
            return
        if _MEDIA_URL.match(self.path) or _MEDIA_PATH.match(self.path):
            self._media_get()
            return
        self._send(400, error_body(100, message="Unsupported get request.", details="unknown path"))

    def do_POST(self) -> None:
        self._call = None
        raw = self._read_body()
        if self.path == "/_fake/reset":
            self.server.reset()
            self._send(200, {"ok": True})
            return
        if self.path == "/_fake/script":
            try:
                spec = json.loads(raw or b"[]")
                entries = spec.get("responses", []) if isinstance(spec, dict) else spec
                if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                    raise ValueError("a list of objects")
            except ValueError:
                self._send(400, {"error": "script must be a JSON list of response objects"})
                return
            self.server.script(entries)
            self._send(200, {"ok": True, "scripted": len(entries)})
            return
        if self._control_media(raw) or waba_templates.control(self, raw):
            return
        if waba_templates.LIST_PATH.match(self.path):
            waba_templates.serve(self, raw)
            return
        if _UPLOAD_PATH.match(self.path):
            self._upload(raw)
            return
        self._messages(raw)

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization") or ""
        expected = self.server.expected_token
        return auth.startswith("Bearer ") and (expected is None or auth == f"Bearer {expected}")

    def _media_get(self) -> None:
        """Meta's media lookup (`/{version}/{media-id}`) and the URL it hands out (`/_media/<id>`)."""
        self._call = {
            "method": "GET",
            "path": self.path,
            "started": time.monotonic(),
            "authorized": self._authorized(),
        }
        self.server._record(self._call)
        if not self._call["authorized"]:
            self._send(401, error_body(190, message="Invalid OAuth access token."))
            return
        served = _MEDIA_URL.match(self.path)
        if served:
            with self.server._lock:
                entry = self.server._media.get(self.server._media_urls.get(served.group(1), ""))
            if entry is None:
                self._send(404, error_body(100, message="Unknown media URL."))
                return
            self.send_response(200)
            self.send_header("Content-Type", entry["mime"])
            self.send_header("Content-Length", str(entry["size"]))
            self.end_headers()
            for chunk in entry["chunks"]():
                self.wfile.write(chunk)
            self._call["status"] = 200
            return
        match = _MEDIA_PATH.match(self.path)
        assert match is not None
        entry, url_id, fail = self.server._media_lookup(match.group(2))
        if fail:
            self._send(500, error_body(2, message="Service temporarily unavailable"))
        elif entry is None:
            self._send(400, error_body(100, message="Unsupported get request.", details="unknown media id"))
        else:
            self._send(
                200,
                {
                    "messaging_product": "whatsapp",
                    "url": f"{self.server.base_url}/_media/{url_id}",
                    "mime_type": entry["mime"],
                    "sha256": entry["sha256"],
                    "file_size": entry["size"],
                    "id": match.group(2),
                },
            )

    def _control_media(self, raw: bytes) -> bool:
        """`POST /_fake/media` and `/_fake/media-failures`; True when the path was one of them."""
        import base64

        if self.path not in ("/_fake/media", "/_fake/media-failures"):
            return False
        try:
            body = json.loads(raw or b"{}")
            if self.path == "/_fake/media":
                data = base64.b64decode(body["data_b64"])
                self.server.add_media(str(body["id"]), str(body["mime_type"]), data)
            else:
                self.server.fail_media(int(body.get("count", 1)))
        except (ValueError, KeyError, TypeError):
            self._send(400, {"error": "bad control body"})
            return True
        self._send(200, {"ok": True})
        return True

    def _upload(self, raw: bytes) -> None:
        """Meta's media upload: multipart form checked (graph_fake_media), then `{"id"}` of new media."""
        parsed = media_upload.parse_upload(self.headers.get("Content-Type", ""), raw)
        self._call = {
            "method": "POST",
            "path": self.path,
            "headers": {k: v for k, v in self.headers.items() if k.lower() != "authorization"},
            "authorized": self._authorized(),
            "body": parsed.summary if isinstance(parsed, media_upload.Upload) else None,
            "started": time.monotonic(),
        }
        self.server._record(self._call)
        entry = self.server._next_scripted()
        if entry and float(entry.get("delay", 0) or 0) > 0:
            time.sleep(min(float(entry["delay"]), 60.0))
        if entry and "code" in entry and "body" not in entry:
            entry = scripted_error(int(entry["code"]), entry.get("status"))
        if entry and "status" in entry:
            self._send(int(entry["status"]), entry.get("body", {}))
        elif not self._call["authorized"]:
            self._send(401, error_body(190, message="Invalid OAuth access token."))
        elif isinstance(parsed, str):
            self._send(*_invalid(parsed))
        else:
            media_id = str(secrets.randbelow(10**15) + 10**15)
            self.server.add_media(media_id, parsed.mime_type, parsed.data)
            self._send(200, {"id": media_id})

    def _messages(self, raw: bytes) -> None:
        try:
            payload: Any = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        self._call = {
            "method": "POST",
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body": payload,
            "started": time.monotonic(),
        }
        self.server._record(self._call)
        entry = self.server._next_scripted()
        if entry:
            delay = float(entry.get("delay", 0) or 0)
            if delay > 0:
                time.sleep(min(delay, 60.0))
            if "code" in entry and "body" not in entry:
                entry = scripted_error(
                    int(entry["code"]), entry.get("status"), entry.get("title", ""), entry.get("details", "")
                )
            if "status" in entry:
                self._send(int(entry["status"]), entry.get("body", {}))
                return
        self._normal(payload)

    def _normal(self, payload: Any) -> None:
        if not _PATH.match(self.path):
            self._send(400, error_body(100, message="Unsupported post request.", details="unknown path"))
            return
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        expected = self.server.expected_token
        if not token.strip() or (expected is not None and not secrets.compare_digest(token, expected)):
            self._send(
                401,
                error_body(
                    190,
                    message="Invalid OAuth access token - Cannot parse access token",
                    details="invalid token",
                ),
            )
            return
        if not str(self.headers.get("Content-Type", "")).lower().startswith("application/json"):
            status, body = _invalid("Content-Type must be application/json")
            self._send(status, body)
            return
        with self.server._lock:
            known = {media_id: entry["mime"] for media_id, entry in self.server._media.items()}
        refused = validate(payload) or _refused_media(payload, known)
        if not refused and isinstance(payload, dict) and payload.get("type") == "template":
            refused = self.server.waba.refuse_send(payload)
        if refused:
            self._send(*refused)
            return
        self._send(200, accepted(payload))


def start(
    host: str = "127.0.0.1", port: int = 0, expected_token: str | None = None, waba_id: str | None = None
) -> tuple[FakeGraph, str]:
    """Run the fake in a daemon thread; returns the server (call `.shutdown()` to stop) and its base URL."""
    from waguard import meta_schema

    meta_schema.load()  # parse Meta's schema (when present) once, before the first request waits on it
    server = FakeGraph((host, port), expected_token=expected_token, waba_id=waba_id)
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    server.base_url = f"http://{shown}:{bound_port}"
    thread = threading.Thread(target=server.serve_forever, name="graph-fake", daemon=True)
    thread.start()
    return server, server.base_url


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m waguard.graph_fake", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None, help="the only Bearer token accepted (default: any)")
    args = parser.parse_args(argv)
    server, url = start(args.host, args.port, args.token)
    print(f"graph-fake: {url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
