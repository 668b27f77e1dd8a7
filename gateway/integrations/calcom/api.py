"""The Cal.com API v2 client: event types, slots, reservations and bookings, behind a breaker.

What the contract (`shared/contracts/calcom-novu-metabase.md` §1) makes this module do:

- Every request goes to `<root>/v2/...` with `Authorization: Bearer <key>` and the
  `cal-api-version` of its endpoint family (§1.1): a missing or wrong value silently selects an
  older contract or fails with a 500 (calcom/cal.com #16924).
- Answers are `{"status": "success", "data": ...}`; errors are `{"status": "error", "error":
  {"code", "message"}}` where `code` is an exception class name (§1.2), so errors are told apart
  by HTTP status and message, never by `code` alone.
- Rate limits (§1.3): `X-RateLimit-{Limit,Remaining,Reset}-<Name>`; the reset unit is unclear,
  so a value is read as seconds unless it is obviously an epoch. A 429 comes from a guard that
  runs before the handler, so the request had no effect and may be repeated after the wait.
- Slots (§1.5): `start`/`end` are UTC instants whatever `timeZone` says, an `end` at exactly
  00:00:00Z is stretched to 23:59:59 of that day, and the grouping keys follow the zone of the
  formatted slot; this client sends full UTC instants and groups the slots itself.
- Writes are never repeated blindly (DESIGN §5, "nothing twice"): a booking carries the
  caller's idempotency key in its metadata, and after any answer that leaves the outcome unknown
  the client looks for that key before it tries again (see `create_booking`).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from gateway.integrations.http import (
    JsonApiClient,
    ServiceError,
    ServiceRejected,
    ServiceUnavailable,
)

# What counts against Cal.com's breaker: 5xx, timeouts, connection errors; not 4xx, not 429
# (`RateLimited.counted`; the client keeps those out of the breaker anyway).
from gateway.integrations.http import is_failure as is_failure
from gateway.pipeline.resilience import BreakerOpen, CircuitBreaker

log = logging.getLogger("gateway.integrations.calcom.api")

# §1.1: the value each endpoint family requires. Team event types (`/v2/teams/{id}/event-types`)
# declare no version header in the vendor spec; they share the 2024-06-14 output types, so they
# get that value too (a header the endpoint does not read is harmless).
VERSION_EVENT_TYPES: Final = "2024-06-14"
VERSION_SLOTS: Final = "2024-09-04"  # also /v2/slots/reservations
VERSION_BOOKINGS: Final = "2024-08-13"
# `/v2/webhooks` takes any known version (webhooks.controller.ts: `version: API_VERSIONS_VALUES`).
VERSION_WEBHOOKS: Final = VERSION_BOOKINGS

# Where the caller's idempotency key travels: the booking's own metadata, which Cal.com returns
# on every read and in every webhook payload (§1.6, §1.10).
IDEMPOTENCY_METADATA_KEY: Final = "frontdesk_key"

# §1.6: metadata is at most 50 keys, keys at most 40 characters, string values at most 500.
METADATA_MAX_KEYS: Final = 50
METADATA_MAX_KEY_LENGTH: Final = 40
METADATA_MAX_VALUE_LENGTH: Final = 500

# §1.6 / the spec's `CreateBookingAttendee.language` enum.
ATTENDEE_LANGUAGES: Final = frozenset(
    {
        "ar", "ca", "de", "es", "eu", "he", "id", "ja", "lv", "pl", "ro", "sr", "th", "vi",
        "az", "cs", "el", "es-419", "fi", "hr", "it", "km", "nl", "pt", "ru", "sv", "tr",
        "zh-CN", "bg", "da", "en", "et", "fr", "hu", "iw", "ko", "no", "pt-BR", "sk", "ta",
        "uk", "zh-TW", "bn",
    }
)  # fmt: skip

# §1.7: the list filter takes these, not the booking statuses (a documented doc conflict).
BOOKING_LIST_STATUSES: Final = frozenset(
    {"upcoming", "recurring", "past", "cancelled", "unconfirmed"}
)

# Booking statuses as the REST API spells them (lowercase; webhooks use UPPERCASE, §1.10).
ACCEPTED: Final = "accepted"
PENDING: Final = "pending"
CANCELLED: Final = "cancelled"
REJECTED: Final = "rejected"

# `GET /v2/webhooks` pages: SkipTakePagination, at most 250 (webhooks.controller.ts, §1.10).
WEBHOOKS_PAGE: Final = 250

# Reservations are held for this long unless the caller asks otherwise (Cal.com's default).
DEFAULT_HOLD_MINUTES: Final = 5

# The reserved slot travels as the `uid` cookie, which every Cal.com version that knows
# reservations reads. Newer versions also accept `reservedSlotUid` in the body, but the
# 2024-08-13 body is validated with `forbidNonWhitelisted`, so on an instance whose DTO lacks
# the field that property would turn every booking into a 400.
RESERVATION_COOKIE: Final = "uid"

# Messages with which Cal.com says "this time is no longer free" (apps/api/v2 .../bookings
# errors.service.ts and slots.service.ts; 400 for bookings, 422 for reservations, 409 for a
# reservation held by someone else or a duplicate booking row).
_SLOT_TAKEN_MESSAGES: Final = (
    "already has booking at this time",
    "no_available_users_found_error",
    "hosts_unavailable_for_booking",
    "booking_time_out_of_bounds_error",
    'can\'t be booked at the "start" time',
    "attempting to book a meeting in the past",
    "already reserved",
    "already booked",
    "no more seats left",
    "reserved this booking time slot",
)

_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


# --- errors -----------------------------------------------------------------------------------


class CalcomError(ServiceError):
    """Cal.com answered with an error, or did not answer. `code` and `message` come from the
    error envelope when there is one."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        text = f"{status} {code}: {message}" if status else f"{code}: {message}"
        super().__init__(text, status=status)
        self.code = code
        self.message = message


class CalcomUnavailable(CalcomError, ServiceUnavailable):
    """The calendar is unreachable: a 5xx, a timeout, a connection error, an open breaker, an
    exhausted rate limit. The client tells the user the calendar is unreachable.

    `sent` is False only when the request certainly had no effect (it never left, or the
    breaker stopped it); `retry_after` is a hint in seconds when Cal.com or the breaker gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        sent: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.sent = sent
        self.retry_after = retry_after


class RateLimited(CalcomUnavailable):
    """429 and the advised wait is longer than this client waits: try again after
    `retry_after` seconds. The request had no effect."""

    # Cal.com is up and throttling us: not counted against its breaker.
    counted = False


class BookingUncertain(CalcomUnavailable):
    """A booking write may or may not have happened, and Cal.com could not be asked which.

    The caller must not tell the client "not booked": the booking, if it exists, carries
    `idempotency_key` in `metadata.frontdesk_key` (REST and webhooks), so a later
    `find_booking` or the BOOKING_CREATED webhook settles it.
    """

    def __init__(self, message: str, *, idempotency_key: str, cause: CalcomError) -> None:
        super().__init__(message, status=cause.status, code=cause.code, sent=True)
        self.idempotency_key = idempotency_key


class CalcomRejected(CalcomError, ServiceRejected):
    """A 4xx: Cal.com is up and refused this request (bad input, not found, not allowed)."""


class SlotTaken(CalcomRejected):
    """The chosen time is no longer bookable: booked or reserved by someone else, or now
    outside the event type's booking window. Offer other slots."""


# --- models -----------------------------------------------------------------------------------


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a time without an offset is ambiguous")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_aware_utc)]


def _lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class CalcomModel(BaseModel):
    """Cal.com's camelCase fields as snake_case attributes; unknown fields are kept, not refused
    (Cal.com adds output fields between releases)."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, value: Any) -> Any:
        # Cal.com sends `null` for many optional fields; absent reads better as the default.
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if v is not None}
        return value


class Person(CalcomModel):
    """A host or user of an event type or booking.

    The vendor spec types `users`/`hosts` of event types as arrays of strings while the service
    returns objects (`{userId, name, username, ...}` for team hosts); both are accepted.
    """

    id: int | None = None
    name: str | None = None
    username: str | None = None
    email: str | None = None
    time_zone: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"id": value}
        if isinstance(value, str):
            return {"id": int(value)} if value.isdigit() else {"username": value}
        if isinstance(value, dict) and value.get("id") is None and "userId" in value:
            return {**value, "id": value["userId"]}
        return value


class EventType(CalcomModel):
    """A salon service (§1.4). Team event types add `team_id`, `hosts`, `scheduling_type`."""

    id: int
    slug: str
    title: str
    length_in_minutes: int
    length_in_minutes_options: list[int] | None = None
    description: str | None = None
    # Cal.com's payment-app price and currency (top-level fields of EventTypeOutput_2024_06_14).
    price: float | None = None
    currency: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    hidden: bool = False
    owner_id: int | None = None
    users: list[Person] = Field(default_factory=list)
    team_id: int | None = None
    hosts: list[Person] = Field(default_factory=list)
    scheduling_type: str | None = None

    @property
    def category(self) -> str | None:
        """The salon's grouping of services, kept in the event type's metadata."""
        value = self.metadata.get("category")
        return str(value) if value not in (None, "") else None

    @property
    def listed_price(self) -> str | None:
        """The price as the salon lists it (metadata `price`, e.g. "1500" or "from 1500"),
        falling back to Cal.com's own `price` when a payment app sets one."""
        value = self.metadata.get("price")
        if value not in (None, ""):
            return str(value)
        if self.price:
            return f"{self.price:g}"
        return None


class SlotRange(CalcomModel):
    """A free slot, start and end in UTC. Seated event types add `attendees_count` and
    `booking_uid`."""

    start: UtcDatetime
    end: UtcDatetime
    attendees_count: int | None = None
    booking_uid: str | None = None


class Reservation(CalcomModel):
    """A slot held for `reservation_duration` minutes (§1.5, `POST /v2/slots/reservations`)."""

    uid: str = Field(alias="reservationUid")
    until: UtcDatetime = Field(alias="reservationUntil")
    event_type_id: int
    start: UtcDatetime = Field(alias="slotStart")
    end: UtcDatetime = Field(alias="slotEnd")
    duration: int | None = Field(default=None, alias="slotDuration")
    reservation_duration: int | None = None


class Attendee(CalcomModel):
    name: str = ""
    email: str | None = None
    time_zone: str | None = None
    language: str | None = None
    phone_number: str | None = None
    absent: bool | None = None


class BookingEventType(CalcomModel):
    id: int
    slug: str | None = None


class Booking(CalcomModel):
    """A booking as the REST API returns it (§1.6 `BookingOutput_2024_08_13`)."""

    id: int
    uid: str
    title: str = ""
    status: Annotated[str, BeforeValidator(_lowercase)]
    start: UtcDatetime
    end: UtcDatetime
    duration: int | None = None
    event_type_id: int | None = None
    event_type: BookingEventType | None = None
    attendees: list[Attendee] = Field(default_factory=list)
    hosts: list[Person] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    location: str | None = None
    cancellation_reason: str | None = None
    cancelled_by_email: str | None = None
    rescheduling_reason: str | None = None
    rescheduled_by_email: str | None = None
    rescheduled_from_uid: str | None = None
    rescheduled_to_uid: str | None = None
    recurring_booking_uid: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        # `eventTypeId` is deprecated in favour of `eventType.id`: keep both working.
        event_type = value.get("eventType")
        if value.get("eventTypeId") is None and isinstance(event_type, dict) and "id" in event_type:
            value = {**value, "eventTypeId": event_type["id"]}
        return value

    @property
    def active(self) -> bool:
        return self.status in (ACCEPTED, PENDING)

    @property
    def idempotency_key(self) -> str | None:
        value = self.metadata.get(IDEMPOTENCY_METADATA_KEY)
        return value if isinstance(value, str) else None


class Webhook(CalcomModel):
    """A webhook of the API key's user (`UserWebhookOutputDto`, §1.10). Its id is opaque: the
    controller takes it as a string path parameter (webhooks.controller.ts)."""

    id: Annotated[str, BeforeValidator(str)]
    subscriber_url: str
    triggers: list[str] = Field(default_factory=list)
    active: bool = True
    # An exposed output field (outputs/webhook.output.ts); None when unset or not shown.
    secret: str | None = None
    payload_template: str | None = None


@dataclass(frozen=True)
class RateBudget:
    """What Cal.com last said about one named rate limit (`X-RateLimit-*-<name>`)."""

    name: str
    limit: int | None
    remaining: int | None
    reset_after: float | None  # seconds, as read from the reset header
    observed_at: float  # time.monotonic()


# --- the client -------------------------------------------------------------------------------

Sleep = Callable[[float], Awaitable[None]]
_Family = Literal["event-types", "slots", "bookings", "webhooks"]
_VERSIONS: Final[dict[_Family, str]] = {
    "event-types": VERSION_EVENT_TYPES,
    "slots": VERSION_SLOTS,
    "bookings": VERSION_BOOKINGS,
    "webhooks": VERSION_WEBHOOKS,
}


def api_root(base_url: str) -> str:
    """`https://cal.example/api/v2/`, `.../v2` or `.../api` → the root that `/v2/...` goes after."""
    url = base_url.strip().rstrip("/")
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError("the Cal.com API URL must be an http(s) URL")
    if url.endswith("/v2"):
        url = url[: -len("/v2")]
    return url


class CalcomClient(JsonApiClient):
    """Typed async client for Cal.com API v2. One per deployment; share it between workers.

    `breaker` counts only what says the service is down (5xx, timeouts, connection errors);
    build it with `is_failure` from this module. `timeout` bounds every call (connect at most
    5 s). Reads are retried `retries` times with a short backoff; writes never blindly. Every
    request carries its own auth and version headers (`_build`): `http` may be a shared client.
    """

    unavailable_error = CalcomUnavailable
    rejected_error = CalcomRejected

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        breaker: CircuitBreaker,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.3,
        max_rate_wait: float = 10.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("a Cal.com API key is required")
        self.root = api_root(base_url)
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        super().__init__(
            f"{self.root}/v2",
            {},
            breaker,
            timeout=self._timeout,
            transport=transport,
            http=http,
            # A backstop over the whole exchange: httpx's read timeout is per chunk.
            deadline=timeout * 1.5,
        )
        self._retries = max(0, retries)
        self._backoff = backoff
        self._max_rate_wait = max_rate_wait
        self._sleep = sleep
        self._budgets: dict[str, RateBudget] = {}

    @property
    def rate_budget(self) -> RateBudget | None:
        """The most constrained rate limit Cal.com reported last (for metrics and `check`)."""
        known = [b for b in self._budgets.values() if b.remaining is not None]
        return min(known, key=lambda b: b.remaining or 0) if known else None

    # --- event types --------------------------------------------------------------------------

    async def event_types(self, team_id: int | None = None) -> list[EventType]:
        """The salon's services: the team's event types when `team_id` is given (set
        `CALCOM_TEAM_ID` when services are team event types), else the API key owner's own
        (hidden ones included; filter on `hidden`)."""
        path = f"/teams/{team_id}/event-types" if team_id is not None else "/event-types"
        data = await self._data("GET", path, family="event-types")
        return _parse_list(EventType, data, "event type")

    async def event_type(
        self, event_type_id: int, *, team_id: int | None = None
    ) -> EventType | None:
        """One event type, or None when Cal.com does not know it (404 or `data: null`)."""
        path = (
            f"/teams/{team_id}/event-types/{event_type_id}"
            if team_id is not None
            else f"/event-types/{event_type_id}"
        )
        try:
            data = await self._data("GET", path, family="event-types")
        except CalcomRejected as exc:
            if exc.status == 404:
                return None
            raise
        return None if data is None else _parse_one(EventType, data)

    # --- slots --------------------------------------------------------------------------------

    async def slots(
        self,
        event_type_id: int,
        start: datetime,
        end: datetime,
        time_zone: str,
        *,
        duration: int | None = None,
        booking_uid_to_reschedule: str | None = None,
    ) -> dict[date, list[SlotRange]]:
        """Free slots between two instants, grouped by their date in `time_zone` (the salon's).

        The grouping is computed here from each slot's start, not taken from Cal.com's keys,
        whose zone the contract leaves open (§1.5 [U]).
        """
        zone = _zone(time_zone)
        start_utc, end_utc = _utc(start, "start"), _utc(end, "end")
        if end_utc <= start_utc:
            raise ValueError("end must be after start")
        # §1.5: an end at exactly 00:00:00Z is stretched to 23:59:59 of that day.
        if end_utc.time() == datetime.min.time():
            end_utc -= timedelta(seconds=1)
        params: dict[str, str] = {
            "eventTypeId": str(event_type_id),
            "start": _iso_z(start_utc),
            "end": _iso_z(end_utc),
            "timeZone": time_zone,
            "format": "range",
        }
        if duration is not None:
            params["duration"] = str(duration)
        if booking_uid_to_reschedule:
            params["bookingUidToReschedule"] = booking_uid_to_reschedule
        data = await self._data("GET", "/slots", family="slots", params=params)
        if not isinstance(data, dict):
            raise CalcomUnavailable("slots: `data` is not an object", code="bad_response")
        found: dict[date, dict[datetime, SlotRange]] = {}
        for items in data.values():
            for item in items if isinstance(items, list) else []:
                slot = _slot(item, duration)
                found.setdefault(slot.start.astimezone(zone).date(), {})[slot.start] = slot
        return {day: [found[day][t] for t in sorted(found[day])] for day in sorted(found)}

    async def reserve(
        self,
        event_type_id: int,
        start: datetime,
        *,
        duration: int | None = None,
        hold_minutes: int | None = None,
    ) -> Reservation | None:
        """Hold a slot while the client confirms. None when this Cal.com has no reservations
        endpoint (404 for the route itself); SlotTaken when someone else holds or booked it.

        Not retried on a timeout: a reservation that did happen would block our own booking of
        the same time on newer Cal.com versions, so the caller should carry on without a hold
        (and may get SlotTaken on booking for the hold's few minutes).
        """
        body: dict[str, Any] = {"eventTypeId": event_type_id, "slotStart": _iso_z(_utc(start))}
        if duration is not None:
            body["slotDuration"] = duration
        if hold_minutes is not None:
            body["reservationDuration"] = hold_minutes
        try:
            data = await self._data(
                "POST", "/slots/reservations", family="slots", json_body=body, slot_op=True
            )
        except CalcomRejected as exc:
            # Unknown event type: "Event Type with ID=1 not found". A missing route: "Cannot POST".
            if exc.status == 404 and "event type" not in exc.message.lower():
                log.info(
                    "calcom: no reservations endpoint on this instance; booking without a hold"
                )
                return None
            raise
        return _parse_one(Reservation, data)

    async def release(self, reservation_uid: str) -> None:
        """Give a held slot back (the booking it was held for did not happen). A hold that is
        gone already is no error."""
        try:
            await self._data(
                "DELETE",
                f"/slots/reservations/{_segment(reservation_uid)}",
                family="slots",
                idempotent=True,
            )
        except CalcomRejected as exc:
            if exc.status != 404:
                raise

    # --- bookings: reads ----------------------------------------------------------------------

    async def booking(self, uid: str) -> Booking | None:
        """One booking by uid, or None when Cal.com does not know it. A recurring series uid
        returns its first occurrence."""
        try:
            data = await self._data("GET", f"/bookings/{_segment(uid)}", family="bookings")
        except CalcomRejected as exc:
            if exc.status == 404:
                return None
            raise
        return _one_booking(data, uid)

    async def bookings(
        self,
        *,
        attendee_email: str | None = None,
        event_type_id: int | None = None,
        status: str | Sequence[str] | None = None,
        after_start: datetime | None = None,
        before_end: datetime | None = None,
        after_updated_at: datetime | None = None,
        after_created_at: datetime | None = None,
        take: int = 100,
        max_items: int = 1000,
    ) -> list[Booking]:
        """Bookings visible to the API key (auth required), following pages up to `max_items`.

        `status` takes the list filter's values (`upcoming`, `past`, `cancelled`,
        `unconfirmed`, `recurring`), not booking statuses (§1.7). With `after_updated_at` the
        result is sorted by update time (the reconciliation feed, §1.10), with
        `after_created_at` by creation, else by start.
        """
        if not 1 <= take <= 250:
            raise ValueError("take must be between 1 and 250")
        params: dict[str, str] = {}
        if attendee_email:
            params["attendeeEmail"] = attendee_email
        if event_type_id is not None:
            params["eventTypeId"] = str(event_type_id)
        if status:
            statuses = [status] if isinstance(status, str) else list(status)
            unknown = set(statuses) - BOOKING_LIST_STATUSES
            if unknown:
                raise ValueError(f"unknown booking list status {sorted(unknown)}")
            params["status"] = ",".join(statuses)
        if after_start is not None:
            params["afterStart"] = _iso_z(_utc(after_start, "after_start"))
        if before_end is not None:
            params["beforeEnd"] = _iso_z(_utc(before_end, "before_end"))
        if after_updated_at is not None:
            params["afterUpdatedAt"] = _iso_z(_utc(after_updated_at, "after_updated_at"))
            params["sortUpdatedAt"] = "asc"
        elif after_created_at is not None:
            params["afterCreatedAt"] = _iso_z(_utc(after_created_at, "after_created_at"))
            params["sortCreated"] = "asc"
        else:
            params["sortStart"] = "asc"
        found: list[Booking] = []
        skip = 0
        while len(found) < max_items:
            page = {**params, "take": str(take), "skip": str(skip)}
            envelope = await self._call_envelope("GET", "/bookings", family="bookings", params=page)
            items = envelope.get("data")
            batch = _parse_list(Booking, items, "booking")
            found.extend(batch)
            pagination = envelope.get("pagination")
            more = isinstance(pagination, dict) and pagination.get("hasNextPage") is True
            if not more or not isinstance(items, list) or not items:
                break
            skip += len(items)
        return found[:max_items]

    async def find_booking(
        self, event_type_id: int, start: datetime, idempotency_key: str
    ) -> Booking | None:
        """The booking made with `idempotency_key` for this event type and start, if any.

        Searches that event type's bookings starting from `start` (a minute's margin) and ending
        within a day, and matches `metadata.frontdesk_key`; an active booking wins over a
        cancelled one.
        """
        start_utc = _utc(start)
        candidates = await self.bookings(
            event_type_id=event_type_id,
            after_start=start_utc - timedelta(minutes=1),
            before_end=start_utc + timedelta(days=1),
            take=100,
            max_items=500,
        )
        mine = [b for b in candidates if b.idempotency_key == idempotency_key]
        mine.sort(key=lambda b: (not b.active, b.start))
        return mine[0] if mine else None

    # --- webhooks -----------------------------------------------------------------------------

    async def webhooks(self) -> list[Webhook]:
        """Every webhook of the key's user (`GET /v2/webhooks`, pages of at most 250)."""
        found: list[Webhook] = []
        while True:
            page = {"take": str(WEBHOOKS_PAGE), "skip": str(len(found))}
            data = await self._data("GET", "/webhooks", family="webhooks", params=page)
            batch = _parse_list(Webhook, data, "webhook")
            found.extend(batch)
            if len(data) < WEBHOOKS_PAGE:
                return found

    async def ensure_webhook(
        self, subscriber_url: str, triggers: Sequence[str], secret: str
    ) -> tuple[str, Webhook]:
        """The webhook to `subscriber_url` exists, active, with exactly these triggers and this
        secret: created when missing, PATCHed with only what differs, else left alone. Returns
        what was done ("created", "updated: <fields>", "unchanged") and the webhook.

        Cal.com keeps one webhook per user and subscriber URL (user-webhooks.service.ts answers
        409 to a second), so the URL finds it. The secret is compared with the one the API
        shows (an exposed output field); a Cal.com that does not show it gets it again."""
        wanted: dict[str, Any] = {
            "subscriberUrl": subscriber_url,
            "triggers": sorted(triggers),
            "active": True,
            "secret": secret,
        }
        existing = next(
            (w for w in await self.webhooks() if w.subscriber_url == subscriber_url), None
        )
        if existing is None:
            data = await self._data("POST", "/webhooks", family="webhooks", json_body=wanted)
            return "created", _parse_one(Webhook, data)
        changes: dict[str, Any] = {}
        if sorted(existing.triggers) != wanted["triggers"]:
            changes["triggers"] = wanted["triggers"]
        if not existing.active:
            changes["active"] = True
        if existing.secret != secret:
            changes["secret"] = secret
        if existing.payload_template:
            # A template replaces the body the handler reads (sendPayload.ts).
            changes["payloadTemplate"] = None
        if not changes:
            return "unchanged", existing
        data = await self._data(
            "PATCH",
            f"/webhooks/{_segment(existing.id)}",
            family="webhooks",
            json_body=changes,
            idempotent=True,
        )
        return f"updated: {', '.join(changes)}", _parse_one(Webhook, data)

    # --- bookings: writes ---------------------------------------------------------------------

    async def create_booking(
        self,
        event_type_id: int,
        start: datetime,
        attendee_name: str,
        *,
        idempotency_key: str,
        time_zone: str,
        language: str,
        email: str | None = None,
        phone: str | None = None,
        metadata: Mapping[str, str] | None = None,
        reservation_uid: str | None = None,
        length_in_minutes: int | None = None,
    ) -> Booking:
        """Book `start` (an aware datetime, sent as UTC) for the attendee, exactly once.

        `idempotency_key` names this booking intent (say `<salon>:<conversation>:<intent id>`):
        the same key always yields the same booking. It is stored in `metadata.frontdesk_key`.
        Before posting, the client looks for a booking with that key (a redelivered job finds
        the booking its first run made). After a timeout, a 5xx or a dropped connection it looks
        again; only when the booking is certainly absent does it post once more. When Cal.com
        cannot be asked, `BookingUncertain` says so.

        The attendee needs an email or a phone (international format; a WhatsApp id's digits
        are accepted and get a '+'). `time_zone` is the attendee's IANA zone and `language` one
        of Cal.com's languages (`ru`, `en`, ...). Raises SlotTaken, CalcomRejected,
        CalcomUnavailable (nothing was booked) or BookingUncertain.
        """
        start_utc = _utc(start)
        body = _booking_body(
            event_type_id,
            start_utc,
            attendee_name,
            idempotency_key=idempotency_key,
            time_zone=time_zone,
            language=language,
            email=email,
            phone=phone,
            metadata=metadata,
            length_in_minutes=length_in_minutes,
        )
        cookies = _reservation_cookie(reservation_uid)

        async def send() -> Booking:
            data = await self._data(
                "POST",
                "/bookings",
                family="bookings",
                json_body=body,
                cookies=cookies,
                idempotent=False,
                slot_op=True,
            )
            return _one_booking(data, None)

        async def find() -> Booking | None:
            return await self.find_booking(event_type_id, start_utc, idempotency_key)

        return await self._write_once("create", idempotency_key, send, find)

    async def reschedule(
        self,
        uid: str,
        start: datetime,
        reason: str | None = None,
        *,
        rescheduled_by: str | None = None,
        reservation_uid: str | None = None,
    ) -> Booking:
        """Move a booking to `start`. Cal.com makes a new booking with a new uid and cancels the
        old one, linking them by `rescheduledToUid` (§1.9): the returned booking is the new one.

        Never repeated blindly: before posting and after an ambiguous failure the old booking is
        read; if it already points to a booking at `start`, that booking is returned.
        `rescheduled_by` set to the event type owner's email auto-confirms event types that
        require confirmation.
        """
        start_utc = _utc(start)
        body: dict[str, Any] = {"start": _iso_z(start_utc)}
        if reason:
            body["reschedulingReason"] = reason
        if rescheduled_by:
            body["rescheduledBy"] = rescheduled_by
        cookies = _reservation_cookie(reservation_uid)

        async def send() -> Booking:
            data = await self._data(
                "POST",
                f"/bookings/{_segment(uid)}/reschedule",
                family="bookings",
                json_body=body,
                cookies=cookies,
                idempotent=False,
                slot_op=True,
            )
            return _one_booking(data, None)

        async def find() -> Booking | None:
            old = await self.booking(uid)
            if old is None or not old.rescheduled_to_uid:
                return None
            new = await self.booking(old.rescheduled_to_uid)
            return new if new is not None and new.start == start_utc else None

        return await self._write_once("reschedule", f"reschedule:{uid}", send, find)

    async def cancel(self, uid: str, reason: str | None = None) -> Booking:
        """Cancel a booking. Cancelling is idempotent in effect, so transient failures are
        retried; a booking that is already cancelled (a double tap, a redelivered job, our own
        earlier attempt) is returned as it is rather than reported as an error."""
        body: dict[str, Any] = {"cancellationReason": reason} if reason else {}
        try:
            data = await self._data(
                "POST",
                f"/bookings/{_segment(uid)}/cancel",
                family="bookings",
                json_body=body,
                idempotent=True,
            )
        except CalcomRejected as exc:
            if exc.status not in (400, 409, 422):
                raise
            try:
                current = await self.booking(uid)
            except CalcomError:
                raise exc from None
            if current is not None and current.status == CANCELLED:
                return current
            raise
        return _one_booking(data, uid)

    # --- the write protocol -------------------------------------------------------------------

    async def _write_once(
        self,
        what: str,
        key: str,
        send: Callable[[], Awaitable[Booking]],
        find: Callable[[], Awaitable[Booking | None]],
    ) -> Booking:
        """Post at most twice, and the second time only when the first certainly left no booking.

        A 5xx, a read timeout or a dropped connection may come after Cal.com committed the
        booking (it sends emails and calendar events after the insert), so each such failure
        is followed by a lookup. A request that never left (connection refused, open breaker)
        needs none. A SlotTaken after an ambiguous first attempt may be our own booking
        committed late, so it is checked too.
        """
        existing = await find()
        if existing is not None:
            log.info("calcom: %s already done for this key; not repeated", what)
            return existing
        ambiguous: CalcomUnavailable | None = None
        for attempt in (1, 2):
            try:
                return await send()
            except CalcomRejected:
                if ambiguous is not None:
                    found = await self._lookup(find, key, ambiguous)
                    if found is not None:
                        return found
                raise
            except CalcomUnavailable as exc:
                if isinstance(exc, BookingUncertain):
                    raise
                stop = isinstance(exc, RateLimited) or exc.code == "circuit_open"
                if exc.sent:
                    ambiguous = exc
                    found = await self._lookup(find, key, exc)
                    if found is not None:
                        log.info("calcom: %s went through despite %s", what, exc.code)
                        return found
                if stop or attempt == 2:
                    if ambiguous is not None:
                        raise BookingUncertain(
                            f"{what}: outcome unknown after {exc.code}",
                            idempotency_key=key,
                            cause=exc,
                        ) from exc
                    raise
                log.warning(
                    "calcom: %s failed (%s), certainly not done; trying once more", what, exc.code
                )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _lookup(
        self, find: Callable[[], Awaitable[Booking | None]], key: str, cause: CalcomUnavailable
    ) -> Booking | None:
        try:
            return await find()
        except CalcomError as exc:
            raise BookingUncertain(
                f"outcome unknown and the lookup failed ({exc.code})",
                idempotency_key=key,
                cause=cause,
            ) from exc

    # --- transport ----------------------------------------------------------------------------

    async def _data(self, method: str, path: str, **options: Any) -> Any:
        """The `data` of one call's envelope (options as `_call_envelope` takes them)."""
        return (await self._call_envelope(method, path, **options)).get("data")

    async def _call_envelope(
        self,
        method: str,
        path: str,
        *,
        family: _Family,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        cookies: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        slot_op: bool = False,
    ) -> dict[str, Any]:
        """One logical call: transient failures retried when `idempotent` (GETs by default),
        a 429 waited out once whatever the method (the throttler answers before the handler)."""
        if idempotent is None:
            idempotent = method == "GET"
        request = self._build(family, params, json_body, cookies)
        failures = 0
        waited_for_rate = False
        while True:
            try:
                response = await self._exchange(method, f"{self.root}/v2{path}", **request)
                self._note_rate(response)
                if response.status_code == 429:
                    wait = _advised_wait(response)
                    if not waited_for_rate and wait is not None and wait <= self._max_rate_wait:
                        waited_for_rate = True
                        log.warning("calcom: 429 on %s %s; waiting %.1fs", method, path, wait)
                        await self._sleep(wait)
                        continue
                    raise RateLimited(
                        "rate limit reached",
                        status=429,
                        code=_error(response)[0] or "ThrottlerException",
                        sent=False,
                        retry_after=wait if wait is not None else 60.0,
                    )
                if response.status_code >= 400:
                    raise _rejection(response, slot_op=slot_op)
                return _envelope(response)
            except CalcomUnavailable as exc:
                retryable = not isinstance(exc, RateLimited) and exc.code != "circuit_open"
                if not (idempotent and retryable and failures < self._retries):
                    raise
                failures += 1
                delay = self._backoff * (2 ** (failures - 1))
                log.warning(
                    "calcom: %s %s failed (%s); retry %d in %.2fs",
                    method,
                    path,
                    exc.code,
                    failures,
                    delay,
                )
                await self._sleep(delay)

    def _build(
        self,
        family: _Family,
        params: Mapping[str, str] | None,
        json_body: Mapping[str, Any] | None,
        cookies: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        """The request's parts besides method and URL, with its own auth: `http` may be shared."""
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "cal-api-version": _VERSIONS[family],
            "Accept": "application/json",
        }
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        return {
            "params": dict(params) if params else None,
            "json": dict(json_body) if json_body is not None else None,
            "headers": headers,
            "timeout": self._timeout,
        }

    async def _exchange(self, method: str, path: str, **request: Any) -> httpx.Response:
        """Send once through the breaker (the base's); an open breaker is the calendar being
        unreachable, with nothing sent."""
        try:
            return await super()._exchange(method, path, **request)
        except BreakerOpen as exc:
            raise CalcomUnavailable(
                str(exc), code="circuit_open", sent=False, retry_after=exc.retry_in
            ) from exc

    def _unreachable(self, exc: httpx.RequestError | TimeoutError) -> ServiceUnavailable:
        # Whether the request left decides whether a write may have happened (`sent`).
        name = type(exc).__name__
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return CalcomUnavailable(f"cannot connect: {name}", code="connect", sent=False)
        if isinstance(exc, httpx.TimeoutException | TimeoutError):
            return CalcomUnavailable(f"timed out: {name}", code="timeout")
        return CalcomUnavailable(f"connection failed: {name}", code="connection")

    def _unavailable(self, response: httpx.Response, call: str) -> ServiceUnavailable | None:
        # Only a 5xx says Cal.com is failing. A 429 comes from a guard that runs before the
        # handler (§1.3): waited out or raised as RateLimited outside the breaker.
        if response.status_code < 500:
            return None
        code, message = _error(response)
        return CalcomUnavailable(message, status=response.status_code, code=code or "ServerError")

    def _note_rate(self, response: httpx.Response) -> None:
        names: dict[str, dict[str, str]] = {}
        for header, value in response.headers.items():
            match = re.match(r"^x-ratelimit-(limit|remaining|reset)(?:-(.+))?$", header.lower())
            if match:
                names.setdefault(match.group(2) or "default", {})[match.group(1)] = value
        now = time.monotonic()
        for name, values in names.items():
            budget = RateBudget(
                name=name,
                limit=_int(values.get("limit")),
                remaining=_int(values.get("remaining")),
                reset_after=_reset_seconds(values.get("reset")),
                observed_at=now,
            )
            self._budgets[name] = budget
            if (
                budget.remaining is not None
                and budget.limit
                and budget.remaining < budget.limit // 10
            ):
                log.warning(
                    "calcom: rate limit %s low: %d of %d left", name, budget.remaining, budget.limit
                )


# --- helpers ----------------------------------------------------------------------------------


def _utc(value: datetime, name: str = "start") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (naive times are ambiguous)")
    return value.astimezone(UTC)


def _iso_z(value: datetime) -> str:
    """UTC ISO 8601 with a `Z`, to the second (what every Cal.com time parameter accepts)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None


def _segment(value: str) -> str:
    if not value or "/" in value or value in (".", ".."):
        raise ValueError("not a booking uid")
    return value


def _reservation_cookie(uid: str | None) -> dict[str, str] | None:
    if uid is None:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,200}", uid):
        raise ValueError("not a reservation uid")
    return {RESERVATION_COOKIE: uid}


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _reset_seconds(value: str | None) -> float | None:
    """The reset header as seconds from now. §1.3: documented as a Unix timestamp by a third
    party, a relative duration by the code: epochs (s or ms) are recognised, the rest is
    read as seconds."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if number > 1e12:  # epoch milliseconds
        return max(0.0, number / 1000 - time.time())
    if number > 1e9:  # epoch seconds
        return max(0.0, number - time.time())
    return max(0.0, number)


def _advised_wait(response: httpx.Response) -> float | None:
    retry_after = response.headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError):
                when = None
            if when is not None and when.tzinfo is not None:
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    resets = [
        seconds
        for header, value in response.headers.items()
        if header.lower().startswith("x-ratelimit-reset")
        and (seconds := _reset_seconds(value)) is not None
    ]
    return max(resets) if resets else None


def _error(response: httpx.Response) -> tuple[str | None, str]:
    """`(error.code, error.message)` from Cal.com's error envelope, or what there is."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return None, (text[:200] if text else response.reason_phrase or "error")
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            code = error.get("code")
            if not isinstance(message, str):
                message = json.dumps(message, ensure_ascii=False)[:500]
            return (str(code) if code is not None else None), message
        if isinstance(body.get("message"), str):  # Nest's bare shape, e.g. a missing route
            return (str(body.get("error")) if body.get("error") else None), body["message"]
    return None, response.reason_phrase or "error"


def _rejection(response: httpx.Response, *, slot_op: bool) -> CalcomRejected:
    code, message = _error(response)
    status = response.status_code
    lowered = message.lower()
    taken = status == 409 or any(marker in lowered for marker in _SLOT_TAKEN_MESSAGES)
    if slot_op and taken and status in (400, 409, 422):
        return SlotTaken(message, status=status, code=code)
    return CalcomRejected(message, status=status, code=code)


def _envelope(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise CalcomUnavailable(
            "answer is not JSON", status=response.status_code, code="bad_response"
        ) from None
    if not isinstance(body, dict) or "data" not in body or body.get("status") == "error":
        raise CalcomUnavailable(
            "answer is not a {status, data} envelope",
            status=response.status_code,
            code="bad_response",
        )
    return body


M = TypeVar("M", bound=BaseModel)


def _parse_one(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CalcomUnavailable(
            f"unexpected {model.__name__}: {exc.error_count()} problem(s)", code="bad_response"
        ) from exc


def _parse_list(model: type[M], data: Any, what: str) -> list[M]:
    """Parse every item that makes sense and skip (and log) the rest: one odd event type or
    booking must not hide the others."""
    if not isinstance(data, list):
        raise CalcomUnavailable(f"expected a list of {what}s", code="bad_response")
    parsed: list[M] = []
    for item in data:
        try:
            parsed.append(model.model_validate(item))
        except ValidationError as exc:
            ident = item.get("uid") or item.get("id") if isinstance(item, dict) else None
            log.warning(
                "calcom: skipping a %s (%s) Cal.com sent: %d problem(s)",
                what,
                ident,
                exc.error_count(),
            )
    return parsed


def _one_booking(data: Any, uid: str | None) -> Booking:
    """A booking from `data`, which is an array for recurring series (§1.6): then the
    occurrence with `uid`, else the earliest."""
    if isinstance(data, list):
        bookings = _parse_list(Booking, data, "booking")
        if not bookings:
            raise CalcomUnavailable("empty booking list", code="bad_response")
        exact = [b for b in bookings if b.uid == uid]
        return exact[0] if exact else min(bookings, key=lambda b: b.start)
    return _parse_one(Booking, data)


def _slot(item: Any, duration: int | None) -> SlotRange:
    raw = {"start": item} if isinstance(item, str) else item
    if isinstance(raw, dict) and "end" not in raw and "start" in raw and duration:
        # `format=range` not honoured (older instance): the end follows from the duration.
        start = _parse_one(SlotRange, {"start": raw["start"], "end": raw["start"]}).start
        raw = {**raw, "end": start + timedelta(minutes=duration)}
    return _parse_one(SlotRange, raw)


def _phone(value: str) -> str:
    number = _PHONE_SEPARATORS.sub("", value.strip())
    if number.isdigit():  # a WhatsApp id is the E.164 number without '+'
        number = f"+{number}"
    if not _E164.match(number):
        raise ValueError("phone must be an international number such as +79161234567")
    return number


def _booking_body(
    event_type_id: int,
    start_utc: datetime,
    attendee_name: str,
    *,
    idempotency_key: str,
    time_zone: str,
    language: str,
    email: str | None,
    phone: str | None,
    metadata: Mapping[str, str] | None,
    length_in_minutes: int | None,
) -> dict[str, Any]:
    """The 2024-08-13 create body, with the contract's rules checked before anything is sent."""
    name = attendee_name.strip()
    if not name:
        raise ValueError("the attendee needs a name")
    if not email and not phone:
        # §1.6: "email or phoneNumber must be present" (class-level rule of CreateBookingAttendee).
        raise ValueError("the attendee needs an email or a phone number")
    _zone(time_zone)
    if language not in ATTENDEE_LANGUAGES:
        raise ValueError(f"Cal.com does not know the language {language!r}")
    attendee: dict[str, Any] = {"name": name, "timeZone": time_zone, "language": language}
    if email:
        attendee["email"] = email.strip()
    if phone:
        attendee["phoneNumber"] = _phone(phone)
    meta = _metadata(metadata or {}, idempotency_key)
    body: dict[str, Any] = {
        "start": _iso_z(start_utc),
        "eventTypeId": event_type_id,
        "attendee": attendee,
        "metadata": meta,
    }
    if length_in_minutes is not None:
        body["lengthInMinutes"] = length_in_minutes
    return body


def _metadata(metadata: Mapping[str, str], key: str) -> dict[str, str]:
    if not key or len(key) > METADATA_MAX_VALUE_LENGTH:
        raise ValueError("the idempotency key must be 1-500 characters")
    given = metadata.get(IDEMPOTENCY_METADATA_KEY)
    if given is not None and given != key:
        raise ValueError(f"metadata {IDEMPOTENCY_METADATA_KEY!r} differs from idempotency_key")
    merged = {**metadata, IDEMPOTENCY_METADATA_KEY: key}
    if len(merged) > METADATA_MAX_KEYS:
        raise ValueError(f"metadata takes at most {METADATA_MAX_KEYS} keys (one is ours)")
    for name, value in merged.items():
        if not isinstance(name, str) or not 0 < len(name) <= METADATA_MAX_KEY_LENGTH:
            raise ValueError(
                f"metadata key {name!r} must be 1-{METADATA_MAX_KEY_LENGTH} characters"
            )
        if not isinstance(value, str) or len(value) > METADATA_MAX_VALUE_LENGTH:
            limit = METADATA_MAX_VALUE_LENGTH
            raise ValueError(f"metadata {name!r} must be a string of at most {limit} characters")
    return merged
