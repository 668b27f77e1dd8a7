"""The front desk's conversation: pure `FrontDesk.handle` turns, real catalogs, fixed times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.conversation import FrontDesk, Turn
from bot.events import Channel, ClientRef, Inbound, Kind
from bot.flows import menu
from bot.i18n import Catalogs
from bot.replies import Reply
from bot.salon import Salon
from bot.session import Session

LOCALES = Path(__file__).resolve().parents[2] / "locales"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
IDLE = timedelta(hours=24)
CLIENT = ClientRef("main", Channel.TELEGRAM, "42", "42")
SALON = Salon(
    "main",
    "Studio Nord",
    "Europe/Moscow",
    address="Tverskaya 1, Moscow",
    phone="+7 495 123-45-67",
    hours="Mon–Sun 10:00–21:00",
)
RAW_KEY = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
MENU_IDS = ["m:book", "m:mine", "m:svc", "m:info", "m:person", "m:lang"]
MENU_EN = [
    "📅 Book",
    "🗂 My bookings",
    "💇 Services & prices",
    "📍 Address & hours",
    "🙋 Talk to a person",
    "🌐 Language",
]
MENU_RU = [
    "📅 Записаться",
    "🗂 Мои записи",
    "💇 Услуги и цены",
    "📍 Адрес и часы работы",
    "🙋 Связаться с администратором",
    "🌐 Язык",
]


def desk(salon: Salon = SALON, default_locale: str = "en") -> FrontDesk:
    return FrontDesk(salon, Catalogs(LOCALES, default_locale=default_locale), IDLE)


def start(name: str = "Anna", language: str | None = "en") -> Inbound:
    return Inbound(CLIENT, Kind.START, "e1", name=name, language=language)


def text(value: str, language: str | None = "en") -> Inbound:
    return Inbound(CLIENT, Kind.TEXT, "e2", text=value, name="Anna", language=language)


def tap(choice: str, language: str | None = "en") -> Inbound:
    return Inbound(CLIENT, Kind.CHOICE, "e3", choice=choice, name="Anna", language=language)


def seen(minutes_ago: float = 1, **fields: object) -> Session:
    """A client who last wrote `minutes_ago` before NOW."""
    return Session(last_seen=NOW - timedelta(minutes=minutes_ago), **fields)


def only(turn: Turn) -> Reply:
    assert len(turn.replies) == 1
    reply = turn.replies[0]
    assert not RAW_KEY.match(reply.text), f"a raw catalog key reached the client: {reply.text}"
    for choice in reply.choices:
        assert not RAW_KEY.match(choice.label), choice.label
    return reply


def labels(reply: Reply) -> list[str]:
    return [choice.label for choice in reply.choices]


# Greeting


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("ru", "Здравствуйте, Ольга! Добро пожаловать в Studio Nord."),
        ("ru-RU", "Здравствуйте, Ольга! Добро пожаловать в Studio Nord."),
        ("en", "Hello, Ольга! Welcome to Studio Nord."),
        ("en-GB", "Hello, Ольга! Welcome to Studio Nord."),
    ],
)
async def test_start_greets_by_name_in_the_apps_language(language: str, expected: str) -> None:
    reply = only(await desk().handle(Session(), start("Ольга", language), NOW))
    assert reply.text.startswith(expected)


@pytest.mark.parametrize("language", ["de", "pt-br", None, ""])
@pytest.mark.parametrize(
    ("default", "expected"), [("en", "Hello, Anna!"), ("ru", "Здравствуйте, Anna!")]
)
async def test_unknown_or_missing_app_language_uses_the_default_locale(
    language: str | None, default: str, expected: str
) -> None:
    reply = only(
        await desk(default_locale=default).handle(Session(), start(language=language), NOW)
    )
    assert reply.text.startswith(expected)


async def test_greeting_without_a_name() -> None:
    reply = only(await desk().handle(Session(), start(name=""), NOW))
    assert reply.text == "Hello! Welcome to Studio Nord. How can I help you today?"


async def test_the_menu_has_six_entries_in_order_in_two_columns() -> None:
    reply = only(await desk().handle(Session(), start(), NOW))
    assert [c.id for c in reply.choices] == MENU_IDS
    assert labels(reply) == MENU_EN
    assert reply.columns == 2
    russian = only(await desk().handle(Session(), start(language="ru"), NOW))
    assert [c.id for c in russian.choices] == MENU_IDS
    assert labels(russian) == MENU_RU


async def test_greeting_records_the_time_and_resets_the_conversation() -> None:
    turn = await desk().handle(seen(60 * 48, misunderstood=1, step="other"), start(), NOW)
    assert turn.session.last_seen == NOW
    assert turn.session.misunderstood == 0
    assert turn.session.step == "menu"


# Menu entries


@pytest.mark.parametrize(
    ("choice", "intro"),
    [
        (menu.BOOK, "To book a visit, call us"),
        (menu.BOOKINGS, "To check, move or cancel a booking"),
        (menu.SERVICES, "We will gladly tell you about our services"),
        (menu.PERSON, "Our staff will gladly help you"),
    ],
)
async def test_entries_not_built_yet_answer_with_the_salons_contacts(
    choice: str, intro: str
) -> None:
    reply = only(await desk().handle(seen(), tap(choice), NOW))
    assert reply.text.startswith(intro)
    assert "+7 495 123-45-67" in reply.text
    assert "Tverskaya 1, Moscow" in reply.text
    assert "Mon–Sun 10:00–21:00" in reply.text
    assert labels(reply) == MENU_EN


async def test_entries_not_built_yet_answer_in_russian_too() -> None:
    reply = only(await desk().handle(seen(), tap(menu.BOOK, "ru"), NOW))
    assert reply.text.startswith("Чтобы записаться, позвоните нам")
    assert "+7 495 123-45-67" in reply.text
    assert labels(reply) == MENU_RU


async def test_address_and_hours() -> None:
    reply = only(await desk().handle(seen(), tap(menu.INFO), NOW))
    assert reply.text.splitlines() == [
        "Studio Nord",
        "",
        "📞 +7 495 123-45-67",
        "📍 Tverskaya 1, Moscow",
        "🕘 Mon–Sun 10:00–21:00",
    ]
    assert labels(reply) == MENU_EN


@pytest.mark.parametrize(("language", "line"), [("en", "Please contact"), ("ru", "свяжитесь")])
async def test_a_salon_without_contacts_says_so(language: str, line: str) -> None:
    bare = Salon("main", "Studio Nord", "UTC")
    reply = only(await desk(bare).handle(seen(), tap(menu.INFO, language), NOW))
    assert line in reply.text
    assert "Studio Nord" in reply.text.split("\n\n", 1)[1]
    assert "📞" not in reply.text
    assert "📍" not in reply.text


async def test_only_the_contacts_the_salon_has_are_shown() -> None:
    phone_only = Salon("main", "Studio Nord", "UTC", phone="+7 495 123-45-67")
    reply = only(await desk(phone_only).handle(seen(), tap(menu.PERSON), NOW))
    assert reply.text.endswith("\n\n📞 +7 495 123-45-67")


async def test_home_shows_the_menu() -> None:
    reply = only(await desk().handle(seen(), tap(menu.HOME), NOW))
    assert reply.text == "How can I help you?"
    assert labels(reply) == MENU_EN


# Language


async def test_language_entry_offers_each_language_in_its_own_name_and_back() -> None:
    reply = only(await desk().handle(seen(), tap(menu.LANGUAGE), NOW))
    assert reply.text == "Choose your language:"
    assert [(c.id, c.label) for c in reply.choices] == [
        ("lang:ru", "Русский"),
        ("lang:en", "English"),
        (menu.HOME, "⬅️ Back"),
    ]


async def test_choosing_russian_is_remembered_over_the_apps_language() -> None:
    front = desk()
    turn = await front.handle(seen(), tap("lang:ru", "en"), NOW)
    assert turn.session.locale == "ru"
    reply = only(turn)
    assert reply.text.startswith("Готово, теперь я говорю по-русски.")
    assert labels(reply) == MENU_RU

    later = await front.handle(turn.session, tap(menu.HOME, "en"), NOW + timedelta(minutes=1))
    assert only(later).text == "Чем могу помочь?"
    assert later.session.locale == "ru"

    # Even a new greeting, after the idle window, keeps the chosen language.
    much_later = await front.handle(later.session, start(language="en"), NOW + timedelta(days=3))
    assert only(much_later).text.startswith("Здравствуйте, Anna!")
    assert much_later.session.locale == "ru"


async def test_switching_back_to_english() -> None:
    turn = await desk().handle(seen(locale="ru"), tap("lang:en", "ru"), NOW)
    assert turn.session.locale == "en"
    assert only(turn).text.startswith("Done, I will speak English")


async def test_a_typed_language_name_switches_too() -> None:
    turn = await desk().handle(seen(), text("  русский "), NOW)
    assert turn.session.locale == "ru"
    assert only(turn).text.startswith("Готово")


async def test_an_unsupported_language_choice_is_stale_and_changes_nothing() -> None:
    turn = await desk().handle(seen(), tap("lang:de"), NOW)
    assert turn.session.locale is None
    assert only(turn).text == "That button is no longer active. Here is the menu:"


# Typed labels, misunderstandings, stale buttons


@pytest.mark.parametrize(
    ("typed", "language"),
    [
        ("📅 Book", "en"),
        ("📅 Записаться", "en"),
        ("📅 book", "ru"),
        ("📅 ЗАПИСАТЬСЯ", "ru"),
        ("  📅 Book\n", "en"),
    ],
)
async def test_a_typed_menu_label_in_either_language_is_understood(
    typed: str, language: str
) -> None:
    reply = only(await desk().handle(seen(), text(typed, language), NOW))
    expected = "To book a visit" if language == "en" else "Чтобы записаться"
    assert reply.text.startswith(expected)


async def test_typed_address_label_answers_with_the_address() -> None:
    reply = only(await desk().handle(seen(), text("📍 адрес и часы работы", "en"), NOW))
    assert reply.text.startswith("Studio Nord\n\n📞 +7 495 123-45-67")


async def test_unexpected_text_twice_offers_a_person_then_starts_counting_again() -> None:
    front = desk()
    first = await front.handle(seen(), text("can I bring my dog?"), NOW)
    reply = only(first)
    assert reply.text.startswith("Sorry, I did not understand that. I can book a visit, show,")
    assert "«manicure tomorrow after 3»" in reply.text
    assert labels(reply) == MENU_EN
    assert first.session.misunderstood == 1

    second = await front.handle(first.session, text("qwerty 🤷"), NOW + timedelta(seconds=30))
    reply = only(second)
    assert reply.text.startswith("I still did not understand, sorry.")
    # The person is offered, not called: the client chooses.
    assert [c.id for c in reply.choices] == ["m:person:mis", "m:home"]
    assert labels(reply) == ["🙋 Talk to a person", "🏠 Menu"]
    assert second.handoff is None
    assert second.session.misunderstood == 0

    third = await front.handle(second.session, text("hmm"), NOW + timedelta(seconds=60))
    assert only(third).text.startswith("Sorry, I did not understand that.")
    assert third.session.misunderstood == 1


async def test_the_offered_person_without_a_help_desk_gives_the_salons_contacts() -> None:
    turn = await desk().handle(seen(), tap("m:person:mis"), NOW)
    assert "+7 495 123-45-67" in only(turn).text
    assert turn.handoff is None


@pytest.mark.parametrize(
    ("typed", "language", "expected"),
    [
        ("привет", "ru", "Здравствуйте"),
        ("hello there", "en", "Hello"),
        ("thanks!", "en", "You are welcome!"),
        ("спасибо 🙏", "ru", "Пожалуйста!"),
        ("👍", "en", "You are welcome!"),
        ("где вы находитесь?", "ru", "Studio Nord"),
        ("what are your prices?", "en", "We will gladly tell you about our services"),
    ],
)
async def test_greetings_thanks_and_questions_are_answered(
    typed: str, language: str, expected: str
) -> None:
    turn = await desk().handle(seen(), text(typed, language), NOW)
    reply = only(turn)
    assert expected in reply.text
    assert turn.session.misunderstood == 0
    assert turn.handoff is None


async def test_a_language_asked_for_in_words_is_set() -> None:
    turn = await desk().handle(seen(), text("можно по-русски?"), NOW)
    assert turn.session.locale == "ru"
    assert only(turn).text.startswith("Готово")


async def test_an_understood_turn_resets_the_misunderstanding_count() -> None:
    front = desk()
    first = await front.handle(seen(), text("???"), NOW)
    understood = await front.handle(first.session, tap(menu.INFO), NOW)
    assert understood.session.misunderstood == 0
    again = await front.handle(understood.session, text("???"), NOW)
    assert only(again).text.startswith("Sorry, I did not understand that.")


async def test_misunderstanding_in_russian() -> None:
    reply = only(await desk().handle(seen(), text("что-то непонятное", "ru"), NOW))
    assert reply.text.startswith("Извините, я не понял. Я могу записать вас")
    assert labels(reply) == MENU_RU


async def test_an_empty_message_from_a_returning_client_is_a_misunderstanding() -> None:
    turn = await desk().handle(seen(), text(""), NOW)
    assert only(turn).text.startswith("Sorry, I did not understand that.")


@pytest.mark.parametrize("stale", ["m:old-promo", "", "svc:haircut:42"])
async def test_a_stale_button_gets_the_menu_again(stale: str) -> None:
    reply = only(await desk().handle(seen(), tap(stale), NOW))
    assert reply.text == "That button is no longer active. Here is the menu:"
    assert labels(reply) == MENU_EN


# Returning clients


async def test_a_new_client_writing_text_is_greeted() -> None:
    turn = await desk().handle(Session(), text("hi"), NOW)
    assert only(turn).text.startswith("Hello, Anna! Welcome to Studio Nord.")
    assert turn.session.last_seen == NOW


async def test_a_returning_client_within_the_idle_window_is_not_greeted_again() -> None:
    within = seen(minutes_ago=IDLE.total_seconds() / 60)  # exactly at the edge still counts
    reply = only(await desk().handle(within, text("hmm"), NOW))
    assert not reply.text.startswith("Hello")
    assert reply.text.startswith("Sorry, I did not understand that.")


async def test_a_client_back_after_the_idle_window_is_greeted_again() -> None:
    after = seen(minutes_ago=IDLE.total_seconds() / 60 + 1)
    reply = only(await desk().handle(after, text("hi"), NOW))
    assert reply.text.startswith("Hello, Anna! Welcome to Studio Nord.")


async def test_a_conversation_never_shows_a_raw_catalog_key() -> None:
    front = desk()
    session = Session()
    steps = [start(), text("???"), text("!!!"), tap(menu.LANGUAGE), tap("lang:ru")]
    steps += [tap(choice) for choice in [*MENU_IDS, menu.HOME, "nope"]]
    steps += [text("📅 Book"), text("English"), tap("lang:en")]
    for number, event in enumerate(steps):
        turn = await front.handle(session, event, NOW + timedelta(seconds=number))
        only(turn)  # checks every text and label
        session = turn.session


@pytest.mark.parametrize(
    "typed", ["Услуги и цены", "  услуги   и цены ", "services & prices", "SERVICES PRICES!"]
)
async def test_menu_entries_are_understood_without_their_emoji(typed: str) -> None:
    turn = await desk().handle(seen(), text(typed), NOW)
    assert turn.session.misunderstood == 0
    assert only(turn).text.startswith("We will gladly tell you about our services")


@pytest.mark.parametrize("typed", ["меню", "Menu", "🏠 Меню"])
async def test_asking_for_the_menu_by_name_shows_it(typed: str) -> None:
    turn = await desk().handle(seen(), text(typed), NOW)
    assert turn.session.misunderstood == 0
    reply = only(turn)
    assert "understand" not in reply.text
    assert [choice.id for choice in reply.choices] == MENU_IDS
