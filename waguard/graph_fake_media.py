"""Meta's media upload (`POST /{version}/{phone-number-id}/media`) as the Graph fake checks it.

Written from Meta's documentation, not from waguard's own constants, so the fake stays an independent
oracle: a multipart/form-data body with `messaging_product=whatsapp`, `type` (the mime type) and `file`
(the bytes with their Content-Type); a type Meta supports and a size within its limit for that type.
Sends by media id (`{"image": {"id": ...}}`) must name an id this fake handed out, of a type Meta accepts
for the message type.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

MB = 1024 * 1024
# Cloud API "Supported media types": message type -> (mime types, max bytes).
SUPPORTED: dict[str, tuple[tuple[str, ...], int]] = {
    "audio": (("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"), 16 * MB),
    "document": (
        (
            "text/plain",
            "application/vnd.ms-excel",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/pdf",
        ),
        100 * MB,
    ),
    "image": (("image/jpeg", "image/png"), 5 * MB),
    "sticker": (("image/webp",), 500 * 1024),
    "video": (("video/mp4", "video/3gpp"), 16 * MB),
}
UPLOAD_MAX_BYTES = 100 * MB + 64 * 1024  # the largest file plus the form around it


@dataclass(frozen=True)
class Upload:
    mime_type: str
    data: bytes

    @property
    def summary(self) -> dict[str, Any]:
        """What the fake records of the call (never the bytes)."""
        return {
            "messaging_product": "whatsapp",
            "type": self.mime_type,
            "file": {"size": len(self.data), "sha256": hashlib.sha256(self.data).hexdigest()},
        }


def kinds(mime: str) -> list[str]:
    return [kind for kind, (types, _) in SUPPORTED.items() if mime in types]


def parse_upload(content_type: str, raw: bytes) -> Upload | str:
    """The uploaded file, or why Meta would refuse the request (a message for its error 100)."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        return "the upload must be multipart/form-data"
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():
        return "the upload must be multipart/form-data"
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = part
    product, file = fields.get("messaging_product"), fields.get("file")
    if product is None or product.get_content().strip() != "whatsapp":
        return "The parameter messaging_product is required."
    if file is None:
        return "The parameter file is required."
    declared = fields["type"].get_content().strip().lower() if "type" in fields else ""
    mime = file.get_content_type().lower()
    if declared and declared != mime:
        return "the type parameter does not match the file's content type"
    data = file.get_payload(decode=True) or b""
    found = kinds(mime)
    if not found:
        return f"Param file must be a file with one of the following types: {mime} is not supported"
    if not data:
        return "The parameter file is required."
    if len(data) > max(SUPPORTED[k][1] for k in found):
        return "the file is larger than Meta allows for its type"
    return Upload(mime, data)


def check_send_by_id(payload: Any, known: dict[str, str]) -> str | None:
    """Why Meta would refuse a send that names a media `id` (unknown, or of a type wrong for the kind)."""
    if not isinstance(payload, dict):
        return None
    kind = payload.get("type")
    obj = payload.get(kind) if isinstance(kind, str) else None
    if kind not in SUPPORTED or not isinstance(obj, dict) or "id" not in obj:
        return None
    mime = known.get(str(obj["id"]))
    if mime is None:
        return f"Param {kind}['id'] is not a valid media id"
    if mime not in SUPPORTED[kind][0]:
        return f"the media {obj['id']} ({mime}) cannot be sent as {kind}"
    return None
