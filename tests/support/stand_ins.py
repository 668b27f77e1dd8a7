"""A vendor stand-in served over HTTP for one test: its address set on it, closed after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestServer


class StandIn(Protocol):
    def app(self) -> web.Application: ...

    async def close(self) -> None: ...


Served = TypeVar("Served", bound=StandIn)


@asynccontextmanager
async def serving(stand_in: Served) -> AsyncIterator[Served]:
    """`stand_in` on a local port, its base address in `stand_in.url`; on the way out it
    closes first (its workers stop calling out), then its server."""
    server = TestServer(stand_in.app())
    await server.start_server()
    stand_in.url = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]
    try:
        yield stand_in
    finally:
        await stand_in.close()
        await server.close()
