"""Seam: waguard media ids (`POST /media`, media received in a conversation) -> what a send needs.

`POST /messages` accepts `{"media_id": ID}` for image, video, audio, document and sticker. The media
table that holds waguard's media (uploads and inbound media fetched from Meta) is built by the media
issue; until then no media id is known, `resolve` answers None and the send is refused with 400
`unknown_media` (a `link` works fully). The media issue replaces the body of `resolve` with a lookup
in its table (the media of this contact's identity set, or uploaded by the business) that answers the
Graph API media id to put in Meta's body (`{"id": ...}`), uploading to Meta first if needed.
See docs/decisions.md (issue 15).
"""

from __future__ import annotations


def resolve(contact_hashes: tuple[str, ...], media_id: str, kind: str) -> str | None:
    """The Graph API media id to send for waguard's `media_id` as `kind` to this contact; None when
    waguard holds no such media (unknown, expired, erased, or of another contact)."""
    del contact_hashes, media_id, kind  # no media table yet: nothing is held
    return None
