"""Routing rules for handoffs (CHATWOOT_ROUTING), through the real gateway and the Telegram,
WhatsApp, Cal.com and Chatwoot stand-ins: each condition alone, their combination, and the
handoff outside working hours (SALON_WORKING_HOURS)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gateway.sandbox.whatsapp import WhatsAppSandbox
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.test_flow_booking import Chat, Salon, master_id
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_handoff import Desk, start_desk, texts
from tests.test_flow_handoff import desk as desk  # the fixture, shared
from tests.test_flow_whatsapp import Phone, text_of
from tests.test_flow_whatsapp import wa as wa  # the fixture, shared

JSON = dict[str, Any]


def rules(*given: JSON) -> str:
    """The rules as the environment gives them: JSON text."""
    return json.dumps(list(given))


def staffed(desk: Desk, *teams: int) -> None:
    """Teams and labels the salon has made in Chatwoot (agent 3 is in every team)."""
    for team in teams:
        desk.chatwoot.teams[team] = {3}
    desk.chatwoot.account_labels |= {"complaint", "vip"}


async def hand_over(chat: Chat, data: str = "m:person", typed: str = "") -> str:
    """Tap the button (or type the words) that calls a person: what the client is told."""
    before = len(chat.messages)
    if typed:
        await chat.tg.client_says(chat.chat_id, typed, language_code=chat.language)
    else:
        message = next(
            m
            for m in reversed(chat.messages)
            for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
            for button in row
            if button["callback_data"] == data
        )
        await chat.tg.client_taps(chat.chat_id, message["message_id"], data)
    told = await eventually(
        lambda: [m for m in chat.messages[before:] if m.get("text", "").startswith("🙋")]
    )
    return str(told[-1]["text"])


async def opened(desk: Desk, key: str) -> Any:
    thread = await eventually(lambda: desk.chatwoot.conversation_for(key))
    await eventually(lambda: thread.status == "open" and "handoff" in thread.labels)
    await desk.chatwoot.settle()
    return thread


async def test_a_russian_complaint_on_whatsapp_goes_to_its_team_with_labels_and_priority(
    start_gateway: GatewayFactory, salon: Salon, desk: Desk, wa: WhatsAppSandbox
) -> None:
    staffed(desk, 5, 6)
    routing = rules(
        {
            "name": "complaints-ru-wa",
            "reason": "complaint",
            "language": "ru",
            "channel": "whatsapp",
            "team_id": 5,
            "labels": ["complaint"],
            "priority": "urgent",
        },
        {"name": "other complaints", "reason": ["complaint"], "team_id": 6, "labels": ["vip"]},
    )
    await start_desk(start_gateway, salon, desk, wa, chatwoot_routing=routing)
    maria = Phone(wa)
    await maria.say("Здравствуйте")
    # Typed with a typo: a complaint all the same; a person takes it at once.
    told = await maria.say(
        "Хочу оставить жлобу, мастер мне нахамила",
        until=lambda sent: "Я передал" in text_of(sent),
    )
    assert text_of(told[-1]).startswith("🙋 Я передал ваш разговор администраторам салона.")
    thread = await opened(desk, f"wa:{maria.key}")
    assert thread.team_id == 5
    assert thread.labels == ["handoff", "complaint"]
    await eventually(lambda: thread.priority == "urgent")  # set after the labels
    assert desk.chatwoot.priorities == [(thread.id, "urgent")]
    [note] = desk.notes(f"wa:{maria.key}")
    assert note.startswith("😠 The client is complaining.")
    assert "Хочу оставить жлобу" in note

    # The same complaint in English is no longer the first rule's: the next one takes it.
    john = Phone(wa, number="447700900123", name="John")
    await john.say("Hello")
    await john.say(
        "I want to complain, the colour is terrible", until=lambda s: "passed" in text_of(s)
    )
    other = await opened(desk, f"wa:{john.key}")
    assert other.team_id == 6
    assert other.labels == ["handoff", "vip"]
    assert other.priority is None
    assert wa.errors == []
    assert desk.chatwoot.errors == []


async def test_an_out_of_hours_handoff_tells_the_client_when_staff_will_answer(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    staffed(desk, 7)
    night = {"name": "night", "hours": "out", "team_id": 7, "priority": "low"}
    await start_desk(
        start_gateway,
        salon,
        desk,
        chatwoot_routing=rules(night),
        salon_working_hours="Mon-Fri 10:00-20:00; Sat 10:00-16:00",
    )
    # Monday 21:30 in Moscow: staff are back on Tuesday at 10:00.
    salon.clock.now = datetime(2026, 6, 1, 18, 30, tzinfo=UTC)
    chat = Chat(sandbox.telegram, 731, language="ru")
    await chat.say("/start")
    told = await hand_over(chat)
    assert told == (
        "🙋 Я передал ваш разговор администраторам салона. Вам ответит человек — прямо здесь, "
        "в этом чате.\nСейчас сотрудники не на месте: они ответят вам здесь во вторник, "
        "2 июня, в 10:00."
    )
    thread = await opened(desk, "tg:731")
    await eventually(lambda: "reply_after" in thread.custom_attributes)
    # Marked for the morning: the label, and when, beside the attributes it had.
    assert thread.labels == ["handoff", "after-hours"]
    assert thread.custom_attributes == {
        "channel": "telegram",
        "chat_id": "731",
        "reply_after": "2026-06-02T07:00:00+00:00",
    }
    assert (thread.team_id, thread.priority) == (7, "low")

    # In English, on Saturday evening: Monday, in the salon's time.
    salon.clock.now = datetime(2026, 6, 6, 14, 0, tzinfo=UTC)  # 17:00 in Moscow
    english = Chat(sandbox.telegram, 732)
    await english.say("/start")
    told = await hand_over(english)
    assert told.endswith(
        "Our staff are away right now: they will answer you here on Monday, 8 June, at 10:00."
    )

    # In working hours: no promise of a time, no mark, the default route.
    salon.clock.now = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)  # Tuesday 11:00 in Moscow
    day = Chat(sandbox.telegram, 733, language="ru")
    await day.say("/start")
    told = await hand_over(day)
    assert "Сейчас сотрудники не на месте" not in told
    calm = await opened(desk, "tg:733")
    assert calm.labels == ["handoff"]
    assert "reply_after" not in calm.custom_attributes
    assert (calm.team_id, calm.priority) == (2, None)
    assert desk.chatwoot.errors == []


async def test_each_condition_routes_a_handoff_on_its_own(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    wa: WhatsAppSandbox,
) -> None:
    """One rule per condition, first match wins; a handoff none takes goes the default way."""
    staffed(desk, 11, 12, 13, 14)
    anna = master_id(salon, "Anna")
    routing = rules(
        {"name": "misunderstood", "reason": "misunderstood", "team_id": 11},
        {"name": "booking", "reason": "booking", "team_id": 12, "priority": "high"},
        {"name": "anna's", "master": anna, "assignee_id": 3, "labels": ["vip"]},
        {"name": "english", "language": "en", "team_id": 13},
        {"name": "whatsapp", "channel": "whatsapp", "team_id": 14},
    )
    await start_desk(start_gateway, salon, desk, wa, chatwoot_routing=routing)

    # Misunderstood twice, then the offered person is chosen.
    puzzled = Chat(sandbox.telegram, 741, language="ru")
    await puzzled.say("/start")
    await puzzled.say("ыыы")
    await puzzled.say("👀")
    await hand_over(puzzled, "m:person:mis")
    assert (await opened(desk, "tg:741")).team_id == 11

    # Booking is impossible (the calendar fails): the person offered there.
    stuck = Chat(sandbox.telegram, 742, language="ru")
    await stuck.say("/start")
    await stuck.tap("m:book")
    await stuck.tap("b:s:hair-colouring")
    salon.calendar.fail_next("getSlots", status=500, times=3)
    await stuck.tap("b:d:20260602")
    await hand_over(stuck, "m:person:cal")
    thread = await opened(desk, "tg:742")
    await eventually(lambda: thread.priority == "high")
    assert thread.team_id == 12

    # Asked in words while booking with Anna: her rule, her agent, the team left as default.
    booking = Chat(sandbox.telegram, 743, language="ru")
    await booking.say("/start")
    await booking.tap("m:book")
    await booking.tap("b:s:womens-haircut")
    await booking.tap(f"b:m:{anna}")
    await hand_over(booking, typed="позовите администратора")
    thread = await opened(desk, "tg:743")
    assert (thread.assignee_id, thread.team_id) == (3, 2)
    assert thread.labels == ["handoff", "vip"]

    # An English client taps "Talk to a person": the language rule.
    english = Chat(sandbox.telegram, 744)
    await english.say("/start")
    await hand_over(english)
    assert (await opened(desk, "tg:744")).team_id == 13

    # A Russian client on WhatsApp: the channel rule.
    phone = Phone(wa)
    await phone.say("Здравствуйте")
    await phone.tap("m:person", until=lambda sent: "Я передал" in text_of(sent))
    assert (await opened(desk, f"wa:{phone.key}")).team_id == 14

    # A Russian client on Telegram asking for a person: no rule, the default team.
    plain = Chat(sandbox.telegram, 745, language="ru")
    await plain.say("/start")
    told = await hand_over(plain)
    assert told.startswith("🙋 Я передал")
    thread = await opened(desk, "tg:745")
    assert (thread.team_id, thread.assignee_id, thread.priority) == (2, None, None)
    assert sum("Я передал" in text for text in texts(plain)) == 1
    assert desk.chatwoot.errors == []


async def test_typed_complaint_words_win_over_a_request_for_a_person(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    """Issue 21: "позовите… администратора, у меня жалоба" as a Telegram client's first words
    was handed off as the menu's "Talk to a person" (`asked`): the complaint rule never
    applied and the note said the client used the menu. Typed complaint words route as a
    complaint wherever they stand; a plain typed request is `typed`; only a tap is `asked`."""
    staffed(desk, 5, 6)
    routing = rules(
        {"name": "complaints", "reason": "complaint", "team_id": 5, "labels": ["complaint"],
         "priority": "urgent"},
        {"name": "asked", "reason": "person", "team_id": 6},
    )  # fmt: skip
    await start_desk(start_gateway, salon, desk, chatwoot_routing=routing)
    typed = {
        # The demo's words, as the first message of a conversation.
        801: ("ru", "позовите… администратора, у меня жалоба"),
        # The complaint first, no punctuation, a typo in "позовите".
        802: ("ru", "у меня жалоба позавите админа"),
        # English, a typo in "complain", an emoji, no punctuation.
        803: ("en", "get me the manager i want to complian 😡"),
    }
    for chat_id, (language, words) in typed.items():
        chat = Chat(sandbox.telegram, chat_id, language=language)
        await hand_over(chat, typed=words)
        thread = await opened(desk, f"tg:{chat_id}")
        await eventually(lambda thread=thread: thread.priority == "urgent")
        assert (thread.team_id, thread.labels) == (5, ["handoff", "complaint"]), words
        [note] = desk.notes(f"tg:{chat_id}")
        assert note.startswith("😠"), note
        assert words in note  # what they said, for staff to read first

    # Asked for a person in words, after the menu: `typed`, the person rule, no priority.
    plain = Chat(sandbox.telegram, 804, language="ru")
    await plain.say("/start")
    await hand_over(plain, typed="можно живого человека")
    thread = await opened(desk, "tg:804")
    assert (thread.team_id, thread.labels, thread.priority) == (6, ["handoff"], None)
    [note] = desk.notes("tg:804")
    assert note.startswith("🙋 The client asked for a person in their own words.")
    assert "можно живого человека" in note

    # The menu's "Talk to a person": `asked`, the same rule, the menu named in the note.
    tap = Chat(sandbox.telegram, 805, language="ru")
    await tap.say("/start")
    await hand_over(tap)
    thread = await opened(desk, "tg:805")
    assert (thread.team_id, thread.labels) == (6, ["handoff"])
    [note] = desk.notes("tg:805")
    assert note.startswith("🙋 The client asked for a person (menu).")
    assert desk.chatwoot.errors == []
