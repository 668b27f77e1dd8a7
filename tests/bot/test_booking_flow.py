"""The booking and My bookings flows against an in-memory calendar: typed answers, going back,
stopping, stale buttons, paging, and every way the calendar can fail."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import contact
from bot.catalogue import Master, Service
from bot.conversation import FrontDesk, Turn
from bot.events import Channel, ClientRef, Inbound, Kind
from bot.i18n import Catalogs
from bot.ports import (
    AttendeeRejected,
    BookingRequest,
    BookingUncertain,
    CalendarUnavailable,
    Slot,
    SlotTaken,
    Visit,
)
from bot.salon import Salon
from bot.session import Session

LOCALES = Path(__file__).resolve().parents[2] / "locales"
NOW = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)  # Monday, 10:00 in Moscow
CLIENT = ClientRef("main", Channel.TELEGRAM, "42", "42")
ANNA, OLGA = Master(1, "Anna"), Master(2, "Olga")


class FakeCalendar:
    """Free every hour from 10:00 to 17:00 Moscow time, on weekdays; records bookings."""

    def __init__(self, services: tuple[Service, ...]) -> None:
        self.catalogue = services
        self.down = False
        self.fail_book: Exception | None = None
        self.booked: list[BookingRequest] = []
        self.visits: dict[str, Visit] = {}
        self.cancelled: list[tuple[str, str | None]] = []

    def _check(self) -> None:
        if self.down:
            raise CalendarUnavailable("down")

    async def services(self) -> tuple[Service, ...]:
        self._check()
        return self.catalogue

    async def slots(
        self,
        service_key: str,
        master_id: int | None,
        start: datetime,
        end: datetime,
        *,
        reschedule_uid: str | None = None,
    ) -> list[Slot]:
        self._check()
        found = []
        moment = start.replace(minute=0, second=0, microsecond=0)
        while moment < end:
            local_hour = (moment.hour + 3) % 24
            if moment >= start and moment.weekday() < 5 and 10 <= local_hour < 17:
                found.append(Slot(moment, master_id if master_id is not None else ANNA.id))
            moment += timedelta(hours=1)
        return found

    async def book(self, request: BookingRequest) -> Visit:
        self._check()
        if self.fail_book is not None:
            raise self.fail_book
        self.booked.append(request)
        uid = f"uid-{len(self.booked)}"
        visit = Visit(uid, "Cut", request.start, request.start + timedelta(hours=1), "Anna")
        self.visits[uid] = visit
        return visit

    async def visit(self, uid: str) -> Visit | None:
        self._check()
        return self.visits.get(uid)

    async def reschedule(self, uid: str, start: datetime) -> Visit:
        self._check()
        old = self.visits[uid]
        self.visits[uid] = Visit(uid, old.service, old.start, old.end, old.master, active=False)
        new = Visit(f"{uid}-moved", old.service, start, start + timedelta(hours=1), old.master)
        self.visits[new.uid] = new
        return new

    async def cancel(self, uid: str, reason: str | None) -> Visit:
        self._check()
        self.cancelled.append((uid, reason))
        old = self.visits[uid]
        self.visits[uid] = Visit(uid, old.service, old.start, old.end, old.master, active=False)
        return self.visits[uid]


def cut(**changes: object) -> Service:
    fields: dict[str, object] = {
        "key": "cut",
        "title": "Cut",
        "minutes": 60,
        "price": "2500",
        "currency": "RUB",
        "masters": (ANNA, OLGA),
    }
    return Service(**{**fields, **changes})  # type: ignore[arg-type]


class Client:
    def __init__(self, calendar: FakeCalendar) -> None:
        salon = Salon("main", "Studio", "Europe/Moscow", "1 Main St", "+7 495 000-00-00")
        catalogs = Catalogs(LOCALES)
        self.desk = FrontDesk(salon, catalogs, timedelta(hours=1), calendar)
        self.session = Session()
        self.now = NOW
        self.turn: Turn | None = None

    async def _send(self, event: Inbound) -> list[str]:
        self.turn = await self.desk.handle(self.session, event, self.now)
        self.session = self.turn.session
        return [reply.text for reply in self.turn.replies]

    async def says(self, text: str) -> list[str]:
        if text == "/start":
            return await self._send(Inbound(CLIENT, Kind.START, "e", name="Ivan"))
        return await self._send(Inbound(CLIENT, Kind.TEXT, "e", text=text, name="Ivan"))

    async def taps(self, choice: str) -> list[str]:
        return await self._send(Inbound(CLIENT, Kind.CHOICE, "e", choice=choice, name="Ivan"))

    async def shares(self, phone: str) -> list[str]:
        return await self._send(Inbound(CLIENT, Kind.CONTACT, "e", phone=phone, name="Ivan"))

    def choices(self) -> list[str]:
        assert self.turn is not None
        return [c.id for reply in self.turn.replies for c in reply.choices]

    def confirm(self) -> str:
        return next(c for c in self.choices() if c.startswith("b:ok:"))


@pytest.fixture
def calendar() -> FakeCalendar:
    return FakeCalendar((cut(),))


@pytest.fixture
async def client(calendar: FakeCalendar) -> Client:
    client = Client(calendar)
    await client.says("/start")
    return client


async def to_summary(client: Client) -> None:
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.taps("b:m:1")
    await client.taps("b:d:20260602")
    await client.taps("b:t:202606020700:1")
    await client.says("+7 916 123-45-67")


async def test_typed_answers_at_each_step(client: Client, calendar: FakeCalendar) -> None:
    await client.taps("m:book")
    masters = await client.says("cut")  # the service's name, typed
    assert "Who would you like for «Cut»?" in masters[-1]
    await client.says("Anna")  # a master's name: the label of a choice just offered
    await client.taps("b:d:20260602")
    wrong = await client.says("at 09:15 please")
    assert wrong[0].startswith("09:15 is not free that day.")
    summary_or_contact = await client.says("11:00")
    assert summary_or_contact[-1].startswith("How can the salon reach you?")
    invalid = await client.says("call me maybe")
    assert invalid[0].startswith("That does not look like a phone number or an email.")
    saved = await client.says("8 916 123-45-67")
    # Written for reading, validated against the numbering plan.
    assert saved[0] == "Thank you! I will use +7 916 123-45-67."
    assert "🙂 Ivan" in saved[-1]
    await client.taps("b:name")
    rejected = await client.says("!!!")
    assert rejected[0] == "Please type a name (up to 100 characters)."
    renamed = await client.says("Ivan  Petrov")
    assert "🙂 Ivan Petrov" in renamed[-1]
    nonsense = await client.says("hmm")
    assert nonsense[0] == "Please choose one of the options below."
    assert client.session.step == "book.confirm"
    await client.taps(client.confirm())
    [request] = calendar.booked
    assert request.start == datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
    assert request.name == "Ivan Petrov"
    assert request.phone == "+79161234567"
    assert request.key.startswith("main:telegram:42:")


async def test_back_walks_the_steps_and_cancel_stops(client: Client) -> None:
    await to_summary(client)
    assert (await client.taps("b:back"))[-1].endswith("Choose a time:")
    assert "Choose a day:" in (await client.taps("b:back"))[-1]
    assert "Who would you like" in (await client.taps("b:back"))[-1]
    assert "Which service" in (await client.taps("b:back"))[-1]
    assert (await client.taps("b:back"))[-1] == "How can I help you?"
    assert client.session.draft is None
    await to_summary(client)
    await client.taps("b:contact")
    assert client.session.step == "book.contact"
    stopped = await client.taps("b:quit")
    # Leaving the contact step takes the contact keyboard away first.
    assert stopped == ["👌", "OK, I have not booked anything. How else can I help?"]
    stale = await client.taps("b:t:202606020700:1")
    assert stale[-1] == "That button is no longer active. Here is the menu:"


async def test_paging_through_a_long_catalogue(calendar: FakeCalendar) -> None:
    calendar.catalogue = tuple(
        cut(key=f"s{n}", title=f"Service {n}", category="Hair" if n < 5 else "Nails")
        for n in range(11)
    )
    client = Client(calendar)
    first = await client.taps("m:book")
    assert "Service 7" in first[-1]
    assert "Service 8" not in first[-1]
    assert "b:sp:1" in client.choices()
    second = await client.taps("b:sp:1")
    assert "Service 10" in second[-1]
    assert "b:sp:0" in client.choices()
    assert "b:sp:1" not in client.choices()


async def test_a_single_master_or_none_skips_the_choice(calendar: FakeCalendar) -> None:
    calendar.catalogue = (cut(masters=(OLGA,)), cut(key="any", title="Brows", masters=()))
    client = Client(calendar)
    await client.taps("m:book")
    days = await client.taps("b:s:cut")
    assert "💇 Cut · 👤 Olga" in days[-1]
    await client.taps("b:back")
    days = await client.taps("b:s:any")
    assert "👤 any free master" in days[-1]
    await client.taps("b:d:20260602")
    await client.taps("b:t:202606020700:1")
    summary = await client.shares("79161234567")
    assert "👤 the salon will assign a master" in summary[-1]


async def test_calendar_failures_each_have_an_answer(
    client: Client, calendar: FakeCalendar
) -> None:
    await to_summary(client)
    calendar.fail_book = BookingUncertain("timeout")
    unsure = await client.taps(client.confirm())
    assert unsure[-1].startswith("The salon's calendar did not answer in time")
    calendar.fail_book = SlotTaken("taken")
    taken = await client.taps(client.confirm())
    assert taken[0].startswith("Sorry, 10:00 was just taken")
    await client.taps("b:t:202606020900:1")
    calendar.fail_book = AttendeeRejected("phone")
    rejected = await client.taps(client.confirm())
    assert rejected[0].startswith("The salon's calendar did not accept this phone number.")
    await client.says("ivan@example.com")
    calendar.fail_book = None
    calendar.down = True
    down = await client.taps(client.confirm())
    assert down[-1].startswith("I cannot reach the salon's calendar right now.")
    assert "+7 495 000-00-00" in down[-1]
    # The client looks elsewhere, then comes back to Book: their booking is where they left it.
    await client.taps("m:info")
    calendar.down = False
    resumed = await client.taps("m:book")
    assert resumed[0] == "Let's pick up where you left off."
    await client.taps(client.confirm())
    assert calendar.booked[-1].email == "ivan@example.com"
    again = await client.taps("b:ok:" + calendar.booked[-1].key.rsplit(":", 1)[1])
    # A second Confirm tells where the visit stands, not just "already confirmed".
    assert again[-1].startswith("This booking stands: «Cut» on Tuesday, 2 June, at 12:00.")


async def test_my_bookings_when_things_change(client: Client, calendar: FakeCalendar) -> None:
    empty = await client.taps("m:mine")
    assert empty[-1] == "You have no upcoming bookings."
    await to_summary(client)
    await client.taps(client.confirm())
    calendar.down = True
    down = await client.taps("m:mine")
    assert down[-1].startswith("I cannot reach the salon's calendar right now, so I cannot")
    assert (await client.taps("b:ics:uid-1"))[-1].startswith("I cannot reach")
    calendar.down = False
    listing = await client.taps("m:mine")
    assert "• Tue, 2 June, 10:00 — Cut" in listing[-1]
    forged = await client.taps("k:v:someone-elses")
    assert forged[-1] == "That button is no longer active. Here is the menu:"
    await client.taps("k:v:uid-1")
    await client.taps("k:c:uid-1")
    kept = await client.taps("k:v:uid-1")  # "No, keep it"
    assert "💇 Cut" in kept[-1]
    await client.taps("k:c:uid-1")
    asked = await client.taps("k:cx:uid-1")
    assert asked[-1].startswith("Not cancelled yet. Would you tell us why?")
    assert calendar.cancelled == []  # the reason is asked first; skipping it cancels
    await client.taps("k:cs:uid-1")
    assert calendar.cancelled == [("uid-1", None)]
    gone = await client.taps("b:ics:uid-1")
    assert gone[-1].startswith("This booking is no longer active.")
    # An old button of the cancelled visit says what became of it.
    assert (await client.taps("k:v:uid-1"))[-1] == (
        "This visit, «Cut» on Tuesday, 2 June, at 10:00, was cancelled."
    )


async def test_a_visit_the_salon_cancelled_drops_off(
    client: Client, calendar: FakeCalendar
) -> None:
    await to_summary(client)
    await client.taps(client.confirm())
    old = calendar.visits["uid-1"]
    calendar.visits["uid-1"] = Visit(old.uid, old.service, old.start, old.end, active=False)
    answer = await client.taps("k:r:uid-1")
    assert answer == [
        "This visit, «Cut» on Tuesday, 2 June, at 10:00, was cancelled.",
        "You have no upcoming bookings.",
    ]
    assert client.session.bookings == []


async def test_a_long_pause_drops_the_unfinished_booking(client: Client) -> None:
    await to_summary(client)
    client.now += timedelta(hours=2)
    greeting = await client.says("hello")
    assert greeting[-1].startswith("Hello, Ivan!")
    assert client.session.draft is None
    late = await client.taps("b:back")
    assert late[-1] == "That button is no longer active. Here is the menu:"


@pytest.mark.parametrize(
    ("typed", "phone"),
    [
        ("+7 (916) 123-45-67", "+79161234567"),
        ("8 916 123 45 67", "+79161234567"),
        ("0049 151 1234 5678", "+4915112345678"),
        ("916 123 45 67", None),
        ("+12", None),
        ("call me", None),
    ],
)
def test_typed_phone_numbers(typed: str, phone: str | None) -> None:
    assert contact.phone(typed) == phone


def test_shared_numbers_emails_and_names() -> None:
    assert contact.shared_phone("79161234567") == "+79161234567"
    assert contact.shared_phone("123") is None
    assert contact.email("anna@example.com") == "anna@example.com"
    assert contact.email("anna@example") is None
    assert contact.name("  Anna   Petrova ") == "Anna Petrova"
    assert contact.name("x" * 101) is None


@pytest.mark.parametrize(
    ("typed", "phone", "readable"),
    [
        ("+7 916 123-45-67", "+79161234567", "+7 916 123-45-67"),
        ("+44 20 7946 0958", "+442079460958", "+44 20 7946 0958"),
        ("+1 202 555 0123", "+12025550123", "+1 202-555-0123"),
        # The shape of a number, but no such number in its country's plan (libphonenumber).
        ("+7 000 000 00 00", None, ""),
        ("+1 555 0100", None, ""),
        ("+0 123 456 789", None, ""),  # no country code starts with 0
    ],
)
def test_phone_numbers_are_validated_and_written_for_reading(
    typed: str, phone: str | None, readable: str
) -> None:
    assert contact.phone(typed) == phone
    if phone is not None:
        assert contact.readable(phone) == readable
    assert contact.readable("not a number") == "not a number"


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("abc", contact.Problem.NEITHER),
        ("🙂", contact.Problem.NEITHER),
        ("+7 000 000", contact.Problem.PHONE),
        ("anna@", contact.Problem.EMAIL),
    ],
)
def test_an_invalid_contact_says_what_is_wrong(typed: str, problem: contact.Problem) -> None:
    assert contact.problem(typed) is problem


async def test_a_typed_contact_that_is_wrong_gets_a_clear_error_with_an_example(
    client: Client,
) -> None:
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.taps("b:m:1")
    await client.taps("b:d:20260602")
    await client.taps("b:t:202606020700:1")
    letters = await client.says("abc")
    assert letters[0].startswith("That does not look like a phone number or an email.")
    assert "e.g. +7 916 123-45-67" in letters[0]
    digits = await client.says("+7 000 000 00 00")
    assert digits[0].startswith("That number does not look complete or real.")
    assert "+7 916 123-45-67" in digits[0]
    mail = await client.says("anna@example")
    assert mail[0] == "That email does not look complete. Please type it as anna@example.com."
    # An email is shown as an email, a phone as a phone, both for reading.
    await client.says("anna@example.com")
    summary = await client.taps("b:contact")
    summary = await client.says("+7 916 123 45 67")
    assert "✉️ anna@example.com" in summary[-1]
    assert "📱 +7 916 123-45-67" in summary[-1]
    assert "📱 anna@example.com" not in summary[-1]


async def test_a_late_confirm_tells_where_the_visit_stands(
    client: Client, calendar: FakeCalendar
) -> None:
    await to_summary(client)
    confirm = client.confirm()
    await client.taps(confirm)
    on = await client.taps(confirm)
    assert (
        on[-1] == "This booking stands: «Cut» on Tuesday, 2 June, at 10:00. It is in My bookings."
    )
    await calendar.cancel("uid-1", None)
    cancelled = await client.taps(confirm)
    # Not "already confirmed": the truth about the visit now.
    assert cancelled[-1] == "This visit, «Cut» on Tuesday, 2 June, at 10:00, was cancelled."
    assert client.choices() == ["m:book", "m:mine", "m:home"]


async def test_a_late_confirm_of_a_visit_moved_or_over(
    client: Client, calendar: FakeCalendar
) -> None:
    await to_summary(client)
    confirm = client.confirm()
    await client.taps(confirm)
    moved = await calendar.reschedule("uid-1", datetime(2026, 6, 3, 8, 0, tzinfo=UTC))
    calendar.visits["uid-1"] = moved  # Cal.com answers the old uid with the new booking
    told = await client.taps(confirm)
    assert told[-1] == "This visit was moved: «Cut» is now on Wednesday, 3 June, at 11:00."
    client.now = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    over = await client.taps(confirm)
    assert over[-1] == "This visit, «Cut» on Wednesday, 3 June, at 11:00, is already over."


async def test_a_stale_i_will_come_of_a_cancelled_visit_says_it_was_cancelled(
    client: Client, calendar: FakeCalendar
) -> None:
    await to_summary(client)
    await client.taps(client.confirm())
    await client.taps("m:mine")  # the calendar and the list agree
    await calendar.cancel("uid-1", None)
    await client.taps("m:mine")  # the list learns it is gone
    assert client.session.former == ["uid-1"]
    told = await client.taps("k:y:uid-1")
    assert told[-1] == "This visit, «Cut» on Tuesday, 2 June, at 10:00, was cancelled."
    calendar.visits.pop("uid-1")
    unknown = await client.taps("k:y:uid-1")
    assert unknown[-1] == "This booking is no longer active."


async def test_typed_no_or_a_question_keeps_the_booking_and_yes_asks_the_reason(
    client: Client, calendar: FakeCalendar
) -> None:
    await to_summary(client)
    await client.taps(client.confirm())
    calendar.visits["uid-1"] = replace(calendar.visits["uid-1"], service_key="cut")
    for typed in ("no", "нет, не надо отменять", "what time was it again?", "hmm"):
        await client.taps("k:c:uid-1")
        kept = await client.says(typed)
        assert kept[0] == "Your booking stays as it is."
        assert "k:c:uid-1" in client.choices()  # the booking's options again
    await client.taps("k:c:uid-1")
    moving = await client.says("wait, can I move it to Friday instead?")
    assert moving[0] == "Your booking stays as it is."
    assert "Choose a day" in moving[-1]
    assert calendar.cancelled == []
    await client.taps("b:back")  # leaves the move
    await client.taps("k:c:uid-1")
    reason = await client.says("Yes, cancel, please")
    assert reason[-1].startswith("Not cancelled yet. Would you tell us why?")
    assert client.choices() == ["k:cs:uid-1", "k:v:uid-1"]
    taken_back = await client.says("no wait, I will come after all")
    assert taken_back[0] == "Your booking stays as it is."
    for second_thought in ("а можно перенести на пятницу?", "will I get my deposit back?"):
        await client.taps("k:c:uid-1")
        await client.says("да")
        kept = await client.says(second_thought)
        assert kept[0] == "Your booking stays as it is."
    assert calendar.cancelled == []
    await client.taps("k:c:uid-1")
    await client.says("да")
    done = await client.says("Plans changed")
    assert done[-1].startswith("Your booking «Cut» on Tuesday, 2 June, at 10:00 is cancelled.")
    assert calendar.cancelled == [("uid-1", "Plans changed")]


async def test_a_day_without_free_times_is_named_as_a_sentence_says_it(client: Client) -> None:
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.taps("b:m:1")
    told = await client.taps("b:d:20260606")  # a Saturday: nothing free
    assert told[0] == "On Saturday, 6 June: no free times are left."
    assert client.session.step == "book.day"


async def test_a_no_for_a_visit_the_salon_cancelled_meanwhile_says_so(
    client: Client, calendar: FakeCalendar
) -> None:
    await to_summary(client)
    await client.taps(client.confirm())
    await client.taps("k:c:uid-1")
    await calendar.cancel("uid-1", None)
    told = await client.says("no")
    # Not "your booking stays": it was cancelled by the salon in the meantime.
    assert told[0] == "This visit, «Cut» on Tuesday, 2 June, at 10:00, was cancelled."
    assert "Your booking stays as it is." not in told


async def test_typed_text_at_the_cancel_question_without_a_visit_shows_the_list(
    client: Client, calendar: FakeCalendar
) -> None:
    await to_summary(client)
    await client.taps(client.confirm())
    await client.taps("k:c:uid-1")
    client.session = client.session.model_copy(update={"viewing": None})
    listing = await client.says("yes")
    assert listing[-1].startswith("Your upcoming bookings:")
    assert calendar.cancelled == []
    await calendar.cancel("uid-1", None)
    await client.taps("m:mine")
    calendar.down = True
    down = await client.taps("k:y:uid-1")  # an old button, while the calendar is down
    assert down[-1].startswith("I cannot reach the salon's calendar right now")
