"""Handing the client to staff and taking them back: pure `FrontDesk` turns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.conversation import FrontDesk
from bot.events import Inbound, Kind
from bot.flows.booking import BookingFlow
from bot.flows.handoff import ASKED, asks_for_person, staff_note
from bot.i18n import Catalogs
from bot.salon import Salon
from bot.session import Draft, Session
from bot.working_hours import WorkingHours
from tests.bot.test_booking_flow import CLIENT, LOCALES, NOW, Client, FakeCalendar, cut


class StaffClient(Client):
    def __init__(self, calendar: FakeCalendar) -> None:
        super().__init__(calendar)
        salon = Salon("main", "Studio", "Europe/Moscow", "1 Main St", hours="Mon–Sat 10–20")
        self.desk = FrontDesk(
            salon,
            Catalogs(LOCALES),
            timedelta(hours=1),
            calendar,
            help_desk_channels=True,
            staff_locale="ru",
        )

    async def staff(self, kind: Kind) -> list[str]:
        return await self._send(Inbound(CLIENT, kind, "cw"))


@pytest.fixture
async def client() -> StaffClient:
    client = StaffClient(FakeCalendar((cut(),)))
    await client.says("/start")
    return client


@pytest.mark.parametrize(
    ("words", "asks"),
    [
        ("Can I talk to a real person?", True),
        ("I need the administrator", True),
        ("Позовите администратора, пожалуйста", True),
        ("хочу поговорить с живым человеком", True),
        ("соедините с оператором", True),
        ("I'd like a haircut tomorrow", False),
        ("Сколько стоит маникюр?", False),
    ],
)
def test_requests_for_a_person_in_either_language(words: str, asks: bool) -> None:
    assert asks_for_person(words) is asks


async def test_the_menu_entry_hands_off_with_a_note_in_the_salons_language(
    client: StaffClient,
) -> None:
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.taps("b:m:1")
    told = await client.taps("m:person")
    assert told[-1].startswith("🙋 I have passed your conversation")
    assert "Our hours: Mon–Sat 10–20" in told[-1]
    assert client.turn is not None
    assert client.turn.handoff is not None
    note = client.turn.handoff.note
    assert note.startswith("🙋 Клиент попросил администратора (меню).")
    assert "Клиент: Ivan · telegram · en" in note
    # Where the client was, in words (the salon's language), not a step's name.
    assert "Выбирал(а) день для «Cut» (Anna)." in note
    assert "book.day" not in note
    assert "Запись в процессе: Cut · Anna" in note
    assert client.session.owner == "human"
    assert client.session.handoff_step == "book.day"


async def test_two_misunderstandings_offer_a_person_who_comes_only_when_chosen(
    client: StaffClient,
) -> None:
    await client.says("qwerty")
    offered = await client.says("👀")
    assert offered[-1].startswith("I still did not understand, sorry.")
    assert client.turn is not None
    assert client.turn.handoff is None  # offered, not called
    assert client.choices() == ["m:person:mis", "m:home"]
    assert client.session.owner == "bot"
    told = await client.taps("m:person:mis")
    assert told[-1].startswith("🙋 I have passed")
    assert client.turn.handoff is not None
    assert client.turn.handoff.reason == "misunderstood"
    assert await client.says("hello?") == []
    assert await client.taps("m:book") == []
    assert await client.says("/start") == []


async def test_a_person_asked_for_in_words_hands_off(client: StaffClient) -> None:
    told = await client.says("позовите администратора")
    assert told[-1].startswith("🙋")
    assert client.turn is not None
    assert client.turn.handoff is not None
    assert client.turn.handoff.reason == "typed"


async def test_calendar_down_offers_a_person_who_is_told_why(
    client: StaffClient,
) -> None:
    client.desk.calendar.down = True  # type: ignore[union-attr]
    await client.taps("m:book")
    assert "m:person:cal" in client.choices()
    await client.taps("m:person:cal")
    assert client.turn is not None
    assert client.turn.handoff is not None
    assert client.turn.handoff.reason == "calendar"
    assert "не отвечает" in client.turn.handoff.note


async def test_back_from_staff_at_the_step_left_with_the_choices_kept(
    client: StaffClient,
) -> None:
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.taps("b:m:1")
    await client.taps("b:d:20260602")
    await client.says("I want to speak to a human")
    assert await client.staff(Kind.TAKEOVER) == []
    back = await client.staff(Kind.RETURNED)
    assert back == [
        "Thank you for waiting! I am back with you. "
        + "Shall we finish your booking where you left off?"
    ]
    assert client.choices() == ["b:resume", "m:home"]
    assert client.session.owner == "bot"
    times = await client.taps("b:resume")
    assert "Choose a time" in times[-1]
    assert "b:t:202606020700:1" in client.choices()
    # A second hand-back (our own status change echoed) says nothing.
    assert await client.staff(Kind.RETURNED) == []


async def test_words_to_staff_after_a_long_pause_keep_the_booking_to_come_back_to(
    client: StaffClient,
) -> None:
    """Staff answer the next day; the client writes to them after longer than an idle
    session lasts: a person has the chat, so their booking in progress is not over, and the
    hand-back still offers to finish it."""
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.taps("b:m:1")
    await client.taps("b:d:20260602")
    await client.says("I want to speak to a human")
    assert await client.staff(Kind.TAKEOVER) == []
    client.now += timedelta(hours=3)  # the desk's idle session lasts one hour
    assert await client.says("Sorry, I was at work. Is 11:00 possible?") == []
    assert client.session.draft is not None
    back = await client.staff(Kind.RETURNED)
    assert back[-1].endswith("Shall we finish your booking where you left off?")
    assert client.choices() == ["b:resume", "m:home"]


async def test_back_without_a_draft_is_the_menu_and_the_note_lists_bookings(
    client: StaffClient,
) -> None:
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.taps("b:m:1")
    await client.taps("b:d:20260602")
    await client.taps("b:t:202606020700:1")
    await client.says("+7 916 123-45-67")
    await client.taps(client.confirm())
    await client.taps("m:person")
    assert client.turn is not None
    assert client.turn.handoff is not None
    assert "Ближайшие записи:" in client.turn.handoff.note
    assert "+7 916 123-45-67" in client.turn.handoff.note
    back = await client.staff(Kind.RETURNED)
    assert back[-1].startswith("Thank you for waiting! I am back with you. How else can I help?")
    assert "m:book" in client.choices()


async def test_back_in_the_language_of_the_clients_app() -> None:
    # Staff's hand-back carries no language; the client's app said Russian (the salon's
    # default is English): the bot comes back in Russian, and stays there.
    client = StaffClient(FakeCalendar((cut(),)))
    greeting = await client._send(Inbound(CLIENT, Kind.START, "e", name="Ivan", language="ru"))
    assert greeting[-1].startswith("Здравствуйте, Ivan!")
    await client._send(Inbound(CLIENT, Kind.CHOICE, "e", choice="m:person", language="ru"))
    assert await client.staff(Kind.TAKEOVER) == []
    back = await client.staff(Kind.RETURNED)
    assert back[-1].startswith("Спасибо, что подождали!")
    assert client.session.app_language == "ru"
    assert client.session.locale is None  # not a choice: a new app language would follow


async def test_without_a_desk_the_person_entry_gives_the_salons_contacts() -> None:
    client = Client(FakeCalendar((cut(),)))
    await client.says("/start")
    answer = await client.taps("m:person")
    assert client.turn is not None
    assert client.turn.handoff is None
    assert "1 Main St" in answer[-1]
    session = Session(owner="human")
    turn = await client.desk.handle(session, Inbound(CLIENT, Kind.TEXT, "e", text="hi"), NOW)
    assert turn.replies == ()


async def test_a_channel_without_a_staff_inbox_keeps_the_contacts_answer() -> None:
    from bot.events import Channel, ClientRef

    calendar = FakeCalendar((cut(),))
    salon = Salon("main", "Studio", "Europe/Moscow", "1 Main St")
    desk = FrontDesk(
        salon,
        Catalogs(LOCALES),
        timedelta(hours=1),
        calendar,
        help_desk_channels=frozenset({Channel.TELEGRAM}),
    )
    whatsapp = ClientRef("main", Channel.WHATSAPP, "7916", "7916")
    turn = await desk.handle(Session(), Inbound(whatsapp, Kind.CHOICE, "e", choice="m:person"), NOW)
    assert turn.handoff is None
    assert "1 Main St" in turn.replies[-1].text
    telegram = await desk.handle(
        Session(), Inbound(CLIENT, Kind.CHOICE, "e", choice="m:person"), NOW
    )
    assert telegram.handoff is not None


async def test_an_email_at_the_contact_step_is_data_not_a_request_for_a_person(
    client: StaffClient,
) -> None:
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.taps("b:m:1")
    await client.taps("b:d:20260602")
    await client.taps(next(c for c in client.choices() if c.startswith("b:t:")))
    assert client.session.step == "book.contact"
    await client.says("admin@salon.example")
    assert client.turn is not None
    assert client.turn.handoff is None
    assert client.session.draft is not None
    assert client.session.draft.email == "admin@salon.example"
    # Words asking for a person at the same step still reach staff.
    await client.taps("b:contact")
    await client.says("позовите администратора")
    assert client.turn.handoff is not None


async def _note(step: str, locale: str, draft: Draft | None, flow: bool = True) -> str:
    calendar = FakeCalendar((cut(titles=(("ru", "Стрижка"),)),))
    salon = Salon("main", "Studio", "Europe/Moscow")
    booking = BookingFlow(salon, calendar) if flow else None
    session = Session(step=step, draft=draft)
    staff = Catalogs(LOCALES).get(locale)
    note = await staff_note(
        staff,
        session,
        ASKED,
        client="Ivan",
        channel="telegram",
        phone="",
        said="",
        zone="Europe/Moscow",
        calendar=calendar,
        flow=booking,
    )
    return note.splitlines()[2]


@pytest.mark.parametrize(
    ("step", "locale", "draft", "words"),
    [
        (
            "book.day",
            "en",
            {"service": "cut", "master": 1},
            "Was choosing a day for Cut with Anna.",
        ),
        (
            "book.day",
            "ru",
            {"service": "cut", "master": 1},
            "Выбирал(а) день для «Стрижка» (Anna).",
        ),
        (
            "book.time",
            "en",
            {"service": "cut"},
            "Was choosing a time for Cut with any free master.",
        ),
        ("book.master", "en", {"service": "cut"}, "Was choosing a master for Cut."),
        (
            "book.confirm",
            "en",
            {"service": "cut", "master": 2},
            "Was about to confirm Cut with Olga.",
        ),
        ("book.service", "en", {}, "Was choosing a service."),
        ("book.contact", "en", None, "Was booking a visit."),
        ("mine.cancel", "en", None, "Was cancelling a booking."),
        ("mine.list", "ru", None, "Смотрел(а) свои записи."),
        ("menu", "en", None, "Was at the main menu."),
    ],
)
async def test_the_staff_note_says_where_the_client_was_in_words(
    step: str, locale: str, draft: dict[str, object] | None, words: str
) -> None:
    made = Draft.model_validate({"id": "d1", **draft}) if draft is not None else None
    assert await _note(step, locale, made) == words


async def test_the_staff_note_without_a_calendar_still_speaks_in_words() -> None:
    draft = Draft(id="d1", service="cut")
    assert await _note("book.day", "en", draft, flow=False) == "Was booking a visit."


async def test_a_complaint_in_words_hands_off_at_once_with_what_routing_reads(
    client: StaffClient,
) -> None:
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.taps("b:m:1")
    told = await client.says("Хочу оставить жлобу на прошлую стрижку")
    assert told[-1].startswith("🙋")
    handoff = client.turn.handoff if client.turn else None
    assert handoff is not None
    assert (handoff.reason, handoff.language, handoff.master) == ("complaint", "en", 1)
    assert handoff.reply_after is None  # no working hours given: always in hours
    assert handoff.note.startswith("😠 Клиент жалуется.")
    assert "Хочу оставить жлобу" in handoff.note


async def test_a_complaint_where_no_staff_answer_is_read_as_usual() -> None:
    client = Client(FakeCalendar((cut(),)))
    await client.says("/start")
    answer = await client.says("the haircut was terrible")
    assert client.turn is not None
    assert client.turn.handoff is None
    assert answer  # never silent


async def test_out_of_hours_the_client_is_told_when_staff_answer_in_their_language() -> None:
    calendar = FakeCalendar((cut(),))
    salon = Salon(
        "main",
        "Studio",
        "Europe/Moscow",
        working_hours=WorkingHours.parse("Mon-Fri 10:00-20:00"),
    )
    desk = FrontDesk(
        salon, Catalogs(LOCALES), timedelta(hours=1), calendar, help_desk_channels=True
    )
    friday_night = datetime(2026, 6, 5, 19, 0, tzinfo=UTC)  # 22:00 in Moscow
    event = Inbound(CLIENT, Kind.CHOICE, "e", choice="m:person", language="ru")
    turn = await desk.handle(Session(), event, friday_night)
    assert turn.replies[-1].text.endswith(
        "Сейчас сотрудники не на месте: они ответят вам здесь в понедельник, 8 июня, в 10:00."
    )
    assert turn.handoff is not None
    assert turn.handoff.reply_after == datetime(2026, 6, 8, 7, 0, tzinfo=UTC)
    monday = datetime(2026, 6, 8, 7, 0, tzinfo=UTC)  # 10:00: staff are in
    turn = await desk.handle(Session(), event, monday)
    assert turn.handoff is not None
    assert turn.handoff.reply_after is None
    assert "не на месте" not in turn.replies[-1].text


@pytest.mark.parametrize(
    ("words", "reason"),
    [
        # Complaint words win over a plain request for a person, in either order.
        ("позовите… администратора, у меня жалоба", "complaint"),
        ("у меня жалоба позовите администратора", "complaint"),
        ("позавите админа мастер нахамила 😡", "complaint"),  # a typo, no punctuation
        ("call the manager i want to complian", "complaint"),
        ("Мастер мне нахамила!", "complaint"),  # no request for a person: a complaint still
        ("I have a complaint, get me a real person", "complaint"),
        ("позовите администратора", "typed"),
        ("can i talk to a human pls", "typed"),
    ],
)
@pytest.mark.parametrize("first", [True, False], ids=["first words", "after the menu"])
async def test_typed_words_hand_off_with_the_reason_they_give(
    words: str, reason: str, first: bool
) -> None:
    """The first words of a conversation too (they once went through the menu's entry and
    were recorded as `asked`)."""
    client = StaffClient(FakeCalendar((cut(),)))
    if not first:
        await client.says("/start")
    await client.says(words)
    assert client.turn is not None
    assert client.turn.handoff is not None
    assert client.turn.handoff.reason == reason
    if reason == "complaint":
        assert client.turn.handoff.note.startswith("😠")


async def test_a_complaint_asking_for_a_person_at_a_data_step_is_a_complaint(
    client: StaffClient,
) -> None:
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.taps("b:m:1")
    day = next(c for c in client.choices() if c.startswith("b:d:"))
    await client.taps(day)
    await client.taps(next(c for c in client.choices() if c.startswith("b:t:")))
    await client.says("Грубова Анна")  # a surname is no complaint at a data step
    assert client.turn is not None
    assert client.turn.handoff is None
    await client.says("позовите администратора, жалоба на мастера")
    assert client.turn is not None
    assert client.turn.handoff is not None
    assert client.turn.handoff.reason == "complaint"


async def test_a_menu_tap_stays_asked(client: StaffClient) -> None:
    await client.taps("m:person")
    assert client.turn is not None
    assert client.turn.handoff is not None
    assert client.turn.handoff.reason == ASKED
