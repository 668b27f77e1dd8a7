"""What every flow works with during one turn, and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.events import Inbound
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
    # The client answers what staff offered them (bot/flows/proposal.py): said though a person
    # owns the conversation; `staff_note` goes to the help desk as a private note.
    answers_staff: bool = False
    staff_note: str | None = None


@dataclass(slots=True)
class Context:
    """One event of one client: their session (replaced as the flow moves on), their language
    and the time."""

    session: Session
    _: Translator
    now: datetime
    event: Inbound
    notes: list[Reply] = field(default_factory=list)

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
