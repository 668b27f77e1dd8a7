"""The dead-letter stream: what failed for good, with its error; listed, replayed and purged by
the CLI. A dead letter keeps the whole entry (a client's message, a reply's text) so that it can
be replayed: `purge` is how long that lasts (README, "Personal data")."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.pipeline.key_migration import tagged_name
from gateway.pipeline.keys import Keys
from gateway.pipeline.logs import mask_chat

# Fields copied back into the original stream on replay, per kind.
_REPLAYED = {
    "inbound": ("src", "conv", "id", "at", "body"),
    "outbound": (
        "channel",
        "chat",
        "method",
        "params",
        "ephemeral",
        "origin",
        "author",
        "failure",
    ),
}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    kind: str
    stream: str
    error: str
    attempts: int
    failed_ms: int
    fields: dict[str, bytes]

    def describe(self) -> str:
        f = self.fields
        if self.kind == "inbound":
            return f"{_s(f, 'src')} event {_s(f, 'id')} of {_s(f, 'conv')}"
        chat = mask_chat(_s(f, "channel"), _s(f, "chat"))
        return f"{_s(f, 'channel')} {_s(f, 'method')} to chat {chat}"


def _s(fields: dict[str, bytes], name: str) -> str:
    return fields.get(name, b"?").decode(errors="replace")


class DeadLetters:
    def __init__(self, redis: Redis, salon_id: str, shards: int) -> None:
        self.redis = redis
        self.key = Keys(salon_id, shards).dead_letters

    async def newest(self, limit: int = 50) -> list[DeadLetter]:
        raw = await self.redis.xrevrange(self.key, count=limit)
        return [self._letter(entry_id, fields) for entry_id, fields in reversed(raw)]

    async def replay(self, ids: list[str] | None) -> tuple[list[str], list[str]]:
        """Put dead letters back on their stream (all when `ids` is None)."""
        if ids is None:
            entries = await self.redis.xrange(self.key)
        else:
            entries = []
            for letter_id in ids:
                entries += await self.redis.xrange(self.key, min=letter_id, max=letter_id)
        found = {entry_id.decode() for entry_id, _ in entries}
        replayed = []
        for entry_id, fields in entries:
            letter = self._letter(entry_id, fields)
            names = _REPLAYED.get(letter.kind, ())
            copy = {name: letter.fields[name] for name in names if name in letter.fields}
            # A letter buried before the hash tags names its stream the untagged way, a stream
            # renamed since: it goes back to the stream's new name (which, on a cluster, is in
            # the dead letters' slot, as a transaction needs).
            stream = tagged_name(letter.stream) or letter.stream
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(stream, copy)  # type: ignore[arg-type]
                pipe.xdel(self.key, letter.id)
                await pipe.execute()
            replayed.append(letter.id)
        missing = [letter_id for letter_id in ids or [] if letter_id not in found]
        return replayed, missing

    async def purge(self, older_than_ms: int) -> int:
        """Delete the dead letters that failed before `older_than_ms` (epoch milliseconds);
        returns how many went.

        A dead letter's id is the time it was written (XADD `*`), so XTRIM MINID drops exactly
        the older ones: "Evicts entries with IDs lower than threshold"
        (https://redis.io/docs/latest/commands/xtrim/); exact, not `~` (redis-py asks for `~` by
        default, and an approximate trim keeps whole nodes, so small streams lose nothing)."""
        removed: int = await self.redis.xtrim(
            self.key, minid=f"{older_than_ms}-0", approximate=False
        )
        return removed

    @staticmethod
    def _letter(entry_id: bytes, raw: dict[bytes, bytes]) -> DeadLetter:
        fields = {k.decode(): v for k, v in raw.items()}
        return DeadLetter(
            id=entry_id.decode(),
            kind=_s(fields, "kind"),
            stream=_s(fields, "stream"),
            error=_s(fields, "error"),
            attempts=int(fields.get("attempts", b"0")),
            failed_ms=int(fields.get("failed_at") or entry_id.split(b"-")[0]),
            fields=fields,
        )
