"""The ports the bot talks to; the gateway implements them, tests use in-memory fakes."""

from __future__ import annotations

from typing import Protocol

from bot.events import ClientRef
from bot.session import Session


class Sessions(Protocol):
    async def load(self, client: ClientRef) -> Session: ...
