"""Pages to the salon's staff that its help desk and its outbox cause: a client waits for a
person (a handoff), a notice could not reach a client (dead-lettered). Issue 21.

Neither calls Novu directly. Each page is an outbox entry (channel "novu", the staff line)
queued in the same Redis step as what causes it: the handoff's delivery to Chatwoot being
recorded as done, or the client's notice being dead-lettered (gateway/pipeline/outbox.py). So
a page outlives a Novu outage, is retried on the outbox's schedule like any Novu call and, if
Novu keeps refusing it, is dead-lettered where `frontdesk dlq` shows it; and a Novu outage never
fails the Chatwoot delivery. Its `transactionId` (and Idempotency-Key) is the one it always had,
`<salon>:handoff:<conversation>:<handoff note id>`: a redelivered handoff posts its note once
(the help desk's source ids), so it names the same page.

Whether a handoff pages anyone is decided when the page is sent, not when it is queued: by then
the inbox's auto-assignment, a routing rule or a quick colleague may have given the
conversation to someone, and that person is on it. Who has it is what Chatwoot shows
(`meta.assignee`, helpdesk.assignee_of), read through the function the wiring passes in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from gateway.integrations.novu.staff import HANDOFF, UNDELIVERED, staff_trigger
from gateway.pipeline.outbox import Delivery
from gateway.pipeline.streams import Author, Outgoing

log = logging.getLogger("frontdesk.novu.staff")

# The outbox keeps one order per (channel, chat): staff notices have their own line.
STAFF_CHAT = "staff"
# A handoff's page: a trigger sent only while the conversation is with no one.
HANDOFF_PAGE = "handoff-page"
# Why a handoff happened (gateway/handoff_routing.py, RouteRule.reason): each has its words.
REASONS = ("person", "misunderstood", "complaint", "booking")
CHANNELS = {"telegram": "Telegram", "whatsapp": "WhatsApp"}


class Words(Protocol):
    def __call__(self, key: str, **values: Any) -> str: ...


class StaffPager:
    """Writes the pages to a salon's staff, in the salon's language."""

    def __init__(self, salon: str, words: Words, desk_url: str = "") -> None:
        self.salon = salon
        self.words = words
        self.desk_url = desk_url.rstrip("/")

    def handoff(
        self, conversation: int, note: int, channel: str, route: dict[str, Any]
    ) -> Outgoing:
        """A client waits for a person in conversation `conversation` (its handoff note is
        `note`); `route` is what routing read (reason, language). The notice says why, on which
        messenger and in which language the client writes."""
        reason = str(route.get("reason") or "")
        language = str(route.get("language") or "")
        payload = {
            "subject": self.words("staff.handoff.subject"),
            "text": self.words(
                "staff.handoff.text",
                conversation=conversation,
                reason=self.words(f"staff.reason.{reason if reason in REASONS else 'other'}"),
                channel=CHANNELS.get(channel, channel),
                language=self.words(f"staff.language.{language or 'unknown'}"),
            ),
            "conversation": conversation,
            "reason": reason,
            "channel": channel,
            "language": language,
            "url": f"{self.desk_url}/conversations/{conversation}" if self.desk_url else "",
        }
        transaction = f"{self.salon}:handoff:{conversation}:{note}"
        body = staff_trigger(self.salon, HANDOFF, transaction, payload)
        return Outgoing("novu", STAFF_CHAT, HANDOFF_PAGE, body, author=Author.NOTICE)

    def undelivered(self, message: Outgoing, entry: str) -> Sequence[Outgoing]:
        """What a dead-lettered message `entry` causes: a notice to a client that their
        messenger refused for good pages the staff, who should reach the client another way."""
        if message.author != Author.NOTICE or message.channel not in CHANNELS:
            return ()
        payload = {
            "subject": self.words("staff.undelivered.subject"),
            "text": self.words("staff.undelivered.text", channel=CHANNELS[message.channel]),
            "conversation": f"{message.channel}:{message.chat}",
            "url": "",
        }
        transaction = f"{self.salon}:undelivered:{entry}"
        body = staff_trigger(self.salon, UNDELIVERED, transaction, payload)
        return (Outgoing("novu", STAFF_CHAT, "trigger", body, author=Author.NOTICE),)


class StaffPages:
    """The outbox's delivery for channel "novu" where handoffs page staff: a handoff's page goes
    as a trigger unless the conversation is with someone by now; everything else goes as it is.
    `assignee` answers who Chatwoot shows has a conversation (None: no one); when Chatwoot
    cannot answer, the page is retried later."""

    def __init__(self, inner: Delivery, assignee: Callable[[int], Awaitable[int | None]]) -> None:
        self.inner = inner
        self.assignee = assignee

    async def deliver(self, message: Outgoing) -> Sequence[Outgoing] | None:
        if message.method != HANDOFF_PAGE:
            return await self.inner.deliver(message)
        conversation = int(message.params["payload"]["conversation"])
        if await self.assignee(conversation) is not None:
            log.info("handoff %s is with an agent already: no page", conversation)
            return None
        return await self.inner.deliver(replace(message, method="trigger"))
