"""The console's pages: each takes the signed API client, the query and the (CSRF-checked) form, calls
the API and answers a `Page` (a template and what it shows) or a `Download`. An API error is shown, never
raised: a 403 as "Your role may not do this", a 404 as what is missing, anything else with its status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from waguard.console.api import UNREACHABLE, Answer, Api, quote

FORBIDDEN = "Your role may not do this"
NOT_THE_ROLE = {  # 403s that are not about the role
    "restricted": "The contact is restricted: this is withheld while it is",
    "invalid_signature": "The API refused the signature: check the credentials and the region",
    "missing_authentication": "The API refused the call: no route or no signature",
}
REQUEST_TYPES = ("access", "erasure", "restriction", "objection")
LAWS = ("gdpr", "ccpa")
ACTIONS = ("complete", "extend", "reject")
COUNTS = ("recipients", "pending", "sent", "delivered", "read", "failed", "skipped", "cancelled")


@dataclass
class Page:
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass
class Download:
    filename: str
    body: bytes
    content_type: str = "application/json"

    def __post_init__(self) -> None:  # it goes into a header: nothing but a plain file name
        self.filename = re.sub(r"[^A-Za-z0-9_.-]", "_", self.filename)[:120] or "export.json"


@dataclass(frozen=True)
class Problem:
    """An API answer that is not a success, as the page shows it."""

    text: str
    status: int

    @property
    def forbidden(self) -> bool:
        return self.status == 403


def problem(answer: Answer, missing: str = "Not found") -> Problem | None:
    """None for a success; else what the operator reads."""
    if answer.ok:
        return None
    if answer.status == 403 and answer.code in NOT_THE_ROLE:
        return Problem(f"{NOT_THE_ROLE[answer.code]} (403 {answer.code}).", 403)
    if answer.status == 403:
        return Problem(f"{FORBIDDEN} (403 {answer.code or 'forbidden'}).", 403)
    if answer.status == 404:
        return Problem(f"{missing} (404).", 404)
    if answer.status == UNREACHABLE:
        return Problem(f"The API could not be reached ({answer.problem}).", UNREACHABLE)
    if answer.problem:
        return Problem(f"The API answered {answer.status} {answer.problem}.", answer.status)
    detail = f"{answer.code}: {answer.message}" if answer.code else answer.message
    return Problem(
        f"The API answered {answer.status}" + (f": {detail}" if detail else "") + ".", answer.status
    )


def _status(*problems: Problem | None) -> int:
    """The page's own HTTP status: 403 when the role may not do the page's main call, 502 unreachable."""
    first = problems[0] if problems else None
    if first is None:
        return 200
    if first.forbidden:
        return 403
    return 502 if first.status == UNREACHABLE else 200


# ---- Privacy requests -------------------------------------------------------------------------------
def requests_page(api: Api, notice: str = "", error: Problem | None = None, **extra: Any) -> Page:
    answer = api.get("/privacy/requests?status=open")
    listed = problem(answer)
    rows = answer.data.get("requests", []) if answer.ok and isinstance(answer.data, dict) else []
    context = {
        "requests": rows,
        "problem": listed,
        "notice": notice,
        "error": error,
        "types": REQUEST_TYPES,
        "laws": LAWS,
        **extra,
    }
    return Page("requests.html.j2", context, _status(listed or error))


def requests(api: Api, query: dict[str, str], form: dict[str, str]) -> Page:
    return requests_page(api)


def new_request(api: Api, query: dict[str, str], form: dict[str, str]) -> Page:
    body: dict[str, Any] = {
        "contact": form.get("contact", "").strip(),
        "type": form.get("type", ""),
        "law": form.get("law", ""),
    }
    if form.get("channel", "").strip():
        body["channel"] = form["channel"].strip()
    if form.get("received_at", "").strip():
        received = form["received_at"].strip()
        body["received_at"] = received + "T00:00:00Z" if len(received) == 10 else received
    answer = api.post("/privacy/requests", body)
    if answer.ok:
        made = answer.data
        return requests_page(api, notice=f"Request {made['id']} opened, due {made['due_at'][:10]}.")
    return requests_page(api, error=problem(answer, "The privacy-request routes are not available"))


def act(api: Api, query: dict[str, str], form: dict[str, str]) -> Page:
    request_id, action = form.get("request", ""), form.get("action", "")
    if action not in ACTIONS or not request_id.startswith("dsr_"):
        return requests_page(api, error=Problem("Unknown action.", 400))
    body = {"reason": form.get("reason", "").strip()} if action != "complete" else None
    answer = api.call("POST", f"/privacy/requests/{quote(request_id)}/{action}", body)
    if not answer.ok:
        return requests_page(api, error=problem(answer, f"Request {request_id} was not found"))
    done = answer.data
    words = {"complete": "completed", "extend": "extended", "reject": "rejected"}[action]
    notice = f"Request {request_id} {words}."
    if action == "extend":
        notice += f" Now due {done['due_at'][:10]}."
    if done.get("receipt_id"):
        notice += f" Erasure receipt id: {done['receipt_id']}."
    exported = request_id if done.get("type") == "access" and action == "complete" else ""
    return requests_page(api, notice=notice, exported=exported)


def request_export(api: Api, query: dict[str, str], form: dict[str, str]) -> Page | Download:
    request_id = query.get("request", "")
    answer = api.get(f"/privacy/requests/{quote(request_id)}/export")
    if answer.ok:
        return Download(f"{request_id}-export.json", json.dumps(answer.data, indent=2).encode())
    return requests_page(api, error=problem(answer, "The request's export is not held"))


# ---- Contact ----------------------------------------------------------------------------------------
def _reference(*answers: Answer) -> str:
    for answer, key in zip(answers, ("ref", "contact", "contact"), strict=False):
        if answer.ok and isinstance(answer.data, dict):
            value = str(answer.data.get(key) or "")
            if value.startswith("ct_"):
                return value
    return ""


def contact(api: Api, query: dict[str, str], form: dict[str, str], notice: str = "") -> Page:
    wanted = (query.get("contact") or form.get("contact") or "").strip()
    if not wanted:
        return Page("contact.html.j2", {"wanted": ""})
    path = f"/contacts/{quote(wanted)}"
    export, consent, talk = api.get(path + "/export"), api.get(path + "/consent"), api.get(path + "/messages")
    held = problem(export, "Nothing is held on this contact")
    context = {
        "wanted": wanted,
        "reference": _reference(export, talk, consent),
        "notice": notice,
        "export_problem": held,
        "restriction": (export.data or {}).get("restriction") if export.ok else None,
        "consent": consent.data if consent.ok else None,
        "consent_problem": problem(consent),
        "messages": (talk.data or {}).get("messages", []) if talk.ok else [],
        "talk_problem": problem(talk, "No conversation is held"),
    }
    main = held if held and held.forbidden else problem(consent)
    return Page("contact.html.j2", context, _status(main) if main and main.forbidden else 200)


def contact_export(api: Api, query: dict[str, str], form: dict[str, str]) -> Page | Download:
    wanted = query.get("contact", "").strip()
    answer = api.get(f"/contacts/{quote(wanted)}/export")
    if answer.ok:
        name = str(answer.data.get("ref") or "contact") if isinstance(answer.data, dict) else "contact"
        return Download(f"{name}-export.json", json.dumps(answer.data, indent=2).encode())
    return Page(
        "contact.html.j2",
        {"wanted": wanted, "notice": "", "export_problem": problem(answer, "Nothing is held")},
        _status(problem(answer)),
    )


def erase_form(api: Api, query: dict[str, str], form: dict[str, str]) -> Page:
    return Page("erase.html.j2", {"reference": query.get("contact", "").strip()})


def erase(api: Api, query: dict[str, str], form: dict[str, str]) -> Page:
    reference, typed = form.get("contact", "").strip(), form.get("typed", "").strip()
    if not reference or typed != reference:
        mismatch = Problem("The reference you typed does not match: nothing was erased.", 400)
        return Page("erase.html.j2", {"reference": reference, "error": mismatch}, 400)
    answer = api.call("DELETE", f"/contacts/{quote(reference)}")
    if not answer.ok:
        failed = problem(answer)
        return Page("erase.html.j2", {"reference": reference, "error": failed}, _status(failed))
    return Page("erased.html.j2", {"reference": reference, "receipt": answer.data})


def restrict(api: Api, query: dict[str, str], form: dict[str, str]) -> Page:
    reference = form.get("contact", "").strip()
    body: dict[str, Any] = {"restricted": form.get("restricted") == "true"}
    if form.get("reason", "").strip():
        body["reason"] = form["reason"].strip()
    answer = api.call("PUT", f"/contacts/{quote(reference)}/restriction", body)
    if not answer.ok:
        page = contact(api, {"contact": reference}, {})
        page.context["error"] = problem(answer)
        return page
    word = "restricted" if body["restricted"] else "no longer restricted"
    return contact(api, {"contact": reference}, {}, notice=f"The contact is {word}.")


# ---- Templates, campaigns, audit --------------------------------------------------------------------
def templates(api: Api, query: dict[str, str], form: dict[str, str]) -> Page:
    answer = api.get("/templates")
    found = problem(answer, "The template registry is not available on this API")
    rows = answer.data.get("templates", []) if answer.ok and isinstance(answer.data, dict) else []
    return Page("templates.html.j2", {"templates": rows, "problem": found}, _status(found))


def campaigns(api: Api, query: dict[str, str], form: dict[str, str]) -> Page:
    answer = api.get("/campaigns")
    found = problem(answer, "Campaigns are not available on this API")
    rows = answer.data.get("campaigns", []) if answer.ok and isinstance(answer.data, dict) else []
    return Page("campaigns.html.j2", {"campaigns": rows, "problem": found, "counts": COUNTS}, _status(found))


def audit_page(answer: Answer, notice: str = "") -> Page:
    found = problem(answer, "No audit has run yet")
    run = answer.data if answer.ok and isinstance(answer.data, dict) else None
    return Page("audit.html.j2", {"run": run, "problem": found, "notice": notice}, _status(found))


def audit(api: Api, query: dict[str, str], form: dict[str, str]) -> Page:
    return audit_page(api.get("/audit/findings"))


def run_audit(api: Api, query: dict[str, str], form: dict[str, str]) -> Page:
    answer = api.post("/audit/run")
    return audit_page(answer, notice="The audit ran." if answer.ok else "")


Route = Callable[[Api, dict[str, str], dict[str, str]], Page | Download]
ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/requests"): requests,
    ("POST", "/requests"): new_request,
    ("POST", "/requests/action"): act,
    ("GET", "/requests/export"): request_export,
    ("GET", "/contact"): contact,
    ("GET", "/contact/export"): contact_export,
    ("GET", "/contact/erase"): erase_form,
    ("POST", "/contact/erase"): erase,
    ("POST", "/contact/restriction"): restrict,
    ("GET", "/templates"): templates,
    ("GET", "/campaigns"): campaigns,
    ("GET", "/audit"): audit,
    ("POST", "/audit/run"): run_audit,
}
ROUTES_LOGGED = {path for _, path in ROUTES} | {"/", "/console.css"}
