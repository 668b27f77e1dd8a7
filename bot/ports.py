"""The ports the bot talks to. The gateway implements them; tests use in-memory fakes."""

from __future__ import annotations

from typing import Protocol

from bot.catalogue import Service


class CalendarUnavailable(Exception):
    """The salon's calendar cannot be reached now: the bot says so and offers the salon's
    contacts instead of failing."""


class Catalogue(Protocol):
    async def services(self) -> tuple[Service, ...]:
        """The services clients can book, in the salon's order. Raises CalendarUnavailable."""
        ...
