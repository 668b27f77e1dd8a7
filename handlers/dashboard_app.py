"""What staff proposed from the help desk's Dashboard App (gateway/dashboard_app), sent by the
worker that owns the client's conversation: the times as buttons in the client's messenger
(staff's words, so they go though a person owns the conversation; on WhatsApp outside the
24-hour window, the approved template of handlers/proposal_template.py), or what staff booked, moved
or cancelled for the client, each with a private note for staff. The client's session is read
for their language; a change on their behalf updates only their list of bookings."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from bot.events import Channel, ClientRef
from bot.flows.proposal import STAFF_CHANGES, Proposal, offer, slot_label, staff_change
from bot.i18n import Catalogs, Translator
from bot.local_time import format_when
from bot.replies import Reply
from bot.session import Session, forgetting
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
    instant,
)
from handlers.channels import adapter_for
from handlers.proposal_template import proposal_template, with_fallback

SOURCE = "dashboard"


class DashboardEvents:
    def __init__(
        self,
        salon_id: str,
        zone: ZoneInfo,
        catalogs: Catalogs,
        sessions: SessionStore,
        template: str,
    ) -> None:
        self.salon_id = salon_id
        self.zone = zone
        self.catalogs = catalogs
        self.sessions = sessions
        # The approved WhatsApp templates' name for a proposal outside the 24-hour window
        # (WHATSAPP_TEMPLATE_PROPOSAL, one per number of times: handlers/proposal_template.py).
        self.template = template

    async def __call__(self, entry: Entry) -> Outcome:
        conv = Conversation.from_key(entry.conversation)
        data = entry_object(entry.body)
        if conv is None or data.get("kind") not in ("propose", "changed"):
            raise Unreadable("not an event of the Dashboard App")
        client = ClientRef(self.salon_id, Channel(conv.channel), conv.chat, conv.chat)
        session = await self.sessions.load(client)
        _ = self.catalogs.get(self.catalogs.resolve(session.locale, session.app_language))
        if data["kind"] == "changed":
            return self._changed(conv, client, session, data, _, entry.event_id)
        try:
            proposal = Proposal.model_validate(data.get("proposal"))
        except ValidationError:
            raise Unreadable("a proposal that does not read") from None
        said = self._said(conv, offer(_, proposal, self.zone), _)
        if adapter_for(conv.channel).service_window:
            fallback = proposal_template(self.template, proposal, self.zone, _.locale)
            said = with_fallback(said, fallback)
        times = "; ".join(slot_label(slot, self.zone, "en") for slot in proposal.slots)
        until = proposal.until.astimezone(self.zone).strftime("%H:%M")
        text = (
            f"📅 {proposal.staff} proposed {proposal.service}: {times}. "
            f"Held for the client until {until}; their tap books it."
        )
        return Outcome(outgoing=(*said, self._note(conv, text, entry.event_id)))

    def _changed(
        self,
        conv: Conversation,
        client: ClientRef,
        session: Session,
        data: dict[str, Any],
        _: Translator,
        event_id: str,
    ) -> Outcome:
        """Staff booked, moved or cancelled for the client: they are told, staff get a note,
        and the client's list of bookings follows (their draft stays as it is)."""
        change, uid, previous = data.get("change"), data.get("uid"), data.get("previous")
        start = instant(data.get("start"))
        if change not in STAFF_CHANGES or not isinstance(uid, str) or start is None:
            raise Unreadable("a change of the Dashboard App that does not read")
        service, staff = str(data.get("service") or ""), str(data.get("staff") or "")
        master = data.get("master") if isinstance(data.get("master"), str) else None
        kept = [known for known in session.bookings if known not in (uid, previous)]
        if change != "cancelled":
            kept.append(uid)
        after = session.model_copy(update=forgetting(session, kept))
        reply = staff_change(
            _, change, service=service, start=start, master=master, staff=staff, zone=self.zone
        )
        when = format_when(start, self.zone, "en")
        text = f"📝 {staff} {change} {service}, {when} for the client (booking {uid})."
        outgoing = (*self._said(conv, reply, _), self._note(conv, text, event_id))
        return Outcome(
            outgoing=outgoing,
            session_key=self.sessions.key(client),
            session=self.sessions.dump(after),
            session_ttl=self.sessions.ttl,
        )

    @staticmethod
    def _said(conv: Conversation, reply: Reply, _: Translator) -> tuple[Outgoing, ...]:
        """Staff's words to the client: they go though a person owns the conversation."""
        rendered = adapter_for(conv.channel).replies(conv.chat, (reply,), _)
        return tuple(replace(message, author=Author.STAFF) for message in rendered.outgoing)

    @staticmethod
    def _note(conv: Conversation, text: str, event_id: str) -> Outgoing:
        params = {"client": {}, "text": text, "source_id": f"{ECHO_PREFIX}{event_id}"}
        return Outgoing(HELP_DESK, conv.key, "note", params, author=Author.HELP_DESK)
