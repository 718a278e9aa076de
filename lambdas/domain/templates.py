"""The template registry: the business's message templates as Meta holds them (contract: "Templates").

Read from `GET {graph}/{version}/{WABA_ID}/message_templates` following every page (a sync: when the stack
starts, on the templates function's schedule, on `POST /templates/sync`, and once a minute at most when a
send names a template the registry lacks); kept current between syncs by Meta's template webhooks. The
send gate (domain.eligibility) reads an entry's status, category and parameters from here, never from
the caller. Every change of an entry is a `template.changed` event. Nothing here is personal data.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from domain import events, graph, template_fit
from domain.errors import Refused
from shared import constants as c
from shared.observability import logger
from shared.settings import ConfigurationError, get_settings
from store import templates as store

CATEGORY_PURPOSE = {"MARKETING": "marketing", "UTILITY": "utility", "AUTHENTICATION": "authentication"}
APPROVED = "APPROVED"
# message_template_status_update `event` -> the entry's status (REINSTATED is APPROVED again).
STATUS_EVENTS = {
    "APPROVED": APPROVED,
    "PENDING": "PENDING",
    "REJECTED": "REJECTED",
    "PAUSED": "PAUSED",
    "DISABLED": "DISABLED",
    "IN_APPEAL": "IN_APPEAL",
    "FLAGGED": "FLAGGED",
    "PENDING_DELETION": "PENDING_DELETION",
    "DELETED": "DELETED",
    "REINSTATED": APPROVED,
    "LIMIT_EXCEEDED": "LIMIT_EXCEEDED",
    "ARCHIVED": "ARCHIVED",
}
FIELD_STATUS = "message_template_status_update"
FIELD_CATEGORY = "template_category_update"
FIELD_QUALITY = "message_template_quality_update"
WEBHOOK_FIELDS = (FIELD_STATUS, FIELD_CATEGORY, FIELD_QUALITY)
MISS_SYNC_SECONDS = 60
PAGE_LIMIT = 100
MAX_PAGES = 1000  # 100,000 templates: far beyond Meta's per-WABA limit; a cursor loop cannot run forever
FIELDS = "id,name,language,status,category,components,parameter_format,quality_score"
NAME = re.compile(r"^[a-z0-9_]{1,512}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$")


@dataclass(frozen=True)
class Entry:
    id: str
    name: str
    language: str
    category: str
    status: str
    components: list[dict[str, Any]]
    parameter_format: str = "POSITIONAL"
    quality: str | None = None
    updated_at: int = 0

    @property
    def purpose(self) -> str | None:
        return CATEGORY_PURPOSE.get(self.category)

    @property
    def approved(self) -> bool:
        return self.status == APPROVED

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "language": self.language,
            "category": self.category,
            "status": self.status,
            "quality": self.quality,
            "parameters": template_fit.parameters(self.components),
            "updated_at": events.iso(self.updated_at),
        }
        return {k: v for k, v in out.items() if v is not None}

    def record(self) -> dict[str, Any]:
        return {
            "tpl_id": self.id,
            "name": self.name,
            "language": self.language,
            "category": self.category,
            "status": self.status,
            "components": self.components,
            "parameter_format": self.parameter_format,
            "quality": self.quality,
            "updated_at": self.updated_at,
        }

    @staticmethod
    def of_record(item: dict[str, Any]) -> Entry:
        return Entry(
            id=str(item.get("tpl_id") or ""),
            name=str(item["name"]),
            language=str(item["language"]),
            category=str(item.get("category") or ""),
            status=str(item.get("status") or ""),
            components=list(item.get("components") or []),
            parameter_format=str(item.get("parameter_format") or "POSITIONAL"),
            quality=item.get("quality"),
            updated_at=int(item.get("updated_at") or 0),
        )


def of_meta(doc: Any, at: int) -> Entry | None:
    """An entry from one of Meta's template objects (None for one without a usable name and language)."""
    if not isinstance(doc, dict):
        return None
    name, language = str(doc.get("name") or ""), str(doc.get("language") or "")
    if not NAME.match(name) or not LANGUAGE.match(language):
        return None
    quality = doc.get("quality_score")
    score = quality.get("score") if isinstance(quality, dict) else quality
    components = doc.get("components")
    return Entry(
        id=str(doc.get("id") or ""),
        name=name,
        language=language,
        category=str(doc.get("category") or "").upper(),
        status=str(doc.get("status") or "").upper(),
        components=[x for x in components if isinstance(x, dict)] if isinstance(components, list) else [],
        parameter_format=str(doc.get("parameter_format") or "POSITIONAL").upper(),
        quality=str(score).upper() if score else None,
        updated_at=at,
    )


# ---- reading --------------------------------------------------------------------------------------------
def lookup(name: str, language: str, max_age: float = 0) -> Entry | None:
    """The registry's entry (`max_age`: an APPROVED entry this container read that recently will do)."""
    found = store.get(name, language, max_age)
    return Entry.of_record(found) if found else None


def find(name: str, language: str) -> Entry | None:
    """The entry, synced from Meta first when the registry lacks it (once a minute at most)."""
    entry = lookup(name, language)
    if entry is not None or not store.claim_miss_sync(MISS_SYNC_SECONDS):
        return entry
    try:
        sync()
    except Refused:
        logger.warning("template sync on a miss failed")
        return None
    return lookup(name, language)


def listing(status: str | None = None) -> dict[str, Any]:
    entries = sorted((Entry.of_record(i) for i in store.all_entries()), key=lambda e: (e.name, e.language))
    wanted = status.upper() if status else None
    return {"templates": [e.public() for e in entries if wanted is None or e.status == wanted]}


# ---- sync ----------------------------------------------------------------------------------------------
def _token() -> str:
    from shared.secrets import get_secret_field

    try:
        return get_secret_field(c.SECRET_ACCESS_TOKEN)
    except ConfigurationError as exc:
        raise Refused(502, "upstream_unavailable", "the Graph API access token is not configured") from exc


def _waba() -> str:
    waba = get_settings().business_account_id
    if not waba or not re.match(r"^[A-Za-z0-9_]{1,64}$", waba) or waba.startswith("REPLACE_"):
        raise Refused(502, "upstream_unavailable", "no WhatsApp Business Account id is configured")
    return waba


def templates_url(after: str | None = None) -> str:
    settings = get_settings()
    base = f"{graph.check_url(settings.graph_api_url)}/{settings.graph_api_version}/{quote(_waba())}"
    query = {"fields": FIELDS, "limit": str(PAGE_LIMIT), **({"after": after} if after else {})}
    return f"{base}/message_templates?{urlencode(query)}"


def _next_page(doc: dict[str, Any]) -> str | None:
    """The next page's URL: by `paging.cursors.after` when there is a `paging.next` (Meta leaves `next`
    out on the last page); a `next` on another host than the configured Graph API is never followed."""
    paging: dict[str, Any] = doc["paging"] if isinstance(doc.get("paging"), dict) else {}
    nxt = paging.get("next")
    if not nxt:
        return None
    cursors: dict[str, Any] = paging["cursors"] if isinstance(paging.get("cursors"), dict) else {}
    after = cursors.get("after")
    if after:
        return templates_url(str(after))
    base = urlsplit(get_settings().graph_api_url)
    there = urlsplit(str(nxt))
    if (there.scheme, there.netloc) != (base.scheme, base.netloc):
        raise Refused(502, "upstream_unavailable", "Meta's next page is on another host")
    return str(nxt)


def fetch_all() -> list[Entry]:
    """Every page of the WABA's templates, or Refused(502) when any page fails (nothing is changed)."""
    token, url, at = _token(), templates_url(), int(time.time())
    found: dict[tuple[str, str], Entry] = {}
    for _page in range(MAX_PAGES):
        answer = graph.get(url, token)
        try:
            doc = json.loads(answer.raw) if answer.http_status == 200 else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            status = answer.http_status if answer.http_status is not None else answer.title
            logger.warning("template sync failed", extra={"graph_status": status})
            raise Refused(
                502, "upstream_unavailable", "Meta's template list could not be read; nothing changed"
            )
        for raw in doc["data"]:
            entry = of_meta(raw, at)
            if entry is not None:
                found[(entry.name, entry.language)] = entry
        next_url = _next_page(doc)
        if next_url is None:
            return list(found.values())
        url = next_url
    raise Refused(502, "upstream_unavailable", "Meta's template list did not end")


def sync() -> dict[str, int]:
    """Read every page, then bring the registry in line: new and changed entries written (each change an
    event), entries Meta no longer lists marked DELETED. `{"templates": N}` (N: entries Meta lists)."""
    fresh = fetch_all()
    held = {(e.name, e.language): e for e in (Entry.of_record(i) for i in store.all_entries())}
    told: list[events.Event] = []
    for entry in fresh:
        before = held.pop((entry.name, entry.language), None)
        store.put(entry.record())
        if before is None or _differs(before, entry):
            told.append(changed(entry, before))
    for gone in held.values():
        if gone.status != "DELETED":
            entry = _replace(gone, status="DELETED")
            store.put(entry.record())
            told.append(changed(entry, gone))
    events.publish(told)
    logger.info("templates synced", extra={"templates": len(fresh), "changed": len(told)})
    return {"templates": len(fresh)}


def _differs(a: Entry, b: Entry) -> bool:
    return (a.status, a.category, a.quality, a.components, a.parameter_format) != (
        b.status,
        b.category,
        b.quality,
        b.components,
        b.parameter_format,
    )


def _replace(entry: Entry, **changes: Any) -> Entry:
    from dataclasses import replace

    return replace(entry, updated_at=int(time.time()), **changes)


def changed(entry: Entry, before: Entry | None) -> events.Event:
    detail: dict[str, Any] = {
        "name": entry.name,
        "language": entry.language,
        "category": entry.category,
        "status": entry.status,
        "quality": entry.quality,
    }
    if before is not None and before.category != entry.category:
        detail["previous_category"] = before.category
    if before is not None and before.status != entry.status:
        detail["previous_status"] = before.status
    return c.EVENT_TEMPLATE_CHANGED, {k: v for k, v in detail.items() if v is not None}


# ---- webhooks ------------------------------------------------------------------------------------------
def _target(value: dict[str, Any]) -> Entry | None:
    """The entry a webhook names: by `message_template_id`, else by name and language."""
    tpl_id = str(value.get("message_template_id") or "")
    entries = [Entry.of_record(i) for i in store.all_entries()]
    if tpl_id:
        by_id = next((e for e in entries if e.id == tpl_id), None)
        if by_id is not None:
            return by_id
    name, language = value.get("message_template_name"), value.get("message_template_language")
    return next((e for e in entries if e.name == name and e.language == language), None)


def on_webhook(field: str, value: Any) -> events.Event | None:
    """Apply one template webhook change to its entry at once; the event, or None when nothing changed
    (an unknown template is left to the next sync; an announced `correct_category` changes nothing yet)."""
    if field not in WEBHOOK_FIELDS or not isinstance(value, dict):
        return None
    entry = _target(value)
    if entry is None:
        return None
    updated: Entry | None = None
    if field == FIELD_STATUS:
        status = STATUS_EVENTS.get(str(value.get("event") or "").upper())
        if status and status != entry.status:
            updated = _replace(entry, status=status)
    elif field == FIELD_CATEGORY:
        if value.get("correct_category"):  # announced for later (`category_update_timestamp`): not yet
            return None
        category = str(value.get("new_category") or "").upper()
        if category in CATEGORY_PURPOSE and category != entry.category:
            updated = _replace(entry, category=category)
    else:
        quality = str(value.get("new_quality_score") or "").upper()
        if quality and quality != entry.quality:
            updated = _replace(entry, quality=quality)
    if updated is None:
        return None
    store.put(updated.record())
    return changed(updated, entry)


def from_delivery(delivery: Any, waba: str | None = None) -> list[events.Event]:
    """The template changes of a verified webhook delivery (entries of this deployment's WABA only)."""
    waba = waba if waba is not None else get_settings().business_account_id
    told: list[events.Event] = []
    for entry in delivery.entry:
        if entry is None or str(entry.id or "") != waba:
            continue
        for change in entry.changes:
            if change is not None and change.field in WEBHOOK_FIELDS:
                event = on_webhook(str(change.field), change.value)
                if event is not None:
                    told.append(event)
    return told


# ---- submitting a new template -------------------------------------------------------------------------
def submit(body: dict[str, Any]) -> dict[str, Any]:
    """`POST /templates`: send a new template to Meta for review; the entry as Meta answered (PENDING)."""
    url = (
        f"{graph.check_url(get_settings().graph_api_url)}/{get_settings().graph_api_version}/{quote(_waba())}"
    )
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    answer = graph.post(
        f"{url}/message_templates", _token(), payload, "application/json", graph.TIMEOUT_SECONDS
    )
    try:
        doc = json.loads(answer.raw) if answer.raw else {}
    except ValueError:
        doc = {}
    if answer.http_status is None or answer.http_status >= 500 or not isinstance(doc, dict):
        raise Refused(502, "upstream_unavailable", "Meta did not answer the template submission")
    if not 200 <= answer.http_status < 300:
        title = graph.parse_response(answer.http_status, answer.raw).title
        raise Refused(400, "template_refused", f"Meta refused the template: {title}")
    entry = Entry(
        id=str(doc.get("id") or ""),
        name=body["name"],
        language=body["language"],
        category=str(doc.get("category") or body["category"]).upper(),
        status=str(doc.get("status") or "PENDING").upper(),
        components=list(body["components"]),
        parameter_format=str(body.get("parameter_format") or "POSITIONAL").upper(),
        updated_at=int(time.time()),
    )
    before = lookup(entry.name, entry.language)
    store.put(entry.record())
    events.publish([changed(entry, before)])
    return entry.public()
