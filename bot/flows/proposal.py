"""Times staff propose from the help desk (Chatwoot's Dashboard App): the client's answer.

Staff pick up to three free times; each is held in the calendar for a short while and the
client gets them as buttons. A tap (or the time typed, or its number) books that time at once,
even while a person owns the conversation: the client answers what staff offered. The client's
own draft booking in their session is left as it is; the other holds are released.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from bot.events import ClientRef, Kind
from bot.flows import menu, waitlist
from bot.flows.booking_steps import TIME_STEP
from bot.flows.turn import Context, Turn
from bot.i18n import Translator
from bot.local_time import format_label, format_time, format_when
from bot.ports import (
    AttendeeRejected,
    BookingRequest,
    Calendar,
    CalendarUnavailable,
    SlotTaken,
    Visit,
)
from bot.replies import Choice, Reply
from bot.session import Owner
from bot.typed import plain
from bot.understanding.when import read_day, without_dates

# `pp:<proposal id>:<n>`: well inside Telegram's 64 bytes of callback data.
PREFIX = "pp:"
MAX_SLOTS = 3
# Steps that read a bare number themselves (the waitlist's range of days, an hour at the time
# step): while the bot has the chat, "3" there is theirs, not a proposed time's number.
_DIGIT_STEPS = frozenset({waitlist.RANGE_STEP, TIME_STEP})


class ProposedSlot(BaseModel):
    start: datetime  # aware, UTC
    master_id: int | None = None
    master: str | None = None
    # Cal.com's reservation holding this time for the client (None: this Cal.com holds nothing).
    reservation: str | None = None


class Proposal(BaseModel):
    id: str
    service_key: str
    service: str  # the service's title, as staff saw it
    slots: list[ProposedSlot]
    until: datetime  # when the holds end
    staff: str  # who proposed (the Chatwoot agent's name)
    # The client's details for the calendar, from their session or the help desk's contact.
    name: str
    phone: str | None = None
    email: str | None = None

    def choice(self, index: int) -> str:
        return f"{PREFIX}{self.id}:{index}"


class ProposalBook(Protocol):
    """Where the gateway keeps each client's open proposal (at most one)."""

    async def current(self, client: ClientRef) -> Proposal | None:
        """The client's open proposal, None when there is none (or it ran out)."""
        ...

    async def settle(self, client: ClientRef, proposal: Proposal, kept: int | None) -> None:
        """Close the proposal: every hold but slot `kept`'s is given back."""
        ...


def slot_label(slot: ProposedSlot, zone: ZoneInfo, locale: str) -> str:
    label = format_label(slot.start, zone, locale)
    return f"{label} · {slot.master}" if slot.master else label


def offer(_: Translator, proposal: Proposal, zone: ZoneInfo) -> Reply:
    """The message with the proposed times as buttons, and until when they are held."""
    until = format_time(proposal.until, zone, _.locale)
    text = _("proposal.offer", staff=proposal.staff, service=proposal.service, until=until)
    choices = tuple(
        Choice(proposal.choice(n), slot_label(slot, zone, _.locale))
        for n, slot in enumerate(proposal.slots)
    )
    return Reply(text, choices)


class ProposalFlow:
    def __init__(self, calendar: Calendar, book: ProposalBook, zone: ZoneInfo) -> None:
        self.calendar = calendar
        self.book = book
        self.zone = zone

    async def answer(self, ctx: Context) -> Turn | None:
        """The client's answer to a proposal (a tap on one of its times, or the time or its
        number typed while one is open); None when the event is something else."""
        event = ctx.event
        if event.kind is Kind.CHOICE and event.choice.startswith(PREFIX):
            proposal_id, _sep, index = event.choice.removeprefix(PREFIX).partition(":")
            proposal = await self.book.current(event.client)
            if proposal is None or proposal.id != proposal_id or not index.isdigit():
                return self._gone(ctx)
            return await self._take(ctx, proposal, int(index))
        if event.kind is not Kind.TEXT or len(event.text) > 40:
            return None
        proposal = await self.book.current(event.client)
        if proposal is None:
            return None
        chosen = self._typed(ctx, proposal, event.text)
        return None if chosen is None else await self._take(ctx, proposal, chosen)

    def _typed(self, ctx: Context, proposal: Proposal, text: str) -> int | None:
        """Which proposed time the words name: its button's label, its number (1-3) or its
        time of day ("14:30", "14.30", "в 14:30", "at 2:30 pm" is read as 14:30 too). A time
        with a day named ("в пятницу в 14:30") is only that day's."""
        wanted = plain(text)
        for n, slot in enumerate(proposal.slots):
            if wanted == plain(slot_label(slot, self.zone, ctx.locale)):
                return n
        session = ctx.session
        # A bare number answers the bot's own numbered list (or step) first, while it has the
        # chat.
        bots = session.owner != Owner.HUMAN
        own = bots and (session.numbered or session.step in _DIGIT_STEPS)
        if wanted.isdigit() and not own and 1 <= int(wanted) <= len(proposal.slots):
            return int(wanted) - 1
        day, week = read_day(text, ctx.now.astimezone(self.zone).date())
        if week is not None:
            return None  # "next week at 14:30": no one day, so none of these
        found = re.search(r"(\d{1,2})[:.](\d{2})\s*(pm|am)?", without_dates(text))
        if found is None:
            return None
        hour = int(found.group(1))
        if found.group(3) == "pm" and hour < 12:
            hour += 12
        if found.group(3) == "am" and hour == 12:
            hour = 0
        times = [slot.start.astimezone(self.zone) for slot in proposal.slots]
        same = [
            n
            for n, t in enumerate(times)
            if (t.hour, t.minute) == (hour, int(found[2])) and day in (None, t.date())
        ]
        return same[0] if len(same) == 1 else None

    async def _take(self, ctx: Context, proposal: Proposal, index: int) -> Turn:
        _ = ctx._
        if index >= len(proposal.slots):
            return self._gone(ctx)
        slot = proposal.slots[index]
        request = BookingRequest(
            key=f"{ctx.event.client.key}:proposal:{proposal.id}",
            client=ctx.event.client,
            service_key=proposal.service_key,
            master_id=slot.master_id,
            start=slot.start,
            name=proposal.name,
            locale=ctx.locale,
            phone=proposal.phone,
            email=proposal.email,
            reservation=slot.reservation,
        )
        try:
            visit = await self.calendar.book(request)
        except (SlotTaken, AttendeeRejected) as exc:
            await self.book.settle(ctx.event.client, proposal, None)
            when = format_when(slot.start, self.zone, ctx.locale)
            note = f"The client chose {when}, but it could not be booked ({exc}): please help."
            return self._said(ctx, Reply(_("proposal.failed", when=when)), note)
        except CalendarUnavailable:
            reply = Reply(
                _("proposal.unavailable"), (Choice(proposal.choice(index), _("proposal.retry")),)
            )
            return Turn((reply,), ctx.session, answers_staff=True)
        await self.book.settle(ctx.event.client, proposal, index)
        return self._booked(ctx, proposal, visit)

    def _booked(self, ctx: Context, proposal: Proposal, visit: Visit) -> Turn:
        _ = ctx._
        session = ctx.session
        if visit.uid not in session.bookings:
            # Only the list of their bookings changes: the draft they may have is theirs.
            ctx.session = session.model_copy(update={"bookings": [*session.bookings, visit.uid]})
        when = format_when(visit.start, self.zone, ctx.locale)
        service = visit.service_in(ctx.locale)
        master = f" · {visit.master}" if visit.master else ""
        reply = Reply(
            _("proposal.booked", service=service, when=when, master=master),
            (Choice(menu.BOOKINGS, _("menu.bookings")),),
        )
        note = (
            f"✅ The client booked {service}, {format_when(visit.start, self.zone, 'en')}"
            f"{master} from the times {proposal.staff} proposed (booking {visit.uid})."
        )
        return replace(self._said(ctx, reply, note), booked=visit)

    def _gone(self, ctx: Context) -> Turn:
        _ = ctx._
        reply = Reply(_("proposal.gone"), (Choice(menu.BOOK, _("menu.book")),))
        return Turn((reply,), ctx.session, answers_staff=True)

    @staticmethod
    def _said(ctx: Context, reply: Reply, note: str) -> Turn:
        return Turn((reply,), ctx.session, answers_staff=True, staff_note=note)


# What staff did from the help desk on the client's behalf, as the client is told it.
STAFF_CHANGES = ("booked", "moved", "cancelled")


def staff_change(
    _: Translator,
    change: str,
    *,
    service: str,
    start: datetime,
    master: str | None,
    staff: str,
    zone: ZoneInfo,
) -> Reply:
    when = format_when(start, zone, _.locale)
    line = _(f"staff.{change}", staff=staff, service=service, when=when)
    if master and change != "cancelled":
        line = f"{line}\n{_('book.line.master', master=master)}"
    return Reply(line, (Choice(menu.BOOKINGS, _("menu.bookings")),))
