"""The gateway's own ledger of the messenger notices it asked Novu to post back.

Novu does not retry a failed HTTP request step, and a delay longer than the plan allows fails
the run (see `workflows.py` beside this): a deploy restart, a timeout or a long reminder would
lose the notice. So whenever a booking change plans a trigger whose messenger step will post
back, the gateway records here the notice's `transactionId` (the id Novu's post carries), when
it is due (now for news, `sendAt` for a reminder) and what it says (its kind, booking, times and
the names a message needs). A loop (handlers/novu.py, `send_overdue`) queues every notice not
posted back within a grace period after its due time, as if Novu had posted it: the same event
id in the same inbox, so whichever comes first is handled and the other is a duplicate. A post
from Novu marks its notice done; so does the cancellation of a reminder.

Keys: a sorted set of the transactions still awaited, scored by their due time, and a hash per
notice (`content`, JSON; `done` once handled), kept a while after its due time.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from gateway.pipeline.keys import Keys
from gateway.pipeline.lua import Lua

# How long a notice's record outlives its due time (past any late post from Novu).
KEEP_SECONDS = 8 * 24 * 3600

# KEYS: the due set, the notice's hash. ARGV: transaction, due (epoch seconds), content, TTL.
# A notice already done is not awaited again (a retried plan of a change told already).
_RECORD = """
if redis.call('HEXISTS', KEYS[2], 'done') == 1 then return 0 end
redis.call('HSET', KEYS[2], 'content', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


class NoticeLedger:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._record = Lua(redis, _RECORD)

    async def record(
        self, transaction: str, due: datetime, content: dict[str, Any], now: datetime
    ) -> bool:
        """Await this notice from Novu by `due`; False if it was handled already."""
        ttl = max(0, int((due - now).total_seconds())) + KEEP_SECONDS
        recorded = await self._record(
            keys=[self.keys.notices_due, self.keys.notice(transaction)],
            args=[
                transaction,
                due.timestamp(),
                json.dumps(content, ensure_ascii=False, separators=(",", ":")),
                ttl,
            ],
        )
        return bool(recorded)

    async def content(self, transaction: str) -> dict[str, Any] | None:
        """What the notice says, as recorded; None for a notice the ledger never had."""
        raw = await self.redis.hget(self.keys.notice(transaction), "content")  # type: ignore[misc]
        if raw is None:
            return None
        found = json.loads(raw)
        return found if isinstance(found, dict) else None

    async def done(self, transaction: str) -> None:
        """Handled (posted back, sent from here) or cancelled: no longer awaited."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.keys.notices_due, transaction)
        pipe.hset(self.keys.notice(transaction), "done", "1")
        pipe.expire(self.keys.notice(transaction), KEEP_SECONDS)
        await pipe.execute()

    async def overdue(self, before: datetime, limit: int = 100) -> list[str]:
        """The notices due before `before` and still awaited, oldest first."""
        found = await self.redis.zrangebyscore(
            self.keys.notices_due, "-inf", before.timestamp(), start=0, num=limit
        )
        return [t.decode() if isinstance(t, bytes) else str(t) for t in found]
