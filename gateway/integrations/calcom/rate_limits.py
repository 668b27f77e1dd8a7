"""Cal.com's rate limits: what its headers say about the budget left and how long to wait.

`shared/contracts/calcom-novu-metabase.md` §1.3: `X-RateLimit-{Limit,Remaining,Reset}-<Name>`;
the reset unit is unclear, so a value is read as seconds unless it is obviously an epoch. A 429
comes from a guard that runs before the handler, so the request had no effect and may be
repeated after the wait.
"""

from __future__ import annotations

import email.utils
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

_RATE_HEADER = re.compile(r"^x-ratelimit-(limit|remaining|reset)(?:-(.+))?$")


@dataclass(frozen=True)
class RateBudget:
    """What Cal.com last said about one named rate limit (`X-RateLimit-*-<name>`)."""

    name: str
    limit: int | None
    remaining: int | None
    reset_after: float | None  # seconds, as read from the reset header
    observed_at: float  # time.monotonic()


def budgets(response: httpx.Response, now: float) -> list[RateBudget]:
    """Every named limit the answer's headers report (`default` when the name is absent)."""
    names: dict[str, dict[str, str]] = {}
    for header, value in response.headers.items():
        match = _RATE_HEADER.match(header.lower())
        if match:
            names.setdefault(match.group(2) or "default", {})[match.group(1)] = value
    return [
        RateBudget(
            name=name,
            limit=_int(values.get("limit")),
            remaining=_int(values.get("remaining")),
            reset_after=_reset_seconds(values.get("reset")),
            observed_at=now,
        )
        for name, values in names.items()
    ]


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


def advised_wait(response: httpx.Response) -> float | None:
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
