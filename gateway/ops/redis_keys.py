"""`frontdesk redis migrate-keys`: rename the keys of the untagged layout (`fd:<salon>:…`) to the
hash-tagged one (`fd:{<salon>}:…`), on the single Redis node at REDIS_URL; safe to run again.
The gateway does the same when it starts (gateway/pipeline/key_migration.py)."""

from __future__ import annotations

import sys

from gateway.pipeline.key_migration import Migration, migrate_locked
from gateway.pipeline.logs import mask_chat
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
        # The gateway's lock and marker: never beside a starting gateway's renaming, and a clean
        # run spares the next start its scan.
        result = await migrate_locked(redis, always=True)
    except TimeoutError:
        print("frontdesk: another process is migrating the keys; try again", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()
    return _report(result if result is not None else Migration())


def _report(result: Migration) -> int:
    print(f"renamed {result.renamed} keys to the hash-tagged layout")
    for key in result.conflicts:
        # A person decides which of the two values to keep; the key's chat id (a Telegram chat
        # id names a person, a WhatsApp one is a number) is shown masked.
        print(f"left {masked_key(key)}: its new name exists already", file=sys.stderr)
    return 1 if result.conflicts else 0


def masked_key(key: str) -> str:
    """`fd:main:session:telegram:123456789` -> `fd:main:session:telegram:1******89`."""
    parts = key.split(":")
    return ":".join(mask_chat("", part) for part in parts)
