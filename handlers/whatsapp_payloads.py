"""The WhatsApp Cloud API's webhook payloads, as far as Frontdesk reads them.

Models are tolerant: unknown fields are ignored and almost everything is optional, because Meta
adds fields without notice (usernames and business-scoped ids arrived in 2026) and a payload we
cannot fully read must still be acknowledged and handled as well as we can.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_SECONDS = re.compile(r"[0-9]{1,12}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Text(_Model):
    body: str = ""


class ReplyItem(_Model):
    id: str = ""
    title: str = ""
    description: str = ""


class Interactive(_Model):
    type: str = ""
    button_reply: ReplyItem | None = None
    list_reply: ReplyItem | None = None


class Button(_Model):
    """A tap on a template's quick-reply button."""

    payload: str = ""
    text: str = ""


class Location(_Model):
    latitude: float | None = None
    longitude: float | None = None
    name: str = ""
    address: str = ""


class Media(_Model):
    id: str = ""
    mime_type: str = ""
    caption: str = ""
    filename: str = ""


class Reaction(_Model):
    message_id: str = ""
    emoji: str = ""


class Profile(_Model):
    name: str = ""


class Contact(_Model):
    """The sender as `value.contacts[]` describes them."""

    profile: Profile = Field(default_factory=Profile)
    wa_id: str | None = None
    # The business-scoped user id (BSUID, 2026): present even when the phone number is not.
    user_id: str | None = None


class ErrorData(_Model):
    details: str = ""


class Error(_Model):
    code: int | None = None
    title: str = ""
    message: str = ""
    error_data: ErrorData | None = None

    @property
    def details(self) -> str:
        return self.error_data.details if self.error_data else self.message or self.title


class Message(_Model):
    id: str
    type: str = "unknown"
    timestamp: str = "0"
    # The sender's phone-number id; absent for a client known only by a business-scoped id.
    from_: str | None = Field(default=None, alias="from")
    from_user_id: str | None = None
    user_id: str | None = None
    text: Text | None = None
    interactive: Interactive | None = None
    button: Button | None = None
    location: Location | None = None
    contacts: list[dict[str, Any]] = Field(default_factory=list)
    image: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    reaction: Reaction | None = None
    errors: list[Error] = Field(default_factory=list)

    @property
    def media(self) -> Media | None:
        return self.image or self.audio or self.video or self.document or self.sticker

    @property
    def sent_at(self) -> int:
        # Unix seconds as ASCII digits (Meta, "Webhooks: messages"); `str.isdigit()` would let
        # "²" or a 5,000-digit stamp through to `int()`, which refuses them.
        return int(self.timestamp) if _SECONDS.fullmatch(self.timestamp) else 0


class Status(_Model):
    """What became of a message we sent: sent, delivered, read or failed."""

    id: str
    status: str
    timestamp: str = "0"
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    errors: list[Error] = Field(default_factory=list)


class Metadata(_Model):
    display_phone_number: str = ""
    phone_number_id: str = ""


class Value(_Model):
    messaging_product: str = ""
    metadata: Metadata = Field(default_factory=Metadata)
    contacts: list[Contact] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)
    errors: list[Error] = Field(default_factory=list)


class Change(_Model):
    field: str = ""
    value: Value = Field(default_factory=Value)


class Entry(_Model):
    id: str = ""
    changes: list[Change] = Field(default_factory=list)


class Notification(_Model):
    object: str = ""
    entry: list[Entry] = Field(default_factory=list)
