"""Free slots read from Cal.com, kept a few seconds for the process's conversations of a salon.

A client taps through days and times; each screen reads the same day's free slots, and many
clients look at the same days. Kept for `CALCOM_SLOTS_CACHE_SECONDS`, a repeated read costs no
HTTP call. An entry is dropped at once when this gateway books, moves or cancels a booking of
its event type, and when Cal.com's webhook tells of a booking change of it (handled in this
process). What a copy can miss is a change made elsewhere within those seconds (another worker
replica's booking, a change whose webhook has not come yet): the slot then looks free, Cal.com
refuses the booking, and the bot says the time was just taken and offers the day's times again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime

from gateway.integrations.calcom.models import SlotRange

Days = dict[date, list[SlotRange]]
# (event type, start, end, the booking being moved): the read's parameters.
Key = tuple[int, datetime, datetime, str | None]

DEFAULT_SECONDS = 20.0
DEFAULT_ENTRIES = 512


class SlotCache:
    """Free slots by read, for `ttl` seconds; the `entries` most recently used at most."""

    def __init__(
        self,
        ttl: float = DEFAULT_SECONDS,
        *,
        entries: int = DEFAULT_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.entries = entries
        self._clock = clock
        self._kept: OrderedDict[Key, tuple[float, Days]] = OrderedDict()
        # Bumped by each change of an event type's bookings (`all` for any): a read that began
        # before a change is not kept after it.
        self._changes: dict[int, int] = {}
        self._all = 0

    def mark(self, event_type_id: int) -> tuple[int, int]:
        """The change counters a read starts at; `put` compares them."""
        return self._all, self._changes.get(event_type_id, 0)

    def get(self, key: Key) -> Days | None:
        kept = self._kept.get(key)
        if kept is None:
            return None
        if kept[0] <= self._clock():
            del self._kept[key]
            return None
        self._kept.move_to_end(key)
        return kept[1]

    def put(self, key: Key, days: Days, mark: tuple[int, int]) -> None:
        if self.ttl <= 0 or mark != self.mark(key[0]):
            return
        self._kept[key] = (self._clock() + self.ttl, days)
        self._kept.move_to_end(key)
        while len(self._kept) > self.entries:
            self._kept.popitem(last=False)

    def changed(self, event_type_id: int | None) -> None:
        """Bookings of the event type changed (None: of one not known): its slots are read
        again."""
        if event_type_id is None:
            self._all += 1
            self._kept.clear()
            return
        self._changes[event_type_id] = self._changes.get(event_type_id, 0) + 1
        for key in [k for k in self._kept if k[0] == event_type_id]:
            del self._kept[key]

    def __len__(self) -> int:
        return len(self._kept)
