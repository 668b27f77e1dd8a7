"""Handing the client to salon staff, and taking them back.

The client asks for a person (the menu entry, or in their own words), the bot fails to
understand them twice in a row, or booking cannot go on because the calendar is down: the bot
hands off. From then on a person owns the conversation and the bot says nothing until staff hand
it back (Chatwoot: resolved). The client is then offered to pick up their booking where they
were, with their choices kept.

The bot only decides and explains; the gateway carries the handoff out (the conversation in
Chatwoot, its status, the summary note for staff).
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from bot import contact
from bot.flows import booking, menu, mine
from bot.flows.turn import Context
from bot.i18n import Translator
from bot.local_time import format_label, format_when
from bot.ports import Calendar, CalendarUnavailable
from bot.replies import Choice, Reply
from bot.salon import Salon
from bot.session import Session
from bot.understanding.complaints import is_complaint

ASKED = "asked"  # the menu's "Talk to a person"
TYPED = "typed"  # a request for a person in their own words
MISUNDERSTOOD = "misunderstood"  # two misunderstandings in a row
CALENDAR = "calendar"  # booking impossible: the calendar is down
COMPLAINT = "complaint"  # a complaint in the client's words (bot/understanding/complaints.py)

# What the routing rules call each reason (CHATWOOT_ROUTING, README "Chatwoot").
ROUTING_REASONS = {
    ASKED: "person",
    TYPED: "person",
    MISUNDERSTOOD: "misunderstood",
    COMPLAINT: "complaint",
    CALENDAR: "booking",
}

# "Talk to a person" from the screen that says the calendar is down.
PERSON_CALENDAR = f"{menu.PERSON}:cal"

# A request for a person in the client's words, in Russian or English.
_ASKS = re.compile(
    r"\b(person|human|operator|manager|administrator|admin|receptionist|staff|someone real|"
    r"real person|talk to (a|an|the|some)one)\b"
    r"|(оператор|администратор|админ|менеджер|человек|живой|живого|сотрудник|позовите|"
    r"соедините)",
    re.IGNORECASE,
)


def asks_for_person(text: str) -> bool:
    return bool(_ASKS.search(text))


def typed_reason(text: str, *, understood_as_person: bool = False) -> str | None:
    """Why typed words hand the client to a person, or None when they do not: a complaint
    wins over a plain request for a person wherever its words stand ("позовите
    администратора, у меня жалоба" is a complaint, routed as one), so that the routing rule,
    the staff notice and the owner's report all see it. Only a menu tap is `ASKED`."""
    if is_complaint(text):
        return COMPLAINT
    if understood_as_person or asks_for_person(text):
        return TYPED
    return None


def reply_after(salon: Salon, now: datetime) -> datetime | None:
    """Outside the staff's working hours (SALON_WORKING_HOURS): when they start again."""
    hours = salon.working_hours
    zone = ZoneInfo(salon.timezone)
    if hours is None or hours.is_open(now, zone):
        return None
    return hours.next_opening(now, zone)


def handed_off(ctx: Context, salon: Salon, after: datetime | None = None) -> Reply:
    """What the client is told: a person will answer here (with the salon's hours); outside
    the working hours, when, in the salon's time and the client's language."""
    _ = ctx._
    text = _("handoff.started")
    if after is not None:
        when = format_when(after, ZoneInfo(salon.timezone), _.locale)
        return Reply(f"{text}\n{_('handoff.after_hours', when=when)}")
    hours = salon.hours_in(_.locale)
    if hours:
        text = f"{text}\n{_('handoff.hours', hours=hours)}"
    return Reply(text)


def returned(ctx: Context) -> Reply:
    """Staff handed the client back: thanks, and the booking they were making, if any."""
    _ = ctx._
    draft = ctx.session.draft
    if draft is not None and draft.service is not None:
        choices = (
            Choice(booking.RESUME, _("handoff.resume")),
            Choice(menu.HOME, _("menu.home")),
        )
        return Reply(_("handoff.back.draft"), choices)
    return menu.menu(_, _("handoff.back"))


async def staff_note(
    staff: Translator,
    session: Session,
    reason: str,
    *,
    client: str,
    channel: str,
    phone: str,
    said: str,
    zone: str,
    calendar: Calendar | None,
    flow: booking.BookingFlow | None,
) -> str:
    """The summary card staff read first, in the salon's language: who, why, where they were."""
    _ = staff
    lines = [_(f"handoff.note.reason.{reason}")]
    if reason in (TYPED, COMPLAINT) and said:
        lines.append(_("handoff.note.said", text=said[:300]))
    details = [client or _("handoff.note.no_name"), channel, session.locale or "—"]
    if phone or session.phone:
        details.append(contact.readable(phone or session.phone or ""))
    if session.email:
        details.append(session.email)
    lines.append(_("handoff.note.client", details=" · ".join(details)))
    lines.append(await _where(staff, session, flow))
    draft = session.draft
    if draft is not None and draft.service is not None and flow is not None:
        lines.append(_("handoff.note.draft", draft=await flow.describe(staff, draft)))
    if calendar is not None and session.bookings:
        upcoming = []
        for uid in session.bookings[-5:]:
            try:
                visit = await calendar.visit(uid)
            except CalendarUnavailable:
                upcoming = [_("handoff.note.calendar_down")]
                break
            if visit is not None and visit.active:
                when = format_label(visit.start, ZoneInfo(zone), staff.locale)
                upcoming.append(f"• {when} — {visit.service_in(staff.locale)}")
        if upcoming:
            lines.append(_("handoff.note.upcoming"))
            lines += upcoming
    return "\n".join(lines)


# Where the client was, in words staff read ("was choosing a day for Manicure with Olga"):
# the booking steps name the service and master chosen so far.
_WHERE = {
    booking.SERVICE_STEP: "handoff.note.at.service",
    booking.MASTER_STEP: "handoff.note.at.master",
    booking.DAY_STEP: "handoff.note.at.day",
    booking.TIME_STEP: "handoff.note.at.time",
    booking.CONTACT_STEP: "handoff.note.at.contact",
    booking.NAME_STEP: "handoff.note.at.name",
    booking.CONFIRM_STEP: "handoff.note.at.confirm",
    mine.LIST_STEP: "handoff.note.at.bookings",
    mine.CANCEL_STEP: "handoff.note.at.cancel",
    mine.REASON_STEP: "handoff.note.at.cancel",
}


async def _where(staff: Translator, session: Session, flow: booking.BookingFlow | None) -> str:
    draft = session.draft
    if session.step not in booking.STEPS:
        return staff(_WHERE.get(session.step, "handoff.note.at.menu"))
    if draft is None or flow is None:
        return staff("handoff.note.at.booking")
    if draft.service is None:
        return staff("handoff.note.at.service")
    service, master = await flow.chosen(staff, draft)
    return staff(_WHERE[session.step], service=service, master=master)
