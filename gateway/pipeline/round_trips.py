"""Redis commands of concurrent turns, sent together: one pipeline per turn of the event loop.

A worker handles several conversations at once (up to its slots), and each turn makes the
same two calls: it reads the client's session (`SessionStore.load_with`) and commits its
outcome (the commit's Lua call, gateway/pipeline/workers.py). Sent one by one, every call pays
redis-py's whole path: a connection taken from the pool and given back, its health check, a
task and a timeout for the socket's write, another for the read; about 50 µs of the worker's
CPU per command on the bench's VM, against about 16 µs each when eight go in one pipeline
(measured with a loop of GETs, eight at a time). So the calls made in one pass of the event
loop wait for the end of that pass and go in one pipeline, each with its own answer.

Nothing about a call changes but its neighbours on the wire. Each stays a command of its own,
not a transaction: pipelining is "issuing multiple commands at once without waiting for the
response to each individual command" (https://redis.io/docs/latest/develop/use/pipelining/),
and a Lua commit is as atomic there as alone ("Redis guarantees that a script is executed in
an atomic way: no other script or Redis command will be executed while a script is being
executed", https://redis.io/commands/eval, "Atomicity of scripts"). Its error reply comes
back to its own caller, as redis-py's pipeline keeps each command's `ResponseError`
in its place with `raise_on_error=False` (redis/asyncio/client.py, `_execute_pipeline`, redis
7.4.1), and a connection's failure reaches every caller of that pipeline. A conversation
awaits its own call before its next one, so its order is kept. A pipeline whose connection
fails is sent again whole by redis-py's retry, as a lone command would be: a commit that ran
already answers -1 (its entry is acknowledged) and commits nothing twice. The demo's embedded
Redis drops its connection after an error reply (lua.py): its calls here never draw one (the
scripts are loaded first), and if one did, its neighbours would fail with it and be retried.

The first caller of a pass leads: it yields once, so that the other handlers of that pass add
their calls, then sends them all and hands out the answers. A call alone costs one extra pass
of the loop; a leader cancelled on the way fails its followers with the same error as a lost
connection, and they retry as they would.

A Redis Cluster's client gets each call as before (its pipeline groups by node, which is not
worth the risk here).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, ClassVar

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

Arg = str | bytes | int | float
# A follower's command, and where its answer goes.
_Call = tuple[tuple[Arg, ...], "asyncio.Future[Any]"]


class RoundTrips:
    # One per client, shared by whoever uses it (the sessions, the commits): more calls share
    # a pipeline.
    _of: ClassVar[weakref.WeakKeyDictionary[Redis, RoundTrips]] = weakref.WeakKeyDictionary()

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.direct = isinstance(redis, RedisCluster)
        self._waiting: list[_Call] | None = None

    @classmethod
    def of(cls, redis: Redis) -> RoundTrips:
        found = cls._of.get(redis)
        if found is None:
            found = cls._of[redis] = cls(redis)
        return found

    async def call(self, *args: Arg) -> Any:
        """One command's answer (or its error, raised), sent with the pass's other calls."""
        if self.direct:
            return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call]
        if self._waiting is not None:  # a leader is gathering this pass's calls
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting.append((args, future))
            return await future
        followers: list[_Call] = []
        self._waiting = followers
        try:
            await asyncio.sleep(0)  # the other handlers of this pass add their calls
            self._waiting = None
            if not followers:
                return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call]
            pipe = self.redis.pipeline(transaction=False)
            pipe.execute_command(*args)
            for command, _ in followers:
                pipe.execute_command(*command)
            answers = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            if self._waiting is followers:
                self._waiting = None
            # Nobody else will send the followers' calls: they fail as on a lost connection.
            failure = (
                exc
                if isinstance(exc, Exception)
                else RedisConnectionError("the call that was sending these was cancelled")
            )
            for _, future in followers:
                if not future.done():
                    future.set_exception(failure)
            raise
        for (_, future), answer in zip(followers, answers[1:], strict=True):
            if future.done():  # its caller was cancelled meanwhile
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)
        if isinstance(answers[0], Exception):
            raise answers[0]
        return answers[0]
