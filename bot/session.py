"""What the bot remembers about one client between messages."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Owner(StrEnum):
    """Who answers the client: the bot, or a person (after a handoff, until staff hand back).

    Kept in two places, each for its reader (the values are the strings both always held):
    - `Session.owner` is authoritative for the conversation. It changes with the turn that
      hands over or takes back, in the same commit as that turn's messages, and the bot reads
      it to answer or keep quiet.
    - The gateway's `owner:<channel>:<chat>` key (`Keys.owner`, written by the help desk
      state) is a gate for what is already queued. The outbox reads it right before it sends a
      bot message, by the message's chat, without loading and parsing a session; the help
      desk reads it for a client's late line and for a missed resolve. It is written *before*
      the commit that changes the session (set before a handoff's or takeover's commit,
      deleted before a hand-back's), so it is never behind the session: a bot reply queued
      just before a takeover is held back, and the bot's welcome-back goes. A retried turn
      writes it again. It also outlives the session (400 days against the session's
      retention, and a session that cannot be read starts afresh): merging the two would
      change what is held back in those cases, so both stay.
    """

    BOT = "bot"
    HUMAN = "human"


class Draft(BaseModel):
    """A booking (or a reschedule) being put together, step by step. Kept when Cal.com is down
    so the client can pick up where they were."""

    model_config = ConfigDict(extra="allow")

    # Names the booking intent: the calendar books each draft at most once.
    id: str
    service: str | None = None
    # The master the client chose; None for "any master" (or before the choice).
    master: int | None = None
    day: date | None = None
    start: datetime | None = None  # UTC
    # Who takes the chosen time ("any master": the one found free at that time).
    slot_master: int | None = None
    name: str = ""
    phone: str | None = None
    email: str | None = None
    # The salon's calendar asked for an email (a phone alone is not enough there).
    needs_email: bool = False
    # Set when moving an existing booking: its uid.
    reschedule: str | None = None
    page: int = 0
    # What the client asked for in words and the steps have not used yet ("tomorrow after 3
    # with Anna"): the steps it answers are skipped, the times shown keep to it.
    wanted_master: int | None = None
    wanted_day: date | None = None
    wanted_from: date | None = None  # "next week": the days shown start there
    wanted_at: str | None = None  # "HH:MM"
    wanted_after: str | None = None
    wanted_before: str | None = None
    # A waitlist offer this draft books (its hold is claimed by the booking).
    offer: str | None = None
    # An offer the client moved away from (another time, service or master): released to the
    # next client waiting when this draft is confirmed, else its hold simply runs out.
    dropped_offer: str | None = None
    # The part of the day a wait being joined keeps to ("morning", ..., "any").
    wait_part: str | None = None


class Offered(BaseModel):
    """A choice of the last reply, so that typing its label (or, later, its number) works."""

    id: str
    label: str


class Session(BaseModel):
    # Unknown fields are kept so that an older worker never drops what a newer one stored.
    model_config = ConfigDict(extra="allow")

    # The language the client chose with "Language"; None means "follow their app".
    locale: str | None = None
    # What their app last reported (Telegram's language_code): what "follow their app" means
    # for what they are told between their own messages (staff handing back, notices).
    app_language: str | None = None
    step: str = "menu"
    # Misunderstandings in a row; after two the bot offers a person.
    misunderstood: int = 0
    last_seen: datetime | None = None
    draft: Draft | None = None
    # Drafts that became bookings lately: a second tap on their Confirm is answered, not booked.
    booked: list[str] = Field(default_factory=list)
    # The client's bookings made or moved here (uids, newest last); refreshed from the calendar.
    bookings: list[str] = Field(default_factory=list)
    # Their bookings that left that list lately (cancelled, moved, over): an old button of one
    # is answered with what became of the visit.
    former: list[str] = Field(default_factory=list)
    # The booking each draft of `booked` made (draft id -> uid): a late Confirm tells its state.
    made: dict[str, str] = Field(default_factory=dict)
    # Contact details the client gave, offered again next time.
    name: str = ""
    phone: str | None = None
    email: str | None = None
    # Visits the client said they will come to (uids), from a reminder's "I'll come".
    attending: list[str] = Field(default_factory=list)
    # Visits the client was reminded of (uids): their buttons' taps answer a reminder.
    reminded: list[str] = Field(default_factory=list)
    # When the client was handed to staff and no agent has answered yet.
    handoff_at: datetime | None = None
    # The booking My bookings is showing, while the client looks at it or cancels it.
    viewing: str | None = None
    offered: list[Offered] = Field(default_factory=list)
    # The channel showed the offered choices as a numbered list (WhatsApp's fallback when
    # buttons and lists cannot hold them): a typed number picks one.
    numbered: bool = False
    # Who answers the client (see `Owner` for the gateway's copy of it).
    owner: Owner = Owner.BOT
    # Where the client was when a person took over: offered again when the bot is back.
    handoff_step: str | None = None
    # The waitlist offer the client was last sent: a typed "yes" or "no thanks" answers it.
    waitlist_offer: str | None = None
    # Until when that offer is held: a typed answer is read only till then.
    waitlist_offer_until: datetime | None = None


def forgetting(session: Session, kept: list[str]) -> dict[str, list[str]]:
    """The session's changes when its bookings become `kept`: the others join `former`."""
    gone = [uid for uid in session.bookings if uid not in kept]
    former = [uid for uid in session.former if uid not in gone and uid not in kept] + gone
    return {"bookings": kept, "former": former[-20:]}
