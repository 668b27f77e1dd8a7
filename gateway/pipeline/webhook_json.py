"""Reading a webhook's JSON: the same way at the edge and in the worker, with a bounded outcome.

The stdlib's `json.loads` turns hostile but well-formed bodies into exceptions that are not
`JSONDecodeError`, some only later and some depending on the stack: a number of more than 4,300
digits is a `ValueError` (Python's `sys.int_info.default_max_str_digits`), nesting near 1,000
levels a `RecursionError`, and a lone surrogate (`"\\ud800"`) loads fine but cannot be encoded
afterwards. orjson refuses all of these with its `JSONDecodeError`, deterministically: unpaired
surrogates (RFC 8259 §8.2: such strings are not interoperable), NaN and Infinity (not JSON,
RFC 8259 §6), numbers out of a double's range, and nesting beyond its fixed limit of 1,024
levels. What the edge accepted, the worker reads again the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.pipeline.edge import Malformed
from gateway.pipeline.streams import Unreadable


def load(raw: bytes | str) -> Any:
    """The body's JSON value; Malformed (a 400) when it is not JSON that a provider sends."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"not JSON ({exc.__class__.__name__})") from None


def load_object(raw: bytes | str) -> dict[str, Any]:
    """The body as a JSON object: every provider's webhook is one."""
    value = load(raw)
    if not isinstance(value, dict):
        raise Malformed("not a JSON object")
    return value


def whole_number(value: Any) -> int | None:
    """An id sent as a JSON integer (never a bool or a float), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def entry_object(raw: bytes) -> dict[str, Any]:
    """A queued entry's body, in the worker: Unreadable (dropped, not retried) if not an object.

    The edge queued it only after `load_object` read it, so this fails only for an entry queued
    by an older version with looser rules; trying it again would fail the same way.
    """
    try:
        return load_object(raw)
    except Malformed as exc:
        raise Unreadable(str(exc)) from None


# A signature's timestamp: unix seconds, or milliseconds (13 digits) as some Novu components
# stamp them. ASCII digits only: `str.isdigit()` also accepts "²" and "٣", which `int()` then
# refuses or reads, and a 400-digit stamp would only waste the comparison.
_STAMP = re.compile(r"[0-9]{1,13}")


def stamp_of(value: str) -> int | None:
    """A signature header's timestamp as a number, or None when it is not one."""
    return int(value) if _STAMP.fullmatch(value) else None


def instant(value: Any) -> datetime | None:
    """An ISO time a provider sent (`...Z` or `...+00:00`), in UTC; None for anything else,
    a naive time or one that cannot be moved to UTC ("0001-01-01T00:00:00+01:00" overflows)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.astimezone(UTC) if moment.tzinfo else None
    except (ValueError, OverflowError):
        return None
