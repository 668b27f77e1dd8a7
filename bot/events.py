"""The bot's own inbound event: who wrote, on which channel, and what they said or tapped.

Handlers turn every provider payload into an `Inbound`; nothing in `bot/` sees raw JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"


class Kind(StrEnum):
    START = "start"  # the client opened the bot (/start) or asked for the menu
    TEXT = "text"  # free text
    CHOICE = "choice"  # a tapped button; `choice` holds its id
    CONTACT = "contact"  # the client shared their own phone number; `phone` holds it
    TAKEOVER = "takeover"  # a person took the conversation over (staff answered the client)
    RETURNED = "returned"  # staff handed the conversation back to the bot


@dataclass(frozen=True, slots=True)
class ClientRef:
    """A client of one salon on one channel. Every key derived from it carries the salon id."""

    salon_id: str
    channel: Channel
    user_id: str
    chat_id: str

    @property
    def key(self) -> str:
        return f"{self.salon_id}:{self.channel.value}:{self.user_id}"


@dataclass(frozen=True, slots=True)
class Inbound:
    client: ClientRef
    kind: Kind
    event_id: str
    text: str = ""
    choice: str = ""
    name: str = ""  # the client's name as their profile gives it
    # The client's own number (E.164) when the channel vouches for it: a shared contact on
    # Telegram, the number every WhatsApp message comes from.
    phone: str = ""
    # The language the client's app reports (e.g. Telegram `language_code`), if any.
    language: str | None = None
    # A tap: the pressed button's label as the client saw it (for staff reading along).
    label: str = ""
