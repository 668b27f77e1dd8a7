"""A faithful local stand-in of Cal.com API v2 for a salon: an aiohttp application with state.

Towards the gateway it answers like api.cal.com/v2 (contract §1 of calcom-novu-metabase.md): the
per-family `cal-api-version` (§1.1), the `{status, data}` envelope and Nest's error shape (§1.2),
the `X-RateLimit-*-Default` headers and 429 (§1.3), event types (§1.4), slots computed from the
masters' schedules in their own zones (§1.5), bookings with Cal.com's own validation wording and
conflict answers (§1.6-§1.9). Given the vendor spec (`calcom-v2.openapi.json`) it also checks
bodies and query strings field by field. Towards the gateway's webhook it acts as Cal.com: a
signed `{triggerEvent, createdAt, payload}` per booking change (§1.10).

Deliberate simplifications: one API key, whose owner (`owner_id`) may see and manage everything;
no organizations, seats, recurring, instant, dynamic or multi-duration events; no calendars; a
webhook is sent once (Cal.com's retries are deployment-dependent, §1.10). Every request carries
the key, so serve it without an access log (`serve` does).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import itertools
import json
import logging
import math
import re
import secrets
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from http import HTTPStatus
from operator import attrgetter
from pathlib import Path
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from gateway.sandbox.pages import serve
from gateway.sandbox.spec import Reading, Spec, Violation, load_spec

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# §1.1: the version each endpoint family must be sent; the rest fall back to older contracts.
VERSIONS = {"event-types": "2024-06-14", "slots": "2024-09-04", "bookings": "2024-08-13"}
KNOWN_VERSIONS = ("2024-04-15", "2024-06-11", "2024-06-14", "2024-08-13", "2024-09-04")
# Which older versions still have a controller at the same paths (with another contract).
_OLD_CONTROLLERS = {
    "event-types": ("2024-04-15", "2024-06-11"),
    "bookings": ("2024-04-15", "2024-06-11", "2024-06-14"),
}
SIGNATURE_HEADER = "X-Cal-Signature-256"
WEBHOOK_VERSION = "2021-10-20"
RESERVATION_COOKIE = "uid"  # Cal.com's RESERVED_SLOT_UID_COOKIE_NAME
RATE_LIMIT = 120  # §1.3: per API key per 60 s
RATE_WINDOW = 60.0
OWNER_EMAIL = "owner@salon.example"

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9]\d{7,14}$")  # E.164; Cal.com uses libphonenumber


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# CreateBookingAttendee.language (language.ts), for when the spec file is absent.
_LANGUAGES = _words(
    "ar ca de es eu he id ja lv pl ro sr th vi az cs el es-419 fi hr it km nl pt ru sv tr zh-CN "
    "bg da en et fr hu iw ko no pt-BR sk ta uk zh-TW bn"
)
_STATUS_FILTERS = ("upcoming", "recurring", "past", "cancelled", "unconfirmed")
_THROTTLED = "ThrottlerException: Too Many Requests"
_MISSING_AUTH = (
    "No authentication method provided. Either pass an API key as 'Bearer' header or OAuth "
    "client credentials as 'x-cal-secret-key' and 'x-cal-client-id' headers"
)
# Cal.com's ErrorsBookingsService_2024_08_13 wording (a taken slot is a 400, not a 409).
_USER_BUSY = "User either already has booking at this time or is not available"
_HOSTS_BUSY = "One of the hosts either already has booking at this time or is not available"
_OUT_OF_BOUNDS = (
    "The event type can't be booked at the \"start\" time provided. This could be because it's "
    "too soon (violating the minimum booking notice) or too far in the future (outside the "
    "event's scheduling window). Try fetching available slots first using the GET /v2/slots "
    'endpoint and then make a booking with "start" time equal to one of the available slots.'
)
_METADATA_RULE = (
    "Metadata must have at most 50 keys, each key up to 40 characters, and string values up to "
    "500 characters."
)
_START_RULE = {"isDateString": "start must be a valid ISO 8601 date string"}


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


class CalcomError(Exception):
    """An error answer: Nest's HttpException through Cal.com's filter (§1.2), or a raw body."""

    def __init__(
        self,
        status: int,
        message: str,
        details: Any = None,
        *,
        raw: JSON | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.raw = raw
        self.headers = dict(headers or {})

    def response(self, request: web.Request, timestamp: datetime) -> web.Response:
        if isinstance(self.raw, str):
            return web.Response(text=self.raw, status=self.status, headers=self.headers)
        if self.raw is not None:  # not an HttpException: Nest's own default filter answers
            return web.json_response(self.raw, status=self.status, headers=self.headers)
        details = self.details
        if details is None:
            details = {
                "message": self.message,
                "error": _phrase(self.status),
                "statusCode": self.status,
            }
        body = {
            "status": "error",
            "timestamp": _iso(timestamp),
            "path": request.path_qs,
            "error": {
                "code": _exception(self.status),
                "message": self.message,
                "details": details,
            },
        }
        headers = self.headers | {
            "X-Request-Id": request.headers.get("X-Request-Id", "unknown-request-id")
        }
        return web.json_response(body, status=self.status, headers=headers)


def _phrase(status: int) -> str:
    return HTTPStatus(status).phrase if status in _PHRASES else "Error"


def _exception(status: int) -> str:
    """The `error.code`: Nest's exception class, named after the status phrase."""
    if status == 429:
        return "ThrottlerException"
    return (
        _phrase(status).title().replace(" ", "") + "Exception"
        if status in _PHRASES
        else "HttpException"
    )


@dataclass(slots=True)
class _Violation:
    """A class-validator ValidationError: what Cal.com's validation pipes report."""

    property: str
    value: Any
    constraints: dict[str, str] = field(default_factory=dict)
    children: list[_Violation] = field(default_factory=list)

    def as_json(self) -> JSON:
        return {
            "value": self.value,
            "property": self.property,
            "children": [child.as_json() for child in self.children],
            "constraints": self.constraints,
        }


def _pipe_message(violations: Sequence[_Violation]) -> str:
    """CreateBookingInputPipe.formatErrors, odd spacing included."""
    return ", ".join(
        f"{v.property} property is wrong,{', '.join(v.constraints.values())} "
        f"{_pipe_message(v.children) if v.children else ''}"
        for v in violations
    )


# class-validator's type checks' names and messages, by OpenAPI type.
_TYPES: dict[str, tuple[str, str]] = {
    "string": ("isString", "must be a string"),
    "number": ("isNumber", "must be a number conforming to the specified constraints"),
    "integer": ("isInt", "must be an integer number"),
    "boolean": ("isBoolean", "must be a boolean value"),
    "array": ("isArray", "must be an array"),
    "object": ("isObject", "must be an object"),
}


def _enum_violation(name: str, value: Any, allowed: Iterable[Any]) -> _Violation:
    listed = ", ".join(str(item) for item in allowed)
    return _Violation(
        name, value, {"isEnum": f"{name} must be one of the following values: {listed}"}
    )


def _missing(name: str, schema: JSON) -> dict[str, str]:
    """The class-validator message a required-but-absent property gets, from its spec type."""
    kind = schema.get("type")
    if "ISO 8601" in schema.get("description", ""):
        return {"isDateString": f"{name} must be a valid ISO 8601 date string"}
    if kind in ("number", "integer"):
        return {"isNumber": f"{name} must be a number conforming to the specified constraints"}
    if kind == "boolean":
        return {"isBoolean": f"{name} must be a boolean value"}
    if kind == "array":
        return {"isArray": f"{name} must be an array"}
    if "properties" in schema:
        return {"nestedValidation": f"nested property {name} must be either object or array"}
    if kind == "object":
        return {"isObject": f"{name} must be an object"}
    return {"isString": f"{name} must be a string"}


# Patterns Cal.com's spec names by their constant (`@Matches(TIME_FORMAT_HH_MM, {message})` in
# packages/platform/types/schedules/schedules-2024-06-11/inputs/create-schedule.input.ts; the
# regex in ../constants.ts), with the message each carries.
_NAMED_PATTERNS = {
    "TIME_FORMAT_HH_MM": (r"^([01]\d|2[0-3]):([0-5]\d)$", "must be a valid time format HH:MM")
}
# How Cal.com reads its spec (class-validator behind Nest's pipes):
# - the global ValidationPipe has `whitelist: true` without `forbidNonWhitelisted`: unknown
#   properties are dropped (apps/api/v2/src/app.ts @ 03670679c00d600615e8df2bc64545bd51c61646);
#   CreateBookingInputPipe validates with `forbidNonWhitelisted: true`: they are refused
#   (packages/platform/types/bookings/2024-08-13/inputs/create-booking-input.pipe.ts);
# - `@IsOptional()` skips a property that is null or undefined (class-validator
#   src/decorator/common/IsOptional.ts @ 0853341cc36f53d54e5afb50800c3a4b169abd73);
# - a booking's `location` is checked by BookingInputLocationValidator_2024_08_13, which
#   takes any string "for backwards compatibility" and an object by its `type`
#   (bookings/2024-08-13/inputs/location.input.ts); the sandbox takes an object or a string
#   wherever the spec puts a union below the body;
# - an `enum` beside `type: array` is what NestJS's swagger writes for `@IsIn(values, { each:
#   true })` (e.g. ScheduleAvailabilityInput_2024_06_11.days): each item must be one of them.
_GLOBAL_PIPE = Reading(
    null_is_absent=True,
    loose_nested_unions=True,
    enum_per_item=True,
    named_patterns={name: regex for name, (regex, _) in _NAMED_PATTERNS.items()},
)
_BOOKING_PIPE = dataclasses.replace(_GLOBAL_PIPE, forbid_unknown=True)


def _class_validator(problems: Sequence[Violation], target: Any) -> list[_Violation]:
    """The spec's violations as class-validator's ValidationError tree: a nested object's
    errors are its property's children; an array's items' errors are the array's own. (Bodies
    and query strings are objects, so every violation names a property.)"""
    found: list[_Violation] = []
    for problem in problems:
        level, value, path = found, target, problem.path
        last = max(index for index, part in enumerate(path) if isinstance(part, str))
        for part in path[:last]:
            value = value[part]
            if isinstance(part, str):
                level = _node(level, part, value).children
        _node(level, problem.name, problem.value).constraints.setdefault(*_constraint(problem))
    return found


def _node(level: list[_Violation], name: str, value: Any) -> _Violation:
    """The error of property `name` at this level, added if it is not there yet."""
    node = next((error for error in level if error.property == name), None)
    if node is None:
        node = _Violation(name, value)
        level.append(node)
    return node


def _constraint(problem: Violation) -> tuple[str, str]:
    """class-validator's constraint name and message for one violation."""
    name, schema = problem.name, problem.schema
    if problem.keyword == "required":
        return next(iter(_missing(name, schema).items()))
    if problem.keyword == "additionalProperties":
        return "whitelistValidation", f"property {name} should not exist"
    if problem.keyword == "type":
        key, text = _TYPES[schema["type"]]
        return key, f"{name} {text}"
    if problem.keyword == "enum":
        # An item's check (`{ each: true }`) says so: class-validator prefixes "each value in "
        # (src/decorator/common/ValidateBy.ts @ 0853341cc36f53d54e5afb50800c3a4b169abd73).
        each = "each value in " if isinstance(problem.path[-1], int) else ""
        [(key, text)] = _enum_violation(name, problem.value, schema["enum"]).constraints.items()
        return key, each + text
    if problem.keyword == "pattern":
        return "matches", f"{name} {_NAMED_PATTERNS[schema['pattern']][1]}"
    return "isObject", f"{name} is not valid"  # a union that is neither object nor string


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


@dataclass(frozen=True, slots=True)
class SentWebhook:
    """A webhook POST: the envelope, the exact bytes signed, and the answer (0: unreachable)."""

    trigger: str
    envelope: JSON
    body: bytes
    signature: str
    status: int


@dataclass(frozen=True, slots=True)
class Call:
    """An API request the sandbox answered."""

    name: str
    method: str
    path: str
    status: int


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    template: str
    name: str
    family: str | None  # the cal-api-version family, None when no version is required
    auth: str  # "required" | "optional" | "none"


_ROUTES = (
    _Route("GET", "/v2/event-types", "getEventTypes", "event-types", "optional"),
    _Route("GET", "/v2/event-types/{eventTypeId}", "getEventType", "event-types", "required"),
    _Route("GET", "/v2/teams/{teamId}/event-types", "getTeamEventTypes", None, "optional"),
    _Route("GET", "/v2/slots", "getSlots", "slots", "none"),
    _Route("POST", "/v2/slots/reservations", "reserveSlot", "slots", "optional"),
    _Route("GET", "/v2/slots/reservations/{uid}", "getReservation", "slots", "none"),
    _Route("DELETE", "/v2/slots/reservations/{uid}", "deleteReservation", "slots", "none"),
    _Route("POST", "/v2/bookings", "createBooking", "bookings", "optional"),
    _Route("GET", "/v2/bookings", "getBookings", "bookings", "required"),
    _Route("GET", "/v2/bookings/{bookingUid}", "getBooking", "bookings", "optional"),
    _Route("POST", "/v2/bookings/{bookingUid}/cancel", "cancelBooking", "bookings", "optional"),
    _Route(
        "POST", "/v2/bookings/{bookingUid}/reschedule", "rescheduleBooking", "bookings", "optional"
    ),
    _Route("GET", "/v2/me", "getMe", None, "required"),
    # webhooks.controller.ts: `version: API_VERSIONS_VALUES` (any known version) and
    # ApiAuthGuard on every route.
    _Route("POST", "/v2/webhooks", "createWebhook", None, "required"),
    _Route("GET", "/v2/webhooks", "getWebhooks", None, "required"),
    _Route("GET", "/v2/webhooks/{webhookId}", "getWebhook", None, "required"),
    _Route("PATCH", "/v2/webhooks/{webhookId}", "updateWebhook", None, "required"),
    _Route("DELETE", "/v2/webhooks/{webhookId}", "deleteWebhook", None, "required"),
)


class CalcomSandbox:
    """Cal.com API v2 for one API key, plus the Cal.com side that signs and sends webhooks.

    Seed it with `add_master`, `add_override`, `add_team`, `add_event_type`,
    `add_team_event_type` or `seed_demo_salon`; `clock` is "now" for notice, expiry and
    timestamps. Attributes for tests: `calls` (every answered request), `webhooks_sent` (after
    `await flush_webhooks()`), `owner_id` (the key's user), `salon_address`, `delay` (seconds
    before each answer), `rate_limit` per `RATE_WINDOW` seconds, `webhook_url`,
    `webhook_secret` (a webhook made on Cal.com's settings page, for every trigger),
    `webhook_timeout`, `validating` (the spec file was found), `webhooks` (those registered
    through `/v2/webhooks`, which get the triggers they subscribed to, signed with their own
    secret).
    A reservation's holder books it by sending its uid as the `uid` cookie or `reservedSlotUid`.
    """

    def __init__(
        self,
        api_key: str,
        spec_path: Path | None = None,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
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
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: ClientSession | None = None
        owner = self._add_user("Salon", OWNER_EMAIL, "UTC", None, "salon")
        self.owner_id = owner.id
        self._handlers: dict[str, Callable[[web.Request, bool], Awaitable[web.Response]]] = {
            "getEventTypes": self._get_event_types,
            "getEventType": self._get_event_type,
            "getTeamEventTypes": self._get_team_event_types,
            "getSlots": self._get_slots,
            "reserveSlot": self._reserve_slot,
            "getReservation": self._get_reservation,
            "deleteReservation": self._delete_reservation,
            "createBooking": self._create_booking,
            "getBookings": self._get_bookings,
            "getBooking": self._get_booking,
            "cancelBooking": self._cancel_booking,
            "rescheduleBooking": self._reschedule_booking,
            "getMe": self._get_me,
            "createWebhook": self._create_webhook,
            "getWebhooks": self._get_webhooks,
            "getWebhook": self._get_webhook,
            "updateWebhook": self._update_webhook,
            "deleteWebhook": self._delete_webhook,
        }

    # -- the application ------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        for route in _ROUTES:
            app.router.add_route(route.method, route.template, self._bind(route))
        app.router.add_route("*", "/v2/{tail:.*}", self._unknown_route)
        app.router.add_get("/_sandbox/bookings", self._page_bookings)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
        return await serve(self.app(), host, port)

    async def flush_webhooks(self) -> None:
        """Wait until every webhook already triggered has been delivered (or has failed)."""
        while pending := [task for task in self._tasks if not task.done()]:
            await asyncio.gather(*pending)

    async def close(self) -> None:
        await self.flush_webhooks()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.close()

    # -- seeding --------------------------------------------------------------------------

    def add_master(
        self,
        name: str,
        email: str,
        time_zone: str,
        weekly: Mapping[int, Sequence[tuple[str, str]]] | None = None,
        breaks: Sequence[tuple[str, str]] = (),
        *,
        username: str | None = None,
    ) -> int:
        """A master with a schedule: `weekly` maps a weekday (0 = Monday) to "HH:MM" ranges
        (default Mon-Sat 10:00-20:00); `breaks` are cut out of every working day."""
        if _zone(time_zone) is None:
            raise ValueError(f"not an IANA time zone: {time_zone}")
        hours = weekly if weekly is not None else {day: [("10:00", "20:00")] for day in range(6)}
        gaps = [(_clock_time(a), _clock_time(b)) for a, b in breaks]
        days: dict[int, list[tuple[time, time]]] = {}
        for weekday, ranges in hours.items():
            days[weekday] = _cut([(_clock_time(a), _clock_time(b)) for a, b in ranges], gaps)
        schedule = _Schedule(time_zone, days)
        login = username or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        return self._add_user(name, email, time_zone, schedule, login).id

    def add_override(self, user_id: int, day: date, ranges: Sequence[tuple[str, str]] = ()) -> None:
        """Replace one date's hours for a master (no ranges: a day off)."""
        schedule = self._users[user_id].schedule
        if schedule is None:
            raise ValueError(f"user {user_id} has no schedule")
        schedule.overrides[day] = [(_clock_time(a), _clock_time(b)) for a, b in ranges]

    def add_team(self, name: str, slug: str) -> int:
        if any(team.slug == slug for team in self._teams.values()):
            raise ValueError(f"a team with slug {slug!r} exists")
        team = _Team(next(self._ids["team"]), slug, name)
        self._teams[team.id] = team
        return team.id

    def add_event_type(
        self,
        owner_id: int,
        slug: str,
        title: str,
        length: int,
        *,
        price: int | None = None,
        currency: str = "RUB",
        category: str | None = None,
        **options: Any,
    ) -> int:
        """A master's own event type (masters may share a slug). The salon's list `price` (whole
        units) and `category` go into `metadata`; `paid=True` also sets Cal.com's `price` field,
        as a payment app would (minor units). Other options: description, metadata, hidden,
        minimum_notice (min, default 120), before_buffer, after_buffer, slot_interval,
        email_required (default True, as Cal.com's default booking fields; False lets a
        phone-only attendee book)."""
        if owner_id not in self._users:
            raise ValueError(f"no user {owner_id}")
        if any(et.owner_id == owner_id and et.slug == slug for et in self._event_types.values()):
            raise ValueError(f"user {owner_id} already has an event type {slug!r}")
        return self._add_event_type(
            slug, title, length, price, currency, category, options, owner_id=owner_id
        )

    def add_team_event_type(
        self,
        slug: str,
        title: str,
        length: int,
        *,
        host_ids: Sequence[int],
        team_id: int | None = None,
        scheduling: str = "roundRobin",
        price: int | None = None,
        currency: str = "RUB",
        category: str | None = None,
        **options: Any,
    ) -> int:
        """A team event type with these masters as hosts; `scheduling` is "roundRobin" (any free
        host takes it) or "collective" (all hosts at once). Options as `add_event_type`."""
        if scheduling not in ("roundRobin", "collective"):
            raise ValueError("scheduling must be roundRobin or collective")
        if not host_ids or any(host not in self._users for host in host_ids):
            raise ValueError("hosts must be existing masters")
        if team_id is None:
            team_id = next(iter(self._teams), None) or self.add_team("Salon", "salon")
        if any(et.team_id == team_id and et.slug == slug for et in self._event_types.values()):
            raise ValueError(f"team {team_id} already has an event type {slug!r}")
        return self._add_event_type(
            slug,
            title,
            length,
            price,
            currency,
            category,
            options,
            team_id=team_id,
            host_ids=list(host_ids),
            scheduling=scheduling,
        )

    def seed_demo_salon(self, zone: str = "Europe/Moscow") -> int:
        """A believable salon to book in: 3 masters, 6 services, a few bookings; the team id."""
        self.salon_address = "1 Example Street"
        team_id = self.add_team("Frontdesk Demo Salon", "demo-salon")
        lunch = [("14:00", "15:00")]
        weekdays = {day: [("10:00", "20:00")] for day in range(5)}
        anna = self.add_master("Anna Petrova", "anna@salon.example", zone, weekdays, lunch)
        tue_sat = {day: [("10:00", "20:00")] for day in range(1, 6)}
        maria = self.add_master("Maria Ivanova", "maria@salon.example", zone, tue_sat, lunch)
        # Every master works within the salon's opening hours, which `frontdesk demo` tells its
        # clients ("Mon–Sat 10:00–20:00"): no slot on a Sunday, none ending after 20:00.
        wed_sat = {day: [("11:00", "20:00")] for day in range(2, 6)}
        olga = self.add_master(
            "Olga Smirnova", "olga@salon.example", zone, wed_sat, [("15:00", "16:00")]
        )
        # Both ways a salon sets up Cal.com: a round-robin team event type (Cal.com gives the
        # booking to a free host: "any master"), and one event type per master for a service
        # (`metadata.service` groups them), so the client may choose who.
        services = [
            ("womens-haircut", "Women's haircut", 60, 2500, "Hair", [[anna], [olga]]),
            ("mens-haircut", "Men's haircut", 30, 1200, "Hair", [[anna, olga]]),
            ("hair-colouring", "Hair colouring", 120, 6500, "Hair", [[anna]]),
            ("manicure", "Manicure", 60, 1800, "Nails", [[maria]]),
            ("gel-polish", "Gel polish", 90, 2800, "Nails", [[maria]]),
            ("brow-shaping", "Brow shaping", 30, 900, "Brows", [[olga], [maria]]),
        ]
        # The salon's Russian words, in the event types' metadata (`title_ru`, `category_ru`).
        russian = {
            "womens-haircut": "Женская стрижка",
            "mens-haircut": "Мужская стрижка",
            "hair-colouring": "Окрашивание волос",
            "manicure": "Маникюр",
            "gel-polish": "Покрытие гель-лаком",
            "brow-shaping": "Коррекция бровей",
            "Hair": "Волосы",
            "Nails": "Ногти",
            "Brows": "Брови",
        }
        ids: dict[tuple[str, int], int] = {}
        for service, title, length, price, category, offers in services:
            for hosts in offers:
                own = len(offers) > 1
                slug = f"{service}-{self._users[hosts[0]].username}" if own else service
                type_id = self.add_team_event_type(
                    slug,
                    title,
                    length,
                    host_ids=hosts,
                    team_id=team_id,
                    price=price,
                    category=category,
                    metadata={
                        "service": service,
                        "title_ru": russian[service],
                        "category_ru": russian[category],
                    },
                    minimum_notice=60,
                    slot_interval=30,
                    after_buffer=15 if category == "Nails" else 0,
                    email_required=False,
                )
                ids.update({(service, host): type_id for host in hosts})
        today = self._now().astimezone(ZoneInfo(zone)).date()
        existing = [
            ("womens-haircut", anna, 1, "12:00", "Irina Sokolova", "+79160000001"),
            ("manicure", maria, 2, "16:00", "Elena Volkova", "+79160000002"),
            ("brow-shaping", olga, 3, "11:30", "Daria Kuznetsova", "+79160000003"),
            ("mens-haircut", anna, 4, "17:00", "Pavel Orlov", "+79160000004"),
        ]
        for slug, host, days, at, client, phone in existing:
            day = self._next_working_day(host, today + timedelta(days=days))
            start = datetime.combine(day, _clock_time(at), ZoneInfo(zone)).astimezone(UTC)
            attendee = {"name": client, "phoneNumber": phone, "timeZone": zone, "language": "ru"}
            event_type = self._event_types[ids[slug, host]]
            booking = self._store_booking(event_type, start, [host], attendee, {}, {})
            # Made over the past week, before Frontdesk was installed.
            booking.created = booking.updated = self._now() - timedelta(days=7 - days)
        return team_id

    # -- failure injection ----------------------------------------------------------------

    def fail_next(
        self,
        target: str,
        *,
        status: int = 500,
        body: JSON | str | None = None,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (and `body`, else Cal.com's
        error shape). `target` is an endpoint name ("createBooking", any case), a path
        ("/v2/bookings/abc/cancel") or "METHOD /path". A 429 carries Retry-After (default 1)."""
        names = {route.name.lower(): route.name for route in _ROUTES}
        if target.lower() in names:
            key = f"name:{names[target.lower()]}"
        elif target.startswith("/"):
            key = f"path:{target}"
        elif re.fullmatch(r"(GET|POST|PATCH|PUT|DELETE) /\S+", target):
            key = f"req:{target}"
        else:
            raise ValueError(f"not an endpoint name, path or 'METHOD /path': {target!r}")
        wait = retry_after if retry_after is not None else 1
        self._failures[key].extend((status, body, wait) for _ in range(times))

    def _take_failure(self, route: _Route, request: web.Request) -> CalcomError | None:
        keys = (
            f"name:{route.name}",
            f"req:{request.method} {request.path}",
            f"path:{request.path}",
        )
        key = next((key for key in keys if self._failures[key]), None)
        if key is None:
            return None
        status, body, wait = self._failures[key].popleft()
        headers = {}
        if status == 429:  # as the throttler answers: the window is spent
            headers = {"Retry-After": str(wait)} | _limit_headers(self.rate_limit, 0, wait)
        message = _THROTTLED if status == 429 else _phrase(status)
        return CalcomError(status, message, raw=body, headers=headers)

    # -- the request pipeline -------------------------------------------------------------

    def _bind(self, route: _Route) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._endpoint(route, request)

        return handle

    async def _endpoint(self, route: _Route, request: web.Request) -> web.Response:
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        headers: dict[str, str] = {}
        try:
            if failure := self._take_failure(route, request):
                raise failure
            headers = self._throttle(request)
            self._check_version(route, request)
            authed = self._authenticate(route, request)
            response = await self._handlers[route.name](request, authed)
        except CalcomError as exc:
            response = exc.response(request, self._now())
        response.headers.update(headers)
        self.calls.append(Call(route.name, request.method, request.path, response.status))
        return response

    async def _unknown_route(self, request: web.Request) -> web.Response:
        # Nest's router: no handler for this method and path (any version).
        error = CalcomError(404, f"Cannot {request.method} {request.path}")
        self.calls.append(Call("", request.method, request.path, 404))
        return error.response(request, self._now())

    def _throttle(self, request: web.Request) -> dict[str, str]:
        """§1.3: a fixed 60 s window per API key (per client address without one)."""
        auth = request.headers.get("Authorization", "")
        tracker = hashlib.sha256(auth.encode()).hexdigest() if auth else request.remote or ""
        now = monotonic()
        started, used = self._windows.get(tracker, (now, 0))
        if now - started >= RATE_WINDOW:
            started, used = now, 0
        used += 1
        self._windows[tracker] = (started, used)
        # The reset is opaque in §1.3: the sandbox sends the seconds left in the window.
        reset = max(1, math.ceil(RATE_WINDOW - (now - started)))
        headers = _limit_headers(self.rate_limit, max(0, self.rate_limit - used), reset)
        if used > self.rate_limit:
            raise CalcomError(429, _THROTTLED, headers=headers | {"Retry-After": str(reset)})
        return headers

    def _check_version(self, route: _Route, request: web.Request) -> None:
        """§1.1 and §1.12.1: another value routes to an older controller, or to none at all."""
        if route.family is None:
            return
        wanted = VERSIONS[route.family]
        sent = request.headers.get("cal-api-version")
        if sent == wanted:
            return
        target = sent if sent in KNOWN_VERSIONS else "2024-04-15"  # Cal.com's fallback
        if target not in _OLD_CONTROLLERS.get(route.family, ()):
            raise CalcomError(404, f"Cannot {request.method} {request.path}")
        if route.family == "bookings":  # calcom/cal.com#16924: the old contract fails with 500
            raw = {"statusCode": 500, "message": "Internal server error"}
            raise CalcomError(500, "Internal server error", raw=raw)
        raise CalcomError(
            400,
            f"cal-api-version must be {wanted}: Cal.com would answer with its older {target} "
            "event-types contract, which this sandbox does not emulate",
        )

    def _authenticate(self, route: _Route, request: web.Request) -> bool:
        header = request.headers.get("Authorization")
        if route.auth == "none":
            return False
        if not header:
            if route.auth == "required":
                raise CalcomError(401, _MISSING_AUTH)
            return False
        token = header.replace("Bearer ", "", 1)
        if secrets.compare_digest(token.encode(), self._api_key.encode()):
            return True
        raise CalcomError(
            401,
            "Your api key is not valid" if token.startswith("cal_") else "Invalid Access Token.",
        )

    async def _json_body(self, request: web.Request) -> JSON:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CalcomError(400, f"Unexpected token in JSON at position {exc.pos}") from exc
        except ValueError as exc:
            raise CalcomError(400, "Unexpected token in JSON at position 0") from exc
        if not isinstance(body, dict):
            raise CalcomError(400, "Body should be an object")
        return body

    def _validate(self, request: web.Request, template: str, body: JSON, *, pipe: bool) -> None:
        """Spec check of a body. Bookings use CreateBookingInputPipe (unknown fields rejected,
        one message string); other bodies the global ValidationPipe (unknown fields dropped)."""
        if self._spec is None:
            return
        reading = _BOOKING_PIPE if pipe else _GLOBAL_PIPE
        problems = self._spec.check_body(request.method, template, body, reading)
        if problems:
            raise _invalid(_class_validator(problems, body), body, pipe=pipe)

    def _validate_query(self, request: web.Request, template: str) -> None:
        if self._spec is None:
            return
        problems = self._spec.check_query(request.method, template, request.query, _GLOBAL_PIPE)
        if problems:
            query = dict(request.query)
            raise _invalid(_class_validator(problems, query), query, pipe=False)

    # -- event types (§1.4) ---------------------------------------------------------------

    async def _get_event_types(self, request: web.Request, authed: bool) -> web.Response:
        query = request.query
        username, slug = query.get("username"), query.get("eventSlug")
        if slug and not username:
            raise CalcomError(400, "eventSlug requires username")
        if username:
            user = next((u for u in self._users.values() if u.username == username), None)
            mine = user is not None and authed and user.id == self.owner_id
            found = [
                et
                for et in self._event_types.values()
                if user is not None and et.owner_id == user.id and (mine or not et.hidden)
            ]
            if slug:
                found = [et for et in found if et.slug == slug]
        elif authed and "usernames" not in query:  # no filter: the key owner's own, hidden too
            found = [et for et in self._event_types.values() if et.owner_id == self.owner_id]
        else:  # no credentials, or dynamic events (not emulated)
            found = []
        return _ok([self._event_type_json(et) for et in found])

    async def _get_event_type(self, request: web.Request, _authed: bool) -> web.Response:
        raw = request.match_info["eventTypeId"]
        if not raw.isdigit():
            raise CalcomError(400, "Validation failed (numeric string is expected)")
        et = self._event_types.get(int(raw))
        if et is None:
            raise CalcomError(404, f"Event type with id={raw} not found")
        return _ok(self._event_type_json(et))

    async def _get_team_event_types(self, request: web.Request, authed: bool) -> web.Response:
        raw = request.match_info["teamId"]
        if not raw.isdigit():
            raise CalcomError(400, "Validation failed (numeric string is expected)")
        slug = request.query.get("eventSlug")
        found = [
            et
            for et in self._event_types.values()
            if et.team_id == int(raw) and (authed or not et.hidden) and slug in (None, et.slug)
        ]
        return _ok([self._event_type_json(et) for et in found])

    def _event_type_json(self, et: _EventType) -> JSON:
        locations = [{"type": "address", "address": self.salon_address, "public": True}]
        data: JSON = {
            "id": et.id,
            "lengthInMinutes": et.length,
            "title": et.title,
            "slug": et.slug,
            "description": et.description,
            "locations": locations if self.salon_address else [],
            "bookingFields": [
                {"type": "name", "slug": "name", "isDefault": True, "required": True},
                {
                    "type": "email",
                    "slug": "email",
                    "isDefault": True,
                    "required": et.email_required,
                },
                {
                    "type": "phone",
                    "slug": "attendeePhoneNumber",
                    "isDefault": True,
                    "required": False,
                    "hidden": et.email_required,
                },
                {"type": "textarea", "slug": "notes", "isDefault": True, "required": False},
            ],
            "disableGuests": False,
            "slotInterval": et.slot_interval,
            "minimumBookingNotice": et.notice,
            "beforeEventBuffer": et.before,
            "afterEventBuffer": et.after,
            "recurrence": None,
            "metadata": dict(et.metadata),
            "price": et.price,
            "currency": et.currency,
            "lockTimeZoneToggleOnBookingPage": False,
            "seatsPerTimeSlot": None,
            "forwardParamsSuccessRedirect": None,
            "successRedirectUrl": None,
            "isInstantEvent": False,
            "scheduleId": None,
            "hidden": et.hidden,
            "bookingRequiresAuthentication": False,
        }
        if et.team_id is None:
            owner = self._users[et.owner_id or self.owner_id]
            user = {"id": owner.id, "name": owner.name, "username": owner.username}
            return data | {"ownerId": owner.id, "users": [user | {"avatarUrl": None}]}
        team = self._teams[et.team_id]
        hosts = [
            {
                "userId": host.id,
                "name": host.name,
                "username": host.username,
                "avatarUrl": None,
                "mandatory": False,
                "priority": "medium",
            }
            for host in map(self._users.__getitem__, et.host_ids)
        ]
        return data | {
            "teamId": team.id,
            "ownerId": None,
            "parentEventTypeId": None,
            "hosts": hosts,
            "assignAllTeamMembers": False,
            "schedulingType": et.scheduling,
            "team": {"id": team.id, "slug": team.slug, "name": team.name, "weekStart": "Monday"},
        }

    # -- slots (§1.5) ---------------------------------------------------------------------

    async def _get_slots(self, request: web.Request, _authed: bool) -> web.Response:
        self._validate_query(request, "/v2/slots")
        query = request.query
        keys = ("eventTypeId", "eventTypeSlug", "username", "teamSlug")
        if not (query.get("eventTypeId") or query.get("eventTypeSlug")):
            raise CalcomError(
                400,
                "Identify the event type with eventTypeId, or eventTypeSlug with username or "
                "teamSlug (dynamic events by usernames are not emulated)",
            )
        et = self._lookup(*map(query.get, keys))
        if et is None:
            raise CalcomError(404, "Event Type not found")
        lo = _instant(query.get("start"))
        hi = _instant(query.get("end"))
        if lo is None:
            raise CalcomError(400, "Invalid start date")
        if hi is None:
            raise CalcomError(400, "Invalid end date")
        if (hi.hour, hi.minute, hi.second) == (0, 0, 0):  # §1.5: a date or midnight: that day
            hi = hi.replace(hour=23, minute=59, second=59)
        if lo > hi:
            raise CalcomError(
                400, "Invalid time range given - check the 'start' and 'end' query parameters."
            )
        zone: ZoneInfo | None = None
        if "timeZone" in query:
            zone = _zone(query["timeZone"])
            if zone is None:
                raise CalcomError(
                    400, f"Could not adjust timezone for slots with {query['timeZone']}"
                )
        length = et.length
        if duration := query.get("duration"):
            if not duration.isdigit() or int(duration) < 1:
                raise CalcomError(400, "duration must be a positive integer")
            length = int(duration)
        ignore = query.get("bookingUidToReschedule")
        data: dict[str, list[JSON]] = {}
        for start in self._slot_starts(et, lo, hi, length, ignore=ignore):
            day = start.astimezone(zone or UTC).date().isoformat()
            slot = {"start": _iso(start, zone)}
            if query.get("format") == "range":
                slot["end"] = _iso(start + timedelta(minutes=length), zone)
            data.setdefault(day, []).append(slot)
        return _ok(data)

    def _lookup(self, type_id: Any, slug: Any, username: Any, team_slug: Any) -> _EventType | None:
        """An event type by id, or by slug among a user's or a team's (unknown owners: 404)."""
        if _is_int(type_id) or (isinstance(type_id, str) and type_id.isdigit()):
            return self._event_types.get(int(type_id))
        if slug and username:
            user = next((u for u in self._users.values() if u.username == username), None)
            if user is None:
                raise CalcomError(404, f"User with username {username} not found")
            owner: tuple[int | None, int | None] = (user.id, None)
        elif slug and team_slug:
            team = next((t for t in self._teams.values() if t.slug == team_slug), None)
            if team is None:
                raise CalcomError(404, f"Team with slug {team_slug} not found")
            owner = (None, team.id)
        else:
            return None
        matches = (et for et in self._event_types.values() if (et.owner_id, et.team_id) == owner)
        return next((et for et in matches if et.slug == slug), None)

    async def _reserve_slot(self, request: web.Request, authed: bool) -> web.Response:
        body = await self._json_body(request)
        self._validate(request, "/v2/slots/reservations", body, pipe=False)
        minutes = body.get("reservationDuration")
        if minutes is not None and not authed:
            raise CalcomError(
                401,
                "reservationDuration can only be used for authenticated requests - use access "
                "token, api key or OAuth credentials",
            )
        raw_id: Any = body.get("eventTypeId")
        et = self._event_types.get(int(raw_id)) if _is_int(raw_id) else None
        if et is None:
            raise CalcomError(404, f"Event Type with ID={raw_id} not found")
        start = _instant(body.get("slotStart"))
        if start is None:
            raise CalcomError(400, "Invalid start date")
        if body.get("slotDuration") is not None:
            raise CalcomError(
                400,
                "You passed 'slotDuration' but this event type is not a variable length event "
                "type.",
            )
        end = start + timedelta(minutes=et.length)
        hosts = self._hosts(et)
        free = [h for h in hosts if self._busy(h, start, end, et) is None]
        if not free or (et.scheduling == "collective" and len(free) < len(hosts)):
            blocked = {self._busy(h, start, end, et) for h in hosts}
            if "booking" in blocked:
                raise CalcomError(422, "Can't reserve a slot if the event is already booked.")
            raise CalcomError(
                422,
                "This time slot is already reserved by another user. Please choose a different "
                "time.",
            )
        # Cal.com pins a team reservation to hosts[0]; the first *free* host makes the hold real.
        pinned = free if et.scheduling == "collective" else free[:1]
        duration = int(minutes) if isinstance(minutes, int | float) else 5
        until = self._now() + timedelta(minutes=duration)
        reservation = _Reservation(str(uuid.uuid4()), et.id, pinned, start, end, until)
        self._reservations[reservation.uid] = reservation
        data = self._reservation_json(reservation) | {"reservationDuration": duration}
        return _ok(data, status=201)

    async def _get_reservation(self, request: web.Request, _authed: bool) -> web.Response:
        reservation = self._reservations.get(request.match_info["uid"])
        return _ok(self._reservation_json(reservation) if reservation else None)

    async def _delete_reservation(self, request: web.Request, _authed: bool) -> web.Response:
        self._reservations.pop(request.match_info["uid"], None)
        return web.json_response({"status": "success"})

    def _reservation_json(self, reservation: _Reservation) -> JSON:
        return {
            "eventTypeId": reservation.event_type_id,
            "slotStart": _iso(reservation.start),
            "slotEnd": _iso(reservation.end),
            "slotDuration": int((reservation.end - reservation.start).total_seconds() // 60),
            "reservationUid": reservation.uid,
            "reservationUntil": _iso(reservation.until),
        }

    # -- availability ---------------------------------------------------------------------

    def _hosts(self, et: _EventType) -> list[int]:
        return list(et.host_ids) if et.team_id is not None else [et.owner_id or self.owner_id]

    def _working(self, user_id: int, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        """The master's working ranges (UTC) meeting [lo, hi], computed day by day in their zone,
        so a DST change moves the UTC instants and not the local hours."""
        schedule = self._users[user_id].schedule
        if schedule is None:
            return []
        zone = ZoneInfo(schedule.time_zone)
        day, last = lo.astimezone(zone).date() - timedelta(days=1), hi.astimezone(zone).date()
        ranges = []
        while day <= last:
            for a, b in schedule.ranges(day):
                start = datetime.combine(day, a, zone).astimezone(UTC)
                end = datetime.combine(day, b, zone).astimezone(UTC)
                if start < end and start <= hi and end >= lo:
                    ranges.append((start, end))
            day += timedelta(days=1)
        return ranges

    def _busy(
        self,
        user_id: int,
        start: datetime,
        end: datetime,
        et: _EventType,
        *,
        ignore: str | None = None,
        claim: str | None = None,
    ) -> str | None:
        """What makes the master busy for [start, end] with this event type's buffers: an
        accepted booking (not `ignore`), an unexpired reservation (not `claim`), or nothing."""
        lo, hi = start - timedelta(minutes=et.before), end + timedelta(minutes=et.after)
        now = self._now()
        blockers = [
            ("booking", b.event_type_id, b.host_ids, b.start, b.end)
            for b in self._bookings.values()
            if b.status == "accepted" and b.uid != ignore
        ] + [
            ("reservation", r.event_type_id, r.host_ids, r.start, r.end)
            for r in self._reservations.values()
            if r.uid != claim and r.until > now
        ]
        for kind, type_id, hosts, taken_from, taken_to in blockers:
            other = self._event_types[type_id]  # its own buffers widen what it takes
            taken_from -= timedelta(minutes=other.before)
            taken_to += timedelta(minutes=other.after)
            if user_id in hosts and taken_from < hi and lo < taken_to:
                return kind
        return None

    def _free(
        self,
        user_id: int,
        start: datetime,
        end: datetime,
        et: _EventType,
        *,
        ignore: str | None = None,
        claim: str | None = None,
    ) -> bool:
        working = any(a <= start and end <= b for a, b in self._working(user_id, start, end))
        return working and self._busy(user_id, start, end, et, ignore=ignore, claim=claim) is None

    def _slot_starts(
        self, et: _EventType, lo: datetime, hi: datetime, length: int, *, ignore: str | None
    ) -> list[datetime]:
        """Slot starts in [lo, hi]: each working range stepped by slotInterval (else the length);
        after the minimum notice the grid restarts on the hour, as Cal.com's getSlots does."""
        earliest = self._now() + timedelta(minutes=et.notice)
        step = timedelta(minutes=et.slot_interval or length)
        duration = timedelta(minutes=length)
        per_host: list[set[datetime]] = []
        for host in self._hosts(et):
            zone = ZoneInfo(self._users[host].time_zone)
            starts: set[datetime] = set()
            for begin, finish in self._working(host, lo, hi + duration):
                moment = begin if begin >= earliest else _align(earliest, step, zone)
                while moment + duration <= finish and moment <= hi:
                    end = moment + duration
                    if moment >= lo and self._busy(host, moment, end, et, ignore=ignore) is None:
                        starts.add(moment)
                    moment += step
            per_host.append(starts)
        if et.scheduling == "collective":
            return sorted(per_host[0].intersection(*per_host[1:])) if per_host else []
        return sorted(set[datetime]().union(*per_host))

    def _next_working_day(self, user_id: int, day: date) -> date:
        schedule = self._users[user_id].schedule
        while schedule is not None and not schedule.ranges(day):
            day += timedelta(days=1)
        return day

    # -- bookings (§1.6-§1.9) -------------------------------------------------------------

    async def _create_booking(self, request: web.Request, authed: bool) -> web.Response:
        body = await self._json_body(request)
        # Newer Cal.com also takes the reservation uid in the body (or in the `uid` cookie).
        held = body.pop("reservedSlotUid", None) or request.cookies.get(RESERVATION_COOKIE)
        claim = str(held) if held else None
        self._validate(request, "/v2/bookings", body, pipe=True)
        if problems := _booking_rules(body):
            raise CalcomError(400, _pipe_message(problems))
        if body.get("instant"):
            raise CalcomError(400, "Instant meetings are not emulated by the sandbox")
        et = self._booked_event_type(body)
        if body.get("lengthInMinutes") is not None:
            raise CalcomError(
                400,
                "Can't specify 'lengthInMinutes' because event type does not have multiple "
                "possible lengths. Please, remove the 'lengthInMinutes' field from the request.",
            )
        attendee: JSON = dict(body["attendee"])
        if et.email_required and not attendee.get("email"):
            raise CalcomError(
                400,
                "Missing attendee email - the event type's booking fields require it. Pass it as "
                '"attendee.email" string in the request.',
            )
        location = body.get("location")
        if isinstance(location, dict) and location.get("type") != "address":
            raise CalcomError(
                400,
                f"Booking location with type {location.get('type')} not valid for event type with "
                f"id={et.id}. The event type has following location types: address, and only "
                "these types are allowed for booking location.",
            )
        start = _instant(body["start"])
        assert start is not None  # checked by _booking_rules
        hosts = self._pick_hosts(et, start, claim=claim, team_message=et.team_id is not None)
        booking = self._store_booking(
            et,
            start,
            hosts,
            attendee,
            body.get("metadata") or {},
            body.get("bookingFieldsResponses") or {},
            location=location if isinstance(location, str) else None,
        )
        if claim:
            self._reservations.pop(claim, None)
        self._emit("BOOKING_CREATED", booking)
        return _ok(self._booking_json(booking), status=201)

    def _booked_event_type(self, body: JSON) -> _EventType:
        keys = ("eventTypeId", "eventTypeSlug", "username", "teamSlug")
        found = self._lookup(*map(body.get, keys))
        if found is not None:
            return found
        slug, username, team = body.get("eventTypeSlug"), body.get("username"), body.get("teamSlug")
        if slug and (username or team):  # ErrorsBookingsService_2024_08_13's wording
            owner = f"user {username}" if username else f"team {team}"
            raise CalcomError(404, f"Event type with slug {slug} belonging to {owner} not found.")
        raise CalcomError(
            404, f"Event type with id {body.get('eventTypeId', 'undefined')} not found."
        )

    def _pick_hosts(
        self,
        et: _EventType,
        start: datetime,
        *,
        claim: str | None = None,
        ignore: str | None = None,
        prefer: Sequence[int] = (),
        team_message: bool,
    ) -> list[int]:
        """Cal.com's checks in order: past, minimum notice, someone else's hold, availability."""
        now = self._now()
        end = start + timedelta(minutes=et.length)
        if start < now:
            raise CalcomError(400, "Attempting to book a meeting in the past.")
        if start < now + timedelta(minutes=et.notice):
            raise CalcomError(400, _OUT_OF_BOUNDS)
        for held in self._reservations.values():
            same = (held.event_type_id, held.start, held.end) == (et.id, start, end)
            if same and held.uid != claim and held.until > now:
                seconds = math.ceil((held.until - now).total_seconds())
                raise CalcomError(
                    400,
                    "Someone else reserved this booking time slot before you. This time slot "
                    f"will be freed up in {seconds} seconds.",
                )
        hosts = self._hosts(et)
        free = [h for h in hosts if self._free(h, start, end, et, ignore=ignore, claim=claim)]
        busy = _HOSTS_BUSY if team_message else _USER_BUSY
        if et.scheduling == "collective":
            if len(free) < len(hosts):
                raise CalcomError(400, busy)
            return free
        if not free:
            raise CalcomError(400, busy)
        # Round robin: keep the previous host when free, else the least booked one.
        load = {
            h: sum(h in b.host_ids and b.status == "accepted" for b in self._bookings.values())
            for h in free
        }
        kept = [h for h in prefer if h in free]
        return kept[:1] or [min(free, key=lambda h: (load[h], hosts.index(h)))]

    def _store_booking(
        self,
        et: _EventType,
        start: datetime,
        host_ids: list[int],
        attendee: JSON,
        metadata: JSON,
        responses: JSON,
        *,
        location: str | None = None,
    ) -> _Booking:
        now = self._now()
        email = attendee.get("email") or ""
        if not email:  # Cal.com files phone-only attendees under a placeholder address
            email = re.sub(r"\D", "", str(attendee.get("phoneNumber", ""))) + "@sms.cal.com"
        person: JSON = {
            "name": attendee["name"],
            "email": email,
            "displayEmail": email,
            "timeZone": attendee["timeZone"],
            "language": attendee.get("language") or "en",
            "absent": False,
        }
        if attendee.get("phoneNumber"):
            person["phoneNumber"] = attendee["phoneNumber"]
        answers: JSON = {**responses, "name": person["name"], "email": attendee.get("email") or ""}
        if attendee.get("phoneNumber"):
            answers["attendeePhoneNumber"] = attendee["phoneNumber"]
        booking = _Booking(
            id=next(self._ids["booking"]),
            uid=_short_uid(),
            event_type_id=et.id,
            host_ids=host_ids,
            start=start,
            end=start + timedelta(minutes=et.length),
            attendee=person,
            metadata=dict(metadata),
            responses=answers | {"guests": []},
            location=location or self.salon_address,
            created=now,
            updated=now,
        )
        self._bookings[booking.uid] = booking
        return booking

    async def _get_bookings(self, request: web.Request, _authed: bool) -> web.Response:
        """§1.7: the list filters, sorts and pagination (take 1-250, default 100)."""
        self._validate_query(request, "/v2/bookings")
        query, now = request.query, self._now()
        statuses = [status for status in query.get("status", "").split(",") if status]
        bounds = {key: _instant(query[key]) for key in _TIME_FILTERS if key in query}
        take, skip = query.get("take", "100"), query.get("skip", "0")
        problems = [
            _Violation(
                key, query[key], {"isDateString": f"{key} must be a valid ISO 8601 date string"}
            )
            for key, moment in bounds.items()
            if moment is None
        ]
        if not set(statuses) <= set(_STATUS_FILTERS):
            problems.append(_enum_violation("status", statuses, _STATUS_FILTERS))
        if not (take.isdigit() and 1 <= int(take) <= 250 and skip.isdigit()):
            problems.append(_Violation("take", take, {"max": "take must not be greater than 250"}))
        if problems:
            raise _invalid(problems, dict(query), pipe=False)
        email = query.get("attendeeEmail", "").replace(" ", "+").lower()  # §1.7: a space is a +
        name = query.get("attendeeName", "").lower()
        types = _numbers(query, "eventTypeIds", "eventTypeId")
        teams = _numbers(query, "teamsIds", "teamId")
        newest_first = bool(statuses) and set(statuses) <= {"past", "cancelled"}
        found = [
            b
            for b in sorted(self._bookings.values(), key=attrgetter("start"), reverse=newest_first)
            if (not statuses or any(_status_matches(b, status, now) for status in statuses))
            and (not email or b.attendee["email"].lower() == email)
            and name in b.attendee["name"].lower()
            and query.get("bookingUid") in (None, b.uid)
            and (not types or b.event_type_id in types)
            and (not teams or self._event_types[b.event_type_id].team_id in teams)
            and all(_TIME_FILTERS[key](b, moment) for key, moment in bounds.items() if moment)
        ]
        for key, attribute in _SORTS.items():
            if query.get(key) in ("asc", "desc"):
                found.sort(key=attrgetter(attribute), reverse=query[key] == "desc")
        count, size, offset = len(found), int(take), int(skip)
        page = found[offset : offset + size]
        pagination = {
            "totalItems": count,
            "remainingItems": max(0, count - offset - len(page)),
            "returnedItems": len(page),
            "itemsPerPage": size,
            "currentPage": offset // size + 1,
            "totalPages": math.ceil(count / size),
            "hasNextPage": offset + len(page) < count,
            "hasPreviousPage": offset > 0,
        }
        return _ok([self._booking_json(b) for b in page], pagination=pagination)

    def _find_booking(self, request: web.Request) -> _Booking:
        uid = request.match_info["bookingUid"]
        booking = self._bookings.get(uid)
        if booking is None:
            raise CalcomError(404, f"Booking with uid={uid} was not found in the database")
        return booking

    async def _get_booking(self, request: web.Request, _authed: bool) -> web.Response:
        return _ok(self._booking_json(self._find_booking(request)))

    async def _cancel_booking(self, request: web.Request, authed: bool) -> web.Response:
        body = await self._json_body(request)
        template = "/v2/bookings/{bookingUid}/cancel"
        self._validate(request, template, body, pipe=True)
        if "seatUid" in body:  # no seated event types here
            raise CalcomError(
                400, "Invalid seatUid: this seat does not exist or has already been cancelled."
            )
        booking = self._find_booking(request)
        if booking.status == "cancelled":
            raise CalcomError(400, "This booking has already been cancelled.")
        booking.status = "cancelled"
        booking.cancellation_reason = body.get("cancellationReason")
        booking.cancelled_by = self._users[self.owner_id].email if authed else None
        booking.updated = self._now()
        booking.sequence += 1
        self._emit("BOOKING_CANCELLED", booking)
        return _ok(self._booking_json(booking))

    async def _reschedule_booking(self, request: web.Request, authed: bool) -> web.Response:
        body = await self._json_body(request)
        template = "/v2/bookings/{bookingUid}/reschedule"
        self._validate(request, template, body, pipe=True)
        start = _instant(body.get("start"))
        if start is None:
            raise CalcomError(
                400, _pipe_message([_Violation("start", body.get("start"), _START_RULE)])
            )
        old = self._find_booking(request)
        if old.status == "cancelled":
            if old.rescheduled_to:
                raise CalcomError(
                    400,
                    f"Can't reschedule booking with uid={old.uid} because it has been cancelled "
                    f"and rescheduled already to booking with uid={old.rescheduled_to}. You "
                    f"probably want to reschedule {old.rescheduled_to} instead by passing it "
                    "within the request URL.",
                )
            raise CalcomError(
                400,
                f"Can't reschedule booking with uid={old.uid} because it has been cancelled. "
                "Please provide uid of a booking that is not cancelled.",
            )
        et = self._event_types[old.event_type_id]
        hosts = self._pick_hosts(et, start, ignore=old.uid, prefer=old.host_ids, team_message=False)
        attendee = {
            key: old.attendee.get(key) for key in ("name", "timeZone", "language", "phoneNumber")
        }
        attendee["email"] = old.responses.get("email")
        responses = {k: v for k, v in old.responses.items() if k not in ("name", "email", "guests")}
        # The new booking keeps the old one's metadata (apps/api/v2 ee/bookings/2024-08-13
        # services/input.service.ts transformInputRescheduleBooking: `metadata: booking.metadata
        # || {}`), so its BOOKING_RESCHEDULED webhook carries it.
        new = self._store_booking(
            et, start, hosts, attendee, old.metadata, responses, location=old.location
        )
        new.rescheduled_from = old.uid
        new.sequence = old.sequence + 1
        new.rescheduling_reason = body.get("reschedulingReason")
        by = body.get("rescheduledBy") or (self._users[self.owner_id].email if authed else None)
        new.rescheduled_by = by
        old.status, old.rescheduled_to, old.rescheduled_by = "cancelled", new.uid, by
        old.rescheduling_reason = new.rescheduling_reason
        old.updated = self._now()
        self._emit("BOOKING_RESCHEDULED", new, previous=old)
        return _ok(self._booking_json(new), status=201)

    def _booking_json(self, booking: _Booking) -> JSON:
        """BookingOutput_2024_08_13; optional fields appear only when set, as in Cal.com."""
        et = self._event_types[booking.event_type_id]
        hosts = [
            {
                "id": u.id,
                "name": u.name,
                "email": u.email,
                "username": u.username,
                "timeZone": u.time_zone,
            }
            for u in map(self._users.__getitem__, booking.host_ids)
        ]
        data: JSON = {
            "id": booking.id,
            "uid": booking.uid,
            "title": f"{et.title} between {hosts[0]['name']} and {booking.attendee['name']}",
            "description": "",
            "hosts": hosts,
            "status": booking.status,
        }
        optional = {
            "cancellationReason": booking.cancellation_reason,
            "cancelledByEmail": booking.cancelled_by,
            "reschedulingReason": booking.rescheduling_reason,
            "rescheduledByEmail": booking.rescheduled_by,
            "rescheduledFromUid": booking.rescheduled_from,
            "rescheduledToUid": booking.rescheduled_to,
        }
        data |= {key: value for key, value in optional.items() if value is not None}
        return data | {
            "start": _iso(booking.start),
            "end": _iso(booking.end),
            "duration": int((booking.end - booking.start).total_seconds() // 60),
            "eventTypeId": et.id,
            "eventType": {"id": et.id, "slug": et.slug},
            "location": booking.location,
            "absentHost": False,
            "createdAt": _iso(booking.created),
            "updatedAt": _iso(booking.updated),
            "metadata": dict(booking.metadata),
            "icsUid": f"{booking.uid}@Cal.com",
            "attendees": [dict(booking.attendee)],
            "guests": [],
            "bookingFieldsResponses": dict(booking.responses),
        }

    async def _get_me(self, _request: web.Request, _authed: bool) -> web.Response:
        owner = self._users[self.owner_id]
        return _ok(
            {
                "id": owner.id,
                "username": owner.username,
                "email": owner.email,
                "timeFormat": 24,
                "defaultScheduleId": None,
                "weekStart": "Monday",
                "timeZone": owner.time_zone,
                "organizationId": None,
            }
        )

    # -- webhook subscriptions (§1.10, /v2/webhooks) --------------------------------------

    @property
    def webhooks(self) -> list[JSON]:
        """The registered webhooks as `GET /v2/webhooks` shows them."""
        return [_webhook_json(hook) for hook in self._webhooks.values()]

    async def _create_webhook(self, request: web.Request, _authed: bool) -> web.Response:
        body = await self._json_body(request)
        self._validate(request, "/v2/webhooks", body, pipe=False)
        _check_webhook(body, partial=False)
        url = body["subscriberUrl"]
        # user-webhooks.service.ts createUserWebhook: one webhook per user and subscriber URL.
        if any(h.subscriber_url == url for h in self._webhooks.values()):
            raise CalcomError(409, "Webhook with this subscriber url already exists for this user")
        hook = _Webhook(
            id=str(uuid.uuid4()),
            user_id=self.owner_id,
            subscriber_url=url,
            triggers=list(body["triggers"]),
            active=body["active"],
            secret=body.get("secret"),
            payload_template=body.get("payloadTemplate"),
        )
        self._webhooks[hook.id] = hook
        return _ok(_webhook_json(hook), status=201)

    async def _get_webhooks(self, request: web.Request, _authed: bool) -> web.Response:
        self._validate_query(request, "/v2/webhooks")
        # webhooks.controller.ts getWebhooks: SkipTakePagination, take defaulting to 250.
        skip, take = _int_query(request, "skip", 0), _int_query(request, "take", 250)
        hooks = list(self._webhooks.values())[skip : skip + take]
        return _ok([_webhook_json(hook) for hook in hooks])

    def _find_webhook(self, request: web.Request) -> _Webhook:
        hook = self._webhooks.get(request.match_info["webhookId"])
        if hook is None:  # IsUserWebhookGuard
            raise CalcomError(404, f"Webhook ({request.match_info['webhookId']}) not found")
        return hook

    async def _get_webhook(self, request: web.Request, _authed: bool) -> web.Response:
        return _ok(_webhook_json(self._find_webhook(request)))

    async def _update_webhook(self, request: web.Request, _authed: bool) -> web.Response:
        hook = self._find_webhook(request)
        body = await self._json_body(request)
        self._validate(request, "/v2/webhooks/{webhookId}", body, pipe=False)
        _check_webhook(body, partial=True)
        # UpdateWebhookInputDto is PartialType(CreateWebhookInputDto): what is sent changes.
        if body.get("subscriberUrl") is not None:
            hook.subscriber_url = body["subscriberUrl"]
        if body.get("triggers") is not None:
            hook.triggers = list(body["triggers"])
        if body.get("active") is not None:
            hook.active = body["active"]
        if "secret" in body:
            hook.secret = body["secret"]
        if "payloadTemplate" in body:
            hook.payload_template = body["payloadTemplate"]
        return _ok(_webhook_json(hook))

    async def _delete_webhook(self, request: web.Request, _authed: bool) -> web.Response:
        hook = self._find_webhook(request)
        del self._webhooks[hook.id]
        return _ok(_webhook_json(hook))

    # -- webhooks (§1.10) -----------------------------------------------------------------

    def _emit(self, trigger: str, booking: _Booking, previous: _Booking | None = None) -> None:
        """Build the envelope now (the state as of this change) and deliver it in the background,
        as Cal.com does: the API answer does not wait for the webhook."""
        subscribers = [(self.webhook_url, self.webhook_secret)] if self.webhook_url else []
        # getWebhooks: the active webhooks whose eventTriggers hold this trigger.
        subscribers += [
            (hook.subscriber_url, hook.secret)
            for hook in self._webhooks.values()
            if hook.active and trigger in hook.triggers
        ]
        if not subscribers:
            return
        payload = self._webhook_payload(trigger, booking, previous)
        envelope = {"triggerEvent": trigger, "createdAt": _iso(self._now()), "payload": payload}
        for url, secret in subscribers:
            task = asyncio.get_running_loop().create_task(
                self._deliver(trigger, envelope, url, secret)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, trigger: str, envelope: JSON, url: str, secret: str | None) -> None:
        # Compact like JSON.stringify; the signature covers exactly these bytes.
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        signature = (
            hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            if secret
            else "no-secret-provided"
        )
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature,
            "X-Cal-Webhook-Version": WEBHOOK_VERSION,
        }
        if self._session is None or self._session.closed:
            self._session = ClientSession(timeout=ClientTimeout(total=self.webhook_timeout))
        status = 0
        try:
            async with self._session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                status = answer.status
        except (ClientError, TimeoutError) as exc:
            log.warning("sandbox: %s webhook undelivered: %s", trigger, type(exc).__name__)
        self.webhooks_sent.append(SentWebhook(trigger, envelope, body, signature, status))

    def _webhook_payload(self, trigger: str, booking: _Booking, previous: _Booking | None) -> JSON:
        et = self._event_types[booking.event_type_id]
        host = self._users[booking.host_ids[0]]
        attendee = booking.attendee
        # §1.10: created/rescheduled print `...Z`, cancelled prints `...+00:00`.
        cancelled = trigger == "BOOKING_CANCELLED"

        def stamp(moment: datetime) -> str:
            text = moment.astimezone(UTC).isoformat(timespec="seconds")
            return text if cancelled else text.replace("+00:00", "Z")

        def offset(zone: str) -> int:
            delta = booking.start.astimezone(ZoneInfo(zone)).utcoffset() or timedelta()
            return int(delta.total_seconds() // 60)

        first, _, last = attendee["name"].partition(" ")
        person: JSON = {
            "email": attendee["email"],
            "name": attendee["name"],
            "firstName": first,
            "lastName": last,
            "timeZone": attendee["timeZone"],
            "language": {"locale": attendee["language"]},
            "utcOffset": offset(attendee["timeZone"]),
        }
        if "phoneNumber" in attendee and not cancelled:
            # handleCancelBooking builds its attendees from name, email, timeZone and language
            # only (calcom/cal.com packages/features/bookings/lib/handleCancelBooking.ts @
            # 2446b58b7f257ba3b40ba3e0aacaca9a18fd188e; later versions add `phoneNumber`): the
            # client's phone cannot be relied on in a cancellation.
            person["phoneNumber"] = attendee["phoneNumber"]
        responses: JSON = {
            "name": {"label": "your_name", "value": attendee["name"], "isHidden": False},
            "email": {"label": "email_address", "value": attendee["email"], "isHidden": False},
        }
        if "phoneNumber" in attendee:
            responses["attendeePhoneNumber"] = {
                "label": "phone_number",
                "value": attendee["phoneNumber"],
                "isHidden": False,
            }
        payload: JSON = {
            "bookerUrl": "https://cal.com",
            "type": et.slug,
            "title": f"{et.title} between {host.name} and {attendee['name']}",
            "description": "",
            "additionalNotes": "",
            "customInputs": {},
            "startTime": stamp(booking.start),
            "endTime": stamp(booking.end),
            "organizer": {
                "id": host.id,
                "name": host.name,
                "email": host.email,
                "username": host.username,
                "timeZone": host.time_zone,
                "language": {"locale": "en"},
                "timeFormat": "h:mma",
                "utcOffset": offset(host.time_zone),
            },
            "attendees": [person],
            "responses": responses,
            "userFieldsResponses": {},
            "location": booking.location,
            "destinationCalendar": None,
            "iCalUID": f"{booking.uid}@Cal.com",
            "iCalSequence": booking.sequence,
            "eventTypeId": et.id,
            "hideCalendarNotes": False,
            "schedulingType": {"roundRobin": "ROUND_ROBIN", "collective": "COLLECTIVE"}.get(
                et.scheduling or ""
            ),
            "seatsPerTimeSlot": None,
            "requiresConfirmation": False,
            "organizationId": None,
            "uid": booking.uid,
            "eventTitle": et.title,
            "eventDescription": et.description,
            "price": et.price,
            "currency": et.currency,
            "length": et.length,
            "bookingId": booking.id,
            "metadata": dict(booking.metadata),
            "status": booking.status.upper(),
        }
        if cancelled:
            # handleCancelBooking's payload is its CalendarEvent plus the event type's info,
            # `status`, `smsReminderNumber` and `cancelledBy`: no `metadata` (same file, at
            # 2446b58b7f257ba3b40ba3e0aacaca9a18fd188e and at
            # 001f8e29cefd26287042709228e41c0566b350ce).
            # Whose booking it is must come from the gateway's own records or the email.
            del payload["metadata"]
            payload |= {
                "cancellationReason": booking.cancellation_reason,
                "requestReschedule": False,
            }
            if booking.cancelled_by:  # undefined, so left out by JSON.stringify, otherwise
                payload["cancelledBy"] = booking.cancelled_by
        if previous is not None:
            payload |= {
                "rescheduleId": previous.id,
                "rescheduleUid": previous.uid,
                "rescheduleStartTime": stamp(previous.start),
                "rescheduleEndTime": stamp(previous.end),
            }
        return payload

    # -- the demo page's JSON -------------------------------------------------------------

    async def _page_bookings(self, _request: web.Request) -> web.Response:
        return web.json_response(self.bookings_json())

    def bookings_json(self) -> list[JSON]:
        """Every booking, earliest first, as the API shows them (the demo page lists them)."""
        bookings = sorted(self._bookings.values(), key=lambda b: b.start)
        return [self._booking_json(b) for b in bookings]

    # -- helpers --------------------------------------------------------------------------

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


_PHRASES = {status.value for status in HTTPStatus}
_ID_STARTS = {"user": 101, "team": 11, "event_type": 1001, "booking": 5001}
_SORTS = {
    "sortStart": "start",
    "sortEnd": "end",
    "sortCreated": "created",
    "sortUpdatedAt": "updated",
}
_TIME_FILTERS: dict[str, Callable[[_Booking, datetime], bool]] = {
    "afterStart": lambda b, t: b.start >= t,
    "beforeEnd": lambda b, t: b.end <= t,
    "afterCreatedAt": lambda b, t: b.created >= t,
    "beforeCreatedAt": lambda b, t: b.created <= t,
    "afterUpdatedAt": lambda b, t: b.updated >= t,
    "beforeUpdatedAt": lambda b, t: b.updated <= t,
}


def _limit_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    """§1.3: one set per named throttler, suffixed with its name (`default`)."""
    return {
        "X-RateLimit-Limit-Default": str(limit),
        "X-RateLimit-Remaining-Default": str(remaining),
        "X-RateLimit-Reset-Default": str(reset),
    }


# The booking triggers of prisma's WebhookTriggerEvents enum (packages/prisma/schema.prisma; the
# docs' list, contract §1.10), and the others Cal.com accepts too.
WEBHOOK_TRIGGERS = (
    "BOOKING_CANCELLED",
    "BOOKING_CREATED",
    "BOOKING_RESCHEDULED",
    "BOOKING_REQUESTED",
    "BOOKING_REJECTED",
    "BOOKING_PAYMENT_INITIATED",
    "BOOKING_PAID",
    "BOOKING_NO_SHOW_UPDATED",
    "MEETING_STARTED",
    "MEETING_ENDED",
    "RECORDING_READY",
    "RECORDING_TRANSCRIPTION_GENERATED",
    "FORM_SUBMITTED",
    "FORM_SUBMITTED_NO_EVENT",
    "INSTANT_MEETING",
    "OOO_CREATED",
    "AFTER_HOSTS_CAL_VIDEO_NO_SHOW",
    "AFTER_GUESTS_CAL_VIDEO_NO_SHOW",
)


# CreateWebhookInputDto (apps/api/v2/src/modules/webhooks/inputs/webhook.input.ts @
# 03670679c00d600615e8df2bc64545bd51c61646) as NestJS's swagger renders it (the trimmed spec has
# no /v2/webhooks): `active` boolean, `subscriberUrl` string and `triggers` an array of
# WebhookTriggerEvents (`@IsEnum(..., { each: true })`) are required; `payloadTemplate` and
# `secret` optional strings.
_WEBHOOK_INPUT: JSON = {
    "type": "object",
    "required": ["active", "subscriberUrl", "triggers"],
    "properties": {
        "active": {"type": "boolean"},
        "subscriberUrl": {"type": "string"},
        "triggers": {"type": "array", "enum": list(WEBHOOK_TRIGGERS), "items": {"type": "string"}},
        "payloadTemplate": {"type": "string"},
        "secret": {"type": "string"},
    },
}


def _check_webhook(body: JSON, *, partial: bool) -> None:
    """The global ValidationPipe on CreateWebhookInputDto, or on UpdateWebhookInputDto (its
    PartialType: every field optional)."""
    schema = _WEBHOOK_INPUT | {"required": []} if partial else _WEBHOOK_INPUT
    problems = Spec({}).problems(body, schema, _GLOBAL_PIPE)
    if problems:
        raise _invalid(_class_validator(problems, body), body, pipe=False)


def _webhook_json(hook: _Webhook) -> JSON:
    """UserWebhookOutputDto through WebhookOutputPipe (`eventTriggers` → `triggers`); the
    `secret` is an exposed output field (outputs/webhook.output.ts @ 03670679)."""
    return {
        "id": hook.id,
        "userId": hook.user_id,
        "payloadTemplate": hook.payload_template,
        "triggers": list(hook.triggers),
        "subscriberUrl": hook.subscriber_url,
        "active": hook.active,
        "secret": hook.secret,
    }


def _int_query(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "")
    return int(raw) if raw.isdigit() else default


def _ok(data: Any, *, status: int = 200, **extra: Any) -> web.Response:
    return web.json_response({"status": "success", "data": data, **extra}, status=status)


def _invalid(problems: Sequence[_Violation], target: JSON, *, pipe: bool) -> CalcomError:
    """A 400 as the pipe that validated it reports: one string (bookings) or the global
    ValidationPipe's `{errors}` with Nest's generic message (everything else)."""
    if pipe:
        return CalcomError(400, _pipe_message(problems))
    errors = [problem.as_json() | {"target": target} for problem in problems]
    return CalcomError(400, "Bad Request Exception", {"errors": errors})


def _numbers(query: Mapping[str, str], *names: str) -> set[int]:
    """Comma lists of ids from any of these query parameters."""
    parts = ",".join(query.get(name, "") for name in names).split(",")
    return {int(part) for part in parts if part.isdigit()}


def _status_matches(booking: _Booking, status: str, now: datetime) -> bool:
    """GET /v2/bookings?status=... as Cal.com lists them (§1.7)."""
    live = booking.status == "accepted"
    return {
        "upcoming": live and booking.end >= now,
        "past": live and booking.end < now,
        "cancelled": booking.status in ("cancelled", "rejected"),
        "unconfirmed": booking.status == "pending" and booking.end >= now,
        "recurring": False,
    }[status]


def _booking_rules(body: JSON) -> list[_Violation]:
    """The create-booking rules that hold with or without the spec (create-booking.input.ts)."""
    problems: list[_Violation] = []
    if _instant(body.get("start")) is None:
        problems.append(_Violation("start", body.get("start"), _START_RULE))
    if "eventTypeId" in body and not _is_int(body["eventTypeId"]):
        problems.append(
            _Violation(
                "eventTypeId",
                body["eventTypeId"],
                {"isInt": "eventTypeId must be an integer number"},
            )
        )
    attendee = body.get("attendee")
    if not isinstance(attendee, dict):
        nested = {"nestedValidation": "nested property attendee must be either object or array"}
        return [*problems, _Violation("attendee", attendee, nested)]
    children: list[_Violation] = []
    if not isinstance(attendee.get("name"), str):
        children.append(
            _Violation("name", attendee.get("name"), {"isString": "name must be a string"})
        )
    if _zone(attendee.get("timeZone")) is None:
        tz = {"isTimeZone": "timeZone must be a valid IANA time-zone"}
        children.append(_Violation("timeZone", attendee.get("timeZone"), tz))
    email, phone = attendee.get("email"), attendee.get("phoneNumber")
    if email and not (isinstance(email, str) and _EMAIL.match(email)):
        children.append(_Violation("email", email, {"customValidation": "Invalid email format"}))
    if not (_given(email) or _given(phone)):
        rule = {
            "requireEmailOrPhone": "At least one contact method (email or phone number) must be "
            "provided"
        }
        children.append(_Violation("email", email, rule))
    if phone and not (isinstance(phone, str) and _PHONE.match(phone)):
        text = "Invalid phone number format. Please use international format."
        children.append(_Violation("phoneNumber", phone, {"customValidation": text}))
    if "language" in attendee and attendee["language"] not in _LANGUAGES:
        children.append(_enum_violation("language", attendee["language"], _LANGUAGES))
    if children:
        problems.append(_Violation("attendee", attendee, {}, children))
    metadata = body.get("metadata")
    if metadata is not None and not _metadata_ok(metadata):
        problems.append(_Violation("metadata", metadata, {"ValidateMetadata": _METADATA_RULE}))
    return problems


def _given(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _metadata_ok(metadata: Any) -> bool:
    """§1.6: at most 50 keys of at most 40 characters; strings of at most 500, numbers, booleans."""
    if not isinstance(metadata, dict) or len(metadata) > 50:
        return False
    for key, value in metadata.items():
        if len(key) > 40 or not isinstance(value, str | int | float | bool):
            return False
        if isinstance(value, str) and len(value) > 500:
            return False
    return True


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
