"""What the salon's staff are told through Novu about a client's turn (issue 21).

A client booked a time the waitlist offered them (`staff-waitlist-booked`), or a visit was
booked, moved or cancelled while the salon is closed (`staff-out-of-hours`, with
SALON_WORKING_HOURS set: staff see it when they come in) - in the chat, or on Cal.com's own
page (its webhook; a change the chat made, which Cal.com echoes back, was paged by the turn).
Each notice is one trigger to the salon's staff topic (gateway/integrations/novu/staff.py),
queued in the outbox with the turn or the webhook's change (channel "novu", sent by
NovuDelivery), so it goes once that is committed and is retried like any Novu call. Its
transactionId names the booking and the change, the same from the chat and from the webhook, so
a redelivered turn or webhook pages no one twice. A no-show marked in Cal.com pages them too
(`staff-no-show`, once per booking).
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

# The changes an out-of-hours page tells of (its text, and its transactionId).
BOOKED = "booked"
MOVED = "moved"
CANCELLED = "cancelled"


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
        if turn.cancelled is not None and self._closed(self.clock()):
            return (self._out_of_hours(conv.channel, turn.cancelled, CANCELLED),)
        visit = turn.booked
        if visit is None:
            return ()
        if turn.waitlist == "booked":
            return (self._notice(conv, visit, WAITLIST_BOOKED, "waitlist"),)
        if self._closed(self.clock()):
            change = MOVED if turn.replaced else BOOKED
            return (self._out_of_hours(conv.channel, visit, change),)
        return ()

    def of_calendar(
        self, change: str, visit: Visit, conversation: str, at: datetime
    ) -> tuple[Outgoing, ...]:
        """A booking made, moved or cancelled on Cal.com's own page (`change`: booked, moved or
        cancelled) at `at`; `conversation`: the client's chat, when Frontdesk knows them. The
        caller leaves out the changes the chat made (their turn paged already)."""
        if not self._closed(at):
            return ()
        conv = Conversation.from_key(conversation)
        return (self._out_of_hours(conv.channel if conv is not None else "", visit, change),)

    def _closed(self, at: datetime) -> bool:
        """Only a salon with working hours is ever closed (SALON_WORKING_HOURS unset: never)."""
        return self.hours is not None and not self.hours.is_open(at, self.zone)

    def _out_of_hours(self, channel: str, visit: Visit, change: str) -> Outgoing:
        key = "out-of-hours" if change == BOOKED else f"out-of-hours.{change}"
        # One page per booking and change, whichever way it was told.
        transaction = f"{self.salon}:out-of-hours:{change}:{visit.uid}"
        return self._page(channel, visit, OUT_OF_HOURS, key, transaction)

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
        transaction = f"{self.salon}:{key}:{visit.uid}"
        return self._page(conv.channel, visit, workflow, key, transaction)

    def _page(
        self, channel: str, visit: Visit, workflow: str, key: str, transaction: str
    ) -> Outgoing:
        locale = self.words.locale
        when = format_label(visit.start, self.zone, locale)
        payload = {
            "subject": self.words(f"staff.{key}.subject"),
            "text": self.words(f"staff.{key}.text", service=visit.service_in(locale), when=when),
            "booking": visit.uid,
            "channel": channel,
            "url": "",
        }
        body = staff_trigger(self.salon, workflow, transaction, payload)
        return Outgoing("novu", STAFF_CHAT, "trigger", body, author=Author.NOTICE)
