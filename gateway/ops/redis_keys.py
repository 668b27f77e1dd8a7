"""`frontdesk redis migrate-keys`: rename the keys of the untagged layout (`fd:<salon>:…`) to the
hash-tagged one (`fd:{<salon>}:…`), on the single Redis node at REDIS_URL; safe to run again.
The gateway does the same when it starts (gateway/pipeline/key_migration.py)."""

from __future__ import annotations

import sys

from gateway.pipeline.key_migration import migrate_keys
from gateway.pipeline.redis_client import connect_redis
from gateway.settings import Settings

EXIT_CONFIG = 2


async def run_migrate_keys(settings: Settings) -> int:
    if settings.redis_url is None:
        print("frontdesk: REDIS_URL is required", file=sys.stderr)
        return EXIT_CONFIG
    if settings.redis_cluster:
        # Untagged keys could never have served on a cluster (their scripts span slots), and a
        # rename across slots is refused there: a single node is migrated before it is moved.
        print("frontdesk: REDIS_URL is a cluster: nothing to migrate there", file=sys.stderr)
        return EXIT_CONFIG
    redis = connect_redis(settings.redis_url)
    try:
        result = await migrate_keys(redis)
    finally:
        await redis.aclose()
    print(f"renamed {result.renamed} keys to the hash-tagged layout")
    for key in result.conflicts:
        # The key names a salon and a kind of data, no client (ids are masked by the caller's
        # scrubber all the same): a person decides which of the two values to keep.
        print(f"left {key}: its new name exists already", file=sys.stderr)
    return 1 if result.conflicts else 0
