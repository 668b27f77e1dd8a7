"""The tests' clock: set by hand, read by the code under test as its `() -> now`.

The code takes its time from a callable, so a test decides when "now" is. Some code reads a
monotonic or epoch float (the breaker, the token bucket, the log summaries, the Cal.com client's
Retry-After), the rest a zone-aware datetime (the stand-ins, the bot's slots): one clock serves
both, typed by what it starts at.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Generic, TypeVar

Instant = TypeVar("Instant", datetime, float)


class Clock(Generic[Instant]):
    """`clock()` is `clock.now`; a test sets `now` or moves it on with `advance`."""

    def __init__(self, now: Instant) -> None:
        self.now: Instant = now

    def __call__(self) -> Instant:
        return self.now

    def advance(self, seconds: float) -> Instant:
        """Move the clock on by `seconds` (a datetime by as many seconds) and say when it is."""
        if isinstance(self.now, datetime):
            self.now = self.now + timedelta(seconds=seconds)
        else:
            self.now = self.now + seconds
        return self.now
