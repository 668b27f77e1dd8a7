"""A client's phone number or email, as they type or share it."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]{2,}")
_PHONE_TYPED = re.compile(r"\+?[\d\s().-]{7,25}")
# E.164: at most 15 digits after the country code's '+'; fewer than 8 is no one's full number.
_MIN_DIGITS, _MAX_DIGITS = 8, 15
NAME_MAX = 100


def email(text: str) -> str | None:
    candidate = text.strip()
    return candidate if len(candidate) <= 254 and _EMAIL.fullmatch(candidate) else None


def phone(text: str) -> str | None:
    """A typed phone number in international form (+XXXXXXXXXXX), or None.

    Numbers need their country code. Written the Russian way without it, 8 916 123-45-67 (the
    trunk prefix 8, or 7) is read as +7 916 123-45-67: the salon's clients in Russia and
    Kazakhstan write it so.
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
    return f"+{digits}" if _MIN_DIGITS <= len(digits) <= _MAX_DIGITS else None


def shared_phone(number: str) -> str | None:
    """A number a messenger shared (Telegram sends it with or without '+')."""
    digits = re.sub(r"\D", "", number)
    return f"+{digits}" if _MIN_DIGITS <= len(digits) <= _MAX_DIGITS else None


def name(text: str) -> str | None:
    cleaned = " ".join(text.split())
    if not cleaned or len(cleaned) > NAME_MAX or not any(ch.isalpha() for ch in cleaned):
        return None
    return cleaned
