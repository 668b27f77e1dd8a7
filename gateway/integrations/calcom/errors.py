"""What Cal.com's failures mean to the caller: the error classes and how an answer maps to one.

Errors are `{"status": "error", "error": {"code", "message"}}` where `code` is an exception
class name (`shared/contracts/calcom-novu-metabase.md` §1.2), so they are told apart by HTTP
status and message, never by `code` alone.
"""

from __future__ import annotations

import json
from typing import Final

import httpx

from gateway.integrations.http import ServiceError, ServiceRejected, ServiceUnavailable

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


def error_fields(response: httpx.Response) -> tuple[str | None, str]:
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


def rejection(response: httpx.Response, *, slot_op: bool) -> CalcomRejected:
    code, message = error_fields(response)
    status = response.status_code
    lowered = message.lower()
    taken = status == 409 or any(marker in lowered for marker in _SLOT_TAKEN_MESSAGES)
    if slot_op and taken and status in (400, 409, 422):
        return SlotTaken(message, status=status, code=code)
    return CalcomRejected(message, status=status, code=code)
