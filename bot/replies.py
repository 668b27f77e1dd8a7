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
class Reply:
    text: str
    choices: tuple[Choice, ...] = ()
    columns: int = 1  # a layout hint for channels that can show a grid
