"""The front desk: routes each event of a client to the right flow.

`FrontDesk.handle` takes the client's session, an event and the time, and returns the replies
and the next session. The gateway does the IO around it (load, send, save); the flows ask the
salon's calendar through the `Calendar` port.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot import contact
from bot.catalogue import Service
from bot.events import Channel, Inbound, Kind
from bot.flows import booking, handoff, identity, menu, mine, waitlist
from bot.flows.booking import BookingFlow
from bot.flows.mine import MyBookings
from bot.flows.notices import Notice, Notices
from bot.flows.proposal import ProposalBook, ProposalFlow
from bot.flows.services import catalogue_text
from bot.flows.turn import Context, Elsewhere, Handoff, Turn
from bot.flows.waitlist import WaitlistFlow
from bot.i18n import Catalogs
from bot.ports import Calendar, CalendarUnavailable, HeldTime, Waitlist
from bot.replies import Choice, Reply
from bot.salon import Salon
from bot.session import Offered, Owner, Session
from bot.typed import plain
from bot.understanding import Intent, Understood, understand

__all__ = ["FrontDesk", "Turn"]

# After this many misunderstandings in a row the bot offers a person (a button: the client
# chooses; staff are not pulled in for a typo or a "👍").
MISUNDERSTANDINGS_BEFORE_OFFER = 2
# "Talk to a person" offered after misunderstandings: staff see why the client asked.
PERSON_MISUNDERSTOOD = f"{menu.PERSON}:mis"
# Requests that leave a booking step for their own answer ("сколько стоит?", "мои записи");
# the rest is read for the step first ("перенести на пятницу" at the day step is a day).
_ELSEWHERE = frozenset(
    (Intent.PRICES, Intent.INFO, Intent.MINE, Intent.CANCEL, Intent.PERSON, Intent.LANGUAGE)
)
# What keeps a client at their booking step: words that say nothing of it, and a "hi", "thanks"
# or "👍" in passing (at the summary a thumbs-up must not leave the visit unbooked and unseen).
_STAY = frozenset((None, Intent.BOOK, Intent.GREETING, Intent.THANKS))


class FrontDesk:
    def __init__(
        self,
        salon: Salon,
        catalogs: Catalogs,
        idle: timedelta,
        calendar: Calendar | None = None,
        *,
        help_desk_channels: bool | frozenset[Channel] = False,
        staff_locale: str | None = None,
        waitlist: Waitlist | None = None,
        proposals: ProposalBook | None = None,
    ) -> None:
        self.salon = salon
        self.catalogs = catalogs
        self.idle = idle
        # The channels whose clients staff answer in a help desk (Chatwoot): there "Talk to a
        # person" hands over.
        self.staff_channels = (
            frozenset(Channel)
            if help_desk_channels is True
            else frozenset(help_desk_channels or ())
        )
        self.staff_locale = staff_locale or catalogs.default_locale
        # None: the salon keeps no online calendar; clients get its contacts instead.
        self.calendar = calendar
        self.notices = Notices(salon, calendar)
        self.booking: BookingFlow | None = None
        self.mine: MyBookings | None = None
        # The waitlist (bot/flows/waitlist.py), where the salon keeps one (it needs a calendar).
        self.waiting: WaitlistFlow | None = None
        if calendar is not None:
            self.booking = BookingFlow(salon, calendar)
            self.mine = MyBookings(calendar, self.booking)
            if waitlist is not None:
                self.booking.waitlist = waitlist
                self.waiting = self.mine.waiting = WaitlistFlow(self.booking, waitlist)
        # Times staff proposed from the help desk (None: the salon's desk proposes none).
        self.proposal: ProposalFlow | None = None
        if calendar is not None and proposals is not None:
            self.proposal = ProposalFlow(calendar, proposals, ZoneInfo(salon.timezone))

    async def handle(
        self, session: Session, event: Inbound, now: datetime, elsewhere: Elsewhere | None = None
    ) -> Turn:
        if event.language and event.language != session.app_language:
            session = session.model_copy(update={"app_language": event.language})
        locale = self.catalogs.resolve(session.locale, event.language or session.app_language)
        _ = self.catalogs.get(locale)
        returning = session.last_seen is not None and now - session.last_seen <= self.idle
        left_step = session.step
        staff_event = event.kind in (Kind.TAKEOVER, Kind.RETURNED)
        if not staff_event:
            session = session.model_copy(update={"last_seen": now})
        if self.proposal is not None and not staff_event:
            # Answered whoever owns the conversation, and before a long pause ends the draft:
            # the client's own booking in progress stays as it was.
            answered = await self.proposal.answer(Context(session, _, now, event))
            if answered is not None:
                return answered
        if not returning and not staff_event and session.owner != Owner.HUMAN:
            # A long pause: whatever the client was doing is over; their details stay. Not
            # while a person has the chat: words to staff are no return to the bot, and the
            # hand-back offers the booking left in progress (handoff.returned).
            session = session.model_copy(update={"draft": None, "viewing": None, "step": "menu"})
        ctx = Context(session, _, now, event, elsewhere=elsewhere or Elsewhere())
        if event.kind is Kind.TAKEOVER:
            if session.owner != Owner.HUMAN:  # a fresh takeover: remember where they are
                ctx.update(owner=Owner.HUMAN, handoff_step=left_step)
            return Turn((), ctx.session)
        if event.kind is Kind.RETURNED:
            if session.owner != Owner.HUMAN:
                return Turn((), ctx.session)  # already the bot's: nothing to say
            ctx.update(owner=Owner.BOT, misunderstood=0, handoff_at=None)
            return self._finish(ctx.reply(handoff.returned(ctx), left_step), left_step, ctx)
        if session.owner == Owner.HUMAN:
            # A person answers this client now: the bot keeps quiet (the gateway relays).
            return Turn((), ctx.session)
        turn = await self._route(ctx, returning)
        return self._finish(turn, left_step, ctx)

    async def notify(self, session: Session, event: Inbound, notice: Notice, now: datetime) -> Turn:
        """Tell the client what their calendar says (a confirmation, a reminder, the salon's
        change). Not a turn of the client's: their place in the conversation stays as it is."""
        locale = self.catalogs.resolve(session.locale, event.language or session.app_language)
        ctx = Context(session, self.catalogs.get(locale), now, event)
        # What the client was offered stays as it was: a number typed next still picks from
        # their list, and the notice's own buttons are tapped, not typed.
        return await self.notices.tell(ctx, notice)

    async def offer(self, session: Session, event: Inbound, held: HeldTime, now: datetime) -> Turn:
        """Offer a freed time, held for the client, to them (bot/flows/waitlist.py). Not a turn
        of the client's: their place in the conversation stays as it is."""
        assert self.waiting is not None
        locale = self.catalogs.resolve(session.locale, event.language or session.app_language)
        ctx = Context(session, self.catalogs.get(locale), now, event)
        return await self.waiting.offer(ctx, held)

    async def _route(self, ctx: Context, returning: bool) -> Turn:
        event = ctx.event
        if event.kind is Kind.TEXT and ctx.elsewhere.channels and identity.is_not_me(event.text):
            # "Это не я" about the visits from their other messenger, whenever it is said.
            return identity.answer(ctx, identity.UNLINK)
        first_text = event.kind is Kind.TEXT and not returning
        if event.kind is Kind.START or first_text:
            ctx.update(draft=None, viewing=None)
            understood = await self._understand(ctx, event.text) if first_text else None
            if understood is not None and (turn := await self._typed_handoff(ctx, understood)):
                # "Позовите администратора, у меня жалоба" as the first words: a complaint
                # (or a request for a person) in the client's words, not the menu's tap.
                return turn
            if understood is not None and understood.intent not in (None, Intent.GREETING):
                # A new conversation that starts with a request: answer it.
                return await self._intent(ctx, understood)
            # /start, or a hello (or words we cannot read) opening a conversation: greet.
            return ctx.reply(menu.greeting(ctx._, self.salon, event.name), menu.STEP)
        if event.kind is Kind.CHOICE:
            return await self._choose(ctx, event.choice)
        if event.kind is Kind.CONTACT:
            if self.booking is not None and ctx.session.draft is not None:
                return await self.booking.contact_shared(ctx, event.phone)
            if self.mine is not None and ctx.elsewhere.channels:
                # Their own number, shared outside a booking: it linked their messengers.
                return await self.mine.show(ctx)
            return await self._misunderstood(ctx)
        choice = self._offered(ctx.session, event.text) or self._choice_named(event.text)
        if choice is not None:
            return await self._choose(ctx, choice)
        if self.waiting is not None and (turn := await self._waitlist_text(ctx, event.text)):
            return turn
        step = ctx.session.step
        drafting = step in booking.STEPS and ctx.session.draft is not None
        flow = self.booking if drafting else None
        if flow is not None and (turn := await flow.confirmed_in_words(ctx, event.text)):
            return turn
        if flow is not None and step in booking.DATA_STEPS:
            # A phone, an email or a name: data, read as such ("admin@…" is no request).
            details = contact.email(event.text) or contact.phone(event.text)
            if self._staffed(ctx) and not details and handoff.asks_for_person(event.text):
                # Only a request for a person leaves a data step (a surname such as "Грубова"
                # is no complaint); one with complaint words is routed as a complaint.
                reason = handoff.typed_reason(event.text) or handoff.TYPED
                return await self._hand_off(ctx, reason)
            return await flow.text(ctx, event.text)
        understood = await self._understand(ctx, event.text)
        if turn := await self._typed_handoff(ctx, understood):
            # A complaint goes to a person at once (routed as one: CHATWOOT_ROUTING).
            return turn
        if flow is not None and understood.intent not in _ELSEWHERE:
            turn = await flow.typed(ctx, understood)
            if turn is not None:
                return turn
            if understood.intent in _STAY:
                return await flow.reprompt(ctx)
        if self.mine is not None and step in mine.TEXT_STEPS:
            # The cancel question and its reason read their own answers (a cancellation takes
            # the button or a clear yes).
            return await self.mine.text(ctx, event.text)
        return await self._intent(ctx, understood)

    async def _typed_handoff(self, ctx: Context, understood: Understood) -> Turn | None:
        """Typed words that call a person, where staff answer: handed off with the reason
        the words give (handoff.typed_reason: a complaint first)."""
        if not self._staffed(ctx):
            return None
        asks = understood.intent is Intent.PERSON
        reason = handoff.typed_reason(ctx.event.text, understood_as_person=asks)
        return None if reason is None else await self._hand_off(ctx, reason)

    async def _waitlist_text(self, ctx: Context, text: str) -> Turn | None:
        """A typed yes or no to a waitlist offer, or an answer at the waitlist's own steps. Not
        while the client gives their details for a booking: "ok" there is no answer to an offer,
        and the draft they are filling in stays."""
        assert self.waiting is not None
        # Nor at the booking's summary or the cancel question, where a yes confirms them.
        step = ctx.session.step
        if step in (*booking.DATA_STEPS, booking.CONFIRM_STEP) and ctx.session.draft is not None:
            return None
        if step in mine.TEXT_STEPS:
            return None
        answered = await self.waiting.answer(ctx, text)
        if answered is not None or ctx.session.step not in (
            waitlist.PART_STEP,
            waitlist.RANGE_STEP,
        ):
            return answered
        return await self.waiting.text(ctx, text)

    async def _understand(self, ctx: Context, text: str) -> Understood:
        services: tuple[Service, ...] = ()
        if self.calendar is not None:
            try:
                services = await self.calendar.services()
            except CalendarUnavailable:
                services = ()  # intents, days and times are still read
        today = ctx.now.astimezone(ZoneInfo(self.salon.timezone)).date()
        at_time_step = ctx.session.step == booking.TIME_STEP
        return understand(text, services, today, bare_hour=at_time_step)

    async def _intent(self, ctx: Context, understood: Understood) -> Turn:
        """A request in the client's own words, answered as its menu entry would be. Typed
        words never cancel or move a booking by themselves: they lead to My bookings, where
        the client picks the visit and confirms with a button."""
        _ = ctx._
        intent = understood.intent
        if intent is None:
            return await self._misunderstood(ctx)
        if intent is Intent.PERSON and (turn := await self._typed_handoff(ctx, understood)):
            return turn  # typed, so never the menu's `asked`
        if intent is Intent.BOOK and self.booking is not None:
            ctx.update(viewing=None)
            return await self.booking.start_from(ctx, understood)
        if intent in (Intent.CANCEL, Intent.RESCHEDULE):
            ctx.note(Reply(_(f"typed.{intent.value}")))
        if intent is Intent.LANGUAGE and understood.language in self.catalogs.locales:
            return await self._choose(ctx, f"{menu.LANGUAGE_PREFIX}{understood.language}")
        if intent is Intent.GREETING:
            return ctx.reply(menu.greeting(_, self.salon, ctx.event.name), menu.STEP)
        if intent is Intent.THANKS:
            return ctx.reply(menu.menu(_, _("typed.thanks")), menu.STEP)
        entries = {
            Intent.BOOK: menu.BOOK,
            Intent.MINE: menu.BOOKINGS,
            Intent.CANCEL: menu.BOOKINGS,
            Intent.RESCHEDULE: menu.BOOKINGS,
            Intent.PRICES: menu.SERVICES,
            Intent.INFO: menu.INFO,
            Intent.PERSON: menu.PERSON,
            Intent.LANGUAGE: menu.LANGUAGE,
        }
        return await self._choose(ctx, entries[intent])

    async def _choose(self, ctx: Context, choice: str) -> Turn:
        _ = ctx._
        if self.booking is not None and choice.startswith(booking.PREFIX):
            return await self.booking.choose(ctx, choice)
        if self.mine is not None and choice.startswith("k:"):
            return await self.mine.choose(ctx, choice)
        if choice in identity.CHOICES:
            return identity.answer(ctx, choice)
        if self.waiting is not None and self.mine is not None and choice.startswith(waitlist.LEAVE):
            await self.waiting.leave(ctx, choice.removeprefix(waitlist.LEAVE))
            return await self.mine.show(ctx)
        if self.waiting is not None and choice.startswith(waitlist.PREFIX):
            return await self.waiting.choose(ctx, choice)
        # A draft stays while the client looks elsewhere (Book picks it up again); only a long
        # pause or finishing it ends it.
        ctx.update(viewing=None)
        if choice.startswith(menu.LANGUAGE_PREFIX):
            locale = choice.removeprefix(menu.LANGUAGE_PREFIX)
            if locale in self.catalogs.locales:
                ctx.update(locale=locale)
                ctx._ = _ = self.catalogs.get(locale)
                return ctx.reply(menu.menu(_, _("language.set")), menu.STEP)
        reasons = {
            menu.PERSON: handoff.ASKED,
            handoff.PERSON_CALENDAR: handoff.CALENDAR,
            PERSON_MISUNDERSTOOD: handoff.MISUNDERSTOOD,
        }
        if self._staffed(ctx) and choice in reasons:
            return await self._hand_off(ctx, reasons[choice])
        if choice in reasons:
            choice = menu.PERSON
        if choice == menu.BOOK and self.booking is not None:
            return await self.booking.start(ctx)
        if choice == menu.BOOKINGS and self.mine is not None:
            return await self.mine.show(ctx)
        if choice == menu.SERVICES and self.calendar is not None:
            return ctx.reply(await self._services(ctx), menu.STEP)
        answers = {
            menu.BOOK: "book.offline",
            menu.BOOKINGS: "bookings.offline",
            menu.SERVICES: "services.offline",
            menu.PERSON: "person.offline",
            menu.INFO: "info.title",
        }
        if choice in answers:
            return ctx.reply(menu.with_contacts(_, self.salon, answers[choice]), menu.STEP)
        if choice == menu.LANGUAGE:
            return ctx.reply(menu.languages(_, self.catalogs.locales), menu.STEP)
        if choice == menu.HOME:
            return ctx.reply(menu.menu(_, _("menu.prompt")), menu.STEP)
        # A button from an old message, or one we no longer offer.
        return ctx.reply(menu.menu(_, _("choice.stale")), menu.STEP)

    async def _services(self, ctx: Context) -> Reply:
        assert self.calendar is not None
        _ = ctx._
        try:
            services = await self.calendar.services()
        except CalendarUnavailable:
            return menu.with_contacts(_, self.salon, "services.unavailable")
        if not services:
            return menu.with_contacts(_, self.salon, "services.offline")
        return menu.menu(_, catalogue_text(_, services))

    @staticmethod
    def _offered(session: Session, text: str) -> str | None:
        """The label of a choice the client was just offered, typed instead of tapped (or sent
        by a keyboard button, as Telegram's contact keyboard does)."""
        wanted = plain(text)
        if not wanted:
            return None
        return next((o.id for o in session.offered if plain(o.label) == wanted), None)

    def _choice_named(self, text: str) -> str | None:
        """A client may type a menu entry instead of tapping it, in any language we speak, with
        or without the button's emoji ("Услуги и цены", "address & hours"), or ask for the
        menu itself ("меню")."""
        wanted = plain(text)
        if not wanted:
            return None
        for locale in self.catalogs.locales:
            _ = self.catalogs.get(locale)
            for choice in (*menu.menu_choices(_), Choice(menu.HOME, _("menu.home"))):
                if plain(choice.label) == wanted:
                    return choice.id
        for code, name in menu.LANGUAGE_NAMES.items():
            if plain(name) == wanted:
                return f"{menu.LANGUAGE_PREFIX}{code}"
        return None

    def _staffed(self, ctx: Context) -> bool:
        return ctx.event.client.channel in self.staff_channels

    async def _hand_off(self, ctx: Context, reason: str) -> Turn:
        """A person takes over: the client is told so, staff get the summary note."""
        session = ctx.session
        event = ctx.event
        note = await handoff.staff_note(
            self.catalogs.get(self.staff_locale),
            session.model_copy(update={"locale": ctx.locale}),
            reason,
            client=event.name,
            channel=event.client.channel.value,
            phone=event.phone,
            said=event.text,
            zone=self.salon.timezone,
            calendar=self.calendar,
            flow=self.booking,
        )
        step = session.step
        ctx.update(owner=Owner.HUMAN, handoff_step=step, handoff_at=ctx.now)
        after = handoff.reply_after(self.salon, ctx.now)
        turn = ctx.reply(handoff.handed_off(ctx, self.salon, after), step)
        draft = session.draft
        master = None if draft is None else draft.master or draft.slot_master
        facts = Handoff(reason, note, language=ctx.locale, master=master, reply_after=after)
        return Turn(turn.replies, turn.session, facts)

    async def _misunderstood(self, ctx: Context) -> Turn:
        """Never silent: what the bot can do and the menu; after two in a row, a person is
        offered as a button. The client chooses: a typo or an emoji pulls no one in."""
        _ = ctx._
        count = ctx.session.misunderstood + 1
        if count >= MISUNDERSTANDINGS_BEFORE_OFFER:
            offer = (
                Choice(PERSON_MISUNDERSTOOD, _("menu.person")),
                Choice(menu.HOME, _("menu.home")),
            )
            return ctx.reply(Reply(_("typed.unclear.again"), offer), menu.STEP)
        turn = ctx.reply(menu.menu(_, _("typed.unclear")), menu.STEP)
        return Turn(turn.replies, turn.session.model_copy(update={"misunderstood": count}))

    @staticmethod
    def _finish(turn: Turn, left_step: str, ctx: Context) -> Turn:
        replies = turn.replies
        if (
            left_step == booking.CONTACT_STEP
            and turn.session.step != booking.CONTACT_STEP
            and not any(reply.clear_keyboard for reply in replies)
        ):
            # The contact keyboard stays on screen until a message takes it away.
            closed = Reply(ctx._("book.contact.closed"), clear_keyboard=True, keyboard_only=True)
            replies = (closed, *replies)
        # What the client can type instead of tapping: the last offered choices.
        offered = next((r.choices for r in reversed(replies) if r.choices), ())
        session = turn.session.model_copy(
            update={"offered": [Offered(id=c.id, label=c.label) for c in offered]}
        )
        return replace(turn, replies=replies, session=session)
