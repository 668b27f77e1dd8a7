"""Booking from what the client types: the steps their words answer are skipped, each step reads
typed text in its own context, and typed words never cancel anything (an in-memory calendar,
free every hour 10:00–17:00 Moscow time on weekdays; now is Monday 1 June 2026, 10:00)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from bot.catalogue import Master, Service
from bot.flows.booking import confirms
from tests.bot.test_booking_flow import ANNA, OLGA, Client, FakeCalendar, cut


def colour() -> Service:
    return Service("colour", "Hair colouring", 120, "6500", "RUB", masters=(ANNA,))


def mens() -> Service:
    return Service("mens", "Men's haircut", 30, "1200", "RUB", masters=(ANNA, OLGA))


async def started(*services: Service) -> tuple[Client, FakeCalendar]:
    calendar = FakeCalendar(services or (cut(), colour()))
    client = Client(calendar)
    await client.says("/start")
    return client, calendar


def times(client: Client) -> list[str]:
    assert client.turn is not None
    return [c.label for r in client.turn.replies for c in r.choices if c.id.startswith("b:t:")]


async def test_a_sentence_with_service_day_and_time_goes_to_the_master_then_the_time() -> None:
    client, _ = await started()
    masters = await client.says("стрижка завтра в 11")
    assert "Who would you like for «Cut»?" in masters[-1]
    answer = await client.taps("b:m:1")
    # Anna, tomorrow at 11:00: straight on to the contact (no day, no time to tap).
    assert answer[-1].startswith("How can the salon reach you?")
    draft = client.session.draft
    assert draft is not None
    assert draft.start == datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
    assert draft.slot_master == 1


async def test_a_named_master_and_after_3_skip_to_the_afternoon_times() -> None:
    client, _ = await started()
    await client.says("can I get a cut with Olga tomorrow after 2pm?")
    assert client.session.step == "book.time"
    assert client.session.draft is not None
    assert client.session.draft.master == OLGA.id
    assert times(client) == ["14:00", "15:00", "16:00"]
    assert "b:ta" in client.choices()
    await client.taps("b:ta")  # all times after all
    assert times(client)[0] == "10:00"


async def test_nothing_free_in_the_wished_window_says_so_and_shows_all() -> None:
    client, _ = await started()
    answer = await client.says("cut with Anna tomorrow after 6 pm")
    assert answer[0] == "Nothing is free from 18:00 that day; here are all the free times."
    assert times(client)[0] == "10:00"


async def test_the_morning_keeps_to_times_before_noon() -> None:
    client, _ = await started()
    await client.says("колорирование? нет, окрашивание в пятницу утром")
    assert times(client) == ["10:00", "11:00"]


async def test_an_ambiguous_service_is_asked_about_with_buttons() -> None:
    client, _ = await started(cut(), mens(), colour())
    answer = await client.says("хочу подстричься")
    assert answer[-1] == "Which one would you like?"
    assert client.choices() == ["b:s:cut", "b:s:mens", "b:sp:0", "b:quit"]
    await client.taps("b:sp:0")
    assert "b:s:colour" in client.choices()


async def test_a_master_alone_offers_the_masters_services() -> None:
    client, _ = await started(cut(), colour())
    await client.says("к Ольге можно?")
    # Olga does only the cut: chosen, and Olga with it; on to her days.
    assert client.session.step == "book.day"
    assert client.session.draft is not None
    assert client.session.draft.service == "cut"
    assert client.session.draft.master == OLGA.id


async def test_a_service_we_do_not_offer_shows_what_we_do() -> None:
    client, _ = await started()
    answer = await client.says("педикюр завтра")
    assert answer[0] == "I could not find that among our services. Here is what we offer:"
    assert client.session.step == "book.service"


async def test_typed_text_at_the_master_day_and_time_steps() -> None:
    client, calendar = await started()
    await client.taps("m:book")
    await client.taps("b:s:cut")
    assert client.session.step == "book.master"
    await client.says("к Ольге, пожалуйста")
    assert client.session.draft is not None
    assert client.session.draft.master == OLGA.id
    assert client.session.step == "book.day"
    await client.says("в пятницу")
    assert client.session.draft.day == date(2026, 6, 5)
    assert client.session.step == "book.time"
    await client.says("15")  # a bare number at the time step is an hour
    assert client.session.draft.start == datetime(2026, 6, 5, 12, 0, tzinfo=UTC)
    assert client.session.step == "book.contact"
    assert calendar.booked == []


async def test_any_master_in_words_and_a_time_before_the_day() -> None:
    client, _ = await started()
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.says("без разницы")
    assert client.session.step == "book.day"
    assert client.session.draft is not None
    assert client.session.draft.master is None
    # A time with no day yet is kept for the day the client taps.
    await client.says("at 3pm")
    assert client.session.step == "book.day"
    await client.taps("b:d:20260603")
    assert client.session.draft.start == datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


async def test_next_week_shows_next_weeks_days_first() -> None:
    client, _ = await started()
    await client.says("colouring next week")
    days = [c for c in client.choices() if c.startswith("b:d:")]
    assert days[0] == "b:d:20260608"


async def test_a_request_of_another_kind_at_a_booking_step_is_answered() -> None:
    client, _ = await started()
    await client.taps("m:book")
    await client.taps("b:s:cut")
    answer = await client.says("сколько стоит?")
    assert "Cut" in answer[-1]
    assert client.session.step == "menu"


async def test_words_at_a_step_that_say_nothing_of_it_reprompt() -> None:
    client, _ = await started()
    await client.taps("m:book")
    await client.taps("b:s:cut")
    await client.taps("b:m:1")
    answer = await client.says("хм")
    assert answer[0] == "Please choose one of the options below."
    assert client.session.step == "book.day"


async def test_thanks_or_a_thumbs_up_at_the_summary_keeps_the_booking_in_view() -> None:
    client, calendar = await started()
    await client.says("cut with Anna tomorrow at 11")
    await client.says("+7 916 123-45-67")
    assert client.session.step == "book.confirm"
    for said in ("👍", "thanks!", "привет"):
        answer = await client.says(said)
        assert answer[0] == "Please choose one of the options below."
        assert answer[-1].startswith("Please check your booking:")
        assert client.session.step == "book.confirm"
    assert not calendar.booked  # nothing is booked without the Confirm button


async def test_a_typed_yes_at_the_summary_books_as_the_confirm_button_does() -> None:
    client, calendar = await started()
    await client.says("стрижка к Анне завтра в 11")
    await client.says("+7 916 123-45-67")
    assert client.session.step == "book.confirm"
    booked = await client.says("Да, всё верно!")
    assert booked[-1].startswith("✅ You are booked!")
    [request] = calendar.booked
    assert request.start == datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
    # Said again, it books nothing twice: the draft is gone, the words are a new request.
    await client.says("yes")
    assert len(calendar.booked) == 1


async def test_a_typed_cancel_leads_to_my_bookings_and_cancels_nothing() -> None:
    client, calendar = await started()
    await client.taps("m:book")
    await client.taps("b:s:colour")
    await client.taps("b:d:20260602")
    await client.taps("b:t:202606020700:1")
    await client.says("+7 916 123-45-67")
    await client.taps(client.confirm())
    answer = await client.says("отмените мою запись")
    assert answer[0] == "To cancel a visit, open it below and tap «Cancel booking»."
    assert "k:v:uid-1" in client.choices()
    assert calendar.cancelled == []
    again = await client.says("I'd like to move it to friday")
    assert "k:v:uid-1" in client.choices()
    assert again[0].startswith("To move a visit")
    assert calendar.cancelled == []


async def test_the_calendar_down_when_a_sentence_names_a_service() -> None:
    client, calendar = await started()
    calendar.down = True
    answer = await client.says("окрашивание завтра")
    assert "b:retry" in client.choices()
    assert answer[-1]
    calendar.down = False
    await client.taps("b:retry")
    assert client.session.step == "book.service"


async def test_a_sentence_for_a_service_with_one_master_needs_no_tap() -> None:
    solo = Service("mani", "Manicure", 60, "1800", "RUB", masters=(Master(7, "Maria"),))
    client, _ = await started(solo)
    answer = await client.says("I'd like to book a manicure for tomorrow at 3pm please")
    assert answer[-1].startswith("How can the salon reach you?")
    summary = await client.says("+7 916 123-45-67")
    assert summary[-1].startswith("Please check your booking:")
    assert "On Tuesday, 2 June, at 15:00" in summary[-1]


async def test_a_conversation_that_opens_with_a_request_gets_it_answered() -> None:
    client = Client(FakeCalendar((cut(), colour())))
    answer = await client.says("хочу на окрашивание в пятницу")
    assert not answer[0].startswith("Hello")
    assert client.session.step == "book.time"
    assert client.session.draft is not None
    assert client.session.draft.day == date(2026, 6, 5)


async def test_with_the_calendar_down_words_are_still_read() -> None:
    client, calendar = await started()
    calendar.down = True
    answer = await client.says("where are you?")
    assert "1 Main St" in answer[-1]


async def test_the_calendar_down_at_a_booking_step_offers_to_try_again() -> None:
    client, calendar = await started()
    await client.taps("m:book")
    await client.taps("b:s:cut")
    calendar.down = True
    await client.says("к Ольге")
    assert "b:retry" in client.choices()
    assert client.session.step == "book.master"
    assert client.session.draft is not None
    assert client.session.draft.service == "cut"  # the choices wait for the calendar


class FlakyCatalogue(FakeCalendar):
    """Answers the catalogue a given number of times, then is down."""

    def __init__(self, services: tuple[Service, ...], answers: int) -> None:
        super().__init__(services)
        self.answers = answers

    async def services(self) -> tuple[Service, ...]:
        self.answers -= 1
        if self.answers < 0:
            self.down = True
        return await super().services()


async def test_the_calendar_going_down_between_reading_and_booking_offers_to_try_again() -> None:
    calendar = FlakyCatalogue((cut(), colour()), answers=2)
    client = Client(calendar)
    await client.says("/start")
    await client.taps("m:book")  # the catalogue's first answer
    await client.says("окрашивание")  # read with the second; the flow finds it down
    assert "b:retry" in client.choices()
    assert client.session.step == "book.service"


async def test_the_services_a_word_names_are_offered_in_the_clients_language() -> None:
    women = cut(titles=(("ru", "Женская стрижка"),), price="2500", currency="RUB")
    men = replace(mens(), titles=(("ru", "Мужская стрижка"),))
    client, _ = await started(women, men)
    client.session = client.session.model_copy(update={"locale": "ru"})
    await client.says("стрижка")
    assert client.turn is not None
    labels = [c.label for r in client.turn.replies for c in r.choices if c.id.startswith("b:s:")]
    assert [label.split(" · ")[0] for label in labels] == ["Женская стрижка", "Мужская стрижка"]


@pytest.mark.parametrize(
    ("said", "books"),
    [
        ("yes thats right 👍", True),
        ("Yes, that's right", True),
        ("yep looks good", True),
        ("ok book it pls", True),
        ("да всё верно, записывайте", True),
        ("Да! Всё правильно 🙂", True),
        ("ага, подходит", True),
        ("not right", False),
        ("no, the time is wrong", False),
        ("yes but at 12", False),
        ("да, но не в 11", False),
        ("нет", False),
        ("ok", False),
        ("thanks 👍", False),
    ],
)
def test_a_yes_in_words_is_read_whatever_its_order_emoji_or_fillers(said: str, books: bool) -> None:
    assert confirms(said) is books
