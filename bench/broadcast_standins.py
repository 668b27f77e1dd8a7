"""The broadcast bench's stand-ins: one Telegram bot or WhatsApp number per salon, each
enforcing the platform's limits (gateway/sandbox/flood.py), in the bench's process or in one
of their own (`python -m bench.broadcast_standins`), so that their cost does not take the
gateway's CPU.

Either way they answer `records()`: per sender, every reminder it accepted as
(reminder id, chat, arrival time) and how many sends its limits refused. Arrival times are
`time.monotonic()`: CLOCK_MONOTONIC is system-wide on Linux, so they compare with the bench's
clock across processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from gateway.sandbox.telegram import TelegramSandbox
from gateway.sandbox.whatsapp import WhatsAppSandbox

StandIn = TelegramSandbox | WhatsAppSandbox
# Per sender ("<channel>:<n>"): its deliveries as [reminder id, chat, arrival] and its refusals.
Records = dict[str, dict[str, Any]]


def token(n: int) -> str:
    return f"{700000 + n}:BENCH-broadcast-{n:04d}-aaaaaaaaaaaaaaa"


def number(n: int) -> str:
    return str(106540000000000 + n)


def access_token(n: int) -> str:
    return f"EAAG-bench-{n}"


APP_SECRET = "bench-app-secret"


def build(channel: str, n: int) -> StandIn:
    """Sender n's stand-in with the platform's limits on (their defaults are the platforms')."""
    sandbox: StandIn
    if channel == "telegram":
        sandbox = TelegramSandbox(token(n), None)
    else:
        sandbox = WhatsAppSandbox(access_token(n), number(n), APP_SECRET)
        sandbox.auto_statuses = False  # no webhook is subscribed: nothing to post statuses to
    sandbox.enforce_limits()
    return sandbox


def record(sandbox: StandIn, counts_only: bool = False) -> dict[str, Any]:
    limits = sandbox.limits
    refused = limits.refused if limits is not None else 0
    if isinstance(sandbox, TelegramSandbox):
        calls = [c for c in sandbox.sent if c.method == "sendMessage"]
        if counts_only:
            return {"delivered": len(calls), "refused": refused}
        rows = [
            [str(c.params["text"]).split(" ", 1)[0], str(c.params["chat_id"]), c.at] for c in calls
        ]
    else:
        if counts_only:
            return {"delivered": len(sandbox.sent), "refused": refused}
        rows = [
            [s.body["template"]["components"][0]["parameters"][0]["text"], s.to, s.at]
            for s in sandbox.sent
        ]
    return {"deliveries": rows, "delivered": len(rows), "refused": refused}


class InProcess:
    """The stand-ins served from the bench's own event loop."""

    pid: int | None = None  # none of their own: their CPU is the bench's

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self._sandboxes: dict[str, StandIn] = {}

    @asynccontextmanager
    async def running(self, bots: int, channels: Sequence[str]) -> AsyncIterator[InProcess]:
        async with AsyncExitStack() as stack:
            for n in range(bots):
                for channel in channels:
                    sandbox = build(channel, n)
                    server = TestServer(sandbox.app())
                    await server.start_server()
                    stack.push_async_callback(server.close)
                    stack.push_async_callback(sandbox.close)
                    key = f"{channel}:{n}"
                    self._sandboxes[key] = sandbox
                    self.urls[key] = str(server.make_url("")).rstrip("/")
            yield self

    async def records(self, counts_only: bool = False) -> Records:
        return {key: record(s, counts_only) for key, s in self._sandboxes.items()}


class OwnProcess:
    """The stand-ins in a process of their own, asked for their records over HTTP."""

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.pid: int | None = None
        self._control = ""
        self._http: ClientSession | None = None

    @asynccontextmanager
    async def running(self, bots: int, channels: Sequence[str]) -> AsyncIterator[OwnProcess]:
        command = [sys.executable, "-m", "bench.broadcast_standins", str(bots), *channels]
        child = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        self.pid = child.pid
        try:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 60)
            if not line:
                raise RuntimeError("the stand-ins' process ended before it served")
            served = json.loads(line)
            self.urls, self._control = served["urls"], served["control"]
            async with ClientSession() as self._http:
                yield self
        finally:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
            await child.wait()

    async def records(self, counts_only: bool = False) -> Records:
        assert self._http is not None
        query = {"counts": "1"} if counts_only else {}
        async with self._http.get(f"{self._control}/records", params=query) as answer:
            result: Records = await answer.json()
            return result


async def _serve(bots: int, channels: Sequence[str]) -> None:
    stand_ins = InProcess()
    async with stand_ins.running(bots, channels):

        async def records(request: web.Request) -> web.Response:
            counts_only = request.query.get("counts") == "1"
            return web.json_response(await stand_ins.records(counts_only))

        control = web.Application()
        control.router.add_get("/records", records)
        server = TestServer(control)
        await server.start_server()
        served = {"urls": stand_ins.urls, "control": str(server.make_url("")).rstrip("/")}
        print(json.dumps(served), flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.broadcast_standins")
    parser.add_argument("bots", type=int)
    parser.add_argument("channels", nargs="+", choices=("telegram", "whatsapp"))
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.bots, args.channels))


if __name__ == "__main__":
    main()
