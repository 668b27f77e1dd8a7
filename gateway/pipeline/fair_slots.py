"""Slots shared fairly by the salons of one process (issue 18, "isolation and fairness").

Handling an entry and sending a message each take a slot; `FairSlots` bounds how many are in
flight in the whole process, whatever the number of salons. While a slot is free it is taken
at once. When none is, the entry waits, and a freed slot goes to the waiting salon with the
fewest slots in flight (ties in turn: the salon served longest ago first). So a salon with a
backlog of thousands holds no more than its share as soon as another salon has work; two busy
salons alternate; a salon with nothing waiting costs nothing; one salon alone may use every
slot.

A salon with nothing in flight always gets a slot at once, beyond the bound if need be: a
slot is held while the work awaits (a vendor's reply, Redis), so a salon whose Cal.com hangs
may hold every slot for as long as its calls take to time out (SERVICE_TIMEOUT_SECONDS, until
its breaker opens), and another salon's client must not wait for that. The bound is then
exceeded by at most one slot per salon.

The bound adapts to the event loop (`adapt`, fed by `keep_time`): a slot is held while the work
waits on a vendor, so a bound low enough to keep another salon's reply quick behind a backlog
of quick work (every step of its reply waits its turn behind the steps in flight) would cap
the throughput of slow vendors (a Cal.com answering in 300 ms, 4 slots: 13 turns/s for the
whole process). So the bound starts at its ceiling and is halved while the loop runs late (the
work in flight is CPU, and more of it only queues behind itself), then grows back by one each
time the loop keeps time (the work in flight waits on the network: more overlaps).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol


class Slots(Protocol):
    """What a consumer or a sender holds while it works: `async with slots: ...`
    (an `asyncio.Semaphore` is one, and so is a salon's share of `FairSlots`)."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None: ...


# The loop is "late" when a timer fires this much after its time, and "keeps time" under the
# second figure. A turn costs about a millisecond of CPU: 5 ms late means several turns were
# queued before the timer's callback.
LATE_SECONDS = 0.005
ON_TIME_SECONDS = 0.002


class FairSlots:
    """At most `limit` slots shared by salons, granted as the module says; the bound adapts
    between `floor` and `limit` (the ceiling) to how late the event loop runs."""

    def __init__(self, limit: int, floor: int | None = None) -> None:
        if limit < 1:
            raise ValueError("a scheduler needs at least one slot")
        self.ceiling = limit
        self.floor = min(limit, floor if floor is not None else limit)
        if self.floor < 1:
            raise ValueError("a scheduler needs at least one slot")
        self.limit = limit
        # Slots in flight by salon (a salon with none is absent).
        self.in_flight: dict[str, int] = {}
        self._busy = 0
        # The salons with work waiting, in the order they are served on a tie, each with its
        # waiters in arrival order.
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    def salon(self, salon_id: str) -> SalonSlots:
        """The salon's share: what its consumers and senders hold while they work."""
        return SalonSlots(self, salon_id)

    @property
    def busy(self) -> int:
        return self._busy

    def waiting(self, salon_id: str) -> int:
        queue = self._waiting.get(salon_id)
        return 0 if queue is None else sum(1 for future in queue if not future.done())

    async def acquire(self, salon_id: str) -> None:
        if salon_id not in self.in_flight or (self._busy < self.limit and not self._waiting):
            self._take(salon_id)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(salon_id, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # Granted, then cancelled before it could run: the slot goes on to the next.
                self.release(salon_id)
            else:
                self._withdraw(salon_id, future)
            raise

    def adapt(self, lateness: float) -> None:
        """How late the loop ran a timer: halve the bound when late, add one when on time.

        A single late reading halves it: waiting for a second one let a backlog's steps keep
        the bound high (late and on-time readings alternate under it), and `python -m bench
        fairness` put B's reply at 133-153 ms behind the backlog instead of 51-69. A late
        reading that was only a collection costs little: the bound is back at its ceiling
        within a dozen readings (a quarter of a second)."""
        if lateness > LATE_SECONDS:
            self.limit = max(self.floor, self.limit // 2)
        elif lateness < ON_TIME_SECONDS and self.limit < self.ceiling:
            self.limit += 1
            self._grant()

    def release(self, salon_id: str) -> None:
        self._busy -= 1
        left = self.in_flight[salon_id] - 1
        if left:
            self.in_flight[salon_id] = left
        else:
            del self.in_flight[salon_id]
        self._grant()

    def _take(self, salon_id: str) -> None:
        self._busy += 1
        self.in_flight[salon_id] = self.in_flight.get(salon_id, 0) + 1

    def _withdraw(self, salon_id: str, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(salon_id)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self._waiting[salon_id]

    def _grant(self) -> None:
        # A salon whose last slot was just given back goes on at once (see the module).
        for salon_id in [s for s in self._waiting if s not in self.in_flight]:
            self._grant_to(salon_id)
        while self._busy < self.limit and self._waiting:
            # min() keeps the first of equals: on a tie, the salon next in turn.
            self._grant_to(min(self._waiting, key=lambda s: self.in_flight.get(s, 0)))

    def _grant_to(self, salon_id: str) -> None:
        """The salon's first waiter gets a slot (one cancelled meanwhile is passed over)."""
        queue = self._waiting[salon_id]
        while queue:
            future = queue.popleft()
            if not future.done():
                self._take(salon_id)
                future.set_result(None)
                break
        if queue:
            self._waiting.move_to_end(salon_id)
        else:
            del self._waiting[salon_id]


@dataclass(frozen=True)
class WorkSlots:
    """The process's two schedulers: one for handling entries, one for sending messages."""

    handling: FairSlots
    sending: FairSlots

    async def keep_time(self, interval: float = 0.02) -> None:
        """Runs while the process serves: measures how late the loop runs a timer of
        `interval` seconds and lets both bounds adapt to it."""
        while True:
            started = time.monotonic()
            await asyncio.sleep(interval)
            lateness = time.monotonic() - started - interval
            self.handling.adapt(lateness)
            self.sending.adapt(lateness)


class SalonSlots:
    """One salon's way into the shared slots."""

    __slots__ = ("salon_id", "shared")

    def __init__(self, shared: FairSlots, salon_id: str) -> None:
        self.shared = shared
        self.salon_id = salon_id

    async def __aenter__(self) -> None:
        await self.shared.acquire(self.salon_id)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shared.release(self.salon_id)
