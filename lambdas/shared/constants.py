"""Names shared by the infrastructure and the runtime: one place for every name and environment key.

Imported by `infra/` (as `lambdas.shared.constants`) and by the Lambda code (as `shared.constants`);
it must stay free of imports beyond the standard library.
"""

from __future__ import annotations

from typing import Final

STACK_NAME: Final = "Waguard"
SERVICE_NAME: Final = "waguard"
METRICS_NAMESPACE: Final = "Waguard"
# Metrics the runtime emits (Powertools EMF, namespace METRICS_NAMESPACE, dimension service=SERVICE_NAME);
# the two Graph ones and UnknownBusinessNumber are alarmed on (infra/monitoring.py).
METRIC_MESSAGES_QUEUED: Final = "MessagesQueued"
METRIC_MESSAGES_SENT: Final = "MessagesSent"
METRIC_MESSAGES_FAILED: Final = "MessagesFailed"
METRIC_GRAPH_THROTTLED: Final = "GraphThrottled"
METRIC_GRAPH_AUTH_ERRORS: Final = "GraphAuthErrors"
# Webhook changes for a business number the deployment does not serve (dropped, not stored).
METRIC_UNKNOWN_BUSINESS_NUMBER: Final = "UnknownBusinessNumber"
FUNCTION_TAG: Final = "waguard:function"  # tag on every function: its logical name below
DATA_CLASS_METADATA: Final = "waguard:data-class"  # template metadata: what a resource holds (the report)

# Functions: logical name -> handler path (relative to the lambdas/ asset root).
FN_WEBHOOK: Final = "webhook"
FN_PROCESSOR: Final = "processor"
FN_MESSAGES_API: Final = "messages-api"
FN_CONTACTS_API: Final = "contacts-api"
FN_SENDER: Final = "sender"
FN_MEDIA_WORKER: Final = "media-worker"
HANDLERS: Final[dict[str, str]] = {
    FN_WEBHOOK: "handlers.webhook.handler",
    FN_PROCESSOR: "handlers.processor.handler",
    FN_MESSAGES_API: "handlers.messages_api.handler",
    FN_CONTACTS_API: "handlers.contacts_api.handler",
    FN_SENDER: "handlers.sender.handler",
    FN_MEDIA_WORKER: "handlers.media_worker.handler",
}

# Tables (logical names; the physical names are CloudFormation's and reach code through env keys).
TABLE_CONTACTS: Final = "contacts"
TABLE_MESSAGES: Final = "messages"
TABLE_CONSENT: Final = "consent"
TABLE_AUDIT: Final = "audit"
TABLE_IDEMPOTENCY: Final = "idempotency"
TABLE_KEYS: Final = "keys"
TABLES: Final = (TABLE_CONTACTS, TABLE_MESSAGES, TABLE_CONSENT, TABLE_AUDIT, TABLE_IDEMPOTENCY, TABLE_KEYS)

PK: Final = "pk"
SK: Final = "sk"
TTL_ATTRIBUTE: Final = "expires_at"
ATTR_STORED_US: Final = "stored_us"  # epoch µs an IN#/OUT#/ST# item was written: orders one second's messages
GSI_BY_MSG_ID: Final = "by_msg_id"
GSI_BY_WAMID: Final = "by_wamid"

# Environment keys.
ENV_TABLE: Final[dict[str, str]] = {
    TABLE_CONTACTS: "WG_CONTACTS_TABLE",
    TABLE_MESSAGES: "WG_MESSAGES_TABLE",
    TABLE_CONSENT: "WG_CONSENT_TABLE",
    TABLE_AUDIT: "WG_AUDIT_TABLE",
    TABLE_IDEMPOTENCY: "WG_IDEMPOTENCY_TABLE",
    TABLE_KEYS: "WG_KEYS_TABLE",
}
ENV_INBOUND_QUEUE_URL: Final = "WG_INBOUND_QUEUE_URL"
ENV_SEND_QUEUE_URL: Final = "WG_SEND_QUEUE_URL"
ENV_MEDIA_QUEUE_URL: Final = "WG_MEDIA_QUEUE_URL"
ENV_MEDIA_BUCKET: Final = "WG_MEDIA_BUCKET"
ENV_SECRET_ID: Final = "WG_SECRET_ID"
ENV_DATA_KEY_ARN: Final = "WG_DATA_KEY_ARN"
ENV_SETTINGS: Final = "WG_SETTINGS"
ENV_EVENT_BUS_NAME: Final = "WG_EVENT_BUS_NAME"
# Contract overrides (local development and tests).
ENV_GRAPH_API_URL: Final = "WA_GRAPH_API_URL"
ENV_GRAPH_API_VERSION: Final = "WA_GRAPH_API_VERSION"
ENV_PHONE_NUMBER_ID: Final = "WA_PHONE_NUMBER_ID"
ENV_RETRY_BASE_SECONDS: Final = "WA_RETRY_BASE_SECONDS"

# Secret fields (one Secrets Manager secret, JSON).
SECRET_APP_SECRET: Final = "app_secret"
SECRET_VERIFY_TOKEN: Final = "verify_token"
SECRET_ACCESS_TOKEN: Final = "access_token"
SECRET_CONTACT_KEY: Final = "contact_key"
SECRET_FIELDS: Final = (SECRET_APP_SECRET, SECRET_VERIFY_TOKEN, SECRET_ACCESS_TOKEN, SECRET_CONTACT_KEY)

# Data classes: every item belongs to one; its TTL comes from the class's retention in cdk.json.
CLASS_MESSAGES: Final = "messages"
CLASS_STATUSES: Final = "statuses"
CLASS_CONTACTS: Final = "contacts"
CLASS_CONSENT: Final = "consent"
CLASS_AUDIT: Final = "audit"
CLASS_IDEMPOTENCY: Final = "idempotency"
CLASS_SUPPRESSION: Final = "suppression"
CLASS_OPERATIONAL: Final = "operational"
CLASS_KEYS: Final = "keys"
CLASS_MEDIA: Final = "media"  # media objects (bucket lifecycle) and their records (contacts table)
DATA_CLASSES: Final = (
    CLASS_MESSAGES,
    CLASS_STATUSES,
    CLASS_CONTACTS,
    CLASS_CONSENT,
    CLASS_AUDIT,
    CLASS_IDEMPOTENCY,
    CLASS_SUPPRESSION,
    CLASS_OPERATIONAL,
    CLASS_MEDIA,
    CLASS_KEYS,
)
# Which classes each table holds (the report and the retention checks read this).
TABLE_CLASSES: Final[dict[str, tuple[str, ...]]] = {
    TABLE_CONTACTS: (CLASS_CONTACTS, CLASS_SUPPRESSION, CLASS_MEDIA),
    TABLE_MESSAGES: (CLASS_MESSAGES, CLASS_STATUSES, CLASS_OPERATIONAL),
    TABLE_CONSENT: (CLASS_CONSENT,),
    TABLE_AUDIT: (CLASS_AUDIT,),
    TABLE_IDEMPOTENCY: (CLASS_IDEMPOTENCY,),
    TABLE_KEYS: (CLASS_KEYS,),
}

# Consent purposes.
PURPOSE_SERVICE: Final = "service"
CONSENT_PURPOSES: Final = ("marketing", "utility", "authentication")
SEND_PURPOSES: Final = (PURPOSE_SERVICE, *CONSENT_PURPOSES)

# Meta limits.
WEBHOOK_MAX_BYTES: Final = 3 * 1024 * 1024
TEXT_MAX_CHARS: Final = 4096
QUEUE_BODY_MAX_BYTES: Final = 240 * 1024
# Media sizes Meta accepts, by message type (bytes).
MEDIA_MAX_BYTES: Final[dict[str, int]] = {
    "image": 5 * 1024 * 1024,
    "video": 16 * 1024 * 1024,
    "audio": 16 * 1024 * 1024,
    "document": 100 * 1024 * 1024,
    "sticker": 500 * 1024,
}
MEDIA_PREFIX: Final = "media/"  # object keys: media/<random hex>, never personal data
# The mime types Meta accepts, by message type (Cloud API "Supported media types").
MEDIA_MIME_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "image": ("image/jpeg", "image/png"),
    "video": ("video/mp4", "video/3gpp"),
    "audio": ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"),
    "document": (
        "text/plain",
        "application/pdf",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "sticker": ("image/webp",),
}
# The partition of the business's uploads (`POST /media`): sealed under its own data key, never a contact's.
MEDIA_UPLOADS_PK: Final = "UPLOADS"
MEDIA_ID_PREFIX: Final = "med_"  # waguard's media ids: received, uploaded, and each contact's copy
# One API answer or upload carries at most this many media bytes: API Gateway (REST) answers at most 10 MB
# and a synchronous Lambda takes at most 6 MB, and base64 adds a third. Larger media is read by Range.
MEDIA_INLINE_MAX_BYTES: Final = 4 * 1024 * 1024

# Personnel roles (contract: sender, agent, privacy-officer, auditor).
ROLE_SENDER: Final = "sender"
ROLE_AGENT: Final = "agent"
ROLE_PRIVACY_OFFICER: Final = "privacy-officer"
ROLE_AUDITOR: Final = "auditor"
ROLES: Final = (ROLE_SENDER, ROLE_AGENT, ROLE_PRIVACY_OFFICER, ROLE_AUDITOR)

# Business events (contract: Conversations): source and detail types carry no personal data (the bus
# key covers `detail` only).
EVENT_SOURCE: Final = "waguard"
EVENT_MESSAGE_RECEIVED: Final = "message.received"
EVENT_MESSAGE_STATUS: Final = "message.status"
EVENT_CONSENT_CHANGED: Final = "consent.changed"
EVENT_CONTACT_ERASED: Final = "contact.erased"
EVENT_TYPES: Final = (
    EVENT_MESSAGE_RECEIVED,
    EVENT_MESSAGE_STATUS,
    EVENT_CONSENT_CHANGED,
    EVENT_CONTACT_ERASED,
)
EVENTS_HEADER: Final = "X-Waguard-Events-Key"

# Outbound message statuses: a status only ever moves to a higher rank (never backwards; failed is final).
STATUS_RANK: Final[dict[str, int]] = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
STATUS_ALIASES: Final[dict[str, str]] = {"played": "read"}
