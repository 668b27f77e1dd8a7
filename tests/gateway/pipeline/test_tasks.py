"""Stopping background loops: a swallowed cancellation must not hang shutdown."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.pipeline.tasks import stop_task, wait_event


async def test_a_loop_that_swallows_a_cancellation_is_cancelled_again() -> None:
    rounds = 0

    async def stubborn() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if rounds == 1:
                    continue  # as asyncio.wait_for on 3.11 can do
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await stop_task(task, "stubborn loop")
    assert task.cancelled()
    assert rounds == 2


async def test_a_task_that_never_stops_is_left_behind_within_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def deaf() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(deaf())
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    with caplog.at_level(logging.WARNING, logger="gateway.pipeline.tasks"):
        await stop_task(task, "deaf loop", seconds=0.3)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert "deaf loop did not stop" in caplog.text
    release.set()
    task.cancel()
    await asyncio.wait({task})


async def test_a_task_that_failed_is_reported_and_none_is_a_no_op(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(broken())
    await asyncio.wait({task})
    with caplog.at_level(logging.WARNING, logger="gateway.pipeline.tasks"):
        await stop_task(task, "broken loop")
        await stop_task(None, "nothing")
    assert "broken loop ended with ValueError" in caplog.text


async def test_wait_event_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True
