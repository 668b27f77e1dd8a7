"""Clients' sessions in Redis: one JSON value per client, written with the turn's commit."""

from __future__ import annotations

from pydantic import ValidationError
from redis.asyncio import Redis

from bot.events import ClientRef
from bot.session import Session
from gateway.pipeline.keys import Keys


class SessionStore:
    def __init__(self, redis: Redis, keys: Keys, ttl_seconds: int) -> None:
        self.redis = redis
        self.keys = keys
        # A client's language and place are kept this long after their last message.
        self.ttl = ttl_seconds

    def key(self, client: ClientRef) -> str:
        return self.keys.session(client.channel.value, client.user_id)

    async def load(self, client: ClientRef) -> Session:
        raw = await self.redis.get(self.key(client))
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
