"""Booking in the chat: service → master → day → time → contact → summary → confirm.

The same steps, from the day on, move an existing booking (My bookings → Reschedule).

Every step can go back or stop; a button from an earlier message of the same booking still
works (it takes the client back to that choice). The draft lives in the session, so when the
calendar is down the client's choices wait for them. Each draft is booked at most once: its id
is the booking's idempotency key, so a double tap on Confirm or a redelivered update finds the
booking the first one made.
"""

from __future__ import annotations

from datetime import date

from bot import contact
from bot.flows import menu
from bot.flows.booking_confirm import BookingConfirmation
from bot.flows.booking_steps import (
    ALL_TIMES,
    ANY_MASTER,
    BACK,
    CALENDAR_FILE,
    CONFIRM,
    CONFIRM_STEP,
    CONTACT_STEP,
    DATA_STEPS,
    DAY,
    DAY_STEP,
    DAYS_AHEAD,
    EDIT_CONTACT,
    EDIT_NAME,
    MASTER,
    MASTER_STEP,
    NAME_STEP,
    PREFIX,
    QUIT,
    RESUME,
    RETRY,
    SERVICE,
    SERVICE_STEP,
    SERVICES_PAGE,
    SERVICES_PER_PAGE,
    SHARE_PHONE,
    STEPS,
    TIME,
    TIME_STEP,
    clock,
    new_draft,
    parse_day,
    parse_time_id,
    service_token,
    wishes,
)
from bot.flows.turn import Context, Turn
from bot.ports import CalendarUnavailable, Slot, Visit
from bot.replies import Choice, Reply
from bot.session import Draft
from bot.typed import plain
from bot.understanding import Understood

# The flow's steps and choices live in booking_steps; callers name them through this module.
__all__ = [
    "ALL_TIMES",
    "ANY_MASTER",
    "BACK",
    "CALENDAR_FILE",
    "CONFIRM",
    "CONFIRM_STEP",
    "CONTACT_STEP",
    "DATA_STEPS",
    "DAY",
    "DAYS_AHEAD",
    "DAY_STEP",
    "EDIT_CONTACT",
    "EDIT_NAME",
    "MASTER",
    "MASTER_STEP",
    "NAME_STEP",
    "PREFIX",
    "QUIT",
    "RESUME",
    "RETRY",
    "SERVICE",
    "SERVICES_PAGE",
    "SERVICES_PER_PAGE",
    "SERVICE_STEP",
    "SHARE_PHONE",
    "STEPS",
    "TIME",
    "TIME_STEP",
    "BookingFlow",
    "service_token",
    "wishes",
]


# What typed at the summary means "book it": a yes and little else, in either language, in any
# order and with any emoji ("yes thats right 👍", "да, всё верно, записывайте"). At least one word
# that says yes, every other word a filler, and no word that says no: "not right", "no, the time
# is wrong", "yes but at 12" and a bare thanks or thumbs-up keep the summary in view.
_SAYS_YES = frozenset(
    {"yes", "yeah", "yep", "yup", "confirm", "confirmed", "correct", "right", "book", "perfect"}
    | {"да", "верно", "правильно", "подтверждаю", "подтвердить", "записывайте", "записывай"}
    | {"ага", "точно", "подходит"}
)
_FILLER = frozenset(
    {"that", "thats", "s", "is", "it", "its", "all", "good", "fine", "please", "pls", "plz"}
    | {"everything", "looks", "go", "ahead", "ok", "okay", "sure", "thanks", "thank", "you"}
    | {"все", "так", "отлично", "хорошо", "пожалуйста", "давайте", "конечно", "именно"}
    | {"спасибо", "меня", "можно", "ок", "окей"}
)
_SAYS_NO = frozenset(
    {"no", "not", "nope", "dont", "don", "wrong", "нет", "не", "неверно", "неправильно"}
)


def confirms(text: str) -> bool:
    words = set(plain(text).replace("ё", "е").split())
    return bool(words & _SAYS_YES) and words <= _SAYS_YES | _FILLER and not words & _SAYS_NO


class BookingFlow(BookingConfirmation):
    """The booking steps as one flow: its parts are layered by role, screens
    (`BookingScreens`) under confirming (`BookingConfirmation`) under the moves between steps
    here."""

    # --- entry points -------------------------------------------------------------------------

    async def start(self, ctx: Context) -> Turn:
        session = ctx.session
        draft = session.draft
        if draft is not None and draft.reschedule is None and draft.service is not None:
            # Back to an unfinished booking (the calendar was down, or the client looked at
            # something else): where they left off.
            ctx.note(Reply(ctx._("book.resume")))
            return await self.screen(ctx, CONFIRM_STEP)
        ctx.update(draft=new_draft(ctx))
        return await self.screen(ctx, SERVICE_STEP)

    async def start_from(self, ctx: Context, understood: Understood) -> Turn:
        """A booking asked for in words ("manicure tomorrow after 3"): the steps the words
        answer are skipped; an ambiguous service is asked about with buttons."""
        ctx.update(draft=new_draft(ctx, **wishes(understood)))
        try:
            turn = await self._typed_service(ctx, understood)
        except CalendarUnavailable:
            return self._unavailable(ctx, SERVICE_STEP)
        if turn is not None:
            return turn
        if understood.unlisted_service:
            ctx.note(Reply(ctx._("typed.service.unknown")))
        return await self.screen(ctx, SERVICE_STEP)

    async def move(self, ctx: Context, visit: Visit) -> Turn:
        """Reschedule `visit`: the same service and master, a new day and time."""
        draft = new_draft(
            ctx,
            service=visit.service_key,
            master=visit.master_id,
            slot_master=visit.master_id,
            reschedule=visit.uid,
        )
        ctx.update(draft=draft, viewing=visit.uid)
        return await self.screen(ctx, DAY_STEP)

    async def choose(self, ctx: Context, choice: str) -> Turn:
        draft = ctx.session.draft
        if choice.startswith(CALENDAR_FILE):
            return await self._calendar_file(ctx, choice.removeprefix(CALENDAR_FILE))
        if choice.startswith(CONFIRM):
            return await self._confirm(ctx, choice.removeprefix(CONFIRM))
        if draft is None:
            return ctx.reply(menu.menu(ctx._, ctx._("choice.stale")), menu.STEP)
        if choice == QUIT:
            ctx.update(draft=None)
            return ctx.reply(menu.menu(ctx._, ctx._("book.quit.done")), menu.STEP)
        if choice == BACK:
            return await self._back(ctx)
        if choice == RETRY:
            return await self.screen(ctx, ctx.session.step)
        if choice == EDIT_NAME:
            return await self.screen(ctx, NAME_STEP)
        if choice == RESUME:
            # Back from staff: the step the client was at, their choices kept.
            step = ctx.session.handoff_step
            return await self.screen(ctx, step if step in STEPS else CONFIRM_STEP)
        if choice in (EDIT_CONTACT, SHARE_PHONE):
            # SHARE_PHONE arrives as a tap only where the channel cannot share the phone itself.
            return await self.screen(ctx, CONTACT_STEP)
        if choice.startswith(SERVICES_PAGE) and choice.removeprefix(SERVICES_PAGE).isdigit():
            self._edit(ctx, page=int(choice.removeprefix(SERVICES_PAGE)))
            return await self.screen(ctx, SERVICE_STEP)
        if choice.startswith(SERVICE) and draft.reschedule is None:
            return await self._service_chosen(ctx, choice.removeprefix(SERVICE))
        if choice.startswith(MASTER) and draft.reschedule is None:
            return await self._master_chosen(ctx, choice.removeprefix(MASTER))
        if choice.startswith(DAY) and (day := parse_day(choice.removeprefix(DAY))):
            return await self._day_chosen(ctx, day)
        if choice == ALL_TIMES:
            self._edit(ctx, wanted_after=None, wanted_before=None)
            return await self.screen(ctx, TIME_STEP)
        if choice.startswith(TIME) and (slot := parse_time_id(choice.removeprefix(TIME))):
            return await self._time_chosen(ctx, slot)
        return ctx.reply(menu.menu(ctx._, ctx._("choice.stale")), menu.STEP)

    async def text(self, ctx: Context, text: str) -> Turn:
        """Typed text at a booking step: what the step expects, else a helpful re-prompt."""
        step = ctx.session.step
        if step == CONTACT_STEP:
            phone, email = contact.phone(text), contact.email(text)
            draft = ctx.session.draft
            if draft is not None and draft.needs_email and email is None:
                ctx.note(Reply(ctx._("book.contact.invalid_email")))
                return await self.screen(ctx, CONTACT_STEP)
            if phone or email:
                return await self._contact_given(ctx, phone=phone, email=email)
            # Say what is wrong, with an example: "abc" is no phone number.
            ctx.note(Reply(ctx._(f"book.contact.invalid.{contact.problem(text)}")))
            return await self.screen(ctx, CONTACT_STEP)
        if step == NAME_STEP:
            name = contact.name(text)
            if name is None:
                ctx.note(Reply(ctx._("book.name.invalid")))
                return await self.screen(ctx, NAME_STEP)
            self._edit(ctx, name=name)
            return await self.screen(ctx, CONFIRM_STEP)
        ctx.note(Reply(ctx._("book.reprompt")))
        return await self.screen(ctx, step)

    async def confirmed_in_words(self, ctx: Context, text: str) -> Turn | None:
        """ "Да, всё верно" at the summary is the Confirm button in words (a thumbs-up or a
        thanks is not: they keep the summary in view); None for anything else."""
        draft = ctx.session.draft
        if ctx.session.step == CONFIRM_STEP and draft is not None and confirms(text):
            return await self._confirm(ctx, draft.id)
        return None

    async def typed(self, ctx: Context, understood: Understood) -> Turn | None:
        """Typed text at a choosing step, read in that step's context ("friday" at the day,
        "10:30" at the time, a name at the master); None when it says nothing about the
        booking (the front desk then reads it as a request of its own)."""
        try:
            return await self._typed(ctx, understood)
        except CalendarUnavailable:
            return self._unavailable(ctx, ctx.session.step)

    async def reprompt(self, ctx: Context) -> Turn:
        ctx.note(Reply(ctx._("book.reprompt")))
        return await self.screen(ctx, ctx.session.step)

    async def _typed(self, ctx: Context, understood: Understood) -> Turn | None:
        draft = ctx.session.draft
        assert draft is not None
        wished = wishes(understood)
        self._edit(ctx, **wished)
        moving = draft.reschedule is not None
        names_service = bool(understood.services or understood.category)
        if not moving and (names_service or (draft.service is None and understood.masters)):
            turn = await self._typed_service(ctx, understood)
            if turn is not None:
                return turn
        if draft.service is None:
            return await self.screen(ctx, SERVICE_STEP) if wished else None
        if not moving and (turn := await self._typed_master(ctx, draft, understood)):
            return turn
        when = understood.when
        if when.day is not None:
            return await self._day_chosen(ctx, when.day)
        if draft.day is not None and when.at is not None:
            self._edit(ctx, wanted_at=None)
            return await self._typed_time(ctx, when.at.hour, when.at.minute)
        if draft.day is not None and when.time_given:
            self._edit(ctx, start=None)
            return await self.screen(ctx, TIME_STEP)
        if wished:
            # Kept for when a day is chosen: "at 15:00" before any day.
            return await self.screen(ctx, DAY_STEP if draft.day is None else ctx.session.step)
        return None

    async def _typed_service(self, ctx: Context, understood: Understood) -> Turn | None:
        """The service the words name; the named ones as buttons when they name several
        ("стрижка": women's or men's), or a master's services when only a master is named."""
        services = await self.calendar.services()
        keys = set(understood.services)
        if not keys and understood.category:
            keys = {s.key for s in services if s.category == understood.category}
        if not keys and len(understood.masters) == 1:
            master = understood.masters[0]
            keys = {s.key for s in services if any(m.id == master for m in s.masters)}
        # In the client's words, as the full list shows them.
        named = [s.in_language(ctx.locale) for s in services if s.key in keys]
        if len(named) == 1:
            return await self._service_chosen(ctx, service_token(named[0].key))
        if not named:
            return None
        _ = ctx._
        choices = [
            Choice(f"{SERVICE}{service_token(s.key)}", self._label(s, ctx.locale)) for s in named
        ]
        choices += [
            Choice(f"{SERVICES_PAGE}0", _("typed.service.all")),
            Choice(QUIT, _("book.quit")),
        ]
        return ctx.reply(Reply(_("typed.service.which"), tuple(choices)), SERVICE_STEP)

    async def _typed_master(
        self, ctx: Context, draft: Draft, understood: Understood
    ) -> Turn | None:
        """A master named for the chosen service, or "any" at the master step."""
        if understood.any_master and ctx.session.step == MASTER_STEP:
            return await self._master_chosen(ctx, "any")
        service = await self._service_or_none(ctx, draft.service)
        ids = {m.id for m in service.masters} if service is not None else set()
        named = [m for m in understood.masters if m in ids]
        if len(named) == 1 and len(ids) > 1:
            return await self._master_chosen(ctx, str(named[0]))
        return None

    async def contact_shared(self, ctx: Context, number: str) -> Turn:
        phone = contact.shared_phone(number)
        if ctx.session.draft is None or phone is None:
            return ctx.reply(menu.menu(ctx._, ctx._("fallback.menu")), menu.STEP)
        return await self._contact_given(ctx, phone=phone, email=None)

    async def _back(self, ctx: Context) -> Turn:
        draft = ctx.session.draft
        assert draft is not None
        step = ctx.session.step
        if step == SERVICE_STEP:
            ctx.update(draft=None)
            return ctx.reply(menu.menu(ctx._, ctx._("menu.prompt")), menu.STEP)
        if step == MASTER_STEP:
            return await self.screen(ctx, SERVICE_STEP)
        if step == DAY_STEP:
            if draft.reschedule is not None:
                ctx.update(draft=None)
                return ctx.reply(menu.menu(ctx._, ctx._("book.quit.moved")), menu.STEP)
            service = await self._service_or_none(ctx, draft.service)
            several = service is not None and len(service.masters) > 1
            return await self.screen(ctx, MASTER_STEP if several else SERVICE_STEP)
        if step == TIME_STEP:
            return await self.screen(ctx, DAY_STEP)
        if step == NAME_STEP:
            return await self.screen(ctx, CONFIRM_STEP)
        # From the contact and the summary: back to the times of the chosen day.
        self._edit(ctx, start=None)
        return await self.screen(ctx, TIME_STEP)

    async def _service_chosen(self, ctx: Context, token: str) -> Turn:
        try:
            services = await self.calendar.services()
        except CalendarUnavailable:
            return self._unavailable(ctx, SERVICE_STEP)
        service = next((s for s in services if service_token(s.key) == token), None)
        if service is None:
            ctx.note(Reply(ctx._("book.service.gone")))
            return await self.screen(ctx, SERVICE_STEP)
        self._edit(ctx, service=service.key, master=None, day=None, start=None)
        if len(service.masters) > 1:
            wanted = ctx.session.draft.wanted_master if ctx.session.draft else None
            if wanted in {m.id for m in service.masters}:
                return await self._master_chosen(ctx, str(wanted))
            return await self.screen(ctx, MASTER_STEP)
        # One master (or the calendar assigns one): nothing to choose.
        only = service.masters[0].id if service.masters else None
        self._edit(ctx, master=only)
        return await self._day_or_wish(ctx)

    async def _master_chosen(self, ctx: Context, value: str) -> Turn:
        if value == "any":
            self._edit(ctx, master=None, day=None, start=None)
            return await self._day_or_wish(ctx)
        if not value.isdigit():
            return await self.screen(ctx, MASTER_STEP)
        self._edit(ctx, master=int(value), day=None, start=None)
        return await self._day_or_wish(ctx)

    async def _day_or_wish(self, ctx: Context) -> Turn:
        """The day step, or straight to the day the client named."""
        draft = ctx.session.draft
        assert draft is not None
        if draft.wanted_day is not None:
            return await self._day_chosen(ctx, draft.wanted_day)
        return await self.screen(ctx, DAY_STEP)

    async def _day_chosen(self, ctx: Context, day: date) -> Turn:
        """The day's times, or the time the client named on it ("завтра в 15:00")."""
        self._edit(ctx, day=day, start=None, wanted_day=None)
        draft = ctx.session.draft
        assert draft is not None
        at = clock(draft.wanted_at)
        if at is not None:
            self._edit(ctx, wanted_at=None)
            return await self._typed_time(ctx, at.hour, at.minute)
        return await self.screen(ctx, TIME_STEP)

    async def _time_chosen(self, ctx: Context, slot: Slot) -> Turn:
        draft = ctx.session.draft
        assert draft is not None
        master = slot.master_id if slot.master_id is not None else draft.master
        day = slot.start.astimezone(self.zone).date()
        self._edit(ctx, day=day, start=slot.start, slot_master=master)
        return await self.screen(ctx, CONFIRM_STEP)

    async def _typed_time(self, ctx: Context, hour: int, minute: int) -> Turn:
        draft = ctx.session.draft
        assert draft is not None
        assert draft.day is not None
        try:
            slots = await self._day_slots(draft, draft.day)
        except CalendarUnavailable:
            return self._unavailable(ctx, TIME_STEP)
        for slot in slots:
            local = slot.start.astimezone(self.zone)
            if (local.hour, local.minute) == (hour, minute):
                return await self._time_chosen(ctx, slot)
        ctx.note(Reply(ctx._("book.time.not_free", time=f"{hour:02d}:{minute:02d}")))
        return await self.screen(ctx, TIME_STEP)

    async def _contact_given(self, ctx: Context, *, phone: str | None, email: str | None) -> Turn:
        draft = ctx.session.draft
        assert draft is not None
        changes: dict[str, str | None] = {}
        if phone:
            changes["phone"] = phone
        if email:
            changes["email"] = email
        self._edit(ctx, **changes)
        shown = contact.readable(phone) if phone else email
        ctx.note(Reply(ctx._("book.contact.saved", contact=shown), clear_keyboard=True))
        return await self.screen(ctx, CONFIRM_STEP)
