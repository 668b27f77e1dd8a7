"""From the untagged key layout (`fd:<salon>:…`) to the hash-tagged one (`fd:{<salon>}:…`).

A deployment that ran a Frontdesk from before the tags keeps its sessions, queued and pending
stream entries, dead letters and the analytics backlog: every old key is renamed to its new
name with RENAMENX, on one Redis node. A rename keeps the value whole (a stream's consumer groups
and pending entries included) and its time to live: "If a key is renamed with RENAME, the
associated time to live is transferred to the new key name"
(https://redis.io/docs/latest/commands/expire/). RENAMENX "Renames key to newkey if newkey does
not yet exist" (https://redis.io/docs/latest/commands/renamenx/), so a key already written under
its new name is never overwritten: the old one is left and counted as a conflict, for a person to
look at. A second run finds nothing to do.

The gateway runs it at start, one process at a time (a lock), before its workers read a stream;
a marker, set once no old key is left, then spares later starts the scan. `frontdesk redis
migrate-keys` runs it by hand, under the same lock, and always scans. On a Redis Cluster there
is nothing to migrate (the untagged scripts could not run there) and renaming across slots is
refused, so it is not run.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.pipeline.keys import ALL_SALON_KEYS, Keys, RegistryKeys
from gateway.pipeline.lua import Lua
from gateway.pipeline.tasks import stop_task

log = logging.getLogger("frontdesk.keys")

# A salon id as gateway/salons/values.py allows it, then the rest of the old key.
_LEGACY = re.compile(r"^fd:([a-z0-9][a-z0-9_-]{0,31}):(.+)$", re.DOTALL)
LOCK_MS = 60_000
# The lock is renewed this often while its holder renames (a third of its life).
RENEW_SECONDS = LOCK_MS / 3000

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Renewed only by its owner: a holder that lost it (paused past its life) learns so.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# One SCAN page per round trip: KEYS[1] the lock (ARGV[1] its owner's token, '' for none), then
# old and new names in pairs. A key that expired since the SCAN is skipped: RENAMENX "returns an
# error when key does not exist" (https://redis.io/docs/latest/commands/renamenx/), and an error
# of redis.call() is raised out of the script
# (https://redis.io/docs/latest/develop/interact/programmability/lua-api/), which would stop the
# migration; EXISTS first. Returns -1 when the lock is no longer the caller's (fenced: a holder
# that lost it renames nothing more), else the renamed count, then each key left. A script that
# touches two keys runs on one node only: the migration is for single nodes (see above).
_RENAME_PAGE = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
local renamed, left = 0, {}
for i = 2, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('RENAMENX', KEYS[i], KEYS[i + 1]) == 1 then
      renamed = renamed + 1
    else
      left[#left + 1] = KEYS[i]
    end
  end
end
local out = {renamed}
for _, key in ipairs(left) do out[#out + 1] = key end
return out
"""


class LockLost(RuntimeError):
    """Another process holds the migration's lock now: this one stops renaming."""


@dataclass
class Migration:
    renamed: int = 0
    conflicts: list[str] = field(default_factory=list)


def tagged_name(key: str) -> str | None:
    """The hash-tagged name of an untagged salon key; None for any other key."""
    found = _LEGACY.match(key)
    if found is None:
        return None
    salon_id, rest = found.groups()
    return f"{Keys(salon_id, 1).prefix}:{rest}"


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="surrogateescape") if isinstance(raw, bytes) else str(raw)


async def migrate_keys(redis: Redis, *, count: int = 1000, token: str = "") -> Migration:
    """Rename every untagged salon key, a SCAN page per round trip; idempotent. With a token,
    each page is renamed only while that token holds the lock (LockLost otherwise)."""
    result = Migration()
    script = Lua(redis, _RENAME_PAGE)
    lock = RegistryKeys().key_migration
    cursor: int = 0
    while True:
        cursor, page = await redis.scan(cursor, match=ALL_SALON_KEYS, count=count)
        names: list[str] = []
        for raw in page:
            key = _text(raw)
            new = tagged_name(key)
            if new is not None:  # None: tagged already, or the registry's own
                names += [key, new]
        if names:
            reply = await script(keys=[lock, *names], args=[token])
            if int(reply[0]) < 0:
                raise LockLost("the key migration's lock passed to another process")
            result.renamed += int(reply[0])
            result.conflicts += [_text(key) for key in reply[1:]]
        if cursor == 0:
            return result


async def _renew(redis: Redis, lock: str, token: str) -> None:
    renew = Lua(redis, _RENEW)
    while True:
        await asyncio.sleep(RENEW_SECONDS)
        try:
            if not await renew(keys=[lock], args=[token, LOCK_MS]):
                return  # lost: the next page's fence stops the renaming
        except (RedisError, OSError) as exc:  # the renaming fails on it too, or goes on
            log.warning("key migration's lock not renewed: %s", type(exc).__name__)


async def migrate_locked(
    redis: Redis, *, wait_seconds: float = 120.0, always: bool = False
) -> Migration | None:
    """A migration one process at a time, the lock renewed (by its owner only) while it renames;
    the marker is set once no key is left behind. None when the marker says an earlier run did
    it. TimeoutError when another process holds the lock past `wait_seconds` (it renews it while
    it renames): the caller must not serve then. `always` scans whatever the marker says."""
    registry = RegistryKeys()
    if not always and await redis.exists(registry.keys_tagged):
        return None
    lock = registry.key_migration
    token = uuid.uuid4().hex
    deadline = asyncio.get_running_loop().time() + wait_seconds
    # Another process is renaming: wait for it rather than read half-renamed streams.
    while not await redis.set(lock, token, nx=True, px=LOCK_MS):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("another process has held the key migration's lock too long")
        await asyncio.sleep(0.2)
    renewing = asyncio.create_task(_renew(redis, lock, token))
    try:
        if not always and await redis.exists(registry.keys_tagged):
            return None
        result = await migrate_keys(redis, token=token)
        # A line each run: the count left stays in sight until a person resolves them.
        log.log(
            logging.WARNING if result.conflicts else logging.INFO,
            "key migration: %d renamed to the hash-tagged layout, %d left (their new name exists)",
            result.renamed,
            len(result.conflicts),
        )
        if not result.conflicts:  # keys left: the next run looks again
            await redis.set(registry.keys_tagged, "1")
        return result
    finally:
        await stop_task(renewing, "the key migration's lock renewal")
        await Lua(redis, _RELEASE)(keys=[lock], args=[token])
