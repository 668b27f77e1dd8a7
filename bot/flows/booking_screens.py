"""The booking's screens: what each step shows for the current draft (services, masters, days,
times, contact, name, summary), and the lookups in the salon's calendar they are built from.

`BookingScreens` is the base of `BookingFlow` (bot/flows/booking.py): the flow decides which
step comes next, this shows it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot import contact
from bot.catalogue import Master, Service
from bot.flows import menu
from bot.flows.booking_steps import (
    ALL_TIMES,
    ANY_MASTER,
    BACK,
    CONFIRM,
    CONFIRM_STEP,
    CONTACT_STEP,
    DAY,
    DAY_STEP,
    DAYS_AHEAD,
    EDIT_CONTACT,
    EDIT_NAME,
    MASTER,
    MASTER_STEP,
    NAME_STEP,
    QUIT,
    RETRY,
    SERVICE,
    SERVICE_STEP,
    SERVICES_PAGE,
    SERVICES_PER_PAGE,
    SHARE_PHONE,
    TIME_STEP,
    clock,
    service_token,
    time_id,
)
from bot.flows.services import price_text
from bot.flows.turn import Context, Turn
from bot.i18n import Translator
from bot.local_time import (
    format_day,
    format_label,
    format_on_day,
    format_time,
    format_when,
    local_day_window,
    upcoming_days,
)
from bot.ports import Calendar, CalendarUnavailable, Slot, Visit, Waitlist
from bot.replies import Choice, Reply
from bot.salon import Salon
from bot.session import Draft


class BookingScreens:
    # Set when the salon keeps a waitlist: the time step offers to wait, a booking ends the
    # client's waits for its service, and a draft made from an offer books the time held for it.
    waitlist: Waitlist | None = None
    """The screens of the booking steps, over the salon's calendar."""

    def __init__(self, salon: Salon, calendar: Calendar) -> None:
        self.salon = salon
        self.calendar = calendar
        self.zone = ZoneInfo(salon.timezone)

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
        # Read from the start of today, not from now: the read is then the same all day long,
        # so the calendar's slot cache keeps it for every client of the salon (from "now" it
        # changed every second and was never kept: a Cal.com call per days screen). The times
        # already past are dropped here.
        now = ctx.now.astimezone(UTC)
        start = local_day_window(days[0], self.zone)[0]
        end = local_day_window(days[-1], self.zone)[1]
        slots = [slot for slot in await self._slots(draft, start, end) if slot.start >= now]
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
        # "Nothing free then" or "anything earlier": the client may wait for a time to free up.
        wait = Choice(f"w:j:{day:%Y%m%d}", _("wait.join"))
        moving = draft.reschedule is not None
        if not slots:
            ctx.note(Reply(_("book.time.none", day=format_on_day(day, ctx.locale, capital=True))))
            self._edit(ctx, day=None)
            turn = await self._days_screen(ctx, draft)  # the day is no part of that screen
            if self.waitlist is None or moving or not turn.replies:
                return turn
            *before, last = turn.replies
            offered = replace(last, choices=(wait, *last.choices))
            return replace(turn, replies=(*before, offered))
        if self.waitlist is not None and not moving:
            back.insert(0, wait)
        wanted = self._wanted_times(ctx, draft, slots)
        if wanted:
            back.insert(0, Choice(ALL_TIMES, _("typed.time.all")))
        choices = [
            Choice(time_id(slot), format_time(slot.start, self.zone, ctx.locale))
            for slot in wanted or slots
        ]
        count = _.plural("book.time.count", "book.time.count.plural", len(wanted or slots))
        text = f"{heading}\n\n{_('book.time.prompt', day=label, count=count)}"
        return ctx.reply(Reply(text, (*choices, *back), columns=4), TIME_STEP)

    def _wanted_times(self, ctx: Context, draft: Draft, slots: list[Slot]) -> list[Slot]:
        """The slots within the client's "after 3" or "in the morning"; [] when they set no
        such bound (or none is free within it: they are told, and see all)."""
        after, before = clock(draft.wanted_after), clock(draft.wanted_before)
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
        moved = any(
            key in changes and changes[key] != getattr(draft, key)
            for key in ("start", "service", "master", "slot_master")
        )
        if draft.offer is not None and moved and "offer" not in changes:
            # The offer held one time of one service: another one is not it.
            changes = {**changes, "offer": None, "dropped_offer": draft.offer}
        ctx.update(draft=draft.model_copy(update=changes))
