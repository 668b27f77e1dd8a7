"""A client's phone number or email, as they type or share it."""

from __future__ import annotations

import re
from enum import StrEnum

import phonenumbers

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]{2,}")
_PHONE_TYPED = re.compile(r"\+?[\d\s().-]{7,25}")
# E.164: at most 15 digits after the country code's '+'; fewer than 8 is no one's full number.
_MIN_DIGITS, _MAX_DIGITS = 8, 15
NAME_MAX = 100


class Problem(StrEnum):
    """Why typed text is not a contact, so the client is told what to fix."""

    EMAIL = "email"  # meant as an email (it has an @), but not one
    PHONE = "phone"  # digits, but no number that exists (or no country code)
    NEITHER = "neither"  # no digits and no @: letters, an emoji


def email(text: str) -> str | None:
    candidate = text.strip()
    return candidate if len(candidate) <= 254 and _EMAIL.fullmatch(candidate) else None


def phone(text: str) -> str | None:
    """A typed phone number in international form (+XXXXXXXXXXX), or None.

    Numbers need their country code. Written the Russian way without it, 8 916 123-45-67 (the
    trunk prefix 8, or 7) is read as +7 916 123-45-67: the salon's clients in Russia and
    Kazakhstan write it so. The number must exist in its country's numbering plan: Cal.com
    refuses a booking's phone field that libphonenumber does not call valid
    (calcom/cal.com packages/features/bookings/lib/getBookingResponsesSchema.ts at 0477e9c6:
    `isValidPhoneNumber` from libphonenumber-js, "invalid_number"), so the client hears it here.
    """
    text = text.strip()
    if not _PHONE_TYPED.fullmatch(text):
        return None
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        pass
    elif text.startswith("00"):
        digits = digits[2:]
    elif len(digits) == 11 and digits[0] in "78":
        digits = "7" + digits[1:]
    else:
        return None
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
        return None
    return _valid(f"+{digits}")


def problem(text: str) -> Problem:
    """What is wrong with text that is neither a phone number nor an email."""
    if "@" in text:
        return Problem.EMAIL
    if any(ch.isdigit() for ch in text):
        return Problem.PHONE
    return Problem.NEITHER


def readable(number: str) -> str:
    """A number as people read it: +7 916 123-45-67, +44 20 7946 0958."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def shared_phone(number: str) -> str | None:
    """A number a messenger shared (Telegram sends it with or without '+'). The messenger
    verified it, so only its shape is checked."""
    digits = re.sub(r"\D", "", number)
    return f"+{digits}" if _MIN_DIGITS <= len(digits) <= _MAX_DIGITS else None


def name(text: str) -> str | None:
    cleaned = " ".join(text.split())
    if not cleaned or len(cleaned) > NAME_MAX or not any(ch.isalpha() for ch in cleaned):
        return None
    return cleaned


def _valid(candidate: str) -> str | None:
    try:
        parsed = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
