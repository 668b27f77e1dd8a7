"""Cal.com's payloads as typed models, and the parsing that keeps one odd item from hiding the rest.

Field names and shapes follow `shared/contracts/calcom-novu-metabase.md` §1.4-§1.10 (event types,
slots, reservations, bookings, webhooks); Cal.com's camelCase becomes snake_case attributes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, TypeVar

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

from gateway.integrations.calcom.errors import CalcomUnavailable

# One logger for the whole Cal.com client, whichever of its modules speaks.
log = logging.getLogger("gateway.integrations.calcom.api")

# Where the caller's idempotency key travels: the booking's own metadata, which Cal.com returns
# on every read and in every webhook payload (§1.6, §1.10).
IDEMPOTENCY_METADATA_KEY: Final = "frontdesk_key"

# Booking statuses as the REST API spells them (lowercase; webhooks use UPPERCASE, §1.10).
ACCEPTED: Final = "accepted"
PENDING: Final = "pending"
CANCELLED: Final = "cancelled"
REJECTED: Final = "rejected"


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


M = TypeVar("M", bound=BaseModel)


def parse_one(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CalcomUnavailable(
            f"unexpected {model.__name__}: {exc.error_count()} problem(s)", code="bad_response"
        ) from exc


def parse_list(model: type[M], data: Any, what: str) -> list[M]:
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


def one_booking(data: Any, uid: str | None) -> Booking:
    """A booking from `data`, which is an array for recurring series (§1.6): then the
    occurrence with `uid`, else the earliest."""
    if isinstance(data, list):
        bookings = parse_list(Booking, data, "booking")
        if not bookings:
            raise CalcomUnavailable("empty booking list", code="bad_response")
        exact = [b for b in bookings if b.uid == uid]
        return exact[0] if exact else min(bookings, key=lambda b: b.start)
    return parse_one(Booking, data)


def slot_range(item: Any, duration: int | None) -> SlotRange:
    raw = {"start": item} if isinstance(item, str) else item
    if isinstance(raw, dict) and "end" not in raw and "start" in raw and duration:
        # `format=range` not honoured (older instance): the end follows from the duration.
        start = parse_one(SlotRange, {"start": raw["start"], "end": raw["start"]}).start
        raw = {**raw, "end": start + timedelta(minutes=duration)}
    return parse_one(SlotRange, raw)
