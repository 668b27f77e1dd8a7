"""What the bot remembers about one client between messages."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class Session(BaseModel):
    # Unknown fields are kept so that an older worker never drops what a newer one stored.
    model_config = ConfigDict(extra="allow")

    # The language the client chose with "Language"; None means "follow their app".
    locale: str | None = None
    step: str = "menu"
    # Misunderstandings in a row; after two the bot offers a person.
    misunderstood: int = 0
    last_seen: datetime | None = None
