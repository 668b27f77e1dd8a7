"""The write protocol of the Cal.com client: a booking write is never repeated blindly.

DESIGN §5, "nothing twice": a booking carries the caller's idempotency key in its metadata
(`shared/contracts/calcom-novu-metabase.md` §1.6, §1.10), and after any answer that leaves the
outcome unknown the client looks for that key before it tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gateway.integrations.calcom.errors import (
    BookingUncertain,
    CalcomError,
    CalcomRejected,
    CalcomUnavailable,
    RateLimited,
)
from gateway.integrations.calcom.models import Booking

# One logger for the whole Cal.com client, whichever of its modules speaks.
log = logging.getLogger("gateway.integrations.calcom.api")

Send = Callable[[], Awaitable[Booking]]
Find = Callable[[], Awaitable[Booking | None]]


async def write_once(
    what: str,
    key: str,
    send: Send,
    find: Find,
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
                found = await _lookup(find, key, ambiguous)
                if found is not None:
                    return found
            raise
        except CalcomUnavailable as exc:
            if isinstance(exc, BookingUncertain):
                raise
            stop = isinstance(exc, RateLimited) or exc.code == "circuit_open"
            if exc.sent:
                ambiguous = exc
                found = await _lookup(find, key, exc)
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


async def _lookup(find: Find, key: str, cause: CalcomUnavailable) -> Booking | None:
    try:
        return await find()
    except CalcomError as exc:
        raise BookingUncertain(
            f"outcome unknown and the lookup failed ({exc.code})",
            idempotency_key=key,
            cause=cause,
        ) from exc
