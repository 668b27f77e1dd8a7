"""Waiting and stopping in the long-running loops, without losing a cancellation.

On Python 3.11, `asyncio.wait_for` returns the result of an awaitable that finished in the same
loop turn as a cancellation of the waiting task, and the cancellation is gone: a `while True`
loop cancelled at that moment runs on, and whoever awaits it waits for ever (CPython gh-86296,
fixed in 3.12). The loops wait with `asyncio.timeout` instead, and shutdown never waits on a
task without a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set, at most `seconds`; whether it is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


async def stop_task(task: asyncio.Task[Any] | None, what: str, seconds: float = 3.0) -> None:
    """Cancel a background task and wait for it to end, asking again each second should a
    cancellation be swallowed, for at most `seconds`; then go on without it (logged)."""
    if task is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning("%s did not stop within %.0f s; left behind", what, seconds)
            return
        task.cancel()
        await asyncio.wait({task}, timeout=min(1.0, remaining))
    if not task.cancelled() and task.exception() is not None:
        log.warning("%s ended with %s", what, type(task.exception()).__name__)
