"""The inbox's bounds: no webhook waits for ever, and one bad event does not sink the others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway import inbox as inbox_module
from gateway.inbox import Event, Inbox, InboxUnavailable
from gateway.keys import Keys


def event(n: int, conversation: str | None = None) -> Event:
    return Event("telegram", f"u{n}", conversation or f"tg:{n}", b'{"update_id":1}')


async def test_an_event_that_cannot_be_written_fails_alone(redis: Redis, salon_id: str) -> None:
    inbox = Inbox(redis, Keys(salon_id, 4), 3600)
    # A conversation id with a lone surrogate cannot be encoded: its batch is refused (503),
    # and what comes next is written as usual.
    bad = asyncio.ensure_future(inbox.put(event(1, "cal:\ud800")))
    with pytest.raises(InboxUnavailable):
        await bad
    assert await inbox.put(event(2)) is True
    assert await inbox.put(event(2)) is False  # and de-duplicated as ever


async def test_an_event_waiting_too_long_for_redis_is_answered_unavailable(
    redis: Redis, salon_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "PUT_TIMEOUT", 0.2)
    inbox = Inbox(redis, Keys(salon_id, 4), 3600)
    written: list[int] = []
    real = inbox._script

    async def slow(**call: Any) -> Any:
        await asyncio.sleep(0.15)  # a Redis that answers, but slowly
        written.append(len(call["keys"]) // 2)
        return await real(**call)

    inbox._script = slow  # type: ignore[assignment]
    first = asyncio.ensure_future(inbox.put(event(1)))
    await asyncio.sleep(0)  # the first batch is on its way
    second = asyncio.ensure_future(inbox.put(event(2)))
    await asyncio.sleep(0.1)
    third = asyncio.ensure_future(inbox.put(event(3)))
    assert await first is True
    # The second had waited 0.15 s when its batch went: still in time; the third too.
    assert await second is True
    assert await third is True
    # A Redis slower than the bound: the batch is given up and its webhook answered 503.
    monkeypatch.setattr(inbox_module, "PUT_TIMEOUT", 0.1)
    with pytest.raises(InboxUnavailable):
        await inbox.put(event(4))
    assert written == [1, 2]


async def test_events_already_late_are_not_sent(
    redis: Redis, salon_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = Inbox(redis, Keys(salon_id, 4), 3600)
    release = asyncio.Event()
    real = inbox._script
    sent: list[int] = []

    async def stuck_once(**call: Any) -> Any:
        sent.append(len(call["keys"]) // 2)
        if len(sent) == 1:
            await release.wait()
        return await real(**call)

    inbox._script = stuck_once  # type: ignore[assignment]
    first = asyncio.ensure_future(inbox.put(event(1)))
    await asyncio.sleep(0)
    late = asyncio.ensure_future(inbox.put(event(2)))
    await asyncio.sleep(0.05)
    # By the time the first batch returns, the second event has waited past the bound.
    monkeypatch.setattr(inbox_module, "PUT_TIMEOUT", 0.01)
    release.set()
    assert await first is True
    with pytest.raises(InboxUnavailable):
        await late
    assert sent == [1]
