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

A notice that did not reach a client is queued as what did not arrive (the kind of notice and
the visit's time, from the notice's failure fact, gateway/analytics/facts.py `failed_notice`)
and who it was for (`<channel>:<chat>`); who that client is in the help desk is looked up when
the page is sent, like the handoff's assignee: a link to their Chatwoot conversation and the
name Chatwoot shows for them (staff see it there anyway; never their phone), or, for a client
the help desk has no conversation with, a link to Chatwoot's contact search by their
conversation key. When Chatwoot cannot answer, the page goes without a link rather than wait.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

from bot.local_time import format_label
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
# A notice that did not reach a client: addressed (who, and the link) when it is sent.
UNDELIVERED_PAGE = "undelivered-page"
# What the client did not get, by the notice's kind (bot/flows/notices.py NoticeKind).
NOTICE_WORDS = {
    "confirmed": "confirmation",
    "reminder": "reminder",
    "moved": "change",
    "cancelled": "change",
    "requested": "change",
    "rejected": "change",
}
# The conversation key's prefix per channel (gateway/pipeline/conversation.py `key_of`): the
# contact's identifier in Chatwoot, which its contact search matches.
KEY_PREFIX = {"telegram": "tg", "whatsapp": "wa"}


@dataclass(frozen=True, slots=True)
class DeskClient:
    """A client as the help desk knows them: their conversation (None: the help desk has none)
    and the name Chatwoot shows for them."""

    conversation: int | None = None
    name: str = ""


class Words(Protocol):
    def __call__(self, key: str, **values: Any) -> str: ...


class StaffPager:
    """Writes the pages to a salon's staff, in the salon's language."""

    def __init__(
        self,
        salon: str,
        words: Words,
        desk_url: str = "",
        zone: ZoneInfo | None = None,
        locale: str = "en",
    ) -> None:
        self.salon = salon
        self.words = words
        self.desk_url = desk_url.rstrip("/")
        self.zone = zone or ZoneInfo("UTC")
        self.locale = locale

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
        messenger refused for good pages the staff, who should reach the client another way.
        Queued with what did not arrive; addressed when it is sent (`addressed`)."""
        if message.author != Author.NOTICE or message.channel not in CHANNELS:
            return ()
        kind, when = self._what(message.failure)
        payload = {
            "subject": self.words("staff.undelivered.subject"),
            "conversation": f"{message.channel}:{message.chat}",
            "channel": message.channel,
            "notice": kind,
            "when": when,
            "url": "",
        }
        payload["text"] = self._text(payload, "")
        transaction = f"{self.salon}:undelivered:{entry}"
        body = staff_trigger(self.salon, UNDELIVERED, transaction, payload)
        return (Outgoing("novu", STAFF_CHAT, UNDELIVERED_PAGE, body, author=Author.NOTICE),)

    def addressed(self, page: Outgoing, client: DeskClient | None) -> Outgoing:
        """The queued page as it is sent: to the client's conversation when the help desk has
        one (named as Chatwoot shows them), else to the contact search by their conversation
        key; `client` None (Chatwoot could not answer): as it was queued, without a link."""
        payload = dict(page.params["payload"])
        if client is not None and self.desk_url:
            channel, _, chat = str(payload["conversation"]).partition(":")
            if client.conversation is not None:
                payload["url"] = f"{self.desk_url}/conversations/{client.conversation}"
            else:
                # Chatwoot's contacts page runs its search from `?search=`
                # (app/javascript/dashboard/routes/dashboard/contacts/pages/ContactsIndex.vue
                # `route.query.search`, chatwoot/chatwoot@082feb6a), and the search matches a
                # contact's identifier (contacts_controller.rb `search`: `contacts.identifier
                # LIKE`): ours is the conversation key (helpdesk.py `_new_contact`).
                key = f"{KEY_PREFIX.get(channel, channel)}:{chat}"
                payload["url"] = f"{self.desk_url}/contacts?search={quote(key, safe='')}"
            payload["text"] = self._text(payload, client.name)
        return replace(page, method="trigger", params=page.params | {"payload": payload})

    def _what(self, failure: str) -> tuple[str, str]:
        """The notice's kind and the visit's local time, from its failure fact (both "" when
        the message carries none: a process without analytics records no fact)."""
        try:
            fact = json.loads(failure) if failure else {}
        except ValueError:
            fact = {}
        if not isinstance(fact, dict):
            return "", ""
        kind = NOTICE_WORDS.get(str(fact.get("notice") or ""), "")
        when = ""
        try:
            start = datetime.fromisoformat(str(fact.get("starts_at") or ""))
        except ValueError:
            start = None
        if start is not None:
            # The fact's `starts_at` is on the salon's clock, like every analytics time.
            aware = start if start.tzinfo is not None else start.replace(tzinfo=self.zone)
            when = format_label(aware, self.zone, self.locale)
        return kind, when

    def _text(self, payload: dict[str, Any], name: str) -> str:
        notice = self.words(f"staff.notice.{payload.get('notice') or 'other'}")
        if payload.get("when"):
            notice = self.words("staff.notice.visit", notice=notice, when=payload["when"])
        client = (
            self.words("staff.client.named", name=name)
            if name
            else self.words("staff.client.unknown")
        )
        channel = str(payload.get("channel") or "")
        return self.words(
            "staff.undelivered.text",
            notice=notice,
            client=client,
            channel=CHANNELS.get(channel, channel),
        )


class StaffPages:
    """The outbox's delivery for channel "novu" where pages ask the help desk when they are
    sent: a handoff's page goes as a trigger unless the conversation is with someone by now
    (`assignee`: who Chatwoot shows has a conversation, None: no one; when Chatwoot cannot
    answer, the page is retried later); a notice that did not reach a client goes addressed by
    `addressed` (who the client is in the help desk); everything else goes as it is."""

    def __init__(
        self,
        inner: Delivery,
        assignee: Callable[[int], Awaitable[int | None]],
        addressed: Callable[[Outgoing], Awaitable[Outgoing]] | None = None,
    ) -> None:
        self.inner = inner
        self.assignee = assignee
        self.addressed = addressed

    async def deliver(self, message: Outgoing) -> Sequence[Outgoing] | None:
        if message.method == UNDELIVERED_PAGE:
            if self.addressed is not None:
                message = await self.addressed(message)
            return await self.inner.deliver(replace(message, method="trigger"))
        if message.method != HANDOFF_PAGE:
            return await self.inner.deliver(message)
        conversation = int(message.params["payload"]["conversation"])
        if await self.assignee(conversation) is not None:
            log.info("handoff %s is with an agent already: no page", conversation)
            return None
        return await self.inner.deliver(replace(message, method="trigger"))
