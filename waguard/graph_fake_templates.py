"""The Graph fake's WhatsApp Business Account: its message templates, as Meta serves and enforces them.

Written from Meta's documentation, not from waguard's own code, so the fake stays an independent oracle:
- `GET /{version}/{WABA_ID}/message_templates[?limit=N&after=CURSOR&fields=...]` answers
  `{"data": [...], "paging": {"cursors": {"before", "after"}, "next"?}}`, at most `page_size` a page;
- `POST /{version}/{WABA_ID}/message_templates` takes a new template (name, language, category,
  components) and answers `{"id", "status": "PENDING", "category"}`; a name already held in that
  language is refused (error 100, subcode 2388024);
- a template send (`"type": "template"`) of a template the WABA does not hold in that language is refused
  with 132001; one whose body parameters do not match the template's placeholders with 132000; one not
  APPROVED with 132015 (paused) or 132016 (disabled) or 132001.

Test control: `POST /_fake/templates/update` `{"name", "language", "status"|"category"|"quality"|
"correct_category"}` changes one and answers `{"webhook": DELIVERY}` (what Meta sends for it, for the test
to sign and post to waguard); `/_fake/templates/failures` `{"count"}` makes the next list calls answer 500;
`/_fake/templates/page-size` `{"size"}` sets the page size.

The WABA starts with templates of the three categories and shapes (`DEFAULT_TEMPLATES`): one with body
parameters, one with an image header, one AUTHENTICATION with a copy-code URL button, one with named
parameters and two without any.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

LIST_PATH = re.compile(r"^/(v\d+\.\d+)/([0-9A-Za-z_-]{1,64})/message_templates$")
_VAR = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")

DEFAULT_TEMPLATES: tuple[dict[str, Any], ...] = (
    {
        "name": "spring_sale",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Spring sale"},
            {"type": "BODY", "text": "Our spring sale starts today: 20% off everything in store and online."},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop promotions"}]},
        ],
    },
    {
        "name": "new_arrivals",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U="]}},
            {"type": "BODY", "text": "New this week: {{1}}.", "example": {"body_text": [["linen shirts"]]}},
        ],
    },
    {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{1}}, your order {{2}} has shipped.",
                "example": {"body_text": [["Ana", "A-1001"]]},
            },
            {
                "type": "BUTTONS",
                "buttons": [
                    {
                        "type": "URL",
                        "text": "Track order",
                        "url": "https://shop.example.com/track/{{1}}",
                        "example": ["https://shop.example.com/track/A-1001"],
                    }
                ],
            },
        ],
    },
    {
        "name": "account_notice",
        "language": "en_US",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Your account settings were changed."}],
    },
    {
        "name": "parcel_window",
        "language": "de",
        "category": "UTILITY",
        "parameter_format": "NAMED",
        "components": [
            {
                "type": "BODY",
                "text": "Ihr Paket {{parcel}} kommt am {{day}}.",
                "example": {
                    "body_text_named_params": [
                        {"param_name": "parcel", "example": "P-7"},
                        {"param_name": "day", "example": "Montag"},
                    ]
                },
            }
        ],
    },
    {
        "name": "login_code",
        "language": "en_US",
        "category": "AUTHENTICATION",
        "components": [
            {
                "type": "BODY",
                "text": "*{{1}}* is your verification code. For your security, do not share it.",
            },
            {"type": "FOOTER", "text": "This code expires in 10 minutes."},
            {
                "type": "BUTTONS",
                "buttons": [
                    {
                        "type": "URL",
                        "text": "Copy code",
                        "url": "https://www.whatsapp.com/otp/code/?otp_type=COPY_CODE&code_expiration_minutes=10&code=otp{{1}}",
                    }
                ],
            },
        ],
    },
)


class Waba:
    """One WABA's templates (thread-safe), as the fake serves them."""

    def __init__(self, waba_id: str | None = None) -> None:
        self.id = waba_id or "1" + "".join(secrets.choice("0123456789") for _ in range(14))
        self._lock = threading.Lock()
        self.page_size = DEFAULT_PAGE_SIZE
        self.failures = 0
        self._templates: list[dict[str, Any]] = []
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._templates = [
                {"id": str(10**15 + i), "status": "APPROVED", "parameter_format": "POSITIONAL", **t}
                for i, t in enumerate(DEFAULT_TEMPLATES)
            ]
            self.page_size = DEFAULT_PAGE_SIZE
            self.failures = 0

    def find(self, name: str, language: str) -> dict[str, Any] | None:
        with self._lock:
            return next(
                (dict(t) for t in self._templates if (t["name"], t["language"]) == (name, language)), None
            )

    # ---- Meta's routes -----------------------------------------------------------------------------
    def page(self, query: str, base_url: str, path: str) -> tuple[int, dict[str, Any]]:
        """One page of the list (Meta's shape); a scripted failure answers 500 (error 2)."""
        args = parse_qs(query)
        with self._lock:
            if self.failures > 0:
                self.failures -= 1
                return 500, _error(2, "Service temporarily unavailable")
            try:
                limit = max(1, min(int(args.get("limit", [str(self.page_size)])[0]), self.page_size))
                start = int(base64.urlsafe_b64decode(args["after"][0]).decode()) if "after" in args else 0
            except (ValueError, UnicodeDecodeError):
                return 400, _error(100, "Invalid parameter", "invalid limit or cursor")
            rows = [dict(t) for t in self._templates[start : start + limit]]
            more = start + limit < len(self._templates)
        if not rows:
            return 200, {"data": []}
        cursors = {"before": _cursor(start), "after": _cursor(start + len(rows))}
        body: dict[str, Any] = {"data": rows, "paging": {"cursors": cursors}}
        if more:
            body["paging"]["next"] = f"{base_url}{path}?limit={limit}&after={cursors['after']}"
        return 200, body

    def create(self, payload: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(payload, dict):
            return 400, _error(100, "Invalid parameter", "the body is a JSON object")
        name, language, category = payload.get("name"), payload.get("language"), payload.get("category")
        components = payload.get("components")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,512}", name):
            return 400, _error(100, "Invalid parameter", "name: lowercase letters, digits and underscores")
        if not isinstance(language, str) or not re.fullmatch(r"[a-z]{2,3}(_[A-Za-z0-9]{2,4})?", language):
            return 400, _error(100, "Invalid parameter", "language")
        if category not in CATEGORIES:
            return 400, _error(100, "Invalid parameter", "category")
        if not isinstance(components, list) or not any(
            isinstance(x, dict) and x.get("type") == "BODY" for x in components
        ):
            return 400, _error(100, "Invalid parameter", "components need a BODY")
        with self._lock:
            if any((t["name"], t["language"]) == (name, language) for t in self._templates):
                return 400, _error(100, "Message template already exists", "", subcode=2388024)
            entry = {
                "id": str(10**15 + len(self._templates) + secrets.randbelow(10**6) * 1000),
                "name": name,
                "language": language,
                "category": category,
                "status": "PENDING",
                "parameter_format": str(payload.get("parameter_format") or "POSITIONAL"),
                "components": components,
            }
            self._templates.append(entry)
        return 200, {"id": entry["id"], "status": "PENDING", "category": category}

    def refuse_send(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """Meta's refusal of a template send, or None when the template fits."""
        template: dict[str, Any] = payload["template"] if isinstance(payload.get("template"), dict) else {}
        language: dict[str, Any] = template["language"] if isinstance(template.get("language"), dict) else {}
        held = self.find(str(template.get("name")), str(language.get("code")))
        if held is None:
            return 404, _error(132001, "Template name does not exist in the translation")
        if held["status"] == "PAUSED":
            return 400, _error(132015, "Template is paused")
        if held["status"] == "DISABLED":
            return 400, _error(132016, "Template is disabled")
        if held["status"] != "APPROVED":
            return 404, _error(132001, "Template name does not exist in the translation")
        body: dict[str, Any] = next((x for x in held["components"] if x.get("type") == "BODY"), {})
        wanted = len(dict.fromkeys(_VAR.findall(str(body.get("text") or ""))))
        sent: dict[str, Any] = next(
            (x for x in template.get("components") or [] if isinstance(x, dict) and x.get("type") == "body"),
            {},
        )
        if len(sent.get("parameters") or []) != wanted:
            return 400, _error(132000, "Number of parameters does not match the expected number of params")
        return None

    # ---- test control ------------------------------------------------------------------------------
    def update(self, change: dict[str, Any]) -> dict[str, Any]:
        """Change a template (`status`, `category`, `quality`; or announce `correct_category`) and answer
        `{"webhook": DELIVERY}`: the webhook Meta sends for it, for the test to sign and post."""
        name, language = str(change.get("name")), str(change.get("language"))
        with self._lock:
            held = next((t for t in self._templates if (t["name"], t["language"]) == (name, language)), None)
            if held is None:
                raise KeyError("no such template")
            field, value = _webhook_value(held, change)
            if "status" in change:
                held["status"] = "APPROVED" if change["status"] == "REINSTATED" else change["status"]
            if "category" in change:
                held["category"] = change["category"]
            if "quality" in change:
                held["quality_score"] = {"score": change["quality"]}
        delivery = {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": self.id, "time": int(time.time()), "changes": [{"field": field, "value": value}]}
            ],
        }
        return {"webhook": delivery}


def _webhook_value(held: dict[str, Any], change: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    common = {
        "message_template_id": int(held["id"]),
        "message_template_name": held["name"],
        "message_template_language": held["language"],
    }
    if "status" in change:
        value = {"event": change["status"], **common, "reason": change.get("reason", "NONE")}
        return "message_template_status_update", value
    if "category" in change:
        value = {**common, "previous_category": held["category"], "new_category": change["category"]}
        return "template_category_update", value
    if "correct_category" in change:
        value = {
            **common,
            "correct_category": change["correct_category"],
            "new_category": held["category"],
            "category_update_timestamp": int(time.time()) + 86400,
        }
        return "template_category_update", value
    previous = (held.get("quality_score") or {}).get("score", "UNKNOWN")
    value = {**common, "previous_quality_score": previous, "new_quality_score": change.get("quality")}
    return "message_template_quality_update", value


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode()


def _error(code: int, message: str, details: str = "", subcode: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details or message},
        "fbtrace_id": secrets.token_urlsafe(12),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def path_of(url_path: str) -> tuple[str, str]:
    parts = urlsplit(url_path)
    return parts.path, parts.query


# ---- the fake's HTTP handler calls these (waguard.graph_fake._Handler) ---------------------------------
def serve(handler: Any, raw: bytes | None) -> None:
    """The WABA's template list (GET, paged) and template creation (POST), as Meta answers them."""
    import json

    path, query = path_of(handler.path)
    match = LIST_PATH.match(path)
    assert match is not None
    try:
        payload: Any = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    handler._call = {
        "method": "GET" if raw is None else "POST",
        "path": handler.path,
        "authorized": handler._authorized(),
        "body": payload,
        "started": time.monotonic(),
    }
    server = handler.server
    server._record(handler._call)
    if not handler._call["authorized"]:
        handler._send(401, _error(190, "Invalid OAuth access token."))
    elif match.group(2) != server.waba.id:
        handler._send(400, _error(100, "Unsupported get request.", "unknown WABA id"))
    elif raw is None:
        handler._send(*server.waba.page(query, server.base_url, path))
    else:
        handler._send(*server.waba.create(payload))


CONTROL_PATHS = ("/_fake/templates/update", "/_fake/templates/failures", "/_fake/templates/page-size")


def control(handler: Any, raw: bytes) -> bool:
    """`POST /_fake/templates/update` (answers the webhook Meta sends for the change),
    `/_fake/templates/failures` `{"count"}` and `/_fake/templates/page-size` `{"size"}`; True when the
    path was one of them."""
    import json

    if handler.path not in CONTROL_PATHS:
        return False
    waba = handler.server.waba
    try:
        body = json.loads(raw or b"{}")
        if handler.path == CONTROL_PATHS[0]:
            handler._send(200, waba.update(body))
            return True
        if handler.path == CONTROL_PATHS[1]:
            with waba._lock:
                waba.failures += int(body.get("count", 1))
        else:
            with waba._lock:
                waba.page_size = max(1, min(int(body["size"]), MAX_PAGE_SIZE))
    except (ValueError, KeyError, TypeError, AttributeError):
        handler._send(400, {"error": "bad control body"})
        return True
    handler._send(200, {"ok": True})
    return True
