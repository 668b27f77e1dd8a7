"""The cluster suite: the tests here run against a real 3-node Redis Cluster on loopback
(tests/support/redis_cluster.py), started once per run from this machine's `redis-server`.

`redis_url` and `redis` are overridden for every test below this directory: the gateway, its
subprocesses and the CLI get `redis+cluster://127.0.0.1:<port>`, and the test's own client is
the gateway's cluster client. Without `redis-server`/`redis-cli` the suite skips, saying why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from gateway.pipeline.keys import Keys
from gateway.pipeline.redis_client import connect_redis
from tests.support.redis_cluster import RedisCluster, tools_missing


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    missing = tools_missing()
    if missing is not None:
        pytest.skip(f"no Redis Cluster: {missing}")
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_url(redis_cluster: RedisCluster) -> str:
    return redis_cluster.url


@pytest.fixture
async def redis(redis_url: str, salon_id: str) -> AsyncIterator[Redis]:
    client = connect_redis(redis_url)
    yield client
    # SCAN visits every primary (redis-py's cluster `scan_iter`), and the salon's keys share
    # one slot: one DEL takes them all.
    keys = [key async for key in client.scan_iter(match=Keys(salon_id, 1).pattern, count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()
