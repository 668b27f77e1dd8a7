"""When a turn starts a booking (the booking_started fact): any entry into the booking flow
with a new booking, and nothing else (issue 21)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.events import Inbound, Kind
from bot.flows.turn import Turn
from bot.ports import Visit
from bot.session import Draft, Session
from gateway.analytics.facts import BOOKING_STARTED, Recorder
from tests.bot.test_booking_flow import CLIENT

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
TAP = Inbound(CLIENT, Kind.CHOICE, "e1", choice="m:book")
VISIT = Visit("uid-1", "Cut", NOW + timedelta(days=1), NOW + timedelta(days=1, hours=1))


def started(before: Session, turn: Turn) -> list[str | None]:
    """The entry steps of the booking_started facts of the turn."""
    recorder = Recorder("s1", "salt-salt-salt-salt", "Europe/Moscow", timedelta(hours=1))
    facts = recorder.of_turn("tg:42", before, turn, TAP, NOW)
    return [fact.get("step") for fact in facts if fact["kind"] == BOOKING_STARTED]


def test_a_new_draft_at_any_step_starts_a_booking() -> None:
    menu = Session(step="menu", last_seen=NOW)
    for step in ("book.service", "book.day", "book.contact", "book.confirm"):
        turn = Turn((), Session(step=step, draft=Draft(id="d1"), last_seen=NOW))
        assert started(menu, turn) == [step]


def test_the_same_draft_picked_up_again_or_a_move_starts_nothing() -> None:
    drafting = Session(step="book.day", draft=Draft(id="d1"), last_seen=NOW)
    resumed = Turn((), Session(step="book.confirm", draft=Draft(id="d1"), last_seen=NOW))
    assert started(drafting, resumed) == []
    move = Turn((), Session(step="book.day", draft=Draft(id="d2", reschedule="uid-0")))
    assert started(Session(step="bookings", last_seen=NOW), move) == []
    moved = Turn((), Session(step="menu", last_seen=NOW), booked=VISIT, replaced="uid-0")
    assert started(Session(step="book.confirm", last_seen=NOW), moved) == []


def test_a_booking_made_without_a_draft_was_started() -> None:
    """A waitlist offer taken when the client's details are known books at once."""
    taken = Turn((), Session(step="menu", last_seen=NOW), booked=VISIT, waitlist="booked")
    assert started(Session(step="menu", last_seen=NOW), taken) == [None]
