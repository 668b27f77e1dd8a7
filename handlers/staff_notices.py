"""What the salon's staff are told through Novu about a client's turn (issue 21).

A client booked a time the waitlist offered them (`staff-waitlist-booked`), or booked or moved a
visit while the salon is closed (`staff-out-of-hours`, with SALON_WORKING_HOURS set: staff see
it when they come in). Each notice is one trigger to the salon's staff topic
(gateway/integrations/novu/staff.py), queued in the outbox with the turn (channel "novu", sent
by NovuDelivery), so it goes once the turn is committed and is retried like any Novu call. Its
transactionId names the booking, so a redelivered turn pages no one twice. A no-show marked in
Cal.com pages them too (`staff-no-show`, once per booking).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.flows.turn import Turn
from bot.i18n import Translator
from bot.local_time import format_label
from bot.ports import Visit
from bot.working_hours import WorkingHours
from gateway.integrations.novu.staff import (
    NO_SHOW,
    OUT_OF_HOURS,
    WAITLIST_BOOKED,
    staff_trigger,
)
from gateway.integrations.novu.staff_pages import STAFF_CHAT
from gateway.pipeline import Author, Conversation, Outgoing


class StaffNotices:
    def __init__(
        self,
        salon: str,
        zone: ZoneInfo,
        words: Translator,
        hours: WorkingHours | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.salon = salon
        self.zone = zone
        self.words = words
        self.hours = hours
        self.clock = clock

    def of_turn(self, conv: Conversation, turn: Turn) -> tuple[Outgoing, ...]:
        visit = turn.booked
        if visit is None:
            return ()
        if turn.waitlist == "booked":
            return (self._notice(conv, visit, WAITLIST_BOOKED, "waitlist"),)
        if self.hours is not None and not self.hours.is_open(self.clock(), self.zone):
            return (self._notice(conv, visit, OUT_OF_HOURS, "out-of-hours"),)
        return ()

    def no_show(self, uid: str, conversation: str) -> tuple[Outgoing, ...]:
        """A client was marked absent in Cal.com (its webhook names the booking only);
        `conversation`: the key of the client's chat, when Frontdesk knows them."""
        conv = Conversation.from_key(conversation)
        payload = {
            "subject": self.words("staff.no-show.subject"),
            "text": self.words("staff.no-show.text", booking=uid),
            "booking": uid,
            "channel": conv.channel if conv is not None else "",
            "url": "",
        }
        body = staff_trigger(self.salon, NO_SHOW, f"{self.salon}:no-show:{uid}", payload)
        return (Outgoing("novu", STAFF_CHAT, "trigger", body, author=Author.NOTICE),)

    def _notice(self, conv: Conversation, visit: Visit, workflow: str, key: str) -> Outgoing:
        locale = self.words.locale
        when = format_label(visit.start, self.zone, locale)
        payload = {
            "subject": self.words(f"staff.{key}.subject"),
            "text": self.words(f"staff.{key}.text", service=visit.service_in(locale), when=when),
            "booking": visit.uid,
            "channel": conv.channel,
            "url": "",
        }
        body = staff_trigger(self.salon, workflow, f"{self.salon}:{key}:{visit.uid}", payload)
        return Outgoing("novu", STAFF_CHAT, "trigger", body, author=Author.NOTICE)
