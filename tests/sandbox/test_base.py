"""What every stand-in shares: serving on an ephemeral port, background deliveries that tests
can wait for, and posts to the gateway that tell its answer (0 when nothing answered)."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import ClientSession, web

from gateway.sandbox.base import Answer, StandIn


class Echo(StandIn):
    """A stand-in whose API takes a body and delivers it back to a given URL, later."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[Answer] = []
        self.received: list[bytes] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append(await request.read())
        return web.Response(status=204)

    def send(self, url: str, body: bytes) -> None:
        self._spawn(self._deliver(url, body))

    async def _deliver(self, url: str, body: bytes) -> None:
        await asyncio.sleep(0.01)  # after the API has answered, as the vendors send
        self.answers.append(await self._post(url, body, {}, answer_within=2))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_stand_in_serves_delivers_and_settles() -> None:
    echo = Echo()
    runner = await echo.serve()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}/hook"
    try:
        async with ClientSession() as session, session.post(url, data=b"direct") as answer:
            assert answer.status == 204
        echo.send(url, b"signed bytes")
        echo.send(f"http://127.0.0.1:{free_port()}/nobody", b"lost")
        await echo.settle()
        assert echo.received == [b"direct", b"signed bytes"]
        assert sorted(answer.status for answer in echo.answers) == [0, 204]
        assert any(answer.reason for answer in echo.answers if answer.status == 0)
    finally:
        await runner.cleanup()  # the app's cleanup closes the stand-in's session
    assert echo._session is None
