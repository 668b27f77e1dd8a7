"""Who opened a Dashboard App (gateway/dashboard_app/agents.py) while Chatwoot is away: the
salon's circuit breaker for Chatwoot open is a 503 like Chatwoot not answering, not a 500."""

from __future__ import annotations

from typing import Any, cast

import pytest

from gateway.dashboard_app.agents import Refused, opener
from gateway.integrations.chatwoot.api import ChatwootClient
from gateway.pipeline.resilience import BreakerOpen

CONTEXT = {"conversation": {"id": 7}, "contact": {"id": 3}, "currentAgent": {"id": 2}}
CONVERSATION = {"id": 7, "inbox_id": 1, "meta": {"sender": {"id": 3}, "assignee": None}}


class Chatwoot:
    """Chatwoot's client after repeated failures: the call named in `open_at` meets the
    open breaker; the others answer."""

    def __init__(self, open_at: str) -> None:
        self.open_at = open_at

    def _answer(self, call: str, value: Any) -> Any:
        if call == self.open_at:
            raise BreakerOpen("chatwoot", 30.0)
        return value

    async def conversation(self, _id: int) -> dict[str, Any]:
        return cast(dict[str, Any], self._answer("conversation", CONVERSATION))

    async def agents(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._answer("agents", [{"id": 2, "name": "Olga"}]))

    async def inbox_members(self, _inbox: int) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._answer("inbox_members", [{"id": 2}]))


@pytest.mark.parametrize("open_at", ["conversation", "agents", "inbox_members"])
async def test_an_open_breaker_for_chatwoot_is_a_503(open_at: str) -> None:
    with pytest.raises(Refused) as refused:
        await opener(cast(ChatwootClient, Chatwoot(open_at)), CONTEXT)
    assert refused.value.status == 503


async def test_chatwoot_answering_opens_the_app() -> None:
    found = await opener(cast(ChatwootClient, Chatwoot("")), CONTEXT)
    assert (found.agent_id, found.name, found.conversation_id) == (2, "Olga", 7)
