"""A notice (confirmation, reminder, the salon's change) as messages to one client.

Shared by the Novu webhook (the usual path) and the Cal.com webhook (when Novu is off). The
bot writes the notice into the client's session and words it; this module renders it for the
client's messenger. Notices speak for the salon, not in the conversation, so they are not held
back while a person answers the client (`Author.NOTICE`). On WhatsApp, outside the 24-hour
window, a confirmation or reminder goes as the salon's approved template with the same three
buttons (their payloads are the choices' ids), instead of waiting for the client to write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.conversation import FrontDesk
from bot.events import ClientRef, Inbound, Kind
from bot.flows.notices import Notice, NoticeKind, remembered
from bot.flows.turn import Turn
from bot.i18n import Catalogs
from bot.local_time import format_label
from gateway.analytics import facts as analytics
from gateway.analytics.facts import Recorder
from gateway.pipeline import Author, Conversation, Outcome, Outgoing, SessionStore
from handlers.channels import adapter_for
from handlers.mirror import bot_lines
from handlers.turns import TurnRunner


@dataclass(frozen=True, slots=True)
class Templates:
    """The salon's approved WhatsApp templates for notices (README, WhatsApp)."""

    confirmation: str
    reminder: str


class NoticeSender:
    def __init__(
        self,
        desk: FrontDesk,
        catalogs: Catalogs,
        sessions: SessionStore,
        templates: Templates,
        mirrored: frozenset[str] = frozenset(),
        recorder: Recorder | None = None,
    ) -> None:
        self.recorder = recorder
        self.desk = desk
        self.catalogs = catalogs
        self.sessions = sessions
        self.templates = templates
        # A notice is a turn on the client's conversation, outside their own turns.
        self.turns = TurnRunner(desk, sessions)
        # The channels whose conversations staff follow in Chatwoot as they happen
        # (CHATWOOT_MIRROR=all): notices appear there too.
        self.mirrored = mirrored

    def client(self, conv: Conversation) -> ClientRef:
        return self.turns.client(conv)

    async def send(
        self,
        conv: Conversation,
        notice: Notice,
        event_id: str,
        now: datetime,
        owner: Conversation | None = None,
    ) -> Outcome:
        """The notice for this client, with their session as it learns of the visit. `owner`:
        the chat whose visit it is, when the notice was routed here from it (the client's
        chats are linked, and this is the one they used last or chose)."""
        client = self.client(conv)
        session = await self.sessions.load(client)
        event = Inbound(client, Kind.TEXT, event_id)
        turn = await self.desk.notify(session, event, notice, now)
        if owner is not None and owner != conv:
            # The visit stays the other chat's: its buttons work here while the chats are
            # linked (My bookings reads that chat's list too), not after "this is not me".
            kept = {"bookings": session.bookings, "former": session.former}
            turn = replace(turn, session=turn.session.model_copy(update=kept))
        outgoing = self.render(conv, turn, notice)
        if self.recorder is not None and outgoing:
            # Should the messenger refuse the notice for good, the outbox records this.
            failure = self.recorder.failed_notice(
                f"notice-failed:{event_id}",
                conv.key,
                now,
                booking=notice.uid,
                notice=notice.kind.value,
                starts_at=notice.start,
            )
            outgoing = tuple(replace(message, failure=failure) for message in outgoing)
        if conv.channel in self.mirrored:
            outgoing += bot_lines(conv, turn.replies, f"notice:{event_id}")
        facts: tuple[dict[str, Any], ...] = ()
        if self.recorder is not None and turn.replies:
            fact = self.recorder.fact(
                analytics.NOTIFIED, conv.key, now, booking=notice.uid, notice=notice.kind.value
            )
            facts = (fact,)
        return self.turns.saved(client, turn.session, outgoing, facts)

    async def remember(self, conv: Conversation, notice: Notice) -> Outcome:
        """Only the client's list of visits learns of the change (the message comes later)."""
        client = self.client(conv)
        session = remembered(await self.sessions.load(client), notice)
        return self.turns.saved(client, session)

    def render(self, conv: Conversation, turn: Turn, notice: Notice) -> tuple[Outgoing, ...]:
        if not turn.replies:
            return ()
        _ = self.catalogs.get(self.catalogs.resolve(turn.session.locale, None))
        channel = adapter_for(conv.channel)
        rendered = channel.replies(conv.chat, turn.replies, _)
        # Where the channel has a 24-hour window, the last message carries the approved
        # template that stands in for it outside the window.
        fallback = self._template(notice, _.locale) if channel.service_window else None
        return as_notice(rendered.outgoing, fallback)

    def _template(self, notice: Notice, locale: str) -> dict[str, Any] | None:
        """The approved template standing in for the notice outside the 24-hour window."""
        if notice.kind is NoticeKind.REMINDER:
            name = self.templates.reminder
        elif notice.kind in (NoticeKind.CONFIRMED, NoticeKind.MOVED):
            name = self.templates.confirmation
        else:
            return None  # news without buttons waits for the client, as any message does
        # A value inside the salon's approved template ("… {{2}}."): the label form.
        when = format_label(notice.start, self.desk.notices.zone, locale)
        buttons = [f"k:y:{notice.uid}", f"k:r:{notice.uid}", f"k:c:{notice.uid}"]
        return {
            "type": "template",
            "template": {
                "name": name,
                "language": {"policy": "deterministic", "code": locale},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": notice.service},
                            {"type": "text", "text": when},
                        ],
                    },
                    *(
                        {
                            "type": "button",
                            "sub_type": "quick_reply",
                            "index": str(index),
                            "parameters": [{"type": "payload", "payload": payload}],
                        }
                        for index, payload in enumerate(buttons)
                    ),
                ],
            },
        }


def as_notice(
    outgoing: Sequence[Outgoing], fallback: dict[str, Any] | None
) -> tuple[Outgoing, ...]:
    """A notice's messages, by the notice author; the last carries the WhatsApp template that
    stands in for them outside the 24-hour window (None: no window, or no template)."""
    last = len(outgoing) - 1
    return tuple(
        replace(
            message,
            params=message.params | {"fallback": fallback}
            if fallback is not None and n == last
            else message.params,
            author=Author.NOTICE,
        )
        for n, message in enumerate(outgoing)
    )
