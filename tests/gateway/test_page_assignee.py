"""Who has a conversation when a handoff's page is sent (gateway/wiring/outflow.py): Chatwoot
shows the assignee; when it cannot say, staff are paged all the same rather than a client left
waiting unseen; a conversation Chatwoot no longer has pages no one."""

from __future__ import annotations

from typing import Any, cast

import pytest

from gateway.integrations.chatwoot.api import ChatwootClient, ChatwootUnavailable
from gateway.integrations.http import ServiceRejected
from gateway.pipeline.outbox import PermanentFailure
from gateway.pipeline.resilience import BreakerOpen
from gateway.wiring.outflow import _assignee


class Chatwoot:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.asked: list[int] = []

    async def conversation(self, conversation: int) -> dict[str, Any]:
        self.asked.append(conversation)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def assignee_from(answer: dict[str, Any] | Exception) -> Any:
    return _assignee(cast(ChatwootClient, Chatwoot(answer)))


async def test_the_assignee_chatwoot_shows_is_read() -> None:
    assert await assignee_from({"meta": {"assignee": {"id": 7}}})(12) == 7
    assert await assignee_from({"meta": {"assignee": None}})(12) is None


@pytest.mark.parametrize(
    "failure",
    [ChatwootUnavailable("down", status=503), BreakerOpen("chatwoot", 12.0)],
)
async def test_chatwoot_unable_to_say_pages_staff_all_the_same(
    failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    assert await assignee_from(failure)(12) is None
    assert "handoff 12: Chatwoot cannot say who has it" in caplog.text


async def test_a_conversation_chatwoot_no_longer_has_pages_no_one() -> None:
    with pytest.raises(PermanentFailure):
        await assignee_from(ServiceRejected("gone", status=404))(12)
