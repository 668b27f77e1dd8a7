"""The waitlist's messages to a client, handled in their conversation (source "waitlist").

The matcher (gateway/integrations/calcom/waitlist_offers.py) queues an offer once it holds a
freed time for the client: the bot words it with "Book it" and "No thanks", and it goes like a
notice (the salon speaks, so a person owning the conversation does not hold it back). On
WhatsApp, outside the 24-hour window, it goes as the salon's approved template
(WHATSAPP_TEMPLATE_WAITLIST_OFFER, README "Waitlist") with the same two buttons: their payloads
are the buttons' ids, so a tap answers it as a tap on the message would. An offer whose hold
ended before it was handled is not sent. A wait past its last day is counted for analytics.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.events import Inbound, Kind
from bot.flows.turn import Turn
from bot.flows.waitlist import DECLINE, TAKE
from bot.local_time import format_label
from bot.ports import HeldTime
from gateway.analytics import facts as analytics
from gateway.analytics.facts import Recorder
from gateway.integrations.calcom.waitlist import WaitlistStore
from gateway.pipeline import Conversation, Entry, Outcome, Outgoing, entry_object
from handlers.channels import adapter_for
from handlers.notices import NoticeSender, as_notice

SOURCE = "waitlist"


class WaitlistEvents:
    def __init__(
        self,
        store: WaitlistStore,
        notices: NoticeSender,
        clock: Callable[[], datetime],
        template: str,
        recorder: Recorder | None = None,
    ) -> None:
        self.store = store
        self.notices = notices
        self.clock = clock
        self.template = template
        self.recorder = recorder

    async def __call__(self, entry: Entry) -> Outcome:
        body = entry_object(entry.body)
        conv = Conversation.from_key(entry.conversation)
        if conv is None:
            return Outcome()
        now = self.clock()
        if body.get("kind") == "expired":
            return Outcome(facts=self._fact(analytics.WAITLIST_EXPIRED, conv, now, body))
        offered = await self.store.offer(str(body.get("offer", "")))
        if offered is None or offered.state != "held" or offered.held.until <= now:
            return Outcome()  # passed on, answered or over before it could be sent
        client = self.notices.client(conv)
        session = await self.notices.sessions.load(client)
        event = Inbound(client, Kind.TEXT, entry.event_id)
        turn = await self.notices.desk.offer(session, event, offered.held, now)
        outgoing = self._render(conv, turn, offered.held)
        start = offered.held.start
        fields = {"service": offered.held.service_key, "starts_at": self._local(start)}
        facts = self._fact(analytics.WAITLIST_OFFERED, conv, now, fields)
        return self.notices.turns.saved(client, turn.session, outgoing, facts)

    def _render(self, conv: Conversation, turn: Turn, held: HeldTime) -> tuple[Outgoing, ...]:
        catalogs = self.notices.catalogs
        _ = catalogs.get(catalogs.resolve(turn.session.locale, turn.session.app_language))
        channel = adapter_for(conv.channel)
        rendered = channel.replies(conv.chat, turn.replies, _)
        fallback = self._fallback(held, _.locale, turn) if channel.service_window else None
        return as_notice(rendered.outgoing, fallback)

    def _fallback(self, held: HeldTime, locale: str, turn: Turn) -> dict[str, Any]:
        """The approved template standing in for the offer outside the 24-hour window: the
        service, when, and until when it is held; "Book it" and "No thanks" as its buttons."""
        zone = self.notices.desk.notices.zone
        # The service as the offer names it (its first line: "… «service» when.").
        text = turn.replies[0].text if turn.replies else ""
        service = text.partition("«")[2].partition("»")[0] or held.service_key
        buttons = [f"{TAKE}{held.id}", f"{DECLINE}{held.id}"]
        values = (
            service,
            format_label(held.start, zone, locale),
            format_label(held.until, zone, locale),
        )
        return {
            "type": "template",
            "template": {
                "name": self.template,
                "language": {"policy": "deterministic", "code": locale},
                "components": [
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": value} for value in values],
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

    def _local(self, moment: datetime) -> str | None:
        return self.recorder.local(moment) if self.recorder is not None else None

    def _fact(
        self, kind: str, conv: Conversation, now: datetime, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], ...]:
        if self.recorder is None:
            return ()
        kept = {k: v for k, v in fields.items() if k in ("service", "starts_at")}
        return (self.recorder.fact(kind, conv.key, now, **kept),)
