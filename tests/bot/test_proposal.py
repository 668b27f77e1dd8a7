"""The client's answer to times staff proposed (bot/flows/proposal.py), with in-memory fakes:
a tap, the time or its number typed in either language, a stale button, a time taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.conversation import FrontDesk
from bot.events import ClientRef, Inbound, Kind
from bot.flows.proposal import Proposal, ProposedSlot
from bot.i18n import Catalogs
from bot.ports import SlotTaken
from bot.salon import Salon
from bot.session import Draft, Owner, Session
from tests.bot.test_booking_flow import CLIENT, LOCALES, NOW, FakeCalendar, cut


class FakeProposals:
    def __init__(self, proposal: Proposal | None) -> None:
        self.proposal = proposal
        self.settled: list[int | None] = []

    async def current(self, client: ClientRef) -> Proposal | None:
        return self.proposal

    async def settle(self, client: ClientRef, proposal: Proposal, kept: int | None) -> None:
        self.settled.append(kept)
        self.proposal = None


def proposal() -> Proposal:
    # 11:00, 13:00 and 14:30 in Moscow on Tuesday 2 June.
    starts = [datetime(2026, 6, 2, h, m, tzinfo=UTC) for h, m in ((8, 0), (10, 0), (11, 30))]
    return Proposal(
        id="ab12cd34",
        service_key="cut",
        service="Cut",
        slots=[
            ProposedSlot(start=s, master_id=1, master="Anna", reservation=f"r{n}")
            for n, s in enumerate(starts)
        ],
        until=NOW + timedelta(minutes=10),
        staff="Olga",
        name="Ivan",
        phone="+79161112233",
    )


def desk(calendar: FakeCalendar, proposals: FakeProposals) -> FrontDesk:
    salon = Salon("main", "Studio", "Europe/Moscow", "1 Main St", "+7 495 000-00-00")
    return FrontDesk(salon, Catalogs(LOCALES), timedelta(hours=1), calendar, proposals=proposals)


# A client in the middle of their own booking, handed to a person.
OWNED = Session(
    owner=Owner.HUMAN, last_seen=NOW, step="book.time", draft=Draft(id="d1", service="cut")
)


@pytest.mark.parametrize(
    ("typed", "chosen"),
    [
        ("2", 1),
        ("at 1:00 pm", 1),
        ("в 14.30", 2),
        ("давайте 11:00", 0),
        ("tue, 2 june, 13:00 · anna", 1),
    ],
)
async def test_the_time_typed_books_it_and_keeps_the_draft(typed: str, chosen: int) -> None:
    calendar, proposals = FakeCalendar((cut(),)), FakeProposals(proposal())
    turn = await desk(calendar, proposals).handle(
        OWNED, Inbound(CLIENT, Kind.TEXT, "e", text=typed), NOW
    )
    assert [r.start for r in calendar.booked] == [proposal().slots[chosen].start]
    assert calendar.booked[0].reservation == f"r{chosen}"  # booked on its own hold
    assert proposals.settled == [chosen]
    assert "You are booked" in turn.replies[0].text
    assert turn.answers_staff
    assert turn.staff_note
    assert "Olga" in turn.staff_note
    assert turn.session.draft == OWNED.draft
    assert turn.session.owner is Owner.HUMAN
    assert turn.session.bookings == ["uid-1"]


async def test_words_that_name_no_proposed_time_go_to_staff_as_before() -> None:
    calendar, proposals = FakeCalendar((cut(),)), FakeProposals(proposal())
    for typed in ("can we do Friday?", "12:00", "5"):
        turn = await desk(calendar, proposals).handle(
            OWNED, Inbound(CLIENT, Kind.TEXT, "e", text=typed), NOW
        )
        assert turn.replies == ()  # a person owns the chat: the bot keeps quiet
    assert calendar.booked == []


async def test_a_stale_or_taken_time_books_nothing_and_says_so() -> None:
    calendar, proposals = FakeCalendar((cut(),)), FakeProposals(None)
    tap = Inbound(CLIENT, Kind.CHOICE, "e", choice="pp:ab12cd34:0")
    turn = await desk(calendar, proposals).handle(OWNED, tap, NOW)
    assert "no longer held" in turn.replies[0].text
    proposals.proposal = proposal()
    calendar.fail_book = SlotTaken("taken")
    turn = await desk(calendar, proposals).handle(OWNED, tap, NOW)
    assert "could not be booked" in turn.replies[0].text
    assert turn.staff_note is not None
    assert proposals.settled == [None]


async def test_a_bare_number_answers_the_bots_own_numbered_list_first() -> None:
    calendar, proposals = FakeCalendar((cut(),)), FakeProposals(proposal())
    # The bot has the chat and showed a numbered list (WhatsApp's fallback): "2" is its own.
    listing = Session(last_seen=NOW, numbered=True)
    turn = await desk(calendar, proposals).handle(
        listing, Inbound(CLIENT, Kind.TEXT, "e", text="2"), NOW
    )
    assert calendar.booked == []
    assert not turn.answers_staff


@pytest.mark.parametrize(
    "typed",
    ["в пятницу в 14:30", "friday at 2:30 pm", "14:30 next week", "5 июня 14:30"],
)
async def test_a_time_on_another_day_books_no_proposed_time(typed: str) -> None:
    calendar, proposals = FakeCalendar((cut(),)), FakeProposals(proposal())
    await desk(calendar, proposals).handle(OWNED, Inbound(CLIENT, Kind.TEXT, "e", text=typed), NOW)
    assert calendar.booked == []
    assert proposals.settled == []


async def test_the_proposed_day_named_with_its_time_books_it() -> None:
    calendar, proposals = FakeCalendar((cut(),)), FakeProposals(proposal())
    text = "во вторник в 14:30"
    await desk(calendar, proposals).handle(OWNED, Inbound(CLIENT, Kind.TEXT, "e", text=text), NOW)
    assert [r.start for r in calendar.booked] == [proposal().slots[2].start]


async def test_a_bare_number_at_the_waitlists_range_step_is_the_steps() -> None:
    calendar, proposals = FakeCalendar((cut(),)), FakeProposals(proposal())
    draft = Draft(id="d1", service="cut", day=NOW.date())
    ranging = Session(last_seen=NOW, step="wait.range", draft=draft)
    await desk(calendar, proposals).handle(ranging, Inbound(CLIENT, Kind.TEXT, "e", text="3"), NOW)
    assert calendar.booked == []


async def test_half_past_midnight_is_not_half_past_noon() -> None:
    noon = proposal()
    noon.slots[0].start = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)  # 12:30 in Moscow
    calendar, proposals = FakeCalendar((cut(),)), FakeProposals(noon)
    typed = Inbound(CLIENT, Kind.TEXT, "e", text="12:30 am")
    await desk(calendar, proposals).handle(OWNED, typed, NOW)
    assert calendar.booked == []
