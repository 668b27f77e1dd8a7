"""The gateway's Redis client: a blocking pool, and commands packed and written cheaply.

redis-py's asyncio connections pack every command in Python, one argument at a time (its sync
client uses hiredis when installed). At the webhook edge that was the largest single cost of a
queued update after aiohttp itself: about 4 µs per event of a batched ingest call, against
0.6 µs with `hiredis.pack_command`. The bytes on the wire are the same (tests compare them).

Around each command redis-py 7.4 also spends three `asyncio.timeout`s, a task and a turn of the
event loop that the gateway's commands do not need (redis/asyncio/connection.py of redis-py
7.4.1): `BlockingConnectionPool.get_connection` bounds the wait for a free connection even
when one is free, then `ensure_connection` asks `can_read_destructive` whether stale data is
waiting, which the hiredis parser answers by reading the socket under `async_timeout(0)` (a
cancelled read, so a turn of the loop, every time); `send_packed_command` writes under
`asyncio.wait_for`, which on Python 3.11 wraps the write in a task of its own. In the handling
bench those were about a quarter of the worker's CPU per update (bench/README.md). The pool
and the mixin below keep redis-py's checks and bounds where they can matter and skip them
where they cannot: a free connection is taken at once when nobody waits for one, stale data is
looked for in the buffers without reading the socket, and a write is bounded only when it has
to wait for the socket (the transport holds unsent bytes). The one bound each command keeps is
the read of its reply (`socket_timeout`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from redis._parsers.hiredis import _AsyncHiredisParser
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.connection import AbstractConnection, SSLConnection, parse_url
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

MAX_CONNECTIONS = 64


class HiredisPacking:
    """Mixed into a connection class: `pack_command` (pipelines included) done by hiredis, and
    a write without a task of its own.

    Refuses what redis-py refuses (None, bools: DataError), and encodes str as UTF-8, as
    redis-py's default encoder does (the gateway never asks for another encoding).
    """

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._serializer.pack(*args)
        return packed

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        connection = cast(AbstractConnection, self)
        writer = connection._writer
        if (
            writer is None
            or writer.transport.is_closing()
            or (check_health and connection.health_check_interval)
            or not isinstance(command, list)
        ):
            # Not connected yet, a health check due, a closing socket, an unusual command:
            # redis-py's own way, which handles all of these.
            await AbstractConnection.send_packed_command(connection, command, check_health)
            return
        try:
            writer.writelines(command)
            if writer.transport.get_write_buffer_size():
                # The socket did not take it all: the drain may wait, so it is bounded as
                # redis-py bounds a write (socket_timeout).
                async with asyncio.timeout(connection.socket_timeout):
                    await writer.drain()
            else:
                await writer.drain()  # raises what the transport ran into; does not wait
        except TimeoutError:
            # As redis-py's send_packed_command does (redis/asyncio/connection.py, 7.4.1).
            await connection.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await connection.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while writing to socket: {exc}") from exc
        except BaseException:
            # A write cut short leaves a half-sent command: the connection cannot be reused.
            await connection.disconnect(nowait=True)
            raise


def _ready(connection: AbstractConnection) -> bool:
    """Connected, and nothing unread in its buffers (redis-py's `ensure_connection` asks the
    same by reading the socket; a reply left unread means a command was cut short, and such a
    connection goes through redis-py's own check, which reconnects it)."""
    stream = connection._reader
    parser = connection._parser
    return (
        stream is not None
        and connection._writer is not None
        and not connection._writer.transport.is_closing()
        and stream.exception() is None
        and not stream.at_eof()  # the server closed it
        and not stream._buffer  # type: ignore[attr-defined]
        and isinstance(parser, _AsyncHiredisParser)
        and parser._reader is not None
        and not parser._reader.has_data()
    )


class GatewayPool(BlockingConnectionPool):
    """redis-py's blocking pool, with a way round its lock, timeout and socket read for the
    common case: a connection is free, ready, and nobody is waiting for one.

    Whenever a caller waits (all connections in use), every taking and giving back goes
    through redis-py's own methods, so the waiters are woken in order as before.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting = 0

    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        available = self._available_connections
        if available and not self._waiting and not self._condition.locked():
            connection = available.pop()
            if _ready(connection):
                self._in_use_connections.add(connection)
                return connection
            available.append(connection)
        self._waiting += 1
        try:
            return await super().get_connection()  # type: ignore[no-untyped-call]
        finally:
            self._waiting -= 1

    async def release(self, connection: AbstractConnection) -> None:
        if (
            self._waiting
            or self._condition.locked()
            or connection.should_reconnect()  # type: ignore[no-untyped-call]
            # redis-py re-authenticates a released connection that has a credential provider
            # (AsyncReAuthConnectionListener, redis/event.py): its own path does that.
            or connection.credential_provider is not None
        ):
            await super().release(connection)
            return
        # What redis-py's release does, less the observability events nobody listens to here.
        self._in_use_connections.remove(connection)
        self._available_connections.append(connection)


def with_hiredis_packing(
    connection_class: type[AbstractConnection],
) -> type[AbstractConnection]:
    if not HIREDIS_AVAILABLE or issubclass(connection_class, HiredisPacking):
        return connection_class
    # The URL chose the class (TCP, TLS or a Unix socket): keep it, change only the packing.
    name = f"Hiredis{connection_class.__name__}"
    return type(name, (HiredisPacking, connection_class), {})


# `REDIS_URL=redis+cluster://host:port` (or `REDIS_CLUSTER=true`, gateway/settings.py): the
# address is one node of a Redis Cluster, from which the client learns the others.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def node_url(url: str) -> str | None:
    """A cluster URL's node address as a plain `redis://` URL; None for any other URL."""
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES.get(parts.scheme)
    return None if scheme is None else urlunsplit(parts._replace(scheme=scheme))


class GatewayCluster(RedisCluster):
    """redis-py's asyncio cluster client, plus the pub/sub the salon registry uses.

    Keys decide where a command goes: a Lua script or a transaction whose keys share one slot
    is sent to that slot's node, and one that spans slots is refused before it leaves
    (`RedisCluster._determine_slot`, redis/asyncio/cluster.py: "all keys must map to the same
    key slot"; `ClusterPipeline` transactions likewise). Every Frontdesk key carries its salon's
    hash tag (gateway/pipeline/keys.py), so none spans. SCAN goes to every primary (SCAN is a
    PRIMARIES command in redis/cluster.py, and `scan_iter` follows each node's cursor:
    redis/commands/cluster.py, `AsyncClusterDataAccessCommands.scan_iter`).

    The asyncio client has neither `publish` nor `pubsub` (redis-py 7.4). Classic pub/sub does
    not belong to the key space: "In a Redis Cluster clients can publish to every node. The
    cluster makes sure that published messages are forwarded as needed, so clients can subscribe
    to any channel by connecting to any one of the nodes"
    (https://redis.io/docs/latest/commands/publish/). So PUBLISH goes to any node, and a
    subscription to the URL's node on a client of its own.

    Unlike the single-node client below, the cluster's connections are redis-py's own: packed in
    Python (no hiredis packing) and not capped per node (a capped cluster pool raises when full
    instead of waiting; the workers' slots bound the gateway's concurrency anyway).
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        self._node_url = url
        self._listening: Redis | None = None
        super().__init__(**kwargs)

    @classmethod
    def connect(cls, url: str) -> GatewayCluster:
        plain = node_url(url) or url
        # As `RedisCluster.from_url` does it (redis/asyncio/cluster.py), with our timeouts.
        kwargs: dict[str, Any] = dict(parse_url(plain))
        if kwargs.pop("connection_class", None) is SSLConnection:
            kwargs["ssl"] = True
        if kwargs.pop("db", 0) not in (0, "0"):
            # "Redis Cluster does not support multiple databases like the standalone version"
            # (cluster-spec): say so at the start, not at the first command.
            raise ValueError("a Redis Cluster has database 0 only: drop the /<db> from REDIS_URL")
        return cls(plain, socket_connect_timeout=2, socket_timeout=5, **kwargs)

    async def publish(self, channel: str, message: str) -> int:
        await self.initialize()  # the nodes are learnt on first use; a no-op after that
        node = self.get_random_node()
        published: int = await self.execute_command("PUBLISH", channel, message, target_nodes=node)
        return published

    def pubsub(self, **kwargs: Any) -> PubSub:
        if self._listening is None:
            self._listening = Redis.from_url(self._node_url, socket_connect_timeout=2)
        return self._listening.pubsub(**kwargs)

    async def aclose(self) -> None:
        if self._listening is not None:
            await self._listening.aclose()
        await super().aclose()


def connect_listener(url: str) -> Redis:
    """A client of its own for a pub/sub subscription: on a cluster, the node the URL names
    (a subscription there hears what is published on any node: see `GatewayCluster`)."""
    return Redis.from_url(node_url(url) or url)


def connect_redis(url: str) -> Redis:
    if node_url(url) is not None:
        # Typed as the single-node client its callers know: the cluster client answers the same
        # commands (`AsyncRedisClusterCommands`), routed by key, plus `publish` and `pubsub`
        # above. What it lacks (SELECT, cross-slot commands) Frontdesk never sends.
        return cast(Redis, GatewayCluster.connect(url))
    # A blocking pool waits for a free connection instead of failing under bursts
    # (redis-py's default pool raises at once when exhausted).
    pool = GatewayPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=5,
        socket_connect_timeout=2,
        socket_timeout=5,
    )
    pool.connection_class = with_hiredis_packing(pool.connection_class)
    return Redis.from_pool(pool)  # the client owns the pool and closes it
