"""The order in which shared slots are granted across salons (no clocks: each step is one
turn of the event loop)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.pipeline.fair_slots import FairSlots


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


async def test_another_salon_is_granted_before_the_backlogs_queued_waiters() -> None:
    slots = FairSlots(2)
    holders = Holders(slots)
    for n in range(6):
        holders.start("a", f"a{n}")
    await settle()
    holders.start("b", "b0")
    await settle()
    assert holders.granted == ["a0", "a1"]
    await holders.let_go("a0")
    # a2..a5 came first, but B has nothing in flight: the freed slot is B's.
    assert holders.granted == ["a0", "a1", "b0"]
    await holders.let_go("a1")
    assert holders.granted[-1] == "a2"
    assert slots.in_flight == {"a": 1, "b": 1}


async def test_two_busy_salons_alternate() -> None:
    slots = FairSlots(1)
    holders = Holders(slots)
    holders.start("a", "first")
    await settle()
    for n in range(3):
        holders.start("a", f"a{n}")
    for n in range(3):
        holders.start("b", f"b{n}")
    await settle()
    for name in ("first", "a0", "b0", "a1", "b1", "a2"):
        await holders.let_go(name)
    assert holders.granted == ["first", "a0", "b0", "a1", "b1", "a2", "b2"]


async def test_three_salons_take_turns_on_a_tie() -> None:
    slots = FairSlots(1)
    holders = Holders(slots)
    holders.start("c", "first")
    await settle()
    for salon in ("a", "b", "c"):
        for n in range(2):
            holders.start(salon, f"{salon}{n}")
    await settle()
    order = ["first", "a0", "b0", "c0", "a1", "b1"]
    for name in order:
        await holders.let_go(name)
    assert holders.granted == [*order, "c1"]


async def test_a_cancelled_waiter_does_not_keep_a_slot_or_its_place() -> None:
    slots = FairSlots(1)
    holders = Holders(slots)
    holders.start("a", "a0")
    await settle()
    holders.start("a", "a1")
    holders.start("b", "b0")
    await settle()
    holders.tasks["a1"].cancel()
    await settle()
    assert slots.waiting("a") == 0
    await holders.let_go("a0")
    assert holders.granted == ["a0", "b0"]
    await holders.let_go("b0")
    assert slots.busy == 0
    with pytest.raises(asyncio.CancelledError):
        await holders.tasks["a1"]


async def test_a_waiter_cancelled_right_after_its_grant_passes_the_slot_on() -> None:
    slots = FairSlots(1)
    holders = Holders(slots)
    await slots.acquire("a")
    holders.start("b", "b0")
    holders.start("a", "a1")
    await settle()
    # Granted in the same turn as it is cancelled: it never runs, and the slot goes to a1.
    slots.release("a")
    holders.tasks["b0"].cancel()
    await settle()
    assert holders.granted == ["a1"]
    assert slots.in_flight == {"a": 1}
    await holders.let_go("a1")
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
