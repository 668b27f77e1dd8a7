"""The replies the gateway delivered, read from the sandbox, matched to the updates sent.

Every private text message gets exactly one `sendMessage`, so per chat: replies < acknowledged
updates means lost updates (acknowledged with 200, never answered), replies > updates means
duplicates.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

POLL_SECONDS = 0.05
MAX_SETTLE_SECONDS = 900.0


@dataclass(frozen=True)
class Tally:
    expected: int
    replied: int
    lost: int
    duplicates: int
    last_reply_at: float | None  # monotonic


class ReplyLog:
    def __init__(self, http: aiohttp.ClientSession, sandbox_url: str) -> None:
        self._http = http
        self._url = f"{sandbox_url}/_bench/calls"
        self._next = 0
        self.at: defaultdict[int, list[float]] = defaultdict(list)  # chat -> reply times
        self.error_count = 0
        self.errors: list[list[object]] = []

    async def poll(self) -> None:
        async with self._http.get(self._url, params={"after": str(self._next)}) as response:
            response.raise_for_status()
            data = await response.json()
        self._next = data["next"]
        for method, chat, at, *_text in data["calls"]:
            if method == "sendMessage" and chat is not None:
                self.at[int(chat)].append(float(at))
        self.error_count = data["error_count"]
        self.errors = data["errors"]

    def tally(self, expected: Mapping[int, int]) -> Tally:
        """Replies against `expected`: acknowledged updates per chat. (An update answered with
        an error or a timeout may still have been queued; its reply then shows as a duplicate.)"""
        lost = duplicates = replied = 0
        last: float | None = None
        for chat, want in expected.items():
            times = self.at.get(chat, [])
            replied += len(times)
            lost += max(0, want - len(times))
            duplicates += max(0, len(times) - want)
            if times:
                last = max(last or 0.0, max(times))
        return Tally(sum(expected.values()), replied, lost, duplicates, last)

    async def settle(self, expected: Mapping[int, int], within: float, quiet: float = 1.0) -> Tally:
        """Wait until every acknowledged update has its reply, then `quiet` seconds more so that
        late duplicates show. Gives up after `within` seconds without a new reply (a worker
        still working off a backlog makes progress; a lost update never comes), and after
        `MAX_SETTLE_SECONDS` in all."""
        started = time.monotonic()
        deadline = started + within
        replied = -1
        while True:
            await self.poll()
            tally = self.tally(expected)
            now = time.monotonic()
            if tally.replied != replied:
                replied = tally.replied
                deadline = now + within
            if tally.lost == 0 or now > deadline or now - started > MAX_SETTLE_SECONDS:
                break
            await asyncio.sleep(POLL_SECONDS)
        if tally.lost == 0:
            await asyncio.sleep(quiet)
            await self.poll()
            tally = self.tally(expected)
        return tally
