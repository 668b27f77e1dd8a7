"""Notices: what the salon's calendar tells a client without being asked.

A confirmation, a reminder before the visit, or news of a change the salon made (moved,
cancelled, a request accepted or declined) reaches the client in the chat they use, in their
language, with the next step as buttons: "I'll come", "Reschedule", "Cancel" for a visit that
stands, "Book another time" for one that does not. The buttons are My bookings' own choices, so
they work as they do there, for as long as the visit does.

A notice never moves the client's conversation: someone halfway through booking another visit
keeps their place, and the notice's buttons simply join what they can tap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.catalogue import in_language
from bot.flows import menu
from bot.flows.turn import Context, Turn
from bot.i18n import Translator
from bot.local_time import format_time, format_when
from bot.ports import Calendar, CalendarUnavailable, Visit
from bot.replies import Choice, Reply
from bot.salon import Salon
from bot.session import Session, forgetting

ATTEND = "k:y:"  # "I'll come"
MOVE = "k:r:"  # the same ids as My bookings' Reschedule and Cancel
CANCEL = "k:c:"


class NoticeKind(StrEnum):
    CONFIRMED = "confirmed"  # a booking made elsewhere (the salon's page, staff)
    REMINDER = "reminder"
    MOVED = "moved"  # the salon moved the visit
    CANCELLED = "cancelled"  # the salon cancelled it
    REQUESTED = "requested"  # booked, waiting for the salon to accept
    REJECTED = "rejected"  # the salon declined the request


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    uid: str
    service: str
    start: datetime  # aware, UTC
    master: str | None = None
    # A move: the booking it replaces (Cal.com gives a moved booking a new uid) and its time.
    previous_uid: str | None = None
    previous_start: datetime | None = None
    reason: str | None = None


def visit_choices(ctx: Context, uid: str) -> tuple[Choice, ...]:
    _ = ctx._
    return (
        Choice(f"{ATTEND}{uid}", _("notice.attend")),
        Choice(f"{MOVE}{uid}", _("mine.reschedule")),
        Choice(f"{CANCEL}{uid}", _("mine.cancel")),
    )


def _again(ctx: Context) -> tuple[Choice, ...]:
    _ = ctx._
    return (Choice(menu.BOOK, _("mine.book_again")), Choice(menu.HOME, _("menu.home")))


def remembered(session: Session, notice: Notice) -> Session:
    """The client's list of visits ("My bookings") as the notice changes it."""
    kept = [uid for uid in session.bookings if uid not in (notice.previous_uid, notice.uid)]
    if notice.kind not in (NoticeKind.CANCELLED, NoticeKind.REJECTED):
        kept.append(notice.uid)
    return session.model_copy(update=forgetting(session, kept))


class Notices:
    def __init__(self, salon: Salon, calendar: Calendar | None) -> None:
        self.zone = ZoneInfo(salon.timezone)
        self.salon = salon
        self.calendar = calendar

    def text(self, _: Translator, notice: Notice, *, attending: bool = False) -> str:
        """The notice in words, in the client's language and the salon's time (also what
        Novu's email and SMS carry). `attending`: the client already said they will come, so a
        reminder says "see you" instead of asking again."""
        when = format_when(notice.start, self.zone, _.locale)
        kind = notice.kind
        if kind is NoticeKind.MOVED and notice.previous_start is not None:
            before = format_when(notice.previous_start, self.zone, _.locale)
            lines = [_("notice.moved", service=notice.service, before=before, when=when)]
        elif kind is NoticeKind.REMINDER and attending:
            time = format_time(notice.start, self.zone, _.locale)
            lines = [_("notice.reminder.attending", service=notice.service, when=when, time=time)]
        else:
            lines = [_(f"notice.{kind.value}", service=notice.service, when=when)]
        if kind in (NoticeKind.CANCELLED, NoticeKind.REJECTED, NoticeKind.REQUESTED):
            if notice.reason:
                lines.append(_("notice.reason", reason=notice.reason))
            return "\n".join(lines)
        if notice.master:
            lines.append(_("book.line.master", master=notice.master))
        address = self.salon.address_in(_.locale)
        if address:
            lines.append(_("book.line.address", address=address))
        return "\n".join(lines)

    async def tell(self, ctx: Context, notice: Notice) -> Turn:
        """The notice as the client reads it; the session learns which visits are theirs."""
        _ = ctx._
        kind = notice.kind
        gone = kind in (NoticeKind.CANCELLED, NoticeKind.REJECTED)
        visit = None if gone else await self._current(notice)
        if not gone and not self._still_on(ctx, notice, visit):
            # Workflows run concurrently: a confirmation may come after the cancellation.
            return Turn((), ctx.session)
        if isinstance(visit, Visit):
            # The service in the client's language, where the salon's catalogue names it so.
            service = in_language(visit.service_titles, ctx.locale, notice.service)
            notice = replace(notice, service=service)
        attending = kind is NoticeKind.REMINDER and notice.uid in ctx.session.attending
        text = self.text(_, notice, attending=attending)
        ctx.session = remembered(ctx.session, notice)
        if kind is NoticeKind.REMINDER:
            reminded = [uid for uid in ctx.session.reminded if uid != notice.uid][-19:]
            ctx.update(reminded=[*reminded, notice.uid])
        if kind in (NoticeKind.CANCELLED, NoticeKind.REJECTED):
            return Turn((Reply(text, _again(ctx)),), ctx.session)
        if kind is NoticeKind.REQUESTED:
            choices = (
                Choice(menu.BOOKINGS, _("menu.bookings")),
                Choice(menu.HOME, _("menu.home")),
            )
            return Turn((Reply(text, choices),), ctx.session)
        offered = visit_choices(ctx, notice.uid)
        if attending:
            # Their answer stands: no "I'll come" to tap again, only what else they may want.
            offered = tuple(c for c in offered if not c.id.startswith(ATTEND))
        return Turn((Reply(text, offered),), ctx.session)

    async def _current(self, notice: Notice) -> Visit | bool | None:
        """The visit as the calendar has it now; True when there is no calendar to ask or it
        does not answer (better a reminder from what we knew than none)."""
        if self.calendar is None:
            return True
        try:
            return await self.calendar.visit(notice.uid)
        except CalendarUnavailable:
            return True

    @staticmethod
    def _still_on(ctx: Context, notice: Notice, visit: Visit | bool | None) -> bool:
        """A visit is told of (confirmed, moved, reminded) only while it still stands, at the
        time the notice names and not started yet: a reminder must never follow a
        cancellation whose news came late."""
        if notice.start <= ctx.now:
            return False
        if visit is True:
            return True
        return (
            isinstance(visit, Visit)
            and visit.active
            and visit.uid == notice.uid
            and visit.start == notice.start
        )
