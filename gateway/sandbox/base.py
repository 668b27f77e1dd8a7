"""What every stand-in repeats: serving its app, recording calls, posting to the gateway.

Each stand-in is an object with state whose `app()` answers like its vendor. What is common to
them all lives here: serving on a given or ephemeral port without an access log, the record of a
call answered, background deliveries (a webhook sent after the API has answered, as the vendors
send them) that tests can wait for, and one outgoing HTTP session that posts to the gateway and
tells the answer (0: no answer). How each vendor signs, when it retries and what it records of a
delivery stay in the vendor's own module: they differ from vendor to vendor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from gateway.sandbox.pages import serve


@dataclass(frozen=True, slots=True)
class Call:
    """An API request a stand-in answered: the endpoint's name ('' when none matched), the
    method, the path and the status it answered."""

    name: str
    method: str
    path: str
    status: int


@dataclass(frozen=True, slots=True)
class Answer:
    """What the gateway answered a delivery: the status (0 when nothing came back) and the
    reason phrase, or the error's name when nothing came back."""

    status: int
    reason: str


class StandIn:
    """The base of a stand-in: `app()` is its vendor's API, served by `serve()`; `settle()`
    waits for the deliveries in flight; `close()` (also on the app's cleanup) ends them and
    the outgoing session."""

    def __init__(self) -> None:
        self._session: ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def app(self) -> web.Application:
        raise NotImplementedError

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
        """Serve `app()` on `host:port` (0: any free port; `runner.addresses` has it)."""
        return await serve(self.app(), host, port)

    async def close(self) -> None:
        """Wait for the deliveries in flight, then close the outgoing session. A call out after
        this (a request that came in meanwhile) is not sent: it would open a session nobody
        closes."""
        self._closed = True
        await self._finish_deliveries()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.close()

    # -- deliveries -------------------------------------------------------------------------

    def _spawn(self, delivery: Coroutine[Any, Any, None]) -> None:
        """Deliver in the background: the API's answer does not wait for it."""
        task = asyncio.get_running_loop().create_task(delivery)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait until every delivery in flight is done (delivered or failed)."""
        await self._finish_deliveries()

    async def _finish_deliveries(self) -> None:
        while pending := [task for task in self._tasks if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _cancel_deliveries(self) -> None:
        """Drop the deliveries in flight (a stand-in whose deliveries may wait on retries)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _http(self) -> ClientSession:
        if self._session is None or self._session.closed:
            self._session = ClientSession()
        return self._session

    async def _post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        answer_within: float,
        method: str = "POST",
    ) -> Answer:
        """Send `body` (the exact bytes signed) to the gateway; the answer, never an error."""
        if self._closed and self._session is None:
            return Answer(0, "stand-in closed")
        try:
            async with self._http().request(
                method,
                url,
                data=body,
                headers=dict(headers),
                timeout=ClientTimeout(total=answer_within),
            ) as answer:
                await answer.read()
                return Answer(answer.status, answer.reason or "")
        except (ClientError, TimeoutError) as exc:
            return Answer(0, type(exc).__name__)
