"""What the bot knows about the salon it speaks for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Salon:
    id: str
    name: str
    timezone: str
    address: str = ""
    phone: str = ""
    hours: str = ""
