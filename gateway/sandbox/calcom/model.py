"""What the Cal.com stand-in keeps (users, teams, event types, bookings, reservations,
webhooks) and the time helpers every part of it shares."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

JSON = dict[str, Any]

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ID_STARTS = {"user": 101, "team": 11, "event_type": 1001, "booking": 5001}


def now_utc() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime, zone: tzinfo | None = None) -> str:
    """Luxon's `toISO()`, as Cal.com prints instants: milliseconds, `Z` in UTC, else ±HH:MM."""
    if zone is None or str(zone) in ("UTC", "Etc/UTC"):
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.astimezone(zone).isoformat(timespec="milliseconds")


def _instant(value: Any) -> datetime | None:
    """An ISO 8601 string as an aware UTC instant (no offset means UTC, as Cal.com reads it)."""
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name or name.startswith(("/", ".")):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _clock_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _short_uid() -> str:
    return "".join(secrets.choice(_BASE58) for _ in range(22))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cut(
    ranges: Iterable[tuple[time, time]], gaps: Sequence[tuple[time, time]]
) -> list[tuple[time, time]]:
    """Working ranges with the breaks cut out (Cal.com stores a lunch break as two ranges)."""
    out = list(ranges)
    for gap_start, gap_end in gaps:
        pieces = []
        for start, end in out:
            if gap_end <= start or end <= gap_start:
                pieces.append((start, end))
                continue
            if start < gap_start:
                pieces.append((start, gap_start))
            if gap_end < end:
                pieces.append((gap_end, end))
        out = pieces
    return sorted(out)


def _align(moment: datetime, step: timedelta, zone: ZoneInfo) -> datetime:
    """The first slot after the minimum notice: the next whole minute, then the next multiple
    of the step past the local hour (getSlots' rounding)."""
    if moment.second or moment.microsecond:
        moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    local = moment.astimezone(zone)
    minutes = int(step.total_seconds() // 60)
    if local.minute % minutes == 0:
        return moment
    hour = local.replace(minute=0)
    return (hour + timedelta(minutes=math.ceil(local.minute / minutes) * minutes)).astimezone(UTC)


@dataclass(slots=True)
class _Schedule:
    """A master's working hours in their zone (ScheduleOutput_2024_06_11, breaks as gaps)."""

    time_zone: str
    weekly: dict[int, list[tuple[time, time]]]  # Python weekday (0 = Monday) -> ranges
    overrides: dict[date, list[tuple[time, time]]] = field(default_factory=dict)

    def ranges(self, day: date) -> list[tuple[time, time]]:
        return self.overrides.get(day, self.weekly.get(day.weekday(), []))


@dataclass(slots=True)
class _User:
    id: int
    name: str
    email: str
    username: str
    time_zone: str
    schedule: _Schedule | None


@dataclass(slots=True)
class _Team:
    id: int
    slug: str
    name: str


@dataclass(slots=True)
class _EventType:
    id: int
    slug: str
    title: str
    length: int
    description: str
    owner_id: int | None  # a master's own event type
    team_id: int | None  # or a team's, with hosts
    host_ids: list[int]
    scheduling: str | None  # "roundRobin" | "collective" (the spec's enum), None for personal
    price: int  # Cal.com's own field: set by a payment app, in minor units (kopecks), else 0
    currency: str  # lower case, "usd" when no payment app set it
    metadata: JSON
    hidden: bool
    notice: int
    before: int
    after: int
    slot_interval: int | None
    email_required: bool


@dataclass(slots=True)
class _Booking:
    id: int
    uid: str
    event_type_id: int
    host_ids: list[int]
    start: datetime
    end: datetime
    attendee: JSON
    metadata: JSON
    responses: JSON
    location: str
    created: datetime
    updated: datetime
    status: str = "accepted"  # §1.6: lowercase in REST, UPPERCASE in webhooks
    sequence: int = 0
    cancellation_reason: str | None = None
    cancelled_by: str | None = None
    rescheduling_reason: str | None = None
    rescheduled_by: str | None = None
    rescheduled_from: str | None = None
    rescheduled_to: str | None = None


@dataclass(slots=True)
class _Reservation:
    uid: str
    event_type_id: int
    host_ids: list[int]
    start: datetime
    end: datetime
    until: datetime


@dataclass(slots=True)
class _Webhook:
    """A user webhook as `/v2/webhooks` keeps it (prisma `Webhook`: `eventTriggers`, `secret`)."""

    id: str
    user_id: int
    subscriber_url: str
    triggers: list[str]
    active: bool
    secret: str | None
    payload_template: str | None
