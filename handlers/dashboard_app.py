"""What staff proposed from the help desk's Dashboard App (gateway/dashboard_app), sent by the
worker that owns the client's conversation: the times as buttons in the client's messenger
(staff's words, so they go though a person owns the conversation) and a private note for
staff. The client's session is read for their language, never written."""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from bot.events import Channel, ClientRef
from bot.flows.proposal import Proposal, offer, slot_label
from bot.i18n import Catalogs
from gateway.integrations.chatwoot.helpdesk import CHANNEL as HELP_DESK
from gateway.integrations.chatwoot.helpdesk import ECHO_PREFIX
from gateway.pipeline import (
    Author,
    Conversation,
    Entry,
    Outcome,
    Outgoing,
    SessionStore,
    Unreadable,
    entry_object,
)
from handlers.channels import adapter_for

SOURCE = "dashboard"


class DashboardEvents:
    def __init__(
        self, salon_id: str, zone: ZoneInfo, catalogs: Catalogs, sessions: SessionStore
    ) -> None:
        self.salon_id = salon_id
        self.zone = zone
        self.catalogs = catalogs
        self.sessions = sessions

    async def __call__(self, entry: Entry) -> Outcome:
        conv = Conversation.from_key(entry.conversation)
        data = entry_object(entry.body)
        if conv is None or data.get("kind") != "propose":
            raise Unreadable("not a proposal of the Dashboard App")
        try:
            proposal = Proposal.model_validate(data.get("proposal"))
        except ValidationError:
            raise Unreadable("a proposal that does not read") from None
        client = ClientRef(self.salon_id, Channel(conv.channel), conv.chat, conv.chat)
        session = await self.sessions.load(client)
        _ = self.catalogs.get(self.catalogs.resolve(session.locale, session.app_language))
        rendered = adapter_for(conv.channel).replies(conv.chat, (offer(_, proposal, self.zone),), _)
        said = tuple(replace(message, author=Author.STAFF) for message in rendered.outgoing)
        times = "; ".join(slot_label(slot, self.zone, "en") for slot in proposal.slots)
        until = proposal.until.astimezone(self.zone).strftime("%H:%M")
        text = (
            f"📅 {proposal.staff} proposed {proposal.service}: {times}. "
            f"Held for the client until {until}; their tap books it."
        )
        params = {"client": {}, "text": text, "source_id": f"{ECHO_PREFIX}{entry.event_id}"}
        note = Outgoing(HELP_DESK, conv.key, "note", params, author=Author.HELP_DESK)
        return Outcome(outgoing=(*said, note))
