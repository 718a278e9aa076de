"""The console's HTTP server: the standard library's threading server bound to 127.0.0.1 only, the per-run
token (from the printed URL into an HttpOnly SameSite=Strict cookie; without it 401), a CSRF check on every
form (a value derived from the token, and the Origin when the browser sends one), a Host check (against
DNS rebinding), a strict Content-Security-Policy and pages rendered by Jinja2 (autoescaped).

The log names the method, the console's route (never a query or a form: they hold phone numbers) and the
status; nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import secrets
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from waguard.console import pages
from waguard.console.api import Api

HOST = "127.0.0.1"
COOKIE = "waguard_console"
TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 64 * 1024
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make the forms' Origin "null"
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
NAV = [
    ("/requests", "Privacy requests"),
    ("/contact", "Contact"),
    ("/templates", "Templates"),
    ("/campaigns", "Campaigns"),
    ("/audit", "Audit"),
]


class Console:
    """What every request of one run shares: the API client, the token and the templates."""

    def __init__(self, api: Api, port: int, token: str | None = None) -> None:
        self.api = api
        self.port = port
        self.token = token or secrets.token_urlsafe(32)
        self.csrf = hmac.new(self.token.encode(), b"csrf", hashlib.sha256).hexdigest()
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"])
        )
        self.css = (TEMPLATES / "console.css").read_bytes()

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    def hosts(self) -> set[str]:
        return {f"{HOST}:{self.port}", f"localhost:{self.port}"}

    def render(self, template: str, **context: Any) -> bytes:
        base = {"nav": NAV, "csrf": self.csrf, "api": self.api.base}
        return self.env.get_template(template).render({**base, **context}).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server
    server_version = "waguard-console"
    sys_version = ""

    # ---- logging: the route and the status only ----------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        return

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        route = urllib.parse.urlsplit(self.path).path
        if not any(route == p for p, _ in NAV) and route not in pages.ROUTES_LOGGED:
            route = "(other)"
        code_value = code.value if isinstance(code, HTTPStatus) else code
        print(f"waguard console: {self.command} {route} {code_value}", file=sys.stderr, flush=True)

    # ---- answers -----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _page(self, status: int, template: str, **context: Any) -> None:
        self._send(status, self.server.console.render(template, **context), "text/html; charset=utf-8")

    def _redirect(self, location: str, cookie: str | None = None) -> None:
        extra = {"Location": location}
        if cookie:
            extra["Set-Cookie"] = cookie
        self._send(303, b"", "text/plain; charset=utf-8", extra)

    def _refuse(self, status: int, title: str, detail: str) -> None:
        self._page(status, "refused.html.j2", title=title, detail=detail, nav=[])

    # ---- checks ------------------------------------------------------------------------------------
    def _cookie_ok(self) -> bool:
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except Exception:  # a malformed cookie header is no token
            return False
        morsel = jar.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value, self.server.console.token)

    def _form(self) -> dict[str, str] | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM_BYTES:
            return None
        raw = self.rfile.read(length).decode("utf-8", "replace")
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}

    def _csrf_ok(self, form: dict[str, str]) -> bool:
        console = self.server.console
        origin = self.headers.get("Origin")
        if origin is not None and origin not in {console.origin, f"http://localhost:{console.port}"}:
            return False
        return hmac.compare_digest(form.get("csrf", ""), console.csrf)

    # ---- dispatch ----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        console = self.server.console
        if self.headers.get("Host", "") not in console.hosts():
            self._refuse(400, "Wrong address", "Open the console at the address it printed.")
            return
        split = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        if split.path == "/console.css":
            self._send(200, console.css, "text/css; charset=utf-8")
            return
        if method == "GET" and "token" in query:
            self._login(split.path, query["token"])
            return
        if not self._cookie_ok():
            self._refuse(
                401, "Not signed in", "Open the address that `waguard console` printed (it holds the token)."
            )
            return
        if split.path == "/":
            self._redirect("/requests")
            return
        form: dict[str, str] = {}
        if method == "POST":
            got = self._form()
            if got is None or not self._csrf_ok(got):
                self._refuse(403, "Form refused", "The form did not come from this console; reload the page.")
                return
            form = got
        self._run(method, split.path, query, form)

    def _login(self, path: str, token: str) -> None:
        console = self.server.console
        if not hmac.compare_digest(token, console.token):
            self._refuse(401, "Not signed in", "The token is not this console's; use the printed address.")
            return
        cookie = f"{COOKIE}={console.token}; HttpOnly; SameSite=Strict; Path=/"
        self._redirect(path if path != "/" else "/requests", cookie)

    def _run(self, method: str, path: str, query: dict[str, str], form: dict[str, str]) -> None:
        page = pages.ROUTES.get((method, path))
        if page is None:
            self._refuse(404, "Not found", "The console has no such page.")
            return
        try:
            result = page(self.server.console.api, query, form)
        except Exception as exc:  # never a crash; the type only (the message may hold personal data)
            print(f"waguard console: error {type(exc).__name__}", file=sys.stderr, flush=True)
            self._refuse(500, "Console error", f"The console met an unexpected error ({type(exc).__name__}).")
            return
        if isinstance(result, pages.Download):
            disposition = f'attachment; filename="{result.filename}"'
            self._send(200, result.body, result.content_type, {"Content-Disposition": disposition})
            return
        self._page(result.status, result.template, **result.context)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, console: Console, port: int) -> None:
        super().__init__((HOST, port), Handler)
        self.console = console
        console.port = int(self.server_address[1])


def start(api: Api, port: int, token: str | None = None) -> Server:
    """A running console on 127.0.0.1:port (0 picks a free port) in a daemon thread."""
    server = Server(Console(api, port, token), port)
    threading.Thread(target=server.serve_forever, name="waguard-console", daemon=True).start()
    return server
