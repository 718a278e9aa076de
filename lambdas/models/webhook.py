"""Meta's WhatsApp Cloud API webhook payloads, parsed permissively.

Every model allows extra fields (Meta adds fields without notice) and every field is optional where
Meta's reference does not promise it; timestamps arrive as strings or numbers and are read as int.
A declared field of the wrong type (an object where text goes, `"latitude": "north"`) fails its item's
validation; `errors[].error_data`, free-form diagnostics waguard never reads, is the one exception.

The envelope (`Delivery`, `Entry`, `Change`) never fails on what one item holds: an `entry` or `changes`
element that is not an object is kept as `None`, and a change's `value` is kept raw. `domain.ingest`
validates each message, status, preference, error and contact on its own (item by item), so one
malformed item cannot take its siblings with it. Only `field == "messages"` and
`field == "user_preferences"` change values are parsed; other fields are counted and dropped.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field


def _to_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _to_str(value: Any) -> str | None:
    """Text as Meta sends it (numbers too, e.g. a wa_id as a number); an object or a list is no text."""
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise ValueError("an object or a list where text is expected")
    return value if isinstance(value, str) else str(value)


def _to_list(value: Any) -> Any:
    return [] if value is None else value


def _objects(model: type[BaseModel]) -> Any:
    """An envelope list: each object parsed as `model`, any other element kept as None (a malformed item
    the consumer counts); a value that is no list at all is one malformed item."""

    def parse(value: Any) -> list[Any]:
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        return [model.model_validate(item) if isinstance(item, dict) else None for item in items]

    return BeforeValidator(parse)


Int = Annotated[int | None, BeforeValidator(_to_int)]
Timestamp = Int
Str = Annotated[str | None, BeforeValidator(_to_str)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Profile(_Model):
    name: Str = None


class Contact(_Model):
    wa_id: Str = None
    user_id: Str = None
    parent_user_id: Str = None
    profile: Profile | None = None


class Error(_Model):
    code: Int = None
    title: Str = None
    message: Str = None
    error_data: Any = None  # free-form diagnostics, never read: tolerated whatever its type (decisions)


class Context(_Model):
    from_: Str = Field(default=None, alias="from")
    id: Str = None
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None


class Text(_Model):
    body: Str = None


class Media(_Model):
    """image, audio, video, document, sticker."""

    id: Str = None
    mime_type: Str = None
    caption: Str = None
    filename: Str = None  # documents


class Location(_Model):
    latitude: float | None = None
    longitude: float | None = None
    name: Str = None
    address: Str = None
    url: Str = None


class Reply(_Model):
    """button_reply / list_reply."""

    id: Str = None
    title: Str = None
    description: Str = None


class NfmReply(_Model):
    response_json: Str = None
    body: Str = None
    name: Str = None


class Interactive(_Model):
    type: Str = None
    button_reply: Reply | None = None
    list_reply: Reply | None = None
    nfm_reply: NfmReply | None = None


class Button(_Model):
    """A quick-reply button of a template."""

    payload: Str = None
    text: Str = None


class Reaction(_Model):
    message_id: Str = None
    emoji: Str = None


class ProductItem(_Model):
    product_retailer_id: Str = None
    quantity: Int = None


class Order(_Model):
    catalog_id: Str = None
    text: Str = None
    product_items: Annotated[list[ProductItem], BeforeValidator(_to_list)] = Field(default_factory=list)


class System(_Model):
    type: Str = None
    body: Str = None
    wa_id: Str = None


class Revoke(_Model):
    original_message_id: Str = None


class Edit(_Model):
    original_message_id: Str = None
    message: Message | None = None


class Message(_Model):
    from_: Str = Field(default=None, validation_alias=AliasChoices("from", "from_"))
    from_user_id: Str = None
    id: Str = None
    timestamp: Timestamp = None
    type: Str = None
    context: Context | None = None
    text: Text | None = None
    image: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: list[dict[str, Any]] | None = None
    interactive: Interactive | None = None
    button: Button | None = None
    reaction: Reaction | None = None
    order: Order | None = None
    system: System | None = None
    revoke: Revoke | None = None
    edit: Edit | None = None
    errors: Annotated[list[Error], BeforeValidator(_to_list)] = Field(default_factory=list)

    @property
    def sender(self) -> str | None:
        return self.from_ or self.from_user_id


class Status(_Model):
    id: Str = None
    status: Str = None
    timestamp: Timestamp = None
    recipient_id: Str = None
    recipient_user_id: Str = None
    recipient_type: Str = None
    recipient_participant_id: Str = None
    recipient_participant_user_id: Str = None
    errors: Annotated[list[Error], BeforeValidator(_to_list)] = Field(default_factory=list)

    @property
    def recipient(self) -> tuple[str | None, str | None]:
        """(wa_id, user_id) of the person the status is about (a group's participant for groups)."""
        if self.recipient_type == "group":
            return self.recipient_participant_id, self.recipient_participant_user_id
        return self.recipient_id, self.recipient_user_id


class UserPreference(_Model):
    wa_id: Str = None
    user_id: Str = None
    detail: Str = None
    category: Str = None
    value: Str = None
    timestamp: Timestamp = None


class Metadata(_Model):
    display_phone_number: Str = None
    phone_number_id: Str = None


class ChangeValue(_Model):
    """The `value` of a `messages` or `user_preferences` change."""

    messaging_product: Str = None
    metadata: Metadata | None = None
    contacts: Annotated[list[Contact], BeforeValidator(_to_list)] = Field(default_factory=list)
    messages: Annotated[list[Message], BeforeValidator(_to_list)] = Field(default_factory=list)
    statuses: Annotated[list[Status], BeforeValidator(_to_list)] = Field(default_factory=list)
    errors: Annotated[list[Error], BeforeValidator(_to_list)] = Field(default_factory=list)
    user_preferences: Annotated[list[UserPreference], BeforeValidator(_to_list)] = Field(default_factory=list)


def _lenient_str(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict | list) else str(value)


LenientStr = Annotated[str | None, BeforeValidator(_lenient_str)]


class Change(_Model):
    field: LenientStr = None
    value: Any = None  # validated item by item in domain.ingest


class Entry(_Model):
    id: LenientStr = None
    changes: Annotated[list[Change | None], _objects(Change)] = Field(default_factory=list)


class Delivery(_Model):
    """One webhook POST body (or one part of a split delivery)."""

    object: LenientStr = None
    entry: Annotated[list[Entry | None], _objects(Entry)] = Field(default_factory=list)


Edit.model_rebuild()
