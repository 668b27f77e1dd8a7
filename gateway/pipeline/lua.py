"""Lua scripts, loaded before their first use.

redis-py's own `Script` tries EVALSHA first and loads on NOSCRIPT. The embedded Redis of the demo
drops the connection after any error reply, which turns that first NOSCRIPT into a connection
error; loading up front avoids the error on both servers. A real Redis that lost its script
cache (a restart) still answers NOSCRIPT later, and that is handled too.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from typing import Any, ClassVar

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from gateway.pipeline.round_trips import Arg, RoundTrips


class Lua:
    # Scripts already loaded, per client: a shard's consumers come and go, the server's script
    # cache stays.
    _loaded: ClassVar[weakref.WeakKeyDictionary[Redis, set[str]]] = weakref.WeakKeyDictionary()

    def __init__(self, redis: Redis, source: str, *, batched: bool = False) -> None:
        """`batched`: the call goes in one pipeline with the other calls of the event loop's
        pass (gateway/pipeline/round_trips.py), for a script called by many handlers at once."""
        self.redis = redis
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        self.round_trips = RoundTrips.of(redis) if batched else None

    async def __call__(self, keys: Sequence[str], args: Sequence[Arg] = ()) -> Any:
        loaded = self._loaded.setdefault(self.redis, set())
        if self.sha not in loaded:
            await self.redis.script_load(self.source)
            loaded.add(self.sha)
        try:
            if self.round_trips is not None:
                return await self.round_trips.call("EVALSHA", self.sha, len(keys), *keys, *args)
            return await self.redis.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc]
        except NoScriptError:
            await self.redis.script_load(self.source)
            return await self.redis.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc]
