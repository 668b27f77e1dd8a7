"""Booking in Telegram through the real gateway, against the Telegram and Cal.com sandboxes.

The Cal.com sandbox checks every request against the vendor's spec when it is present (it
answers 400 to what the real service would refuse), so these flows also show that what the
gateway sends is what Cal.com accepts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientSession, web

from gateway.integrations.calcom.api import CalcomClient
from gateway.integrations.calcom.bookings import BookingLinks
from gateway.pipeline.resilience import CircuitBreaker
from gateway.sandbox.calcom import CalcomSandbox
from gateway.sandbox.telegram import TelegramSandbox
from handlers import calcom as calcom_handler
from tests.conftest import CONTRACTS, GatewayFactory, Sandbox, eventually
from tests.support.clock import Clock

KEY = "cal_test_key"
MOSCOW = ZoneInfo("Europe/Moscow")
JSON = dict[str, Any]


@dataclass
class Salon:
    calendar: CalcomSandbox
    runner: web.AppRunner
    url: str
    clock: Clock
    team_id: int | None = None

    def bookings(self, status: str | None = "accepted") -> list[JSON]:
        found = self.calendar.bookings_json()
        return [b for b in found if status is None or b["status"] == status]

    def made_in_chat(self, status: str | None = "accepted") -> list[JSON]:
        return [b for b in self.bookings(status) if "frontdesk_key" in b.get("metadata", {})]


async def _serve(calendar: CalcomSandbox, clock: Clock, team_id: int | None) -> Salon:
    runner = await calendar.serve("127.0.0.1", 0)
    port = runner.addresses[0][1]
    return Salon(calendar, runner, f"http://127.0.0.1:{port}", clock, team_id)


@pytest.fixture
async def salon() -> AsyncIterator[Salon]:
    # Monday 1 June 2026, 10:00 in Moscow.
    clock = Clock(datetime(2026, 6, 1, 7, 0, tzinfo=UTC))
    spec = CONTRACTS / "calcom-v2.openapi.json"
    calendar = CalcomSandbox(KEY, spec if spec.exists() else None, clock=clock)
    team_id = calendar.seed_demo_salon(zone="Europe/Moscow")
    salon = await _serve(calendar, clock, team_id)
    yield salon
    await salon.runner.cleanup()
    await calendar.close()


class Chat:
    """One client in the Telegram sandbox; each action waits for the bot's answer to it."""

    def __init__(self, tg: TelegramSandbox, chat_id: int, language: str = "en") -> None:
        self.tg = tg
        self.chat_id = chat_id
        self.language = language

    @property
    def messages(self) -> list[JSON]:
        return self.tg.messages_for(self.chat_id)

    async def _answer(self, before: int) -> list[JSON]:
        def done() -> list[JSON] | None:
            new = self.messages[before:]
            if not new:
                return None
            markup = new[-1].get("reply_markup") or {}
            asks = self.tg.reply_keyboard(self.chat_id) is not None and "text" in new[-1]
            return new if ("inline_keyboard" in markup or asks) else None

        answer: list[JSON] = await eventually(done, timeout=10)
        return answer

    async def say(self, text: str) -> list[JSON]:
        before = len(self.messages)
        await self.tg.client_says(self.chat_id, text, language_code=self.language)
        return await self._answer(before)

    async def share_phone(self, phone: str) -> list[JSON]:
        before = len(self.messages)
        await self.tg.client_shares_contact(self.chat_id, phone)
        return await self._answer(before)

    def buttons(self) -> list[tuple[str, str]]:
        """(callback data, label) of the last message with inline buttons."""
        for message in reversed(self.messages):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard")
            if rows:
                return [(b["callback_data"], b["text"]) for row in rows for b in row]
        return []

    async def tap(self, data: str, *, prefix: bool = False, index: int = 0) -> list[JSON]:
        """Tap the button with this callback data (or the index-th one starting with it)."""
        for message in reversed(self.messages):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard")
            if not rows:
                continue
            found = [
                b["callback_data"]
                for row in rows
                for b in row
                if b["callback_data"] == data or (prefix and b["callback_data"].startswith(data))
            ]
            if found:
                before = len(self.messages)
                await self.tg.client_taps(self.chat_id, message["message_id"], found[index])
                return await self._answer(before)
        raise AssertionError(f"no button {data!r} in {self.buttons()}")


async def start(
    start_gateway: GatewayFactory, salon: Salon, zone: str = "Europe/Moscow", **settings: Any
) -> Any:
    settings = {"salon_currency": "RUB", **settings}
    return await start_gateway(
        clock=salon.clock,
        calcom_api_url=salon.url,
        calcom_api_key=KEY,
        calcom_team_id=salon.team_id,
        salon_timezone=zone,
        salon_address="1 Example Street",
        **settings,
    )


def master_id(salon: Salon, name: str) -> int:
    return next(u.id for u in salon.calendar._users.values() if u.name.startswith(name))


async def book_until_summary(chat: Chat, service: str, master: str) -> list[JSON]:
    await chat.say("/start")
    await chat.tap("m:book")
    await chat.tap(f"b:s:{service}")
    if master:
        await chat.tap(f"b:m:{master}")
    await chat.tap("b:d:", prefix=True)
    answer = await chat.tap("b:t:", prefix=True)
    return answer


async def test_a_client_books_in_the_chat(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await start(start_gateway, salon)
    chat = Chat(sandbox.telegram, 501)
    anna = master_id(salon, "Anna")

    greeting = await chat.say("/start")
    assert "Welcome" in greeting[-1]["text"]
    services = await chat.tap("m:book")
    assert services[-1]["text"].startswith("Which service would you like?")
    assert "Women's haircut · RUB\u00a02,500" in services[-1]["text"]

    masters = await chat.tap("b:s:womens-haircut")
    labels = [label for _, label in chat.buttons()]
    assert "Anna Petrova" in labels
    assert "Olga Smirnova" in labels
    assert "👥 Any master" in labels
    assert "Women's haircut" in masters[-1]["text"]

    days = await chat.tap(f"b:m:{anna}")
    day_buttons = [data for data, _ in chat.buttons() if data.startswith("b:d:")]
    # Anna works Monday to Friday: two working weeks minus today's passed hours.
    assert len(day_buttons) == 10
    assert all(date(int(d[4:8]), int(d[8:10]), int(d[10:12])).weekday() < 5 for d in day_buttons)
    assert "Choose a day" in days[-1]["text"]

    times = await chat.tap("b:d:20260602")
    assert "Tue, 2 June" in times[-1]["text"]
    # 10:00 in Moscow is 07:00 UTC; 12:00 has a seeded booking of Anna's, 14:00 is her lunch.
    times_shown = [label for _, label in chat.buttons()]
    assert (f"b:t:202606020700:{anna}", "10:00") in chat.buttons()
    assert "11:00" in times_shown
    assert "12:00" not in times_shown
    assert "14:00" not in times_shown

    contact_prompt = await chat.tap(f"b:t:202606020700:{anna}")
    assert contact_prompt[-1]["text"].startswith("How can the salon reach you?")
    keyboard = sandbox.telegram.reply_keyboard(501)["keyboard"]
    assert keyboard[0][0] == {"text": "📱 Share my phone", "request_contact": True}

    summary = await chat.share_phone("79161234567")
    assert summary[0]["text"] == "Thank you! I will use +7 916 123-45-67."
    assert sandbox.telegram.reply_keyboard(501) is None
    text = summary[-1]["text"]
    assert text.startswith("Please check your booking:")
    for line in (
        "💇 Women's haircut",
        "👤 Anna Petrova",
        "🗓 On Tuesday, 2 June, at 10:00",
        "⏱ 60 min",
        "💳 RUB\u00a02,500",
        "📍 1 Example Street",
        "🙂 Anna",
        "📱 +7 916 123-45-67",
    ):
        assert line in text

    done = await chat.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")
    assert "🗓 On Tuesday, 2 June, at 10:00" in done[-1]["text"]
    [booking] = salon.made_in_chat()
    assert booking["start"] == "2026-06-02T07:00:00.000Z"
    assert [h["name"] for h in booking["hosts"]] == ["Anna Petrova"]
    attendee = booking["attendees"][0]
    assert attendee["name"] == "Anna"
    assert attendee["phoneNumber"] == "+79161234567"
    assert attendee["timeZone"] == "Europe/Moscow"
    assert attendee["language"] == "en"
    metadata = booking["metadata"]
    assert metadata["frontdesk_channel"] == "telegram"
    assert metadata["frontdesk_chat"] == "501"
    assert metadata["frontdesk_client"] == "501"

    # Add to calendar: an .ics upload with the visit in UTC.
    await chat.tap("b:ics:", prefix=True)
    upload = await eventually(
        lambda: [c for c in sandbox.telegram.sent if c.method == "sendDocument"]
    )
    document = upload[0].params["document"]
    assert document.content_type == "text/calendar"
    assert b"DTSTART:20260602T070000Z" in document.data
    assert b"SUMMARY:Women's haircut" in document.data

    # A second tap on the old Confirm button books nothing more.
    before = len(chat.messages)
    confirm_message = summary[-1]
    confirm = next(
        b["callback_data"]
        for row in confirm_message["reply_markup"]["inline_keyboard"]
        for b in row
        if b["callback_data"].startswith("b:ok:")
    )
    await sandbox.telegram.client_taps(501, confirm_message["message_id"], confirm)
    again = await chat._answer(before)
    assert again[-1]["text"].startswith("This booking stands: «Women's haircut»")
    assert len(salon.made_in_chat()) == 1
    assert not sandbox.telegram.errors


CAL_SECRET = "cal-flow-secret"


async def salon_api(salon: Salon, method: str, path: str, body: JSON) -> JSON:
    """Cal.com's API as the salon's staff use it, not through Frontdesk."""
    headers = {"Authorization": f"Bearer {KEY}", "cal-api-version": "2024-08-13"}
    async with (
        ClientSession() as http,
        http.request(method, f"{salon.url}/v2{path}", json=body, headers=headers) as answer,
    ):
        found = await answer.json()
        assert answer.status in (200, 201), found
        data: JSON = found["data"]
        return data


async def test_the_salon_cancels_in_cal_com_and_the_right_client_hears_it(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    """handleCancelBooking's webhook carries no booking metadata and no attendee phone: the
    client is found from the gateway's own record of the booking, or else by email."""
    gateway = await start(start_gateway, salon, calcom_webhook_secret=CAL_SECRET)
    # Cal.com's webhook, registered as `frontdesk webhooks set` does.
    async with CalcomClient(salon.url, KEY, breaker=CircuitBreaker("calcom")) as calcom:
        triggers = sorted(calcom_handler.TRIGGERS)
        await calcom.ensure_webhook(f"{gateway.url}/webhooks/calcom", triggers, CAL_SECRET)
    links = BookingLinks(gateway.runtime.redis, gateway.runtime.keys)

    # Booked in the chat; Cal.com's BOOKING_CREATED (with the chat in its metadata) is handled.
    chat = Chat(sandbox.telegram, 511)
    anna = master_id(salon, "Anna")
    await book_until_summary(chat, "womens-haircut", str(anna))
    await chat.share_phone("+79165550511")
    await chat.tap("b:ok:", prefix=True)
    [booked] = salon.made_in_chat()
    await salon.calendar.flush_webhooks()
    await eventually(lambda: _status(links, booked["uid"], "BOOKING_CREATED"))

    # Only the booking's record leads to her now: her contact details are forgotten.
    redis = gateway.runtime.redis
    async for key in redis.scan_iter(match=f"{gateway.runtime.keys.prefix}:client:*"):
        await redis.delete(key)
    before = len(chat.messages)
    uid = booked["uid"]
    await salon_api(salon, "POST", f"/bookings/{uid}/cancel", {"cancellationReason": "Ill"})
    told = await eventually(lambda: chat.messages[before:])
    assert told[-1]["text"].startswith("❌ The salon cancelled your visit «Women's haircut»")
    await salon.calendar.flush_webhooks()
    sent = salon.calendar.webhooks_sent[-1]
    assert (sent.trigger, sent.status) == ("BOOKING_CANCELLED", 200)
    assert "metadata" not in sent.envelope["payload"]
    assert "phoneNumber" not in sent.envelope["payload"]["attendees"][0]

    # A client the gateway knows only by email; the salon books her by hand while no webhook
    # reaches the gateway, then cancels once it does: found by the email alone.
    await links.link("tg:512", phone=None, email="vera@example.com")
    hooks = salon.calendar._webhooks
    saved = dict(hooks)
    hooks.clear()
    attendee = {"name": "Vera", "email": "vera@example.com", "timeZone": "Europe/Moscow"}
    event_type = next(et.id for et in salon.calendar._event_types.values() if et.host_ids == [anna])
    body = {"start": "2026-06-04T08:00:00Z", "eventTypeId": event_type, "attendee": attendee}
    made = await salon_api(salon, "POST", "/bookings", body)
    hooks.update(saved)
    vera = Chat(sandbox.telegram, 512)
    await salon_api(salon, "POST", f"/bookings/{made['uid']}/cancel", {"cancellationReason": "x"})
    told = await eventually(lambda: vera.messages)
    assert told[-1]["text"].startswith("❌ The salon cancelled your visit")
    assert not any("cancelled" in (m.get("text") or "") for m in chat.messages[before + 1 :])

    # Her old Confirm, tapped now, tells the truth: the visit was cancelled.
    stale = await chat.tap("b:ok:", prefix=True)
    assert stale[-1]["text"].startswith("This visit, «Women's haircut» on ")
    assert stale[-1]["text"].endswith(", was cancelled.")
    assert len(salon.made_in_chat(status=None)) == 1  # and nothing was booked again


async def _status(links: BookingLinks, uid: str, trigger: str) -> bool:
    return (await links.record(uid)).get("status") == trigger


async def test_any_master_books_one_who_is_free(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await start(start_gateway, salon)
    olga, maria = master_id(salon, "Olga"), master_id(salon, "Maria")
    # Brow shaping: Olga or Maria. Olga is off on Thursday 4 June, so "any master" that day
    # can only mean Maria.
    salon.calendar.add_override(olga, date(2026, 6, 4), [])
    chat = Chat(sandbox.telegram, 502)
    await chat.say("/start")
    await chat.tap("m:book")
    await chat.tap("b:s:brow-shaping")
    await chat.tap("b:m:any")
    times = await chat.tap("b:d:20260604")
    assert "any free master" in times[-1]["text"]
    slot = next(data for data, label in chat.buttons() if label == "11:00")
    assert slot == f"b:t:202606040800:{maria}"
    await chat.tap(slot)
    await chat.say("maria.client@example.com")
    summary = chat.messages[-1]["text"]
    assert "👤 Maria Ivanova" in summary
    assert "✉️ maria.client@example.com" in summary  # an email, shown as one
    assert "📱" not in summary
    await chat.tap("b:ok:", prefix=True)
    [booking] = salon.made_in_chat()
    assert [h["id"] for h in booking["hosts"]] == [maria]
    assert booking["attendees"][0]["email"] == "maria.client@example.com"


async def test_two_clients_race_for_one_slot(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await start(start_gateway, salon)
    first, second = Chat(sandbox.telegram, 503), Chat(sandbox.telegram, 504)
    for chat in (first, second):
        await chat.say("/start")
        await chat.tap("m:book")
        await chat.tap("b:s:manicure")  # Maria alone: no master to choose
        await chat.tap("b:d:20260603")
        await chat.tap("b:t:202606030700", prefix=True)
        await chat.share_phone(f"+7916000{chat.chat_id}")
    await first.tap("b:ok:", prefix=True)
    assert first.messages[-1]["text"].startswith("✅ You are booked!")

    answer = await second.tap("b:ok:", prefix=True)
    texts = [m["text"] for m in answer]
    assert any("10:00 was just taken" in text for text in texts)
    assert "Choose a time" in texts[-1]
    assert not any(label == "10:00" for _, label in second.buttons())
    taken = [b for b in salon.made_in_chat() if b["start"] == "2026-06-03T07:00:00.000Z"]
    assert len(taken) == 1
    assert taken[0]["metadata"]["frontdesk_chat"] == "503"
    # The second client goes on with a fresh time: their contact is still known.
    await second.tap("b:t:202606030900", prefix=True)
    done = await second.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")
    assert len(salon.made_in_chat()) == 2


async def test_reschedule_and_cancel_from_my_bookings(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await start(start_gateway, salon)
    chat = Chat(sandbox.telegram, 505, language="ru")
    await book_until_summary(chat, "hair-colouring", "")
    await chat.share_phone("+79165550505")
    await chat.tap("b:ok:", prefix=True)
    [booked] = salon.made_in_chat()

    mine = await chat.tap("m:mine")
    assert mine[-1]["text"].startswith("Ваши ближайшие записи:")
    assert "Окрашивание волос" in mine[-1]["text"]
    detail = await chat.tap(f"k:v:{booked['uid']}")
    assert "💇 Окрашивание волос" in detail[-1]["text"]

    days = await chat.tap(f"k:r:{booked['uid']}")
    assert "Перенос записи «Окрашивание волос»" in days[-1]["text"]
    await chat.tap("b:d:20260605")
    summary = await chat.tap("b:t:202606051200", prefix=True)  # 15:00, after lunch
    assert summary[-1]["text"].startswith("Перенести запись на это время?")
    assert "🗓 В пятницу, 5 июня, в 15:00" in summary[-1]["text"]
    moved = await chat.tap("b:ok:", prefix=True)
    assert moved[-1]["text"].startswith("✅ Готово, запись перенесена:")
    [new] = salon.made_in_chat()
    assert new["start"] == "2026-06-05T12:00:00.000Z"
    assert new["uid"] != booked["uid"]
    old = next(b for b in salon.bookings(None) if b["uid"] == booked["uid"])
    assert old["status"] == "cancelled"

    # My bookings follows the new booking; cancelling asks first, then takes a typed reason.
    await chat.tap("m:mine")
    await chat.tap(f"k:v:{new['uid']}")
    prompt = await chat.tap(f"k:c:{new['uid']}")
    assert prompt[-1]["text"].startswith("Отменить «Окрашивание волос» в пятницу, 5 июня, в 15:00?")
    await chat.tap(f"k:cx:{new['uid']}")
    done = await chat.say("Заболела")
    assert done[-1]["text"].startswith(
        "Запись «Окрашивание волос» в пятницу, 5 июня, в 15:00 отменена."
    )
    cancelled = next(b for b in salon.bookings(None) if b["uid"] == new["uid"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellationReason"] == "Заболела"
    empty = await chat.tap("m:mine")
    assert empty[-1]["text"] == "У вас нет предстоящих записей."


async def test_cal_com_down_keeps_the_choices_and_resumes(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    gateway = await start(
        start_gateway,
        salon,
        breaker_failures=2,
        breaker_reset_seconds=0.3,
        service_timeout_seconds=0.5,
    )
    chat = Chat(sandbox.telegram, 506)
    await chat.say("/start")
    await chat.tap("m:book")
    await chat.tap("b:s:hair-colouring")
    # Cal.com answers 500s, then hangs past the timeout: the client is told, nothing is lost.
    salon.calendar.fail_next("getSlots", status=500, times=3)
    down = await chat.tap("b:d:20260602")
    assert down[-1]["text"].startswith("I cannot reach the salon's calendar right now.")
    assert ("b:retry", "🔄 Try again") in chat.buttons()
    assert ("m:person:cal", "🙋 Talk to a person") in chat.buttons()
    salon.calendar.delay = 2.0
    again = await chat.tap("b:retry")
    assert again[-1]["text"].startswith("I cannot reach the salon's calendar right now.")
    readiness = await eventually(lambda: gateway_ready(gateway))
    assert readiness["services"]["calcom"] == "open"

    # Cal.com is back: after the breaker's pause the same step works, with the same choices.
    salon.calendar.delay = 0.0
    await asyncio.sleep(0.35)
    times = await chat.tap("b:retry")
    assert "Hair colouring" in times[-1]["text"]
    assert "Tue, 2 June" in times[-1]["text"]
    await chat.tap("b:t:202606020700", prefix=True)
    await chat.share_phone("+79165550506")
    done = await chat.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")


async def gateway_ready(gateway: Any) -> JSON | None:
    async with gateway.http.get(f"{gateway.url}/readyz") as response:
        body: JSON = await response.json()
    return body if body.get("services", {}).get("calcom") == "open" else None


async def test_a_slot_after_the_clocks_change_is_booked_at_the_right_instant(
    start_gateway: GatewayFactory, sandbox: Sandbox
) -> None:
    # Berlin leaves summer time on Sunday 25 October 2026 (03:00 CEST -> 02:00 CET).
    clock = Clock(datetime(2026, 10, 23, 8, 0, tzinfo=UTC))
    calendar = CalcomSandbox(KEY, clock=clock)
    every_day = {day: [("09:00", "17:00")] for day in range(7)}
    lena = calendar.add_master("Lena Braun", "lena@salon.example", "Europe/Berlin", every_day)
    team = calendar.add_team("Salon Berlin", "salon-berlin")
    calendar.add_team_event_type("cut", "Cut", 60, host_ids=[lena], team_id=team, price=40)
    salon = await _serve(calendar, clock, team)
    try:
        await start(start_gateway, salon, zone="Europe/Berlin", salon_currency="EUR")
        chat = Chat(sandbox.telegram, 507)
        await chat.say("/start")
        await chat.tap("m:book")
        await chat.tap("b:s:cut")
        before = await chat.tap("b:d:20261024")
        assert ("b:t:202610240700" + f":{lena}", "09:00") in chat.buttons()  # CEST, UTC+2
        assert "Sat, 24 October" in before[-1]["text"]
        await chat.tap("m:book")  # back to the booking where it was
        after = await chat.tap("b:d:20261026")
        assert ("b:t:202610260800" + f":{lena}", "09:00") in chat.buttons()  # CET, UTC+1
        assert "Mon, 26 October" in after[-1]["text"]
        await chat.tap(f"b:t:202610260800:{lena}")
        await chat.share_phone("+4915112345678")
        summary = chat.messages[-1]["text"]
        assert "🗓 On Monday, 26 October, at 09:00" in summary
        # This salon's Cal.com also wants an email: the client is asked for it, then booked.
        asked = await chat.tap("b:ok:", prefix=True)
        assert [m["text"] for m in asked[-2:]] == [
            "The salon needs an email address for bookings as well.",
            "Please type your email address:",
        ]
        retry = await chat.say("+4915112345678")
        assert retry[0]["text"].startswith("That does not look like an email address.")
        await chat.say("lena.client@example.com")
        done = await chat.tap("b:ok:", prefix=True)
        assert done[-1]["text"].startswith("✅ You are booked!")
        [booking] = [b for b in calendar.bookings_json() if b["status"] == "accepted"]
        assert booking["start"] == "2026-10-26T08:00:00.000Z"
    finally:
        await salon.runner.cleanup()
        await calendar.close()


@pytest.mark.parametrize(
    ("sentence", "language", "summary_start", "when"),
    [
        (
            "запишите меня на маникюр завтра в 15:00",
            "ru",
            "Проверьте, пожалуйста, запись:",
            "2 июня",
        ),
        (
            "Hi! Can I book a manicure tomorrow at 3pm?",
            "en",
            "Please check your booking:",
            "2 June",
        ),
    ],
)
async def test_a_single_sentence_ends_at_the_summary_in_at_most_two_taps(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    sentence: str,
    language: str,
    summary_start: str,
    when: str,
) -> None:
    """The service, the day and the time come from the sentence; Maria is Manicure's only
    master. The one tap left is sharing the phone, which a first-time client must give."""
    await start(start_gateway, salon)
    chat = Chat(sandbox.telegram, 511, language=language)
    asked = await chat.say(sentence)
    assert sandbox.telegram.reply_keyboard(511)["keyboard"][0][0]["request_contact"] is True
    assert "Maria Ivanova" not in asked[-1]["text"]  # no master to choose
    summary = await chat.share_phone("79161234567")  # tap 1
    text = summary[-1]["text"]
    assert text.startswith(summary_start)
    assert when in text
    assert "15:00" in text
    assert "Maria Ivanova" in text
    assert salon.made_in_chat() == []  # nothing is booked before Confirm
    done = await chat.tap("b:ok:", prefix=True)  # tap 2: the client confirms
    assert done[-1]["text"].startswith("✅")
    [booking] = salon.made_in_chat()
    # 15:00 in Moscow.
    assert booking["start"] == "2026-06-02T12:00:00.000Z"
    assert [h["name"] for h in booking["hosts"]] == ["Maria Ivanova"]
    assert booking["attendees"][0]["language"] == language


async def test_several_masters_are_asked_first_and_the_after_3_is_kept(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await start(start_gateway, salon)
    chat = Chat(sandbox.telegram, 512)
    masters = await chat.say("women's haircut tomorrow after 3")
    assert "Women's haircut" in masters[-1]["text"]
    anna = master_id(salon, "Anna")
    times = await chat.tap(f"b:m:{anna}")
    assert "Tue, 2 June" in times[-1]["text"]
    shown = [label for data, label in chat.buttons() if data.startswith("b:t:")]
    # Anna's Tuesday from 15:00: every free half hour until her last hour at 19:00.
    assert shown[0] == "15:00"
    assert shown[-1] == "19:00"
    assert all(label >= "15:00" for label in shown)


async def test_typed_text_at_the_master_day_and_time_steps(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await start(start_gateway, salon)
    chat = Chat(sandbox.telegram, 513, language="ru")
    await chat.say("/start")
    await chat.tap("m:book")
    await chat.tap("b:s:womens-haircut")
    days = await chat.say("к Ольге")  # the master step
    olga = master_id(salon, "Olga")
    assert "Olga Smirnova" in days[-1]["text"]
    times = await chat.say("в пятницу")  # the day step
    assert "5 июня" in times[-1]["text"]
    contact = await chat.say("17:30")  # the time step
    assert sandbox.telegram.reply_keyboard(513) is not None
    assert contact[-1]["text"]
    summary = await chat.share_phone("79161234567")
    assert "5 июня" in summary[-1]["text"]
    assert "17:30" in summary[-1]["text"]
    await chat.tap("b:ok:", prefix=True)
    [booking] = salon.made_in_chat()
    assert booking["start"] == "2026-06-05T14:30:00.000Z"
    assert [h["id"] for h in booking["hosts"]] == [olga]


async def test_typed_no_or_a_question_at_the_cancel_question_keeps_the_booking(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    """Typed text at "Cancel this booking?" cancels nothing unless it is an unambiguous yes:
    Cal.com receives no `POST /v2/bookings/{uid}/cancel` for "no", "нет" or a question."""
    await start(start_gateway, salon)
    chat = Chat(sandbox.telegram, 531)
    await book_until_summary(chat, "manicure", "")
    await chat.share_phone("+79165550531")
    await chat.tap("b:ok:", prefix=True)
    [booked] = salon.made_in_chat()
    uid = booked["uid"]
    await chat.tap("m:mine")
    await chat.tap(f"k:v:{uid}")
    for typed in ("no", "нет, не надо отменять", "wait, what time was it?"):
        await chat.tap(f"k:c:{uid}")
        kept = await chat.say(typed)
        assert kept[0]["text"] == "Your booking stays as it is."
        assert f"k:c:{uid}" in [b for b, _ in chat.buttons()]  # the booking's options
    await chat.tap(f"k:c:{uid}")
    moving = await chat.say("wait, can I move it to Friday instead?")
    assert "Choose a day" in moving[-1]["text"]
    cancels = [call for call in salon.calendar.calls if call.name == "cancelBooking"]
    assert cancels == []
    assert [b["uid"] for b in salon.made_in_chat()] == [uid]  # still accepted

    # The button, then the optional reason skipped: one cancel, without a reason.
    await chat.tap("b:quit")
    await chat.tap("m:mine")
    await chat.tap(f"k:v:{uid}")
    await chat.tap(f"k:c:{uid}")
    await chat.tap(f"k:cx:{uid}")
    done = await chat.tap(f"k:cs:{uid}")
    assert done[-1]["text"].startswith("Your booking «Manicure» on ")
    cancels = [call for call in salon.calendar.calls if call.name == "cancelBooking"]
    assert [call.status for call in cancels] == [200]
    gone = next(b for b in salon.bookings(None) if b["uid"] == uid)
    assert gone["status"] == "cancelled"
    assert not gone.get("cancellationReason")


async def test_a_russian_client_reads_services_and_the_address_in_russian(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    """Per-language words: event-type metadata `title_ru` / `category_ru` and SALON_*_RU."""
    await start(
        start_gateway,
        salon,
        salon_address_ru="Москва, Примерная ул., 1",
        salon_hours="Mon–Sat 10:00–20:00",
        salon_hours_ru="Пн–Сб 10:00–20:00",
    )
    chat = Chat(sandbox.telegram, 532, language="ru")
    await chat.say("/start")
    info = await chat.tap("m:info")
    assert "📍 Москва, Примерная ул., 1" in info[-1]["text"]
    assert "🕘 Пн–Сб 10:00–20:00" in info[-1]["text"]
    services = await chat.tap("m:book")
    text = services[-1]["text"]
    assert "Волосы" in text
    assert "Ногти" in text
    assert "• Маникюр · " in text
    assert "Manicure" not in text
    assert "Hair" not in text
    await chat.tap("b:s:manicure")
    await chat.tap("b:d:", prefix=True)
    await chat.tap("b:t:", prefix=True)
    summary = await chat.share_phone("+79165550532")
    assert "💇 Маникюр" in summary[-1]["text"]
    assert "📍 Москва, Примерная ул., 1" in summary[-1]["text"]
    done = await chat.tap("b:ok:", prefix=True)
    assert "💇 Маникюр" in done[-1]["text"]
    mine = await chat.tap("m:mine")
    assert "— Маникюр" in mine[-1]["text"]

    # An English client of the same salon reads the salon's plain words.
    english = Chat(sandbox.telegram, 533)
    await english.say("/start")
    info = await english.tap("m:info")
    assert "📍 1 Example Street" in info[-1]["text"]
    assert "🕘 Mon–Sat 10:00–20:00" in info[-1]["text"]
    services = await english.tap("m:book")
    assert "• Manicure · " in services[-1]["text"]
