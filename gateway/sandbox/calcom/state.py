"""The Cal.com stand-in's state: the key, the spec, the records tests read, and what the
salon has (users, teams, event types, bookings, reservations, webhooks)."""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.sandbox.base import Call, StandIn
from gateway.sandbox.calcom.model import (
    _ID_STARTS,
    JSON,
    _Booking,
    _EventType,
    _Reservation,
    _Schedule,
    _Team,
    _User,
    _Webhook,
    now_utc,
)
from gateway.sandbox.spec import load_spec

OWNER_EMAIL = "owner@salon.example"
RATE_LIMIT = 120  # §1.3: per API key per 60 s
Endpoint = Callable[[web.Request, bool], Awaitable[web.Response]]


@dataclass(frozen=True, slots=True)
class SentWebhook:
    """A webhook POST: the envelope, the exact bytes signed, and the answer (0: unreachable)."""

    trigger: str
    envelope: JSON
    body: bytes
    signature: str
    status: int


class CalcomState(StandIn):
    """What one API key's Cal.com holds; the parts of the stand-in build on it."""

    _handlers: dict[str, Endpoint]  # each endpoint by its name, set by the sandbox

    def __init__(
        self,
        api_key: str,
        spec_path: Path | None = None,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        super().__init__()
        self._api_key = api_key
        self.validating = spec_path is not None and spec_path.is_file()
        self._spec = load_spec(spec_path) if spec_path is not None and self.validating else None
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.webhook_timeout = 5.0
        self._clock = clock
        self.delay = 0.0
        self.rate_limit = RATE_LIMIT
        self.salon_address = ""
        self.calls: list[Call] = []
        self.webhooks_sent: list[SentWebhook] = []

        self._ids = {kind: itertools.count(start) for kind, start in _ID_STARTS.items()}
        self._users: dict[int, _User] = {}
        self._teams: dict[int, _Team] = {}
        self._event_types: dict[int, _EventType] = {}
        self._bookings: dict[str, _Booking] = {}
        self._reservations: dict[str, _Reservation] = {}
        self._webhooks: dict[str, _Webhook] = {}
        self._failures: defaultdict[str, deque[tuple[int, Any, int]]] = defaultdict(deque)
        self._windows: dict[str, tuple[float, int]] = {}
        owner = self._add_user("Salon", OWNER_EMAIL, "UTC", None, "salon")
        self.owner_id = owner.id

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def _add_user(
        self, name: str, email: str, time_zone: str, schedule: _Schedule | None, username: str
    ) -> _User:
        if any(u.username == username for u in self._users.values()):
            raise ValueError(f"username {username!r} is taken")
        user = _User(next(self._ids["user"]), name, email, username, time_zone, schedule)
        self._users[user.id] = user
        return user

    def _add_event_type(
        self,
        slug: str,
        title: str,
        length: int,
        price: int | None,
        currency: str,
        category: str | None,
        options: Mapping[str, Any],
        *,
        owner_id: int | None = None,
        team_id: int | None = None,
        host_ids: list[int] | None = None,
        scheduling: str | None = None,
    ) -> int:
        known = {
            "description",
            "metadata",
            "hidden",
            "minimum_notice",
            "before_buffer",
            "after_buffer",
            "slot_interval",
            "email_required",
            "paid",
        }
        if unknown := set(options) - known:
            raise TypeError(f"unknown event type options: {sorted(unknown)}")
        metadata = dict(options.get("metadata") or {})
        # The salon's own grouping and list price live in metadata; Cal.com's `price` field is
        # what a payment app charges, in minor units, "usd" by default (§1.4 lists both).
        metadata |= {
            key: value
            for key, value in (("category", category), ("price", price))
            if value is not None
        }
        paid = bool(options.get("paid")) and price is not None
        et = _EventType(
            id=next(self._ids["event_type"]),
            slug=slug,
            title=title,
            length=length,
            description=str(options.get("description", "")),
            owner_id=owner_id,
            team_id=team_id,
            host_ids=host_ids or [],
            scheduling=scheduling,
            price=price * 100 if paid and price is not None else 0,
            currency=currency.lower() if paid else "usd",
            metadata=metadata,
            hidden=bool(options.get("hidden", False)),
            notice=int(options.get("minimum_notice", 120)),
            before=int(options.get("before_buffer", 0)),
            after=int(options.get("after_buffer", 0)),
            slot_interval=options.get("slot_interval"),
            email_required=bool(options.get("email_required", True)),
        )
        self._event_types[et.id] = et
        return et.id
