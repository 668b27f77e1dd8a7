"""The inbox's bounds: no webhook waits for ever, and one bad event does not sink the others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.pipeline import inbox as inbox_module
from gateway.pipeline.inbox import Event, Inbox, InboxUnavailable, Unqueueable, id_problem
from gateway.pipeline.keys import Keys


def event(n: int, conversation: str | None = None) -> Event:
    return Event("telegram", f"u{n}", conversation or f"tg:{n}", b'{"update_id":1}')


async def test_an_event_that_cannot_be_written_fails_alone(redis: Redis, salon_id: str) -> None:
    inbox = Inbox(redis, Keys(salon_id, 4), 3600)
    # A conversation id with a lone surrogate cannot be encoded. It goes out in one batch with
    # the others (all put in the same turn of the loop) and fails alone: they are queued.
    results = await asyncio.gather(
        inbox.put(event(1)),
        inbox.put(event(2, "cal:\ud800")),
        inbox.put(event(3)),
        return_exceptions=True,
    )
    assert results[0] is True
    assert results[2] is True
    assert isinstance(results[1], Unqueueable)
    assert str(results[1]) == "conversation id not valid UTF-8"
    assert await redis.exists(f"fd:{{{salon_id}}}:dedup:telegram:u2") == 0
    assert await inbox.put(event(3)) is False  # and de-duplicated as ever


async def test_a_batch_of_nothing_but_bad_events_sends_nothing(redis: Redis, salon_id: str) -> None:
    inbox = Inbox(redis, Keys(salon_id, 4), 3600)
    with pytest.raises(Unqueueable, match="event id empty"):
        await inbox.put(Event("telegram", "", "tg:1", b"{}"))
    assert [key async for key in redis.scan_iter(match=f"fd:{{{salon_id}}}:*")] == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("tg:42", None),
        ("wa:+447700900777", None),
        ("cw:Ünïcödé", None),
        ("", "empty"),
        ("x" * 257, "longer than 256 characters"),
        ("tg:1\n2", "not printable"),
        ("tg:\x00", "not printable"),
        ("cal:\udc80", "not valid UTF-8"),
    ],
)
def test_ids_that_reach_redis_keys_are_checked(value: str, problem: str | None) -> None:
    assert id_problem(value) == problem


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
