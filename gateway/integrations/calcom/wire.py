"""What this client puts on the wire to Cal.com: times, path segments, the reservation cookie and
the booking body, each checked against the contract before anything is sent.

Times go out as full UTC instants (`shared/contracts/calcom-novu-metabase.md` §1.5); the booking
body follows the 2024-08-13 create contract (§1.6).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.integrations.calcom.models import IDEMPOTENCY_METADATA_KEY

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


# The reserved slot travels as the `uid` cookie, which every Cal.com version that knows
# reservations reads. Newer versions also accept `reservedSlotUid` in the body, but the
# 2024-08-13 body is validated with `forbidNonWhitelisted`, so on an instance whose DTO lacks
# the field that property would turn every booking into a 400.
RESERVATION_COOKIE: Final = "uid"

_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def utc(value: datetime, name: str = "start") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (naive times are ambiguous)")
    return value.astimezone(UTC)


def iso_z(value: datetime) -> str:
    """UTC ISO 8601 with a `Z`, to the second (what every Cal.com time parameter accepts)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iana_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None


def segment(value: str) -> str:
    if not value or "/" in value or value in (".", ".."):
        raise ValueError("not a booking uid")
    return value


def reservation_cookie(uid: str | None) -> dict[str, str] | None:
    if uid is None:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,200}", uid):
        raise ValueError("not a reservation uid")
    return {RESERVATION_COOKIE: uid}


def _phone(value: str) -> str:
    number = _PHONE_SEPARATORS.sub("", value.strip())
    if number.isdigit():  # a WhatsApp id is the E.164 number without '+'
        number = f"+{number}"
    if not _E164.match(number):
        raise ValueError("phone must be an international number such as +79161234567")
    return number


def booking_body(
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
    iana_zone(time_zone)
    if language not in ATTENDEE_LANGUAGES:
        raise ValueError(f"Cal.com does not know the language {language!r}")
    attendee: dict[str, Any] = {"name": name, "timeZone": time_zone, "language": language}
    if email:
        attendee["email"] = email.strip()
    if phone:
        attendee["phoneNumber"] = _phone(phone)
    meta = _metadata(metadata or {}, idempotency_key)
    body: dict[str, Any] = {
        "start": iso_z(start_utc),
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
