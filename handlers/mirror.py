"""What a client's turn adds for the help desk (Chatwoot): their message, the bot's answers,
the handoff, as lines the outbox delivers through `HelpDesk` (gateway/integrations/chatwoot/
helpdesk.py, which also says how the lines are posted: `incoming`, `outgoing` with a `gw:`
source id and a 🤖 mark, notes).

Mode "all" mirrors every turn as it happens; mode "handoff" keeps the recent transcript in
Redis and posts it with the handoff only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC
from typing import Any

from bot.events import Inbound, Kind
from bot.flows.handoff import ROUTING_REASONS
from bot.flows.turn import Handoff, Turn
from bot.replies import Reply
from bot.session import Owner, Session
from gateway.integrations.chatwoot.helpdesk import BOT_MARK, CHANNEL, ECHO_PREFIX, HelpDeskState
from gateway.pipeline import Author, Conversation, Outgoing


def bot_lines(conv: Conversation, replies: Iterable[Reply], source: str) -> tuple[Outgoing, ...]:
    """The bot's words outside a client's turn (a hand-back, a notice) for staff who follow
    the conversation as it happens; each line named `<source>:<n>`, so that a retried post
    goes in once."""
    return tuple(
        Outgoing(
            CHANNEL,
            conv.key,
            "outgoing",
            {"client": {}, "text": reply.text, "source_id": f"{source}:{n}"},
            author=Author.HELP_DESK,
        )
        for n, reply in enumerate(replies)
    )


def merged(conv: Conversation, anchor: Conversation, others: Iterable[Conversation]) -> Outgoing:
    """The help desk's merge of a client's contacts once their chats are linked (one verified
    number): queued in this chat's order, after its lines, so its contact exists by then."""
    params = {"anchor": anchor.key, "linked": [other.key for other in others]}
    return Outgoing(CHANNEL, conv.key, "merge", params, author=Author.HELP_DESK)


def route_of(handoff: Handoff) -> dict[str, Any]:
    """What the routing rules read of a handoff (gateway/handoff_routing.py), as JSON."""
    after = handoff.reply_after
    return {
        "reason": ROUTING_REASONS.get(handoff.reason, handoff.reason),
        "language": handoff.language,
        "master": handoff.master,
        "reply_after": after.astimezone(UTC).isoformat() if after is not None else None,
    }


class Mirror:
    """What a client's turn adds for the help desk: their message, the bot's answers, the
    handoff. Called by the messengers' handlers; everything goes out through the outbox."""

    def __init__(self, state: HelpDeskState, mode: str) -> None:
        self.state = state
        self.mode = mode

    async def for_turn(
        self,
        conv: Conversation,
        event: Inbound,
        before: Session,
        turn: Turn,
        said: str = "",
        media: dict[str, str] | None = None,
    ) -> tuple[Outgoing, ...]:
        """The help desk's share of one turn of the bot (or of its silence, a person owning it)."""
        client = {
            "name": event.name,
            "phone": turn.session.phone or event.phone or None,
            "email": turn.session.email,
        }
        messages = await self.messages(
            conv,
            said or self.said(event, before),
            client,
            [reply.text for reply in turn.replies if not reply.keyboard_only],
            human_before=before.owner == Owner.HUMAN,
            handoff_note=turn.handoff.note if turn.handoff else None,
            event_id=event.event_id,
            media=media,
            route=route_of(turn.handoff) if turn.handoff else None,
        )
        if turn.staff_note is not None:
            source = f"{ECHO_PREFIX}proposal:{event.event_id}"
            params = {"client": client, "text": turn.staff_note, "source_id": source}
            posted = Outgoing(CHANNEL, conv.key, "note", params, author=Author.HELP_DESK)
            messages = (*messages, posted)
        if turn.attending is None:
            return messages
        # "I'll come" from a reminder: staff see it in the client's conversation.
        answer = turn.replies[-1].text if turn.replies else ""
        note = f"✅ The client confirmed they will come (booking {turn.attending}). {answer}"
        source = f"{ECHO_PREFIX}attending:{event.event_id}"
        params = {"client": client, "text": note.strip(), "source_id": source}
        return (*messages, Outgoing(CHANNEL, conv.key, "note", params, author=Author.HELP_DESK))

    @staticmethod
    def said(event: Inbound, before: Session) -> str:
        """The client's message as staff should read it: a tap shows the button's label."""
        if event.kind is Kind.CHOICE:
            offered = (o.label for o in before.offered if o.id == event.choice)
            # A button from an older message is no longer offered: its own label, as tapped.
            label = next(offered, event.label or event.choice)
            return f"▶️ {label}"
        if event.kind is Kind.CONTACT:
            return f"📱 {event.phone}"
        if event.kind is Kind.START:
            return "/start"
        return event.text or "📎"

    async def messages(
        self,
        conv: Conversation,
        said: str,
        client: dict[str, Any],
        replies: list[str],
        *,
        human_before: bool,
        handoff_note: str | None,
        event_id: str,
        media: dict[str, str] | None = None,
        route: dict[str, Any] | None = None,
    ) -> tuple[Outgoing, ...]:
        def call(method: str, **params: Any) -> Outgoing:
            return Outgoing(
                CHANNEL, conv.key, method, {"client": client, **params}, author=Author.HELP_DESK
            )

        # When the client wrote it: a line delivered after staff resolved the conversation is
        # told from one written after (wall clock, as the resolve's time in the mapping).
        line = {"source_id": f"{ECHO_PREFIX}in:{event_id}", "written": time.time()}
        incoming = call("incoming", text=said or "…", **line)
        if media:
            incoming = call("incoming", text=said, media=media, **line)
        if handoff_note is not None:
            # From now on a person owns it: set before the commit, read again by the outbox.
            await self.state.set_human(conv.channel, conv.chat)
            routed = {"route": route} if route is not None else {}
            handoff = call(
                "handoff",
                note=handoff_note,
                source_id=f"{ECHO_PREFIX}handoff:{event_id}",
                **routed,
            )
            if self.mode == "handoff":
                await self.state.remember(conv, self._lines(said, replies))
                return (handoff,)
            return (incoming, *self._bot(call, replies, event_id), handoff)
        if human_before:
            return (incoming,)
        if self.mode == "all":
            return (incoming, *self._bot(call, replies, event_id))
        await self.state.remember(conv, self._lines(said, replies))
        return ()

    @staticmethod
    def _bot(call: Any, replies: list[str], event_id: str) -> list[Outgoing]:
        return [
            call("outgoing", text=text, source_id=f"{event_id}:{n}")
            for n, text in enumerate(replies)
            if text
        ]

    @staticmethod
    def _lines(said: str, replies: list[str]) -> list[str]:
        return [f"👤 {said}", *(f"{BOT_MARK}{text}" for text in replies if text)]
