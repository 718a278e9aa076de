"""The WhatsApp Cloud API (Graph API) client of the sender: Meta's request body, the call, and what an
answer means (sent, retry later, or failed for good).

Errors are classified by Meta's error code, not by the HTTP status (Meta answers most errors with 400).
Standard library only (`urllib`): the Lambda runtime has no `requests`.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared import ids
from shared.settings import ConfigurationError

TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_BACKOFF_SECONDS = 900
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

# Meta's error codes (Cloud API error codes reference).
THROTTLE_CODES = frozenset({130429, 131056, 80007, 4})  # throughput, pair rate, WABA and app rate limits
TRANSIENT_CODES = frozenset({131000, 1, 2, 131057})  # something went wrong, unknown, service, maintenance
RETRYABLE_CODES = THROTTLE_CODES | TRANSIENT_CODES
PERMANENT_CODES = frozenset({131047, 131050, 131026, 131049, 190, 100})
AUTH_CODES = frozenset({190})
THROUGHPUT_CODE = 130429  # the business number's throughput is exceeded: campaigns slow down
PAIR_RATE_CODE = 131056  # Meta: retry after 4^X seconds
MARKETING_STOPPED_CODE = 131050
TEMPLATE_CODES = range(132000, 133000)


def is_retryable(http_status: int | None, code: int | None) -> bool:
    """True when the send should be tried again later; False when it failed for good.

    `http_status` None means no answer at all (timeout, connection refused or reset).
    """
    if http_status is None:
        return True
    if code is not None:
        if code in RETRYABLE_CODES:
            return True
        if code in PERMANENT_CODES or code in TEMPLATE_CODES:
            return False
    if http_status >= 500 or http_status == 429:
        return True  # the server's trouble (or an unnamed throttle): the request may succeed later
    return False  # any other 4xx (and any other coded error): the request itself is refused


def backoff_seconds(
    attempt: int,
    base: float,
    code: int | None = None,
    rand: Callable[[], float] = random.random,
    cap: int = MAX_BACKOFF_SECONDS,
) -> int:
    """Seconds before retry number `attempt` (1 = after the first failed attempt); whole seconds, >= 1.

    131056 (pair rate limit) follows Meta's 4^attempt schedule; everything else exponential backoff with
    full jitter: uniform(0, min(cap, base * 2^(attempt-1))).
    """
    attempt = max(1, int(attempt))
    if code == PAIR_RATE_CODE:
        return int(min(cap, 4**attempt))
    ceiling = min(float(cap), max(0.0, float(base)) * 2 ** (attempt - 1))
    return max(1, min(cap, math.ceil(rand() * ceiling)))


def check_url(url: str) -> str:
    """The Graph API base URL, refused unless https (plain http only to a loopback host: the local fake)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return url.rstrip("/")
    if parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return url.rstrip("/")
    raise ConfigurationError("the Graph API URL must be https:// (plain http only to a loopback host)")


def messages_url(base_url: str, version: str, phone_number_id: str) -> str:
    return f"{check_url(base_url)}/{version}/{phone_number_id}/messages"


MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")


def _media(src: dict[str, Any], graph_refs: dict[str, Any]) -> dict[str, Any]:
    """Meta's media object: `link`, or `id` (the Graph media id resolved from waguard's `media_id`)."""
    obj: dict[str, Any] = {}
    if src.get("media_id"):
        obj["id"] = str(graph_refs["media"])
    else:
        obj["link"] = src["link"]
    for key in ("caption", "filename"):
        if src.get(key):
            obj[key] = src[key]
    return obj


def kind_of(content: dict[str, Any]) -> str:
    """The kind of stored content (`kind` is stored since rich messages; older items hold text/template)."""
    if content.get("kind"):
        return str(content["kind"])
    return "template" if "template" in content else "text"


def message_body(content: dict[str, Any]) -> dict[str, Any]:
    """Meta's send-message body for stored content (see domain.sending.content_of).

    A phone number goes in `to`; a business-scoped user id in `recipient` (Meta's field for BSUIDs).
    Waguard's ids in the content (`reply_to`, `reaction.message_id`, `media_id`) were resolved when the
    message was accepted; their Meta counterparts are in `graph` (`context`, `reaction`, `media`).
    """
    to = str(content["to"])
    kind = kind_of(content)
    refs: dict[str, Any] = content.get("graph") or {}
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    body["to" if ids.is_phone(to) else "recipient"] = to
    if refs.get("context"):
        body["context"] = {"message_id": refs["context"]}
    body["type"] = kind
    if kind == "template":
        src = content["template"]
        template: dict[str, Any] = {"name": src["name"], "language": {"code": src["language"]["code"]}}
        if src.get("components"):
            template["components"] = src["components"]
        body["template"] = template
    elif kind == "text":
        text = content["text"]
        body["text"] = {"body": text, "preview_url": bool(content.get("preview_url", False))}
    elif kind in MEDIA_KINDS:
        body[kind] = _media(content[kind], refs)
    elif kind == "reaction":
        body["reaction"] = {"message_id": refs["reaction"], "emoji": content["reaction"]["emoji"]}
    else:  # interactive, location: stored in Meta's own shape
        body[kind] = dict(content[kind])
    return body


def read_body(wamid: str, typing: bool = False) -> dict[str, Any]:
    """Meta's "mark as read" body (with the typing indicator when asked)."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    if typing:
        body["typing_indicator"] = {"type": "text"}
    return body


@dataclass(frozen=True)
class GraphResult:
    """What one call to the Graph API came to."""

    wamid: str | None = None
    http_status: int | None = None  # None: no answer (timeout, connection error)
    code: int | None = None  # Meta's error code
    title: str = ""
    unexpected: bool = False  # a 2xx without a message id

    @property
    def ok(self) -> bool:
        return self.wamid is not None

    @property
    def retryable(self) -> bool:
        return not self.ok and (self.unexpected or is_retryable(self.http_status, self.code))

    @property
    def throttled(self) -> bool:
        return self.code in THROTTLE_CODES or (self.code is None and self.http_status == 429)

    @property
    def auth_error(self) -> bool:
        return self.code in AUTH_CODES or self.http_status == 401

    @property
    def error(self) -> dict[str, Any]:
        """`{code, title}` as recorded on the message (code: Meta's, or `http_<status>` / `network`)."""
        if self.code is not None:
            code: int | str = self.code
        elif self.http_status is None:
            code = "network"
        else:
            code = f"http_{self.http_status}"
        return {"code": code, "title": self.title or "Graph API error"}


def _title(error: dict[str, Any]) -> str:
    """A short title for Meta's error (never its details: they may quote the request)."""
    from shared.observability import scrub

    title = error.get("error_user_title") or error.get("title") or error.get("message") or ""
    title = str(title)
    code = error.get("code")
    prefix = f"(#{code}) "
    if title.startswith(prefix):
        title = title[len(prefix) :]
    return scrub(title.strip())[:200]


def parse_response(http_status: int, raw: bytes) -> GraphResult:
    """Interpret the Graph API's answer (success body or Meta's error shape)."""
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    if 200 <= http_status < 300:
        messages = doc.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            wamid = messages[0].get("id")
            if isinstance(wamid, str) and wamid:
                return GraphResult(wamid=wamid, http_status=http_status)
        # Accepted without a message id: not a documented answer. Retrying could send twice, dropping
        # could lose the message; the caller treats it as transient and the lease/attempt limit bounds it.
        return GraphResult(http_status=http_status, title="unexpected response", unexpected=True)
    raw_error = doc.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    code: int | None
    try:
        code = int(error["code"]) if error.get("code") is not None else None
    except (TypeError, ValueError):
        code = None
    return GraphResult(http_status=http_status, code=code, title=_title(error) or f"HTTP {http_status}")


def _opener(loopback: bool) -> Any:
    """No redirects (the Bearer token never follows one: a 3xx is an error); no proxy to loopback."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    handlers: list[Any] = [NoRedirect()]
    if loopback:
        handlers.append(urllib.request.ProxyHandler({}))  # the local fake: never through a proxy
    return urllib.request.build_opener(*handlers)


class Unavailable(Exception):
    """Transient trouble before the call (e.g. the contact's key changed while copying): retry later."""


@dataclass(frozen=True)
class RawAnswer:
    """The HTTP status and body of one call (`http_status` None: no answer, `title` says why)."""

    http_status: int | None
    raw: bytes = b""
    title: str = ""


def post(
    url: str,
    token: str,
    data: bytes | Iterable[bytes],
    content_type: str,
    timeout: float,
    length: int | None = None,
) -> RawAnswer:
    """POST `data` (bytes, or pieces of `length` bytes in all, streamed) with the Bearer token; never raises
    for HTTP trouble. No redirects; no proxy to a loopback host."""
    import urllib.request

    check_url(url)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type, "Accept": "application/json"}
    if length is not None:
        headers["Content-Length"] = str(length)
    request = urllib.request.Request(  # noqa: S310 - scheme checked above (https, or http to loopback)
        url, data=data, headers=headers, method="POST"
    )
    return _call(request, timeout)


def get(url: str, token: str, timeout: float | None = None) -> RawAnswer:
    """GET `url` with the Bearer token (Meta's JSON answer); never raises for HTTP trouble. No redirects; no
    proxy to a loopback host."""
    import urllib.request

    check_url(url)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310 - scheme checked
    return _call(request, timeout or TIMEOUT_SECONDS)


def _call(request: Any, timeout: float) -> RawAnswer:
    """One request (its URL checked by the caller): the answer, or why there was none."""
    import http.client
    import urllib.error

    loopback = (urlsplit(request.full_url).hostname or "").lower() in LOOPBACK_HOSTS
    try:
        with _opener(loopback).open(request, timeout=timeout) as answer:
            return RawAnswer(answer.status, answer.read(MAX_RESPONSE_BYTES))
    except urllib.error.HTTPError as exc:
        try:
            raw = exc.read(MAX_RESPONSE_BYTES)
        except OSError:
            raw = b""
        return RawAnswer(exc.code, raw)
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, refused/reset, bad answers
        reason = getattr(exc, "reason", exc)
        return RawAnswer(None, title="timeout" if isinstance(reason, TimeoutError) else "connection error")


def send(url: str, token: str, body: dict[str, Any], timeout: float | None = None) -> GraphResult:
    """POST one message to `url` (see messages_url) with the Bearer token; never raises for HTTP trouble."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return result_of(post(url, token, data, "application/json", timeout or TIMEOUT_SECONDS))


def result_of(answer: RawAnswer) -> GraphResult:
    """Meta's answer as a send outcome (no answer: retryable, `title` says why)."""
    if answer.http_status is None:
        return GraphResult(http_status=None, title=answer.title)
    return parse_response(answer.http_status, answer.raw)
