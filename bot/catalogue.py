"""The salon's catalogue as the bot sees it: services (with price and duration) and masters.

Where it comes from (Cal.com event types today) is the gateway's business; the bot reads it
through the `Catalogue` port.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Master:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Service:
    key: str  # stable and short: it travels in button ids
    title: str
    minutes: int
    # As the salon lists it: a number ("2500") or words ("from 2500"), in `currency`.
    price: str | None = None
    currency: str | None = None
    description: str = ""
    category: str | None = None
    masters: tuple[Master, ...] = ()
