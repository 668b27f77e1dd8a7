"""A turn of the bot on a client's conversation, written once for every channel.

A messenger turn (Telegram, WhatsApp): the client's session is loaded, the bot (`FrontDesk`)
answers the event, the turn's facts are recorded for the salon's analytics, the replies are
rendered for the channel, marked as the handoff's when the turn hands the client to staff, and
mirrored to the help desk; the outcome carries all of it and the next session, committed at
once. The help desk's and the notices' handlers run the turns they make on a client's
conversation (staff taking over or handing back, a notice) through the same pieces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot import contact
from bot.conversation import FrontDesk
from bot.events import Channel, ClientRef, Inbound, Kind
from bot.flows.turn import Elsewhere, Turn
from bot.session import Session
from gateway.analytics.facts import Recorder
from gateway.pipeline import (
    Author,
    Conversation,
    Identities,
    Linked,
    Outcome,
    Outgoing,
    SessionStore,
)
from handlers.channels import Rendered
from handlers.mirror import Mirror, merged

# How a messenger renders its answer to one turn (its tap to acknowledge, its read receipt).
Render = Callable[[Turn], Rendered]


class _Unread:
    """Marks a value not read yet (None is a value: the key was absent)."""


_UNREAD = _Unread()


class TurnRunner:
    def __init__(
        self,
        desk: FrontDesk,
        sessions: SessionStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        mirror: Mirror | None = None,
        recorder: Recorder | None = None,
        identities: Identities | None = None,
    ) -> None:
        self.desk = desk
        self.sessions = sessions
        self.clock = clock
        self.mirror = mirror
        self.recorder = recorder
        # The links between one client's chats (one verified number): None keeps chats apart.
        self.identities = identities
        # What salon staff are told of a turn through Novu (handlers/staff_notices.py).
        self.staff: Callable[[Conversation, Turn], tuple[Outgoing, ...]] | None = None

    def client(self, conv: Conversation) -> ClientRef:
        """The client of a conversation (their chat is also who they are on the channel)."""
        return ClientRef(self.desk.salon.id, Channel(conv.channel), conv.chat, conv.chat)

    async def run(
        self,
        conv: Conversation,
        inbound: Inbound,
        render: Render,
        *,
        session: Session | None = None,
        waiting: tuple[Outgoing, ...] = (),
        clear: tuple[str, ...] = (),
    ) -> Outcome:
        """One messenger turn. `session`: the client's, when the handler read it already;
        `waiting`: what waited for the client (sent after the receipts, before the answer);
        `clear`: keys the commit deletes."""
        verified: bytes | str | _Unread | None = _UNREAD
        if session is None and self.identities is not None:
            # The session and the number the chat verified in one round trip, not two.
            session, verified = await self.sessions.load_with(
                inbound.client, self.identities.chat_key(conv)
            )
        elif session is None:
            session = await self.sessions.load(inbound.client)
        now = self.clock()
        linked = await self._linked(conv, inbound, now, verified)
        elsewhere = None
        if linked is not None:
            elsewhere = Elsewhere(
                tuple(Channel(other.channel) for other in linked.others),
                await self._bookings(linked.others),
            )
        turn = await self.desk.handle(session, inbound, now, elsewhere)
        if self.identities is not None and turn.unlink:
            await self.identities.unlink(conv)
        if self.identities is not None and turn.prefer:
            await self.identities.choose(conv)
        facts = (
            ()
            if self.recorder is None
            else self.recorder.of_turn(conv.key, session, turn, inbound, now)
        )
        rendered = render(turn)
        replies = rendered.outgoing
        if turn.handoff is not None or turn.answers_staff:
            # Said as the handoff happens, or in answer to what staff proposed: not held back
            # by the person owning it.
            replies = tuple(replace(message, author=Author.HANDOFF) for message in replies)
        mirrored: tuple[Outgoing, ...] = ()
        if self.mirror is not None:
            mirrored = await self.mirror.for_turn(conv, inbound, session, turn)
        if linked is not None and linked.joined and self.mirror is not None:
            # Staff see one client: the help desk merges this chat's contact into the one of
            # the chat that verified the number first.
            mirrored = (*mirrored, merged(conv, linked.anchor, linked.others))
        if self.staff is not None:
            mirrored = (*mirrored, *self.staff(conv, turn))
        after = turn.session
        if rendered.numbered is not None:
            after = after.model_copy(update={"numbered": rendered.numbered})
        return self.saved(
            inbound.client,
            after,
            (*rendered.receipts, *waiting, *replies, *mirrored),
            facts,
            clear,
        )

    async def _linked(
        self,
        conv: Conversation,
        inbound: Inbound,
        now: datetime,
        verified: bytes | str | _Unread | None = _UNREAD,
    ) -> Linked | None:
        """The chat's link, after this event: a number the messenger vouches for (Telegram's
        own shared contact, every WhatsApp message's sender) is verified, any other event
        marks the chat as the one used last. `verified`: the number the chat verified, when
        it was read with the session (`_UNREAD` when it was not)."""
        if self.identities is None:
            return None
        number = contact.shared_phone(inbound.phone) if inbound.phone else None
        vouched = inbound.kind is Kind.CONTACT or conv.channel == Channel.WHATSAPP
        if number and vouched:
            return await self.identities.verify(conv, number, now.timestamp())
        if isinstance(verified, _Unread):
            return await self.identities.used(conv, now.timestamp())
        return await self.identities.used_with(conv, now.timestamp(), verified)

    async def _bookings(self, others: tuple[Conversation, ...]) -> tuple[str, ...]:
        """The visits on record in the client's other chats."""
        found: list[str] = []
        for other in others:
            client = ClientRef(self.desk.salon.id, Channel(other.channel), other.chat, other.chat)
            found += (await self.sessions.load(client)).bookings
        return tuple(dict.fromkeys(found))

    async def handle(self, conv: Conversation, kind: Kind, event_id: str) -> Turn:
        """A turn without the client's words (staff took the conversation over or handed it
        back): the bot's session moves on, and says what it says."""
        client = self.client(conv)
        session = await self.sessions.load(client)
        return await self.desk.handle(session, Inbound(client, kind, event_id), self.clock())

    def saved(
        self,
        client: ClientRef,
        session: Session,
        outgoing: tuple[Outgoing, ...] = (),
        facts: tuple[dict[str, Any], ...] = (),
        clear: tuple[str, ...] = (),
    ) -> Outcome:
        """The outcome that commits the client's next session with what the turn sends."""
        return Outcome(
            outgoing=outgoing,
            session_key=self.sessions.key(client),
            session=self.sessions.dump(session),
            session_ttl=self.sessions.ttl,
            clear=clear,
            facts=facts,
        )
