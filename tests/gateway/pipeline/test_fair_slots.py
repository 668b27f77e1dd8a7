"""The order in which shared slots are granted across salons (no clocks: each step is one
turn of the event loop)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.pipeline.fair_slots import LATE_SECONDS, ON_TIME_SECONDS, FairSlots, WorkSlots


class Holders:
    """Tasks that each take a slot for a salon and hold it until told to let go."""

    def __init__(self, slots: FairSlots) -> None:
        self.slots = slots
        self.granted: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, salon: str, name: str) -> None:
        self.release[name] = asyncio.Event()
        self.tasks[name] = asyncio.create_task(self._hold(salon, name))

    async def _hold(self, salon: str, name: str) -> None:
        async with self.slots.salon(salon):
            self.granted.append(name)
            await self.release[name].wait()

    async def let_go(self, name: str) -> None:
        self.release[name].set()
        await self.tasks[name]
        await settle()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_free_slot_is_taken_at_once_and_one_salon_alone_may_take_them_all() -> None:
    slots = FairSlots(3)
    holders = Holders(slots)
    for n in range(4):
        holders.start("a", f"a{n}")
    await settle()
    assert holders.granted == ["a0", "a1", "a2"]
    assert slots.in_flight == {"a": 3}
    assert slots.waiting("a") == 1
    await holders.let_go("a0")
    assert holders.granted == ["a0", "a1", "a2", "a3"]
    for name in ("a1", "a2", "a3"):
        await holders.let_go(name)
    assert slots.busy == 0
    assert slots.in_flight == {}


async def test_a_salon_with_nothing_in_flight_gets_a_slot_even_when_all_are_taken() -> None:
    slots = FairSlots(2)
    holders = Holders(slots)
    for n in range(4):
        holders.start("a", f"a{n}")
    await settle()
    # A holds every slot (its calls may hang until they time out): B's first goes at once.
    holders.start("b", "b0")
    await settle()
    assert holders.granted == ["a0", "a1", "b0"]
    assert slots.busy == 3
    await holders.let_go("a0")
    # Back at the bound: nobody more until a slot is free under it.
    assert holders.granted == ["a0", "a1", "b0"]
    await holders.let_go("b0")
    assert holders.granted[-1] == "a2"


async def test_another_salon_is_granted_before_the_backlogs_queued_waiters() -> None:
    slots = FairSlots(4)
    holders = Holders(slots)
    for n in range(8):
        holders.start("a", f"a{n}")
    await settle()
    holders.start("b", "b0")
    holders.start("b", "b1")
    await settle()
    assert holders.granted == ["a0", "a1", "a2", "a3", "b0"]
    await holders.let_go("a0")
    await holders.let_go("a1")
    # a4..a7 came first, but B has fewer in flight: the freed slot is B's.
    assert holders.granted[-1] == "b1"
    assert slots.in_flight == {"a": 2, "b": 2}
    assert slots.waiting("a") == 4


async def test_busy_salons_take_turns_on_the_slots_another_frees() -> None:
    slots = FairSlots(6)
    holders = Holders(slots)
    for n in range(6):
        holders.start("d", f"d{n}")
    await settle()
    for salon in ("a", "b", "c"):
        holders.start(salon, f"{salon}-first")
    await settle()
    for salon in ("a", "b", "c"):
        for n in range(2):
            holders.start(salon, f"{salon}{n}")
    await settle()
    assert slots.busy == 9
    for n in range(6):
        await holders.let_go(f"d{n}")
    # Three slots came free under the bound, one for each salon in turn.
    assert holders.granted[-3:] == ["a0", "b0", "c0"]
    assert slots.in_flight == {"a": 2, "b": 2, "c": 2}


async def test_two_busy_salons_alternate() -> None:
    slots = FairSlots(5)
    holders = Holders(slots)
    for n in range(5):
        holders.start("c", f"c{n}")
    await settle()
    holders.start("a", "a-first")
    holders.start("b", "b-first")
    await settle()
    for salon in ("a", "b"):
        for n in range(3):
            holders.start(salon, f"{salon}{n}")
    await settle()
    for n in range(5):
        await holders.let_go(f"c{n}")
    assert holders.granted[-3:] == ["a0", "b0", "a1"]


async def test_a_cancelled_waiter_does_not_keep_a_slot_or_its_place() -> None:
    slots = FairSlots(1)
    holders = Holders(slots)
    holders.start("a", "a0")
    await settle()
    holders.start("a", "a1")
    holders.start("b", "b0")
    holders.start("b", "b1")
    await settle()
    assert holders.granted == ["a0", "b0"]
    holders.tasks["a1"].cancel()
    await settle()
    assert slots.waiting("a") == 0
    await holders.let_go("a0")
    assert holders.granted == ["a0", "b0"]
    await holders.let_go("b0")
    assert holders.granted == ["a0", "b0", "b1"]
    await holders.let_go("b1")
    assert slots.busy == 0
    assert slots.in_flight == {}
    with pytest.raises(asyncio.CancelledError):
        await holders.tasks["a1"]


async def test_a_waiter_cancelled_right_after_its_grant_passes_the_slot_on() -> None:
    slots = FairSlots(1)
    holders = Holders(slots)
    await slots.acquire("a")
    holders.start("a", "a1")
    holders.start("b", "b0")
    holders.start("b", "b1")
    await settle()
    assert holders.granted == ["b0"]
    # a1 is granted in the same turn as it is cancelled: it never runs, its slot is given
    # back, and b1 still waits for one under the bound.
    slots.release("a")
    holders.tasks["a1"].cancel()
    await settle()
    assert holders.granted == ["b0"]
    assert slots.in_flight == {"b": 1}
    await holders.let_go("b0")
    assert holders.granted == ["b0", "b1"]
    await holders.let_go("b1")
    assert slots.busy == 0
    assert slots.in_flight == {}


async def test_a_slot_is_given_back_when_the_work_fails() -> None:
    slots = FairSlots(1)
    with pytest.raises(RuntimeError):
        async with slots.salon("a"):
            raise RuntimeError("the handler failed")
    assert slots.busy == 0
    async with slots.salon("b"):
        assert slots.in_flight == {"b": 1}


def test_a_scheduler_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        FairSlots(0)


async def test_the_bound_halves_while_the_loop_runs_late_and_grows_back_while_it_keeps_time() -> (
    None
):
    slots = FairSlots(8, floor=2)
    holders = Holders(slots)
    for n in range(8):
        holders.start("a", f"a{n}")
    await settle()
    assert len(holders.granted) == 8
    late, on_time = LATE_SECONDS * 2, ON_TIME_SECONDS / 2
    slots.adapt(late)
    assert slots.limit == 4
    slots.adapt(late)
    slots.adapt(late)
    assert slots.limit == 2  # never under the floor
    # Work in flight beyond the new bound finishes; a freed slot is not given on until the
    # salon is under the bound.
    holders.start("a", "a8")
    for name in ("a0", "a1", "a2", "a3", "a4", "a5"):
        await holders.let_go(name)
    assert "a8" not in holders.granted
    await holders.let_go("a6")
    assert holders.granted[-1] == "a8"
    # On time again: the bound grows by one per reading, and a waiter gets the new slot.
    holders.start("a", "a9")
    await settle()
    assert "a9" not in holders.granted
    slots.adapt(on_time)
    await settle()
    assert slots.limit == 3
    assert holders.granted[-1] == "a9"
    slots.adapt((LATE_SECONDS + ON_TIME_SECONDS) / 2)  # neither: the bound stays
    assert slots.limit == 3
    for _ in range(10):
        slots.adapt(on_time)
    assert slots.limit == 8  # never over the ceiling
    for name in ("a7", "a8", "a9"):
        await holders.let_go(name)
    assert slots.busy == 0


async def test_the_timekeeper_reads_the_loop_and_adapts_both_bounds() -> None:
    work = WorkSlots(FairSlots(8, floor=1), FairSlots(8, floor=1))
    timing = asyncio.create_task(work.keep_time(interval=0.001))
    await asyncio.sleep(0.01)
    # The loop is blocked far beyond the late threshold: the bounds halve.
    blocked_until = time.monotonic() + LATE_SECONDS * 4
    while time.monotonic() < blocked_until:
        pass  # CPU work holding the loop, as a backlog of quick turns does
    await settle()
    assert work.handling.limit < 8
    assert work.sending.limit < 8
    # On time again, the bounds grow back to their ceiling.
    await asyncio.sleep(0.1)
    timing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await timing
    assert work.handling.limit == work.sending.limit == 8


def test_a_floor_needs_a_slot_too() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        FairSlots(4, floor=0)
