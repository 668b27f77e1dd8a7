"""What a flow answers: replies (text with choices) in the client's language.

Channels render them their own way: Telegram as inline keyboards, WhatsApp as reply buttons,
lists or numbered text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Choice:
    id: str  # short and stable: it travels in callback data (Telegram: at most 64 bytes)
    label: str


@dataclass(frozen=True, slots=True)
class Document:
    """A file for the client, such as an "add to calendar" invitation."""

    filename: str
    mime_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    choices: tuple[Choice, ...] = ()
    columns: int = 1  # a layout hint for channels that can show a grid
    # Ask for the client's phone: channels that can share it in one tap offer that as the
    # first choice (Telegram's contact keyboard); the others let the client type it.
    request_contact: bool = False
    # The contact keyboard has done its job: take it away (Telegram keeps it up otherwise).
    clear_keyboard: bool = False
    # Sent only to take the contact keyboard away: channels without one skip it.
    keyboard_only: bool = False
    document: Document | None = None
