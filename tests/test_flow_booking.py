"""Booking in Telegram through the real gateway, against the Telegram and Cal.com sandboxes.

The Cal.com sandbox checks every request against the vendor's spec when it is present (it
answers 400 to what the real service would refuse), so these flows also show that what the
gateway sends is what Cal.com accepts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.sandbox.calcom import CalcomSandbox
from gateway.sandbox.telegram import TelegramSandbox
from tests.conftest import CONTRACTS, GatewayFactory, Sandbox, eventually

KEY = "cal_test_key"
MOSCOW = ZoneInfo("Europe/Moscow")
JSON = dict[str, Any]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Salon:
    calendar: CalcomSandbox
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
    salon = Salon(calendar, f"http://127.0.0.1:{port}", clock, team_id)
    salon.runner = runner  # type: ignore[attr-defined]
    return salon


@pytest.fixture
async def salon() -> AsyncIterator[Salon]:
    # Monday 1 June 2026, 10:00 in Moscow.
    clock = Clock(datetime(2026, 6, 1, 7, 0, tzinfo=UTC))
    spec = CONTRACTS / "calcom-v2.openapi.json"
    calendar = CalcomSandbox(KEY, spec if spec.exists() else None, clock=clock)
    team_id = calendar.seed_demo_salon(zone="Europe/Moscow")
    salon = await _serve(calendar, clock, team_id)
    yield salon
    await salon.runner.cleanup()  # type: ignore[attr-defined]
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

        try:
            answer: list[JSON] = await eventually(done, timeout=10)
        except AssertionError:
            print("DBG", self.tg.errors, self.messages[before:])
            raise
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
) -> None:
    await start_gateway(
        clock=salon.clock,
        calcom_api_url=salon.url,
        calcom_api_key=KEY,
        calcom_team_id=salon.team_id,
        salon_currency="RUB",
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
    assert summary[0]["text"] == "Thank you! I will use +79161234567."
    assert sandbox.telegram.reply_keyboard(501) is None
    text = summary[-1]["text"]
    assert text.startswith("Please check your booking:")
    for line in (
        "💇 Women's haircut",
        "👤 Anna Petrova",
        "🗓 Tue, 2 June, 10:00",
        "⏱ 60 min",
        "💳 RUB\u00a02,500",
        "📍 1 Example Street",
        "🙂 Anna",
        "📱 +79161234567",
    ):
        assert line in text

    done = await chat.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")
    assert "🗓 Tue, 2 June, 10:00" in done[-1]["text"]
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
    assert "already confirmed" in again[-1]["text"]
    assert len(salon.made_in_chat()) == 1
    assert not sandbox.telegram.errors
