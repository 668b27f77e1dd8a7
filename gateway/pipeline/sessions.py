"""Clients' sessions in Redis: one JSON value per client, written with the turn's commit."""

from __future__ import annotations

from pydantic import ValidationError
from redis.asyncio import Redis

from bot.events import ClientRef
from bot.session import Session
from gateway.pipeline.keys import Keys
from gateway.pipeline.round_trips import RoundTrips


class SessionStore:
    def __init__(self, redis: Redis, keys: Keys, ttl_seconds: int) -> None:
        self.redis = redis
        self.keys = keys
        # A client's language and place are kept this long after their last message.
        self.ttl = ttl_seconds

    def key(self, client: ClientRef) -> str:
        return self.keys.session(client.channel.value, client.user_id)

    async def load(self, client: ClientRef) -> Session:
        return self.parse(await self.redis.get(self.key(client)))

    async def load_with(self, client: ClientRef, key: str) -> tuple[Session, bytes | None]:
        """The client's session and the value of another of the salon's keys, in one round
        trip (a turn reads both before it writes anything). One MGET: the keys share the
        salon's hash tag, so on a Redis Cluster they are in one slot (gateway/pipeline/keys.py).
        """
        # With the other turns' reads and commits of this pass of the loop: round_trips.py.
        raw, other = await RoundTrips.of(self.redis).call("MGET", self.key(client), key)
        return self.parse(raw), other

    @staticmethod
    def parse(raw: bytes | str | None) -> Session:
        if raw is None:
            return Session()
        try:
            return Session.model_validate_json(raw)
        except ValidationError:
            # A session we cannot read must not lock the client out: start afresh.
            return Session()

    @staticmethod
    def dump(session: Session) -> str:
        return session.model_dump_json()
