"""A handoff's route carried out in Chatwoot, after the conversation is open and assigned
(helpdesk.py): its labels, its priority, and, outside working hours, the mark for the morning.

Each call sets a value, so a retried handoff sets the same values again and changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.handoff_routing import Route, RouteFacts
from gateway.integrations.chatwoot.api import ChatwootClient
from gateway.pipeline.conversation import Conversation

log = logging.getLogger("frontdesk.desk")

# The conversation's custom attribute with the moment staff are back (ISO 8601, UTC), set on a
# handoff made outside working hours: staff sort and filter the morning's queue by it.
REPLY_AFTER = "reply_after"


def route_facts(conv: Conversation, params: dict[str, Any]) -> RouteFacts:
    """What the routing rules read, from the handoff's `route` (handlers/mirror.py)."""
    route = params.get("route") or {}
    master = route.get("master")
    return RouteFacts(
        reason=str(route.get("reason") or ""),
        language=str(route.get("language") or ""),
        channel=conv.channel,
        master=int(master) if master is not None else None,
        after_hours=bool(route.get("reply_after")),
    )


async def apply_route(
    client: ChatwootClient, conversation: int, route: Route, params: dict[str, Any]
) -> None:
    if route.labels:
        # The call replaces the whole list (LabelConcern#create: `update_labels`), so the labels
        # staff have given the conversation are sent again with ours.
        present = await client.labels(conversation)
        wanted = [*present, *(label for label in route.labels if label not in present)]
        if wanted != present:
            await client.set_labels(conversation, wanted)
    if route.priority is not None:
        await client.set_priority(conversation, route.priority)
    after = (params.get("route") or {}).get("reply_after")
    if after:
        # Replaces the whole hash unless `merge` is set, which only newer versions know
        # (ConversationCustomAttributesConcern#custom_attributes): ours go with the rest.
        shown = await client.conversation(conversation)
        attributes = dict(shown.get("custom_attributes") or {})
        if attributes.get(REPLY_AFTER) != after:
            await client.set_custom_attributes(conversation, {**attributes, REPLY_AFTER: after})
    log.info(
        "handoff of conversation %s routed by %s (team %s, agent %s, priority %s)",
        conversation,
        route.rule or "the default",
        route.team_id,
        route.assignee_id,
        route.priority,
    )
