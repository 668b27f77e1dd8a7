"""The booking's steps and the choices that move between them: the callback data each button
carries, how it is read back, and the wishes typed words leave in the draft.

Choices start with `b:` so the conversation routes them to the booking flow (`PREFIX`).
"""

from __future__ import annotations

import uuid
import zlib
from datetime import UTC, date, datetime
from functools import lru_cache

from bot.flows.turn import Context
from bot.ports import Slot
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
REMEMBERED = 10  # drafts booked lately, and bookings, kept per client


def service_token(key: str) -> str:
    if len(key.encode()) <= _KEY_BYTES:
        return key
    return f"#{zlib.crc32(key.encode()):08x}"


def time_id(slot: Slot) -> str:
    stamp = _stamp(slot.start)
    return f"{TIME}{stamp}" + (f":{slot.master_id}" if slot.master_id is not None else "")


@lru_cache(maxsize=4096)
def _stamp(moment: datetime) -> str:
    """A moment as its button's minute in UTC. Kept: a screen of times shows a dozen or more,
    the same ones for every client of the salon that day (strftime was 16 calls a tap)."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M")


def parse_time_id(value: str) -> Slot | None:
    stamp, _, master = value.partition(":")
    try:
        start = datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None
    if master and not master.isdigit():
        return None
    return Slot(start, int(master) if master else None)


def parse_day(value: str) -> date | None:
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8])) if len(value) == 8 else None
    except ValueError:
        return None


def clock(value: str | None) -> Clock | None:
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


def new_draft(ctx: Context, **fields: object) -> Draft:
    """A fresh draft with the contact details the client gave before."""
    session = ctx.session
    known: dict[str, object] = {
        "name": session.name or ctx.event.name,
        # The number the client writes from (WhatsApp) is as good as one they typed.
        "phone": session.phone or ctx.event.phone or None,
        "email": session.email,
    }
    return Draft.model_validate({"id": uuid.uuid4().hex[:12], **known, **fields})
