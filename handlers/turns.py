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

from bot.conversation import FrontDesk
from bot.events import Channel, ClientRef, Inbound, Kind
from bot.flows.turn import Turn
from bot.session import Session
from gateway.analytics.facts import Recorder
from gateway.pipeline import Author, Conversation, Outcome, Outgoing, SessionStore
from handlers.channels import Rendered
from handlers.mirror import Mirror

# How a messenger renders its answer to one turn (its tap to acknowledge, its read receipt).
Render = Callable[[Turn], Rendered]


class TurnRunner:
    def __init__(
        self,
        desk: FrontDesk,
        sessions: SessionStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        mirror: Mirror | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.desk = desk
        self.sessions = sessions
        self.clock = clock
        self.mirror = mirror
        self.recorder = recorder

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
        if session is None:
            session = await self.sessions.load(inbound.client)
        now = self.clock()
        turn = await self.desk.handle(session, inbound, now)
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
