"""The gateway's key migration at start (gateway/pipeline/key_migration.py), run beside the
server: /healthz answers while it renames (a large Redis takes seconds), /readyz says "migrating
keys" and why it waits, and the workers, the registry's salons and the webhooks wait for it. A
migration that fails is tried again; nothing reads a stream before it has finished, so no queue
or session is left behind under an old name while new ones grow under the tagged names."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.pipeline.key_migration import LockLost, migrate_locked

log = logging.getLogger("frontdesk.keys")

RETRY_SECONDS = 2.0
# How long a webhook waits for the renaming before it is answered 503, as with Redis away
# (gateway/pipeline/edge.py: the provider delivers it again). Under Chatwoot's 5 s webhook
# timeout (it does not retry, contracts/chatwoot-whatsapp-telegram.md §1.6), like the edge's
# SLOT_WAIT_SECONDS: a short renaming is absorbed.
WEBHOOK_WAIT_SECONDS = 2.0
# Probes answer during the migration; every other route waits for it.
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass
class KeyUpgrade:
    state: str = "migrating keys"
    # Old keys left because their new name exists (a person decides; see README).
    left: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, redis: Redis, *, wait_seconds: float = 120.0) -> None:
        """Until the keys are migrated (or an earlier start did it): then `done`."""
        while True:
            try:
                result = await migrate_locked(redis, wait_seconds=wait_seconds)
            except (RedisError, OSError, TimeoutError, LockLost) as exc:
                self.state = f"migrating keys: failed ({type(exc).__name__}), trying again"
                log.warning("key migration failed (%s); trying again", type(exc).__name__)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self.left = len(result.conflicts) if result is not None else 0
            self.state = "done"
            self.done.set()
            return

    def skip(self) -> None:
        """A Redis Cluster never held untagged keys (README): nothing to wait for."""
        self.state = "done"
        self.done.set()


KEY_UPGRADE = web.AppKey("key_upgrade", KeyUpgrade)


@web.middleware
async def wait_for_keys(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A webhook that arrives while keys are renamed is queued under the tagged names only once
    the old ones are moved (an earlier write would take the new name and strand the old key)."""
    upgrade = request.app[KEY_UPGRADE]
    if not upgrade.done.is_set() and request.path not in PROBES:
        try:
            await asyncio.wait_for(upgrade.done.wait(), WEBHOOK_WAIT_SECONDS)
        except TimeoutError:
            return web.json_response({"status": upgrade.state}, status=503)
    return await handler(request)
