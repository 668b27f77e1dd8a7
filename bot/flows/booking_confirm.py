"""Confirming a booking: booking (or moving) the draft exactly once, what a second Confirm
shows, the booked message and the visit's calendar file.

Each draft is booked at most once: its id is the booking's idempotency key, so a double tap on
Confirm or a redelivered update finds the booking the first one made.
"""

from __future__ import annotations

from dataclasses import replace

from bot.flows import menu
from bot.flows.booking_screens import BookingScreens
from bot.flows.booking_steps import (
    CALENDAR_FILE,
    CONFIRM,
    CONFIRM_STEP,
    CONTACT_STEP,
    REMEMBERED,
    TIME_STEP,
)
from bot.flows.standing import standing
from bot.flows.turn import Context, Turn
from bot.ics import calendar_file
from bot.local_time import format_time
from bot.ports import (
    AttendeeRejected,
    BookingRequest,
    BookingUncertain,
    CalendarUnavailable,
    SlotTaken,
    Visit,
)
from bot.replies import Choice, Document, Reply
from bot.session import Draft


class BookingConfirmation(BookingScreens):
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
        reservation = await self._held(ctx, draft)
        # The offer this booking claims (none when the draft moved away from it).
        offer = ctx.session.draft.offer if ctx.session.draft is not None else None
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
                        reservation=reservation,
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
        if self.waitlist is not None and draft.reschedule is None:
            await self.waitlist.booked(ctx.event.client, offer, draft.service)
        turn = self._booked(ctx, draft, visit)
        return replace(turn, waitlist="booked") if offer else turn

    async def _held(self, ctx: Context, draft: Draft) -> str | None:
        """The calendar's hold on the draft's time, when a waitlist offer holds it still for this
        client (else the booking holds the time itself, as any booking does). An offer for
        another time or service than the draft's now is released to the next client."""
        if self.waitlist is None:
            return None
        client = ctx.event.client
        if draft.dropped_offer is not None:
            await self.waitlist.decline(client, draft.dropped_offer)
            self._edit(ctx, dropped_offer=None)
        if draft.offer is None:
            return None
        held = await self.waitlist.take(client, draft.offer, ctx.now)
        if held is None:
            return None
        if held.start == draft.start and held.service_key == draft.service:
            return held.reservation
        await self.waitlist.decline(client, draft.offer)
        self._edit(ctx, offer=None)
        return None

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
            booked=[*session.booked, draft.id][-REMEMBERED:],
            made=dict(list(made.items())[-REMEMBERED:]),
            bookings=bookings[-REMEMBERED:],
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
