"""Booking in the chat: service → master → day → time → contact → summary → confirm.

The same steps, from the day on, move an existing booking (My bookings → Reschedule).

Every step can go back or stop; a button from an earlier message of the same booking still
works (it takes the client back to that choice). The draft lives in the session, so when the
calendar is down the client's choices wait for them. Each draft is booked at most once: its id
is the booking's idempotency key, so a double tap on Confirm or a redelivered update finds the
booking the first one made.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot import contact
from bot.catalogue import Master, Service
from bot.flows import menu
from bot.flows.services import price_text
from bot.flows.standing import standing
from bot.flows.turn import Context, Turn
from bot.i18n import Translator
from bot.ics import calendar_file
from bot.local_time import (
    format_day,
    format_label,
    format_on_day,
    format_time,
    format_when,
    local_day_window,
    upcoming_days,
)
from bot.ports import (
    AttendeeRejected,
    BookingRequest,
    BookingUncertain,
    Calendar,
    CalendarUnavailable,
    Slot,
    SlotTaken,
    Visit,
)
from bot.replies import Choice, Document, Reply
from bot.salon import Salon
from bot.session import Draft
from bot.understanding import Clock, Understood

PREFIX = "b:"
SERVICE = "b:s:"
SERVICES_PAGE = "b:sp:"
MASTER = "b:m:"
ANY_MASTER = "b:m:any"
DAY = "b:d:"
TIME = "b:t:"
CONFIRM = "b:ok:"
SHARE_PHONE = "b:phone"
EDIT_NAME = "b:name"
EDIT_CONTACT = "b:contact"
BACK = "b:back"
QUIT = "b:quit"
RETRY = "b:retry"
CALENDAR_FILE = "b:ics:"
ALL_TIMES = "b:ta"  # the day's times without the client's "after 3"

SERVICE_STEP = "book.service"
MASTER_STEP = "book.master"
DAY_STEP = "book.day"
TIME_STEP = "book.time"
CONTACT_STEP = "book.contact"
RESUME = "b:resume"
NAME_STEP = "book.name"
CONFIRM_STEP = "book.confirm"
STEPS = (SERVICE_STEP, MASTER_STEP, DAY_STEP, TIME_STEP, CONTACT_STEP, NAME_STEP, CONFIRM_STEP)
# Steps whose typed text is the client's details, not a request.
DATA_STEPS = (CONTACT_STEP, NAME_STEP)

DAYS_AHEAD = 14
SERVICES_PER_PAGE = 8
# Telegram's callback data holds 64 bytes; a longer service key travels as its checksum.
_KEY_BYTES = 48
_REMEMBERED = 10  # drafts booked lately, and bookings, kept per client


def service_token(key: str) -> str:
    if len(key.encode()) <= _KEY_BYTES:
        return key
    return f"#{zlib.crc32(key.encode()):08x}"


def _time_id(slot: Slot) -> str:
    stamp = slot.start.astimezone(UTC).strftime("%Y%m%d%H%M")
    return f"{TIME}{stamp}" + (f":{slot.master_id}" if slot.master_id is not None else "")


def _parse_time_id(value: str) -> Slot | None:
    stamp, _, master = value.partition(":")
    try:
        start = datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None
    if master and not master.isdigit():
        return None
    return Slot(start, int(master) if master else None)


def _parse_day(value: str) -> date | None:
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8])) if len(value) == 8 else None
    except ValueError:
        return None


def _clock(value: str | None) -> Clock | None:
    if value is None:
        return None
    hour, minute = value.split(":")
    return Clock(int(hour), int(minute))


def wishes(understood: Understood) -> dict[str, object]:
    """What the client said about their visit, as the draft keeps it until a step uses it."""
    when = understood.when
    found: dict[str, object] = {}
    if len(understood.masters) == 1:
        found["wanted_master"] = understood.masters[0]
    if when.day is not None:
        found["wanted_day"] = when.day
    if when.from_day is not None:
        found["wanted_from"] = when.from_day
    if when.time_given:
        found["wanted_at"] = str(when.at) if when.at else None
        found["wanted_after"] = str(when.after) if when.after else None
        found["wanted_before"] = str(when.before) if when.before else None
    return found


def _new_draft(ctx: Context, **fields: object) -> Draft:
    """A fresh draft with the contact details the client gave before."""
    session = ctx.session
    known: dict[str, object] = {
        "name": session.name or ctx.event.name,
        # The number the client writes from (WhatsApp) is as good as one they typed.
        "phone": session.phone or ctx.event.phone or None,
        "email": session.email,
    }
    return Draft.model_validate({"id": uuid.uuid4().hex[:12], **known, **fields})


class BookingFlow:
    def __init__(self, salon: Salon, calendar: Calendar) -> None:
        self.salon = salon
        self.calendar = calendar
        self.zone = ZoneInfo(salon.timezone)

    # --- entry points -------------------------------------------------------------------------

    async def start(self, ctx: Context) -> Turn:
        session = ctx.session
        draft = session.draft
        if draft is not None and draft.reschedule is None and draft.service is not None:
            # Back to an unfinished booking (the calendar was down, or the client looked at
            # something else): where they left off.
            ctx.note(Reply(ctx._("book.resume")))
            return await self.screen(ctx, CONFIRM_STEP)
        ctx.update(draft=_new_draft(ctx))
        return await self.screen(ctx, SERVICE_STEP)

    async def start_from(self, ctx: Context, understood: Understood) -> Turn:
        """A booking asked for in words ("manicure tomorrow after 3"): the steps the words
        answer are skipped; an ambiguous service is asked about with buttons."""
        ctx.update(draft=_new_draft(ctx, **wishes(understood)))
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
        draft = _new_draft(
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
        if choice.startswith(DAY) and (day := _parse_day(choice.removeprefix(DAY))):
            return await self._day_chosen(ctx, day)
        if choice == ALL_TIMES:
            self._edit(ctx, wanted_after=None, wanted_before=None)
            return await self.screen(ctx, TIME_STEP)
        if choice.startswith(TIME) and (slot := _parse_time_id(choice.removeprefix(TIME))):
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
        named = [s for s in services if s.key in keys]
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

    # --- moving between steps -----------------------------------------------------------------

    async def screen(self, ctx: Context, step: str) -> Turn:
        """Show `step` for the current draft. The calendar being down keeps the client at that
        step with their choices, and offers to try again."""
        try:
            return await self._render(ctx, step)
        except CalendarUnavailable:
            return self._unavailable(ctx, step)

    async def _render(self, ctx: Context, step: str) -> Turn:
        draft = ctx.session.draft
        assert draft is not None
        _ = ctx._
        if step == SERVICE_STEP:
            return await self._services_screen(ctx, draft)
        if draft.service is None:
            return await self._services_screen(ctx, draft)
        if step == MASTER_STEP:
            return await self._masters_screen(ctx, draft)
        if step == DAY_STEP or draft.day is None:
            return await self._days_screen(ctx, draft)
        if step == TIME_STEP or draft.start is None:
            return await self._times_screen(ctx, draft, draft.day)
        if (step == CONTACT_STEP or not draft.email) and draft.needs_email:
            back = (Choice(BACK, _("menu.back")), Choice(QUIT, _("book.quit")))
            return ctx.reply(Reply(_("book.contact.email_prompt"), back), CONTACT_STEP)
        if step == CONTACT_STEP or not (draft.phone or draft.email):
            return ctx.reply(
                Reply(
                    _("book.contact.prompt"),
                    (
                        Choice(SHARE_PHONE, _("book.contact.share")),
                        Choice(BACK, _("menu.back")),
                        Choice(QUIT, _("book.quit")),
                    ),
                    request_contact=True,
                ),
                CONTACT_STEP,
            )
        if step == NAME_STEP or not draft.name:
            return ctx.reply(
                Reply(_("book.name.prompt"), (Choice(BACK, _("menu.back")),)), NAME_STEP
            )
        return await self._summary_screen(ctx, draft)

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
        at = _clock(draft.wanted_at)
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

    # --- screens ------------------------------------------------------------------------------

    async def _services_screen(self, ctx: Context, draft: Draft) -> Turn:
        _ = ctx._
        services = [s.in_language(ctx.locale) for s in await self.calendar.services()]
        if not services:
            ctx.update(draft=None)
            return ctx.reply(menu.with_contacts(_, self.salon, "book.offline"), menu.STEP)
        pages = max(1, -(-len(services) // SERVICES_PER_PAGE))
        page = min(max(draft.page, 0), pages - 1)
        shown = services[page * SERVICES_PER_PAGE : (page + 1) * SERVICES_PER_PAGE]
        lines = [_("book.service.prompt")]
        category: str | None = None
        choices = []
        for service in shown:
            if service.category and service.category != category:
                lines += ["", service.category]
            category = service.category
            label = self._label(service, ctx.locale)
            lines.append(f"• {label}")
            choices.append(Choice(f"{SERVICE}{service_token(service.key)}", label))
        if page > 0:
            choices.append(Choice(f"{SERVICES_PAGE}{page - 1}", _("book.page.previous")))
        if page < pages - 1:
            choices.append(Choice(f"{SERVICES_PAGE}{page + 1}", _("book.page.next")))
        choices += [Choice(BACK, _("menu.back")), Choice(QUIT, _("book.quit"))]
        return ctx.reply(Reply("\n".join(lines), tuple(choices)), SERVICE_STEP)

    async def _masters_screen(self, ctx: Context, draft: Draft) -> Turn:
        _ = ctx._
        service = await self._service(draft.service, ctx.locale)
        choices = [Choice(f"{MASTER}{m.id}", m.name) for m in service.masters]
        choices.append(Choice(ANY_MASTER, _("book.master.any")))
        choices += [Choice(BACK, _("menu.back")), Choice(QUIT, _("book.quit"))]
        text = _("book.master.prompt", service=service.title)
        return ctx.reply(Reply(text, tuple(choices)), MASTER_STEP)

    async def _days_screen(self, ctx: Context, draft: Draft) -> Turn:
        _ = ctx._
        days = upcoming_days(ctx.now, self.zone, DAYS_AHEAD)
        start = max(ctx.now.astimezone(UTC), local_day_window(days[0], self.zone)[0])
        end = local_day_window(days[-1], self.zone)[1]
        slots = await self._slots(draft, start, end)
        free = sorted({slot.start.astimezone(self.zone).date() for slot in slots})
        if draft.wanted_from is not None:
            # "next week": its days first; all of them when it has none free.
            free = [day for day in free if day >= draft.wanted_from] or free
        heading = await self._heading(ctx, draft)
        back = [Choice(BACK, _("menu.back")), Choice(QUIT, _("book.quit"))]
        if not free:
            text = f"{heading}\n\n{_('book.day.none')}"
            return ctx.reply(Reply(text, (*back, Choice(menu.PERSON, _("menu.person")))), DAY_STEP)
        choices = [Choice(f"{DAY}{d:%Y%m%d}", format_day(d, ctx.locale)) for d in free]
        text = f"{heading}\n\n{_('book.day.prompt')}"
        return ctx.reply(Reply(text, (*choices, *back), columns=2), DAY_STEP)

    async def _times_screen(self, ctx: Context, draft: Draft, day: date) -> Turn:
        _ = ctx._
        slots = await self._day_slots(draft, day)
        heading = await self._heading(ctx, draft)
        label = format_day(day, ctx.locale)
        back = [Choice(BACK, _("menu.back")), Choice(QUIT, _("book.quit"))]
        if not slots:
            ctx.note(Reply(_("book.time.none", day=format_on_day(day, ctx.locale, capital=True))))
            self._edit(ctx, day=None)
            return await self._days_screen(ctx, draft)  # the day is no part of that screen
        wanted = self._wanted_times(ctx, draft, slots)
        if wanted:
            back.insert(0, Choice(ALL_TIMES, _("typed.time.all")))
        choices = [
            Choice(_time_id(slot), format_time(slot.start, self.zone, ctx.locale))
            for slot in wanted or slots
        ]
        count = _.plural("book.time.count", "book.time.count.plural", len(wanted or slots))
        text = f"{heading}\n\n{_('book.time.prompt', day=label, count=count)}"
        return ctx.reply(Reply(text, (*choices, *back), columns=4), TIME_STEP)

    def _wanted_times(self, ctx: Context, draft: Draft, slots: list[Slot]) -> list[Slot]:
        """The slots within the client's "after 3" or "in the morning"; [] when they set no
        such bound (or none is free within it: they are told, and see all)."""
        after, before = _clock(draft.wanted_after), _clock(draft.wanted_before)
        if after is None and before is None:
            return []
        low = (after.hour, after.minute) if after else (0, 0)
        high = (before.hour, before.minute) if before else (24, 0)
        wanted = []
        for slot in slots:
            local = slot.start.astimezone(self.zone)
            if low <= (local.hour, local.minute) < high:
                wanted.append(slot)
        if not wanted:
            bound = f"{after}" if after else f"{before}"
            key = "typed.time.none_after" if after else "typed.time.none_before"
            ctx.note(Reply(ctx._(key, time=bound)))
        return wanted

    async def _summary_screen(self, ctx: Context, draft: Draft) -> Turn:
        _ = ctx._
        assert draft.start is not None
        service = await self._service(draft.service, ctx.locale)
        lines = self._visit_lines(
            ctx, service, self._master(service, draft.slot_master), draft.start, priced=True
        )
        lines += ["", _("book.line.name", name=draft.name)]
        if draft.phone:
            lines.append(_("book.line.phone", phone=contact.readable(draft.phone)))
        if draft.email:
            lines.append(_("book.line.email", email=draft.email))
        if draft.reschedule is not None:
            title = _("book.move.summary")
            confirm = _("book.move.confirm")
        else:
            title = _("book.summary")
            confirm = _("book.confirm")
        choices = (
            Choice(f"{CONFIRM}{draft.id}", confirm),
            Choice(EDIT_NAME, _("book.edit.name")),
            Choice(EDIT_CONTACT, _("book.edit.contact")),
            Choice(BACK, _("menu.back")),
            Choice(QUIT, _("book.quit")),
        )
        text = "\n".join([title, "", *lines])
        return ctx.reply(Reply(text, choices, columns=2), CONFIRM_STEP)

    def _unavailable(self, ctx: Context, step: str) -> Turn:
        _ = ctx._
        details = menu.contacts(_, self.salon)
        text = _("book.unavailable")
        if details:
            text = f"{text}\n\n{details}"
        choices = (
            Choice(RETRY, _("book.retry")),
            # Marked, so that staff see why the client asked for them.
            Choice(f"{menu.PERSON}:cal", _("menu.person")),
            Choice(menu.HOME, _("menu.home")),
        )
        return ctx.reply(Reply(text, choices), step)

    # --- confirming ---------------------------------------------------------------------------

    async def _confirm(self, ctx: Context, draft_id: str) -> Turn:
        _ = ctx._
        session = ctx.session
        draft = session.draft
        if draft is None or draft.id != draft_id:
            if draft_id in session.booked:
                return await self._already(ctx, session.made.get(draft_id))
            return ctx.reply(menu.menu(_, _("choice.stale")), menu.STEP)
        incomplete = not (draft.phone or draft.email) or (draft.needs_email and not draft.email)
        if draft.service is None or draft.start is None or incomplete:
            return await self.screen(ctx, CONFIRM_STEP)
        try:
            if draft.reschedule is not None:
                visit = await self.calendar.reschedule(draft.reschedule, draft.start)
            else:
                visit = await self.calendar.book(
                    BookingRequest(
                        key=f"{ctx.event.client.key}:{draft.id}",
                        client=ctx.event.client,
                        service_key=draft.service,
                        master_id=draft.slot_master,
                        start=draft.start,
                        name=draft.name,
                        locale=ctx.locale,
                        phone=draft.phone,
                        email=draft.email,
                    )
                )
        except SlotTaken:
            when = format_time(draft.start, self.zone, ctx.locale)
            ctx.note(Reply(_("book.taken", time=when)))
            self._edit(ctx, start=None)
            return await self.screen(ctx, TIME_STEP)
        except AttendeeRejected as rejected:
            field = "email" if rejected.field == "email" else "phone"
            self._edit(ctx, **{field: None}, needs_email=field == "email")
            ctx.note(Reply(_(f"book.contact.rejected.{field}")))
            return await self.screen(ctx, CONTACT_STEP)
        except BookingUncertain:
            choices = (
                Choice(f"{CONFIRM}{draft.id}", _("book.confirm")),
                Choice(menu.PERSON, _("menu.person")),
            )
            return ctx.reply(Reply(_("book.uncertain"), choices), CONFIRM_STEP)
        except CalendarUnavailable:
            return self._unavailable(ctx, CONFIRM_STEP)
        return self._booked(ctx, draft, visit)

    async def _already(self, ctx: Context, uid: str | None) -> Turn:
        """A second Confirm of a booking made before: where that visit stands now."""
        _ = ctx._
        visit = None
        if uid is not None:
            try:
                visit = await self.calendar.visit(uid)
            except CalendarUnavailable:
                visit = None
        if visit is None:
            return ctx.reply(menu.menu(_, _("book.already")), menu.STEP)
        return ctx.reply(standing(ctx, visit, uid or "", self.zone), menu.STEP)

    def _booked(self, ctx: Context, draft: Draft, visit: Visit) -> Turn:
        _ = ctx._
        session = ctx.session
        bookings = [uid for uid in session.bookings if uid != draft.reschedule]
        if visit.uid not in bookings:
            bookings.append(visit.uid)
        made = {**session.made, draft.id: visit.uid}
        ctx.update(
            draft=None,
            viewing=None,
            booked=[*session.booked, draft.id][-_REMEMBERED:],
            made=dict(list(made.items())[-_REMEMBERED:]),
            bookings=bookings[-_REMEMBERED:],
            name=draft.name,
            phone=draft.phone or session.phone,
            email=draft.email or session.email,
        )
        title = _("book.move.done") if draft.reschedule else _("book.done")
        service = visit.service_in(ctx.locale)
        lines = self._visit_lines(ctx, None, visit.master, visit.start, title=service)
        text = "\n".join([title, "", *lines, "", _("book.see_you")])
        choices = (
            Choice(f"{CALENDAR_FILE}{visit.uid}", _("book.calendar_file")),
            Choice(menu.BOOKINGS, _("menu.bookings")),
            Choice(menu.HOME, _("menu.home")),
        )
        turn = ctx.reply(Reply(text, choices), menu.STEP)
        return replace(turn, booked=visit, replaced=draft.reschedule)

    async def _calendar_file(self, ctx: Context, uid: str) -> Turn:
        _ = ctx._
        try:
            visit = await self.calendar.visit(uid)
        except CalendarUnavailable:
            text = _("book.unavailable")
            return ctx.reply(Reply(text, (Choice(menu.HOME, _("menu.home")),)), ctx.session.step)
        if visit is None or not visit.active:
            return ctx.reply(menu.menu(_, _("mine.gone")), menu.STEP)
        description = _("book.line.master", master=visit.master) if visit.master else ""
        content = calendar_file(
            uid=visit.uid,
            start=visit.start,
            end=visit.end,
            summary=f"{visit.service_in(ctx.locale)} · {self.salon.name}",
            location=self.salon.address_in(ctx.locale),
            description=description,
            stamp=ctx.now,
        )
        # A plain name: some clients show a quoted or escaped one badly.
        filename = f"visit-{visit.start.astimezone(self.zone):%Y-%m-%d}.ics"
        document = Document(filename, "text/calendar", content)
        reply = Reply(
            _("book.calendar_file.caption"),
            (Choice(menu.HOME, _("menu.home")),),
            document=document,
        )
        return Turn((reply,), ctx.session)

    # --- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _label(service: Service, locale: str) -> str:
        price = price_text(service, locale)
        return f"{service.title} · {price}" if price else service.title

    def visit_lines(self, ctx: Context, visit: Visit) -> list[str]:
        service = visit.service_in(ctx.locale)
        return self._visit_lines(ctx, None, visit.master, visit.start, title=service)

    def _visit_lines(
        self,
        ctx: Context,
        service: Service | None,
        master: str | None,
        start: datetime,
        *,
        title: str = "",
        priced: bool = False,
    ) -> list[str]:
        _ = ctx._
        lines = [_("book.line.service", service=service.title if service else title)]
        lines.append(_("book.line.master", master=master or _("book.master.assigned")))
        when = format_when(start, self.zone, ctx.locale, capital=True)
        lines.append(_("book.line.when", when=when))
        if service is not None and priced:
            minutes = _.plural("services.minutes", "services.minutes.plural", service.minutes)
            lines.append(_("book.line.length", minutes=minutes))
            price = price_text(service, ctx.locale)
            if price:
                lines.append(_("book.line.price", price=price))
        address = self.salon.address_in(ctx.locale)
        if address:
            lines.append(_("book.line.address", address=address))
        return lines

    async def _heading(self, ctx: Context, draft: Draft) -> str:
        _ = ctx._
        service = await self._service(draft.service, ctx.locale)
        if draft.reschedule is not None:
            return _("book.move.heading", service=service.title)
        master = self._master(service, draft.master)
        return _("book.heading", service=service.title, master=master or _("book.master.any_free"))

    async def describe(self, _: Translator, draft: Draft) -> str:
        """A draft in one line, for staff: service · master · time (what is chosen so far)."""
        try:
            service = await self._service(draft.service, _.locale)
        except CalendarUnavailable:
            service = Service(key=draft.service or "", title=draft.service or "", minutes=0)
        parts = [service.title]
        master_id = draft.slot_master or draft.master
        parts.append(self._master(service, master_id) or _("book.master.any_free"))
        if draft.start is not None:
            parts.append(format_label(draft.start, self.zone, _.locale))
        elif draft.day is not None:
            parts.append(draft.day.isoformat())
        if draft.reschedule is not None:
            parts.append(_("handoff.note.moving"))
        return " · ".join(parts)

    async def chosen(self, _: Translator, draft: Draft) -> tuple[str, str]:
        """The draft's service and master in `_`'s language ("any master" until one is)."""
        try:
            service = await self._service(draft.service, _.locale)
        except CalendarUnavailable:
            service = Service(key=draft.service or "", title=draft.service or "", minutes=0)
        master = self._master(service, draft.slot_master or draft.master)
        return service.title, master or _("book.master.any_free")

    @staticmethod
    def _master(service: Service | None, master_id: int | None) -> str | None:
        if service is None or master_id is None:
            return None
        found: Master | None = next((m for m in service.masters if m.id == master_id), None)
        return found.name if found else None

    async def _service(self, key: str | None, locale: str | None = None) -> Service:
        """The service by key; in `locale`'s words when given."""
        services = await self.calendar.services()
        found = next((s for s in services if s.key == key), None)
        if found is None:
            # The salon took the service out of its catalogue meanwhile.
            return Service(key=key or "", title=key or "", minutes=0)
        return found.in_language(locale) if locale else found

    async def _service_or_none(self, ctx: Context, key: str | None) -> Service | None:
        return next((s for s in await self._services_or_none(ctx) if s.key == key), None)

    async def _services_or_none(self, ctx: Context) -> tuple[Service, ...]:
        try:
            return await self.calendar.services()
        except CalendarUnavailable:
            return ()

    async def _slots(self, draft: Draft, start: datetime, end: datetime) -> list[Slot]:
        assert draft.service is not None
        return await self.calendar.slots(
            draft.service, draft.master, start, end, reschedule_uid=draft.reschedule
        )

    async def _day_slots(self, draft: Draft, day: date) -> list[Slot]:
        start, end = local_day_window(day, self.zone)
        return await self._slots(draft, start, end)

    @staticmethod
    def _edit(ctx: Context, **changes: object) -> None:
        draft = ctx.session.draft
        assert draft is not None
        ctx.update(draft=draft.model_copy(update=changes))
