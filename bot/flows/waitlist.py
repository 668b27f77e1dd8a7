"""The waitlist: a client waits for a time to free up, and is offered it, held, when it does.

From the time step ("nothing free that day", or none of the times suits) the client joins: the
service and master of their draft, a part of the day, and a range of days from the day they
looked at. When a matching time frees up the gateway holds it in the calendar for the first
client waiting and sends them an offer (`offer`): "Book it" books the held time, "No thanks"
passes it on; typed "yes"/"да" and "no thanks"/"нет" answer it too. A client's waits are listed
under My bookings, each with a button to leave it.

Decided here (README, Waitlist): a wait spans one, three or seven days; the parts of the day
are before 12:00, 12:00-17:00 and from 17:00 on the salon's clock (or any time).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import date, timedelta

from bot.flows import menu
from bot.flows.booking import CONFIRM_STEP, BookingFlow
from bot.flows.booking_steps import new_draft, parse_day
from bot.flows.turn import Context, Turn
from bot.local_time import format_day, format_time, format_when
from bot.ports import CalendarUnavailable, HeldTime, Wait, Waitlist, WaitlistFull
from bot.replies import Choice, Reply
from bot.typed import plain
from bot.understanding.words import Lexicon, words

PREFIX = "w:"
JOIN = "w:j:"  # + the first day, YYYYMMDD
PART = "w:p:"  # + a part of the day
RANGE = "w:r:"  # + how many days
TAKE = "w:ok:"  # + the offer's id: "Book it"
DECLINE = "w:no:"  # + the offer's id: "No thanks"
LEAVE = "w:x:"  # + the wait's id (My bookings)

PART_STEP = "wait.part"
RANGE_STEP = "wait.range"
PARTS = ("morning", "afternoon", "evening", "any")
# Local hours [from, to) of each part of the day.
PART_HOURS = {"morning": (0, 12), "afternoon": (12, 17), "evening": (17, 24), "any": (0, 24)}
RANGES = (1, 3, 7)
# How long a freed time is held for the client it is offered to, in the calendar (Cal.com's
# reservation) and here; then it goes to the next client.
HOLD_MINUTES = 10
# How many waits one client may keep at once.
MAX_WAITS = 3

# Stems of the parts of the day, Russian and English, forgiving endings and typos ("вечерком",
# "afternon"); "any" words only as they are.
_PART_STEMS = {
    "morning": ("morning", "утр"),
    "afternoon": ("afternoon", "днем", "обед", "daytime"),
    "evening": ("evening", "вечер", "night"),
}
_ANY_WORDS = frozenset({"any", "anytime", "whenever", "любое", "любой", "неважно", "все", "всё"})
_PARTS_LEXICON = Lexicon()
for _part, _stems in _PART_STEMS.items():
    _PARTS_LEXICON.add(_part, _stems)
# "A week", "неделю": the longest wait.
_WEEK = Lexicon()
_WEEK.add("week", ("week", "недел"))
# Politeness around an answer ("yes please", "нет, спасибо") does not change it.
_FILLER = frozenset({"please", "pls", "plz", "thanks", "thank", "you", "пожалуйста", "спасибо"})
_YES = frozenset(
    {"yes", "yep", "yeah", "ok", "okay", "book", "book it", "yes book it", "sure"}
    | {"да", "ага", "ок", "давай", "беру", "записать", "запишите", "записаться", "да запишите"}
    | {"yse", "ys", "дп", "lf"}  # the usual slips of a thumb (and a wrong keyboard layout)
)
_NO = frozenset(
    {"no", "nope", "not now", "нет", "не надо"} | {"не хочу", "неа", "нет не надо", "ytn"}
)


def part_of(text: str) -> str | None:
    """The part of the day typed ("afternoon pls", "лучше вечерком"), or None when there is
    none or more than one ("morning or evening": the buttons ask)."""
    said = words(text)
    found = {part for word in said for part in _PARTS_LEXICON.lookup(word)}
    if any(word in _ANY_WORDS for word in said) or {"any", "time"} <= set(said):
        found.add("any")
    return found.pop() if len(found) == 1 else None


def answer_of(text: str) -> bool | None:
    """A typed answer to an offer: True for yes, False for no, None for anything else."""
    wanted = " ".join(word for word in plain(text).split() if word not in _FILLER)
    if wanted in _YES:
        return True
    if wanted in _NO:
        return False
    return None


class WaitlistFlow:
    def __init__(self, booking: BookingFlow, waitlist: Waitlist) -> None:
        self.booking = booking
        self.waitlist = waitlist

    # --- joining ------------------------------------------------------------------------------

    async def choose(self, ctx: Context, choice: str) -> Turn:
        if choice.startswith(TAKE):
            return await self._take(ctx, choice.removeprefix(TAKE))
        if choice.startswith(DECLINE):
            return await self._decline(ctx, choice.removeprefix(DECLINE))
        draft = ctx.session.draft
        if draft is None or draft.service is None:
            return ctx.reply(menu.menu(ctx._, ctx._("choice.stale")), menu.STEP)
        if choice.startswith(JOIN) and (day := parse_day(choice.removeprefix(JOIN))):
            self.booking._edit(ctx, day=day, start=None, wait_part=None)
            return self._ask_part(ctx)
        # A part of the day or a range of days answers a wait being joined from a day: an old
        # button under another draft (no day chosen) is stale.
        joining = draft.day is not None
        if joining and choice.startswith(PART) and choice.removeprefix(PART) in PARTS:
            self.booking._edit(ctx, wait_part=choice.removeprefix(PART))
            return self._ask_range(ctx)
        days = choice.removeprefix(RANGE)
        if joining and choice.startswith(RANGE) and days.isdigit() and int(days) in RANGES:
            return await self._join(ctx, int(days))
        return ctx.reply(menu.menu(ctx._, ctx._("choice.stale")), menu.STEP)

    async def text(self, ctx: Context, text: str) -> Turn | None:
        """Typed text at the waitlist's own steps; None when it is not an answer to them (the
        front desk then reads it as usual: nothing is lost or changed)."""
        step = ctx.session.step
        draft = ctx.session.draft
        if draft is None or draft.day is None:
            return None
        if step == PART_STEP and (part := part_of(text)) is not None:
            return await self.choose(ctx, f"{PART}{part}")
        found = re.search(r"\d+", text)
        if step == RANGE_STEP and found and int(found.group()) in RANGES:
            return await self.choose(ctx, f"{RANGE}{int(found.group())}")
        if step == RANGE_STEP and not found and any(_WEEK.lookup(word) for word in words(text)):
            return await self.choose(ctx, f"{RANGE}7")
        if step in (PART_STEP, RANGE_STEP) and plain(text):
            ctx.note(Reply(ctx._("book.reprompt")))
            return self._ask_part(ctx) if step == PART_STEP else self._ask_range(ctx)
        return None

    def _ask_part(self, ctx: Context) -> Turn:
        _ = ctx._
        choices = [Choice(f"{PART}{part}", _(f"wait.part.{part}")) for part in PARTS]
        choices.append(Choice(menu.HOME, _("menu.home")))
        return ctx.reply(Reply(_("wait.part.prompt"), tuple(choices)), PART_STEP)

    def _ask_range(self, ctx: Context) -> Turn:
        _ = ctx._
        draft = ctx.session.draft
        assert draft is not None
        assert draft.day is not None
        choices = [
            Choice(f"{RANGE}{days}", self._span(ctx, draft.day, draft.day + timedelta(days - 1)))
            for days in RANGES
        ]
        choices.append(Choice(menu.HOME, _("menu.home")))
        return ctx.reply(Reply(_("wait.range.prompt"), tuple(choices)), RANGE_STEP)

    async def _join(self, ctx: Context, days: int) -> Turn:
        _ = ctx._
        draft = ctx.session.draft
        assert draft is not None
        assert draft.service is not None
        assert draft.day is not None
        wait = Wait(
            id=uuid.uuid4().hex[:12],
            service_key=draft.service,
            master_id=draft.master,
            first=draft.day,
            last=draft.day + timedelta(days=days - 1),
            part=draft.wait_part or "any",
        )
        after = (Choice(menu.BOOKINGS, _("menu.bookings")), Choice(menu.HOME, _("menu.home")))
        try:
            await self.waitlist.join(ctx.event.client, wait, ctx.now)
        except WaitlistFull:
            return ctx.reply(Reply(_("wait.full"), after), menu.STEP)
        ctx.update(draft=None)
        text = _("wait.joined", wait=await self.described(ctx, wait), minutes=HOLD_MINUTES)
        turn = ctx.reply(Reply(text, after), menu.STEP)
        return replace(turn, waitlist="joined", waited=wait.service_key)

    # --- offers -------------------------------------------------------------------------------

    async def offer(self, ctx: Context, held: HeldTime) -> Turn:
        """The offer of a held time; the client's place in the conversation stays as it is."""
        _ = ctx._
        zone = self.booking.zone
        service, master = await self._names(ctx, held.service_key, held.master_id)
        when = format_when(held.start, zone, ctx.locale)
        lines = [_("wait.offer", service=service, when=when)]
        if master:
            lines.append(_("book.line.master", master=master))
        lines.append(_("wait.offer.until", time=format_time(held.until, zone, ctx.locale)))
        choices = (
            Choice(f"{TAKE}{held.id}", _("wait.offer.take")),
            Choice(f"{DECLINE}{held.id}", _("wait.offer.decline")),
        )
        ctx.update(waitlist_offer=held.id, waitlist_offer_until=held.until)
        return Turn((Reply("\n".join(lines), choices),), ctx.session)

    async def answer(self, ctx: Context, text: str) -> Turn | None:
        """A typed yes or no to the offer the client was sent last."""
        offer, until = ctx.session.waitlist_offer, ctx.session.waitlist_offer_until
        said = answer_of(text)
        if offer is None or said is None:
            return None
        if until is None or until <= ctx.now:
            # Over: "ok" now is no answer to it (the front desk reads it as usual).
            ctx.update(waitlist_offer=None, waitlist_offer_until=None)
            return None
        return await (self._take(ctx, offer) if said else self._decline(ctx, offer))

    async def _take(self, ctx: Context, offer_id: str) -> Turn:
        _ = ctx._
        ctx.update(waitlist_offer=None, waitlist_offer_until=None)
        held = await self.waitlist.take(ctx.event.client, offer_id, ctx.now)
        if held is None:
            if offer_id in ctx.session.booked:
                return await self.booking._already(ctx, ctx.session.made.get(offer_id))
            return ctx.reply(menu.menu(_, _("wait.offer.gone")), menu.STEP)
        draft = new_draft(
            ctx,
            id=held.id,
            service=held.service_key,
            master=held.master_id,
            slot_master=held.master_id,
            day=held.start.astimezone(self.booking.zone).date(),
            start=held.start,
            offer=held.id,
        )
        ctx.update(draft=draft)
        if draft.name and (draft.phone or draft.email) and not draft.needs_email:
            return await self.booking._confirm(ctx, draft.id)
        # Their details first: the summary asks for what is missing, the hold waits.
        ctx.note(Reply(_("wait.offer.details")))
        return await self.booking.screen(ctx, CONFIRM_STEP)

    async def _decline(self, ctx: Context, offer_id: str) -> Turn:
        _ = ctx._
        ctx.update(waitlist_offer=None, waitlist_offer_until=None)
        if not await self.waitlist.decline(ctx.event.client, offer_id):
            return ctx.reply(menu.menu(_, _("wait.offer.gone")), menu.STEP)
        return ctx.reply(menu.menu(_, _("wait.offer.declined")), menu.STEP)

    # --- My bookings --------------------------------------------------------------------------

    async def listed(self, ctx: Context) -> tuple[list[str], list[Choice]]:
        """The client's waits as My bookings shows them: a line and a Leave button each."""
        waits = await self.waitlist.waits(ctx.event.client)
        lines: list[str] = []
        choices: list[Choice] = []
        for wait in waits:
            described = await self.described(ctx, wait)
            lines.append(ctx._("wait.item", wait=described))
            service, _master = await self._names(ctx, wait.service_key, None)
            choices.append(Choice(f"{LEAVE}{wait.id}", ctx._("wait.leave", service=service)))
        return lines, choices

    async def leave(self, ctx: Context, wait_id: str) -> None:
        left = await self.waitlist.leave(ctx.event.client, wait_id)
        ctx.note(Reply(ctx._("wait.left" if left else "wait.left.already")))

    async def described(self, ctx: Context, wait: Wait) -> str:
        service, master = await self._names(ctx, wait.service_key, wait.master_id)
        parts = [service]
        if master:
            parts.append(master)
        parts.append(self._span(ctx, wait.first, wait.last))
        parts.append(ctx._(f"wait.part.{wait.part}"))
        return ", ".join(parts)

    @staticmethod
    def _span(ctx: Context, first: date, last: date) -> str:
        if first == last:
            return ctx._("wait.range.day", day=format_day(first, ctx.locale))
        return ctx._(
            "wait.range.days",
            first=format_day(first, ctx.locale),
            last=format_day(last, ctx.locale),
        )

    async def _names(
        self, ctx: Context, service_key: str, master_id: int | None
    ) -> tuple[str, str | None]:
        """The service's title in the client's language and the master's name, as the calendar
        lists them (the key itself should the calendar not answer)."""
        try:
            services = await self.booking.calendar.services()
        except CalendarUnavailable:
            return service_key, None
        service = next((s for s in services if s.key == service_key), None)
        if service is None:
            return service_key, None
        master = next((m.name for m in service.masters if m.id == master_id), None)
        return service.in_language(ctx.locale).title, master
