"""My bookings: the client's upcoming visits, each with Reschedule and Cancel.

The bookings are the uids stored in the client's session (made or moved in this chat), read
afresh from the calendar each time: a visit the salon moved shows at its new time, one it
cancelled or that is over drops off the list.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from bot import consent
from bot.flows import identity, menu
from bot.flows.booking import CALENDAR_FILE, BookingFlow
from bot.flows.standing import standing
from bot.flows.turn import Context, Turn
from bot.flows.waitlist import WaitlistFlow
from bot.local_time import format_label, format_when
from bot.ports import Calendar, CalendarUnavailable, Visit
from bot.replies import Choice, Reply
from bot.session import forgetting

VIEW = "k:v:"
MOVE = "k:r:"
CANCEL = "k:c:"
CANCEL_YES = "k:cx:"  # confirmed: the reason is asked next
CANCEL_NOW = "k:cs:"  # cancel without a reason
ATTEND = "k:y:"  # "I'll come", under a reminder or a confirmation

CANCEL_STEP = "mine.cancel"
LIST_STEP = "mine.list"
REASON_STEP = "mine.reason"
# The steps at which typed text is read by My bookings.
TEXT_STEPS = (CANCEL_STEP, REASON_STEP)


class MyBookings:
    def __init__(self, calendar: Calendar, booking: BookingFlow) -> None:
        self.calendar = calendar
        self.booking = booking
        # The client's waits are listed after their visits, where the salon keeps a waitlist.
        self.waiting: WaitlistFlow | None = None

    async def show(self, ctx: Context) -> Turn:
        _ = ctx._
        try:
            visits = await self._upcoming(ctx)
        except CalendarUnavailable:
            return self._unavailable(ctx)
        linked = ctx.elsewhere.channels
        waits, leave = await self.waiting.listed(ctx) if self.waiting else ([], [])
        if not visits and not waits:
            offer: tuple[Choice, ...] = (
                Choice(menu.BOOK, _("menu.book")),
                Choice(menu.HOME, _("menu.home")),
            )
            if linked:
                offer = (*identity.linked_choices(_), *offer)
            text = _("mine.none")
            if linked:
                text = f"{text}\n\n{identity.linked_line(_, linked)}"
            return ctx.reply(Reply(text, offer), menu.STEP)
        lines = [_("mine.title") if visits else _("mine.none"), ""]
        choices = []
        for visit in visits:
            when = format_label(visit.start, self.booking.zone, ctx.locale)
            service = visit.service_in(ctx.locale)
            lines.append(_("mine.item", when=when, service=service))
            choices.append(Choice(f"{VIEW}{visit.uid}", f"{when} · {service}"))
        if waits:
            lines += ["", _("wait.title"), *waits]
        choices += leave
        if linked:
            # Visits booked from the client's other messenger are here too (gateway/pipeline/
            # identity.py): said, with the way out of the link.
            lines += ["", identity.linked_line(_, linked)]
            choices += identity.linked_choices(_)
        choices.append(Choice(menu.HOME, _("menu.home")))
        ctx.update(viewing=None, draft=None)
        return ctx.reply(Reply("\n".join(lines), tuple(choices)), LIST_STEP)

    async def choose(self, ctx: Context, choice: str) -> Turn:
        for prefix, action in (
            (VIEW, self._view),
            (MOVE, self._move),
            (CANCEL_YES, self._ask_reason),
            (CANCEL_NOW, self._cancel),
            (CANCEL, self._ask_cancel),
            (ATTEND, self._attend),
        ):
            if choice.startswith(prefix):
                uid = choice.removeprefix(prefix)
                if uid in ctx.session.former:
                    # A visit of theirs that changed since the button was sent.
                    return await self._former(ctx, uid)
                if uid not in ctx.session.bookings and uid not in ctx.elsewhere.bookings:
                    # Not one of this client's bookings (an old button, or a forged one).
                    return ctx.reply(menu.menu(ctx._, ctx._("choice.stale")), menu.STEP)
                return await action(ctx, uid)
        return ctx.reply(menu.menu(ctx._, ctx._("choice.stale")), menu.STEP)

    async def text(self, ctx: Context, text: str) -> Turn:
        """Typed text at the cancel question cancels only when it is an unambiguous yes; "no",
        a question or anything else keeps the booking. Once cancelling is confirmed, typed text
        is the reason (optional), unless it takes the yes back, asks to move the visit or asks
        a question: then the booking stays and the client's words are answered."""
        uid = ctx.session.viewing
        step = ctx.session.step
        if uid is None or uid not in ctx.session.bookings:
            return await self.show(ctx)
        if step == CANCEL_STEP and consent.is_yes(text):
            return await self._ask_reason(ctx, uid)
        if step == REASON_STEP and _is_reason(text):
            return await self._cancel(ctx, uid, reason=" ".join(text.split())[:500] or None)
        visit = await self._current(ctx, uid)
        if isinstance(visit, Turn):
            return visit  # gone meanwhile: that is what the client is told
        ctx.note(Reply(ctx._("mine.cancel.kept")))
        if consent.asks_to_move(text):
            return await self.booking.move(ctx, visit)
        return await self._view(ctx, visit.uid)

    async def _view(self, ctx: Context, uid: str) -> Turn:
        _ = ctx._
        visit = await self._current(ctx, uid)
        if isinstance(visit, Turn):
            return visit
        lines = self.booking.visit_lines(ctx, visit)
        choices = (
            Choice(f"{MOVE}{visit.uid}", _("mine.reschedule")),
            Choice(f"{CANCEL}{visit.uid}", _("mine.cancel")),
            Choice(f"{CALENDAR_FILE}{visit.uid}", _("book.calendar_file")),
            Choice(menu.BOOKINGS, _("menu.back")),
        )
        ctx.update(viewing=visit.uid)
        return ctx.reply(Reply("\n".join(lines), choices), LIST_STEP)

    async def _move(self, ctx: Context, uid: str) -> Turn:
        visit = await self._current(ctx, uid)
        if isinstance(visit, Turn):
            return visit
        return await self.booking.move(ctx, visit)

    async def _attend(self, ctx: Context, uid: str) -> Turn:
        """The client says they will come: thanked, and staff are told (`Turn.attending`)."""
        _ = ctx._
        visit = await self._current(ctx, uid)
        if isinstance(visit, Turn):
            return visit
        when = format_when(visit.start, self.booking.zone, ctx.locale)
        choices = (Choice(menu.BOOKINGS, _("menu.bookings")), Choice(menu.HOME, _("menu.home")))
        ctx.update(
            attending=[*[u for u in ctx.session.attending if u != visit.uid], visit.uid][-20:]
        )
        turn = ctx.reply(Reply(_("notice.attending", when=when), choices), menu.STEP)
        return Turn(turn.replies, turn.session, attending=visit.uid)

    async def _ask_cancel(self, ctx: Context, uid: str) -> Turn:
        _ = ctx._
        visit = await self._current(ctx, uid)
        if isinstance(visit, Turn):
            return visit
        when = format_when(visit.start, self.booking.zone, ctx.locale)
        choices = (
            Choice(f"{CANCEL_YES}{visit.uid}", _("mine.cancel.yes")),
            Choice(f"{VIEW}{visit.uid}", _("mine.cancel.no")),
        )
        ctx.update(viewing=visit.uid)
        text = _("mine.cancel.prompt", service=visit.service_in(ctx.locale), when=when)
        return ctx.reply(Reply(text, choices), CANCEL_STEP)

    async def _ask_reason(self, ctx: Context, uid: str) -> Turn:
        """Cancelling is confirmed: a reason helps the salon, but the client may skip it."""
        _ = ctx._
        visit = await self._current(ctx, uid)
        if isinstance(visit, Turn):
            return visit
        choices = (
            Choice(f"{CANCEL_NOW}{visit.uid}", _("mine.reason.skip")),
            Choice(f"{VIEW}{visit.uid}", _("mine.cancel.no")),
        )
        ctx.update(viewing=visit.uid)
        return ctx.reply(Reply(_("mine.reason.prompt"), choices), REASON_STEP)

    async def _cancel(self, ctx: Context, uid: str, reason: str | None = None) -> Turn:
        _ = ctx._
        try:
            visit = await self.calendar.cancel(uid, reason)
        except CalendarUnavailable:
            return self._unavailable(ctx)
        when = format_when(visit.start, self.booking.zone, ctx.locale)
        kept = [known for known in ctx.session.bookings if known != uid]
        ctx.update(viewing=None, **forgetting(ctx.session, kept))
        choices = (
            Choice(menu.BOOK, _("mine.book_again")),
            Choice(menu.BOOKINGS, _("menu.bookings")),
            Choice(menu.HOME, _("menu.home")),
        )
        text = _("mine.cancelled", service=visit.service_in(ctx.locale), when=when)
        return replace(ctx.reply(Reply(text, choices), menu.STEP), cancelled=visit)

    async def _current(self, ctx: Context, uid: str) -> Visit | Turn:
        """The booking as the calendar has it now, or the turn that says why not."""
        try:
            visit = await self.calendar.visit(uid)
        except CalendarUnavailable:
            return self._unavailable(ctx)
        if visit is None or not visit.active or visit.end <= ctx.now:
            kept = [known for known in ctx.session.bookings if known != uid]
            ctx.update(**forgetting(ctx.session, kept))
            ctx.note(
                standing(ctx, visit, uid, self.booking.zone) if visit else Reply(ctx._("mine.gone"))
            )
            return await self.show(ctx)
        if visit.uid != uid:
            self._follow(ctx, uid, visit.uid)
        return visit

    async def _upcoming(self, ctx: Context) -> list[Visit]:
        own = list(ctx.session.bookings)
        # The visits booked from the client's other messenger (a linked chat) are shown, but
        # stay that chat's: this session keeps its own list.
        uids = own + [uid for uid in ctx.elsewhere.bookings if uid not in own]
        found = await asyncio.gather(*(self.calendar.visit(uid) for uid in uids))
        # By uid: two stored uids may lead to one booking (the salon moved it).
        upcoming: dict[str, Visit] = {}
        kept: list[str] = []
        for n, visit in enumerate(found):
            if visit is not None and visit.active and visit.end > ctx.now:
                upcoming[visit.uid] = visit
                if n < len(own) and visit.uid not in kept:
                    kept.append(visit.uid)
        ctx.update(**forgetting(ctx.session, kept))
        return sorted(upcoming.values(), key=lambda v: v.start)

    @staticmethod
    def _follow(ctx: Context, old: str, new: str) -> None:
        """The salon moved the booking: its new uid replaces the old one."""
        bookings = [new if known == old else known for known in ctx.session.bookings]
        ctx.update(**forgetting(ctx.session, list(dict.fromkeys(bookings))))

    async def _former(self, ctx: Context, uid: str) -> Turn:
        """An old button of a visit that left the client's list: what became of it."""
        try:
            visit = await self.calendar.visit(uid)
        except CalendarUnavailable:
            return self._unavailable(ctx)
        if visit is None:
            return ctx.reply(menu.menu(ctx._, ctx._("mine.gone")), menu.STEP)
        return ctx.reply(standing(ctx, visit, uid, self.booking.zone), menu.STEP)

    def _unavailable(self, ctx: Context) -> Turn:
        _ = ctx._
        details = menu.contacts(_, self.booking.salon)
        text = _("mine.unavailable")
        if details:
            text = f"{text}\n\n{details}"
        choices = (Choice(menu.BOOKINGS, _("book.retry")), Choice(menu.HOME, _("menu.home")))
        return ctx.reply(Reply(text, choices), menu.STEP)


def _is_reason(text: str) -> bool:
    """Words after the yes that give a reason: not a no, not a wish to move the visit instead,
    not a question (a client who asks something has not finished deciding)."""
    return not (consent.is_no(text) or consent.asks_to_move(text) or "?" in text)
