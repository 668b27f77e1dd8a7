"""One Chatwoot contact for one client across messengers (gateway/pipeline/identity.py).

When two chats of one client are linked, their contacts are merged with Chatwoot's own
contact-merge action, so staff see one person with every conversation: `POST /api/v1/accounts/
{account}/actions/contact_merge` with `base_contact_id` and `mergee_contact_id` (app/controllers/
api/v1/accounts/actions/contact_merges_controller.rb; app/actions/contact_merge_action.rb:
the mergee's conversations, messages, notes and contact inboxes move to the base, the
attributes merge with the base's preferred, and the mergee is destroyed). The base is the
contact of the chat that verified the number first. A chat whose contact does not exist yet
gets the linked chat's contact when it first needs one, so nothing is left to merge.

Conversations keep their ids and source ids through a merge (only their contact changes): the
gateway's mapping of each chat just learns the surviving contact id.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from gateway.integrations.chatwoot.api import ChatwootClient, ChatwootRejected
from gateway.pipeline.conversation import Conversation
from gateway.pipeline.identity import Identities

log = logging.getLogger("frontdesk.desk")


class Mappings(Protocol):
    """The help desk state's mapping of chats to contacts (HelpDeskState)."""

    async def mapping(self, conv: Conversation) -> dict[str, Any] | None: ...

    async def save_mapping(self, conv: Conversation, mapping: dict[str, Any]) -> None: ...


class Contacts:
    def __init__(self, client: ChatwootClient, state: Mappings, identities: Identities) -> None:
        self.client = client
        self.state = state
        self.identities = identities

    async def linked_contact(self, conv: Conversation) -> int | None:
        """The contact of a chat linked with this one, if it has one already."""
        linked = await self.identities.linked(conv)
        for other in linked.others if linked is not None else ():
            mapping = await self.state.mapping(other)
            if mapping is not None:
                return int(mapping["contact"])
        return None

    async def merge(self, conv: Conversation, params: dict[str, Any]) -> None:
        """Merge the contacts of `conv` and the chats it was linked with into the anchor's."""
        keys = [str(params.get("anchor") or ""), conv.key, *map(str, params.get("linked") or [])]
        chats = [c for c in dict.fromkeys(map(Conversation.from_key, keys)) if c is not None]
        mapped = [(chat, m) for chat in chats if (m := await self.state.mapping(chat)) is not None]
        contacts = list(dict.fromkeys(int(m["contact"]) for _, m in mapped))
        if len(contacts) < 2:
            return  # one contact already (or none yet: the next one made takes the linked one's)
        base = contacts[0]  # the anchor's when it has one (listed first), else the oldest chat's
        for mergee in contacts[1:]:
            try:
                await self.client.merge_contacts(base, mergee)
            except ChatwootRejected as exc:
                # 404: the mergee is gone already (a retry after a lost answer), or a contact
                # was deleted by staff: either way there is nothing more to merge for it.
                if exc.status != 404:
                    raise
            log.info("help desk contacts merged for one client across messengers")
        for chat, mapping in mapped:
            if int(mapping["contact"]) != base:
                await self.state.save_mapping(chat, {**mapping, "contact": base})
