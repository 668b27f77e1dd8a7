"""Who opened a Dashboard App: Chatwoot's `appContext` checked against Chatwoot itself.

Both apps (Bookings and Notices) trust the context only this far: the conversation is in the
salon's account (another account's is a 404 there), its contact is the one named, and the
current agent is one of the account's agents who answers it (assigned to it, or a member of
its inbox: Chatwoot shows an agent only their inboxes' conversations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.integrations.chatwoot.api import ChatwootClient, ChatwootRejected
from gateway.integrations.http import ServiceError
from gateway.pipeline.resilience import BreakerOpen

# Chatwoot away: no answer or a 5xx, or the salon's breaker for it open after those
# (BreakerOpen is no ServiceError): a 503, never a 500.
UNREACHABLE = (ServiceError, BreakerOpen)


class Refused(Exception):
    """A request the app answers with a 4xx (`status`) and says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Opener:
    """The agent who opened the app, and the conversation (as Chatwoot answers it) it is on."""

    agent_id: int
    name: str
    conversation_id: int
    conversation: dict[str, Any]


async def opener(chatwoot: ChatwootClient, context: dict[str, Any]) -> Opener:
    """Chatwoot's `appContext` (conversation, contact, currentAgent), checked; Refused if not."""
    conversation_id = whole(get(context, "conversation", "id"))
    contact_id = whole(get(context, "contact", "id"))
    agent_id = whole(get(context, "currentAgent", "id"))
    if conversation_id is None or agent_id is None:
        raise Refused(400, "the context names no conversation or agent")
    found = await conversation(chatwoot, conversation_id)
    sender = get(found, "meta", "sender") or {}
    if contact_id is not None and whole(sender.get("id")) != contact_id:
        raise Refused(403, "the contact is not this conversation's")
    name = await _agent(chatwoot, agent_id)
    await _answers(chatwoot, found, agent_id)
    return Opener(agent_id, name, conversation_id, found)


async def conversation(chatwoot: ChatwootClient, conversation_id: int) -> dict[str, Any]:
    """The salon's conversation, as Chatwoot answers it; Refused when it is not the salon's."""
    try:
        return await chatwoot.conversation(conversation_id)
    except ChatwootRejected as exc:
        # Another account's conversation, or none: Chatwoot answers 404.
        raise Refused(403, "no such conversation in the salon's Chatwoot") from exc
    except UNREACHABLE as exc:
        raise Refused(503, "Chatwoot cannot be reached now") from exc


async def _answers(chatwoot: ChatwootClient, found: dict[str, Any], agent_id: int) -> None:
    """The agent answers this conversation: it is assigned to them, or they are a member of
    its inbox (Chatwoot shows an agent only their inboxes' conversations)."""
    if whole(get(found, "meta", "assignee", "id")) == agent_id:
        return
    inbox_id = whole(found.get("inbox_id"))
    if inbox_id is None:
        raise Refused(403, "the agent does not answer this conversation")
    try:
        members = await chatwoot.inbox_members(inbox_id)
    except ChatwootRejected as exc:
        raise Refused(403, "the agent does not answer this conversation") from exc
    except UNREACHABLE as exc:
        raise Refused(503, "Chatwoot cannot be reached now") from exc
    if not any(whole(member.get("id")) == agent_id for member in members):
        raise Refused(403, "the agent does not answer this conversation")


async def _agent(chatwoot: ChatwootClient, agent_id: int) -> str:
    try:
        agents = await chatwoot.agents()
    except UNREACHABLE as exc:
        raise Refused(503, "Chatwoot cannot be reached now") from exc
    found = next((a for a in agents if whole(a.get("id")) == agent_id), None)
    if found is None:
        raise Refused(403, "the agent is not one of the salon's")
    return str(found.get("name") or found.get("email") or f"agent {agent_id}")


def get(data: Any, *path: str) -> Any:
    for step in path:
        if not isinstance(data, dict):
            return None
        data = data.get(step)
    return data


def whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return None
