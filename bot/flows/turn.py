"""What every flow works with during one turn, and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.events import Channel, Inbound
from bot.i18n import Translator
from bot.ports import Visit
from bot.replies import Reply
from bot.session import Session


@dataclass(frozen=True, slots=True)
class Handoff:
    """What the gateway needs to hand the conversation over: why, and the note for staff
    (the handoff flow, bot/flows/handoff.py, words it; here so that a turn can carry it)."""

    reason: str
    note: str
    # What routing rules read (CHATWOOT_ROUTING): the client's language, the master of the
    # booking they were making, and, outside working hours, when staff will answer (UTC).
    language: str = ""
    master: int | None = None
    reply_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    replies: tuple[Reply, ...]
    session: Session
    # Set when this turn hands the client to staff (see bot/flows/handoff.py).
    handoff: Handoff | None = None
    # Set when the client said they will come to this visit (a booking uid): staff see it.
    attending: str | None = None
    # Set when this turn booked a visit in the calendar, or moved one (`replaced`: the uid of
    # the booking it replaces): the salon's analytics count it at once.
    booked: Visit | None = None
    replaced: str | None = None
    # Set when this turn cancelled a visit (from My bookings or a reminder's button): staff
    # hear of it when the salon is closed.
    cancelled: Visit | None = None
    # Set when the client said this chat is not theirs with their other messenger ("this is
    # not me"): the gateway unlinks it. `prefer`: the client wants their notices here.
    unlink: bool = False
    prefer: bool = False

    # Set when this turn joined the waitlist ("joined", with the service in `waited`) or booked
    # a time it offered ("booked"): the salon's analytics count it.
    waitlist: str | None = None
    waited: str | None = None
    # The client answers what staff offered them (bot/flows/proposal.py): said though a person
    # owns the conversation; `staff_note` goes to the help desk as a private note.
    answers_staff: bool = False
    staff_note: str | None = None


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """The client's other messengers, when the gateway linked this chat with theirs (one
    number, verified by both messengers), and the visits booked from there: My bookings shows
    them too."""

    channels: tuple[Channel, ...] = ()
    bookings: tuple[str, ...] = ()


@dataclass(slots=True)
class Context:
    """One event of one client: their session (replaced as the flow moves on), their language
    and the time."""

    session: Session
    _: Translator
    now: datetime
    event: Inbound
    notes: list[Reply] = field(default_factory=list)
    elsewhere: Elsewhere = field(default_factory=Elsewhere)

    @property
    def locale(self) -> str:
        return self._.locale

    def update(self, **changes: Any) -> None:
        self.session = self.session.model_copy(update=changes)

    def note(self, reply: Reply) -> None:
        """A reply sent before the step's own (an acknowledgement, an apology)."""
        self.notes.append(reply)

    def reply(self, reply: Reply, step: str) -> Turn:
        """The step's reply; the session moves to `step`."""
        self.update(step=step, misunderstood=0)
        return Turn((*self.notes, reply), self.session)
