"""The gateway's Redis client packs commands with hiredis: the same bytes, the same refusals."""

from __future__ import annotations

import asyncio

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


async def test_a_connection_left_with_an_unread_reply_is_not_handed_out_as_it_is(
    redis_url: str,
) -> None:
    """The pool's quick way to a free connection still refuses one with a reply nobody read
    (a command cut short): that reply would be taken for the next command's."""
    redis = connect_redis(redis_url)
    pool = redis.connection_pool
    try:
        connection = await pool.get_connection()
        await connection.send_command("ECHO", "stale")
        await asyncio.sleep(0.05)  # the reply has come in, unread
        await pool.release(connection)
        assert await redis.echo("fresh") == b"fresh"
        assert await redis.echo("again") == b"again"
    finally:
        await redis.aclose()


async def test_callers_that_wait_for_a_connection_all_get_their_own_answers(
    redis_url: str,
) -> None:
    """With every connection in use, callers queue (redis-py's own way) and none is lost."""
    redis = connect_redis(redis_url)
    pool = redis.connection_pool
    pool.max_connections = 2
    try:
        answers = await asyncio.gather(*(redis.echo(f"n{n}") for n in range(50)))
        assert answers == [f"n{n}".encode() for n in range(50)]
        assert len(pool._available_connections) + len(pool._in_use_connections) <= 2
        assert not pool._in_use_connections
    finally:
        await redis.aclose()


async def test_a_connection_the_server_closed_is_replaced(redis_url: str, salon_id: str) -> None:
    redis = connect_redis(redis_url)
    try:
        name = f"fd-closed-{salon_id}"
        await redis.client_setname(name)
        other = connect_redis(redis_url)
        try:
            clients = await other.client_list()
            (victim,) = [c for c in clients if c["name"] == name]
            await other.client_kill_filter(_id=victim["id"])
        finally:
            await other.aclose()
        await asyncio.sleep(0.05)
        assert await redis.echo("after") == b"after"
    finally:
        await redis.aclose()
