"""Each client's open proposal in Redis, and its holds in Cal.com.

The proposal is stored for as long as its holds last; a tap books one time with its own hold
(`BookingRequest.reservation`), and the other holds are given back (`settle`). A new proposal
to the same client replaces the old one, whose holds are given back first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError
from redis.asyncio import Redis

from bot.events import ClientRef
from bot.flows.proposal import Proposal
from gateway.integrations.calcom.api import CalcomClient, CalcomError
from gateway.pipeline.keys import Keys

log = logging.getLogger("frontdesk.dashboard_app")

# How long proposed times are held for the client: Cal.com's `reservationDuration` (minutes;
# calcom-v2.openapi.json, ReserveSlotInput_2024_09_04).
HOLD_MINUTES = 10


class RedisProposals:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        calcom: CalcomClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.calcom = calcom
        self.clock = clock

    def _key(self, client: ClientRef) -> str:
        return self.keys.proposal(client.channel.value, client.chat_id)

    async def current(self, client: ClientRef) -> Proposal | None:
        raw = await self.redis.get(self._key(client))
        if raw is None:
            return None
        try:
            proposal = Proposal.model_validate_json(raw)
        except ValidationError:
            return None
        return proposal if proposal.until > self.clock() else None

    async def save(self, client: ClientRef, proposal: Proposal) -> None:
        """Keep `proposal` as the client's open one (the one before it is settled first)."""
        previous = await self.current(client)
        if previous is not None:
            await self.settle(client, previous, None)
        seconds = max(1, int((proposal.until - self.clock()).total_seconds()))
        await self.redis.set(self._key(client), proposal.model_dump_json(), ex=seconds)

    async def settle(self, client: ClientRef, proposal: Proposal, kept: int | None) -> None:
        await self.redis.delete(self._key(client))
        for n, slot in enumerate(proposal.slots):
            if n != kept and slot.reservation is not None:
                await self.release(slot.reservation)

    async def release(self, reservation: str) -> None:
        try:
            await self.calcom.release(reservation)
        except CalcomError as exc:
            log.info("could not release a proposal's hold (it expires by itself): %s", exc)
