"""The outbox's acknowledgements, written together when they come together (a group commit).

Each delivered message is acknowledged in Redis (XACK, XDEL, its attempts forgotten) under the
shard's lease before its chat sends the next one. One at a time, that was a Redis call per sent
message: under a backlog, when many chats' answers come back at once, the largest cost of a
send after the HTTP call itself. Here the first acknowledgement goes at once; those that come
while it is on its way wait for it and then go in one call, and so on. Nobody waits longer than
one call in flight, and an idle outbox writes each one as it comes, as before.

Every caller gets the call's outcome: the lease check's answer (0: the lease is gone, nothing
was written) or the exception, so a failure is retried by each message's own chat as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

# One call's ids at most (Lua's `unpack` has a stack limit of a few thousand values).
MAX_BATCH = 500


class Acks:
    """Acknowledgements written by `write(ids) -> result`, batched while one is in flight."""

    def __init__(self, write: Callable[[list[str]], Awaitable[object]]) -> None:
        self._write = write
        self._ids: list[str] = []
        # The outcome of the batch being gathered (None: none is).
        self._outcome: asyncio.Future[object] | None = None
        # Set while no write is on its way.
        self._idle = asyncio.Event()
        self._idle.set()

    async def ack(self, entry_id: str) -> object:
        """Acknowledge one entry; returns the write's result for the batch it went in."""
        if self._outcome is not None and len(self._ids) < MAX_BATCH:
            # Someone leads the batch being gathered: ride along.
            self._ids.append(entry_id)
            # Shielded: a caller cancelled (a lost lease) must not cancel the others' outcome.
            return await asyncio.shield(self._outcome)
        # This call leads a new batch: it waits for the write on its way (if any) while others
        # join, then writes them all. (A full batch starts another, whose leader may write
        # alongside: the writes do not depend on each other.)
        outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        ids = [entry_id]
        self._ids, self._outcome = ids, outcome
        try:
            await self._idle.wait()
        except BaseException:
            # Cancelled before writing: the batch's other callers must not wait forever.
            self._close(outcome)
            _fail(outcome, RuntimeError("acknowledgements abandoned; try again"))
            raise
        self._close(outcome)
        self._idle.clear()
        try:
            result = await self._write(ids)
        except BaseException as exc:
            _fail(outcome, exc if isinstance(exc, Exception) else RuntimeError("cut short"))
            raise
        else:
            outcome.set_result(result)
            return result
        finally:
            self._idle.set()

    def _close(self, outcome: asyncio.Future[object]) -> None:
        """No one joins this batch any more."""
        if self._outcome is outcome:
            self._ids, self._outcome = [], None


def _fail(outcome: asyncio.Future[object], exc: Exception) -> None:
    outcome.set_exception(exc)
    # Retrieved here, so that an outcome nobody else awaited is not reported as never retrieved.
    outcome.exception()
