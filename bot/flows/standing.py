"""Where a visit stands now, for an old button of it: cancelled, moved, over, or on.

A client may tap a button from an old message (a confirmation's "I'll come", the summary's
Confirm) after the visit changed. They are told what became of it, never "already confirmed"
for a visit that no longer is.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.flows import menu
from bot.flows.turn import Context
from bot.local_time import format_when
from bot.ports import Visit
from bot.replies import Choice, Reply


def standing(ctx: Context, visit: Visit, uid: str, zone: ZoneInfo) -> Reply:
    """`visit` as the calendar has it now; `uid` the booking the old button named."""
    _ = ctx._
    service = visit.service_in(ctx.locale)
    when = format_when(visit.start, zone, ctx.locale)
    again = (
        Choice(menu.BOOK, _("mine.book_again")),
        Choice(menu.BOOKINGS, _("menu.bookings")),
        Choice(menu.HOME, _("menu.home")),
    )
    if not visit.active:
        return Reply(_("visit.cancelled", service=service, when=when), again)
    if visit.end <= ctx.now:
        return Reply(_("visit.past", service=service, when=when), again)
    key = "visit.moved" if visit.uid != uid else "visit.on"
    choices = (Choice(menu.BOOKINGS, _("menu.bookings")), Choice(menu.HOME, _("menu.home")))
    return Reply(_(key, service=service, when=when), choices)
