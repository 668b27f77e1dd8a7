"""What the salon's staff are told through Novu about a client's turn (issue 21).

Today: a client booked a time the waitlist offered them (`staff-waitlist-booked`). The notice is
one trigger to the salon's staff topic (gateway/integrations/novu/staff.py), queued in the
outbox with the turn (channel "novu", sent by NovuDelivery), so it goes once the turn is
committed and is retried like any Novu call. Its transactionId names the booking, so a
redelivered turn pages no one twice.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.flows.turn import Turn
from bot.i18n import Translator
from bot.local_time import format_label
from gateway.integrations.novu.staff import WAITLIST_BOOKED, staff_trigger
from gateway.pipeline import Author, Conversation, Outgoing

# The outbox keeps one order per (channel, chat): staff notices have their own line.
STAFF_CHAT = "staff"


class StaffNotices:
    def __init__(self, salon: str, zone: ZoneInfo, words: Translator) -> None:
        self.salon = salon
        self.zone = zone
        self.words = words

    def of_turn(self, conv: Conversation, turn: Turn) -> tuple[Outgoing, ...]:
        visit = turn.booked
        if turn.waitlist != "booked" or visit is None:
            return ()
        locale = self.words.locale
        when = format_label(visit.start, self.zone, locale)
        payload = {
            "subject": self.words("staff.waitlist.subject"),
            "text": self.words("staff.waitlist.text", service=visit.service_in(locale), when=when),
            "booking": visit.uid,
            "channel": conv.channel,
            "url": "",
        }
        body = staff_trigger(
            self.salon, WAITLIST_BOOKED, f"{self.salon}:waitlist:{visit.uid}", payload
        )
        return (Outgoing("novu", STAFF_CHAT, "trigger", body, author=Author.NOTICE),)
