"""The gateway's Redis client packs commands with hiredis: the same bytes, the same refusals."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from gateway.pipeline.redis_client import (
    GatewayCluster,
    HiredisPacking,
    connect_listener,
    connect_redis,
    node_url,
    with_hiredis_packing,
)

# What the gateway sends: command names with spaces, keys, ints, floats, UTF-8 text, raw bodies
# (one larger than redis-py's 6000-byte chunking cutoff) and memoryviews.
COMMANDS: list[tuple[object, ...]] = [
    ("PING",),
    ("SCRIPT LOAD", "return 1"),
    ("EVALSHA", "a" * 40, 2, "fd:s:dedup:telegram:1", "fd:s:in:3", 86400, 1_000_000, b'{"x":1}'),
    ("XADD", "fd:s:out", "MAXLEN", "~", 1000, "*", "text", "Запись на среду ✂️", "at", 1.5),
    ("SET", "k", b"\x00\xff" * 5000, "EX", 60),
    ("HSET", "h", "f", memoryview(b"view"), "big", 2**70, "neg", -3, "small", 0.1),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_bytes_on_the_wire_are_redis_pys_own(command: tuple[object, ...]) -> None:
    ours = with_hiredis_packing(Connection)()
    theirs = Connection()
    assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))
    pipeline = [command, ("PING",)]
    assert b"".join(ours.pack_commands(pipeline)) == b"".join(theirs.pack_commands(pipeline))


@pytest.mark.parametrize("value", [None, True])
def test_what_redis_py_refuses_is_refused(value: object) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", value)
    with pytest.raises(DataError):
        with_hiredis_packing(Connection)().pack_command("SET", "k", value)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:1/0", Connection),
        ("rediss://127.0.0.1:1/0", SSLConnection),
        ("unix:///tmp/frontdesk-no-such.sock", UnixDomainSocketConnection),
    ],
)
async def test_the_url_still_chooses_the_connection(url: str, kind: type) -> None:
    redis = connect_redis(url)
    try:
        made = redis.connection_pool.connection_class
        assert issubclass(made, kind)
        assert issubclass(made, HiredisPacking)
        # Wrapping twice changes nothing.
        assert with_hiredis_packing(made) is made
    finally:
        await redis.aclose()


async def test_commands_and_pipelines_round_trip(redis_url: str, salon_id: str) -> None:
    redis = connect_redis(redis_url)
    key = f"fd:{{{salon_id}}}:packing"
    try:
        body = "Маникюр 💅".encode() * 1000
        await redis.set(key, body, ex=60)
        assert await redis.get(key) == body
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hset(f"{key}:h", mapping={"n": 7, "f": 0.25, "t": "тест"})
            pipe.hgetall(f"{key}:h")
            written, read = await pipe.execute()
        assert written == 3
        assert read == {b"n": b"7", b"f": b"0.25", b"t": "тест".encode()}
        assert await redis.eval("return ARGV[1] .. ARGV[2]", 0, "a", 42) == b"a42"
    finally:
        await redis.delete(key, f"{key}:h")
        await redis.aclose()


@pytest.mark.parametrize(
    ("url", "node"),
    [
        ("redis+cluster://10.0.0.7:7000", "redis://10.0.0.7:7000"),
        ("rediss+cluster://user:pw@node:7000/0", "rediss://user:pw@node:7000/0"),
        ("redis://10.0.0.7:6379/2", None),
        ("unix:///run/redis.sock", None),
    ],
)
def test_a_cluster_url_names_a_node(url: str, node: str | None) -> None:
    assert node_url(url) == node


async def test_a_cluster_url_makes_a_cluster_client() -> None:
    redis = connect_redis("redis+cluster://127.0.0.1:1")  # nothing is reached until used
    try:
        assert isinstance(redis, GatewayCluster)
        listener = connect_listener("redis+cluster://127.0.0.1:1")
        assert isinstance(listener, Redis)
        assert listener.connection_pool.connection_kwargs["port"] == 1
        await listener.aclose()
    finally:
        await redis.aclose()
    with pytest.raises(ValueError, match="database 0 only"):
        connect_redis("redis+cluster://127.0.0.1:1/2")
