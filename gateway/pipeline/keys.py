"""Every Redis key Frontdesk uses, in one place. Each carries the salon id (DESIGN §5)."""

from __future__ import annotations

from dataclasses import dataclass
from zlib import crc32

INBOUND_GROUP = "workers"
OUTBOUND_GROUP = "senders"


@dataclass(frozen=True, slots=True)
class Keys:
    salon_id: str
    shards: int

    @property
    def prefix(self) -> str:
        return f"fd:{self.salon_id}"

    def shard_of(self, conversation: str) -> int:
        # crc32 is stable across processes and Python versions (unlike hash()).
        return crc32(conversation.encode()) % self.shards

    def dedup(self, source: str, event_id: str) -> str:
        return f"{self.prefix}:dedup:{source}:{event_id}"

    def inbound(self, shard: int) -> str:
        return f"{self.prefix}:in:{shard}"

    def outbound(self, shard: int) -> str:
        return f"{self.prefix}:out:{shard}"

    def attempts(self, shard: int) -> str:
        """Failed handling attempts per inbound entry id (survives a crash)."""
        return f"{self.prefix}:attempts:in:{shard}"

    def send_attempts(self, shard: int) -> str:
        return f"{self.prefix}:attempts:out:{shard}"

    def lease(self, shard: int) -> str:
        return f"{self.prefix}:lease:{shard}"

    @property
    def members(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}:dlq"

    @property
    def analytics(self) -> str:
        """Facts waiting for the analytics writer (gateway/analytics/facts.py)."""
        return f"{self.prefix}:analytics"

    @property
    def notices_due(self) -> str:
        """Planned messenger notices not yet posted back, by due time (the Novu ledger)."""
        return f"{self.prefix}:novu:due"

    def notice(self, transaction: str) -> str:
        """One planned messenger notice: what it says, and whether it went."""
        return f"{self.prefix}:novu:notice:{transaction}"

    def session(self, channel: str, user_id: str) -> str:
        return f"{self.prefix}:session:{channel}:{user_id}"
