"""Notices the salon's calendar sends a client: pure `FrontDesk.notify` turns."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.events import Inbound, Kind
from bot.flows.notices import Notice, NoticeKind
from bot.ports import Visit
from bot.session import Session
from tests.bot.test_booking_flow import CLIENT, NOW, Client, FakeCalendar, cut

VISIT = NOW + timedelta(days=2)  # Wednesday 10:00 in Moscow


@pytest.fixture
def client() -> Client:
    calendar = FakeCalendar((cut(),))
    calendar.visits["v1"] = Visit("v1", "Cut", VISIT, VISIT + timedelta(hours=1), "Anna")
    return Client(calendar)


async def notify(client: Client, notice: Notice, session: Session | None = None) -> list[str]:
    event = Inbound(CLIENT, Kind.TEXT, "n")
    turn = await client.desk.notify(session or client.session, event, notice, client.now)
    client.turn = turn
    client.session = turn.session
    return [reply.text for reply in turn.replies]


async def test_a_reminder_offers_the_three_answers_and_i_will_come_is_remembered(
    client: Client,
) -> None:
    await client.says("/start")
    step = client.session.step
    texts = await notify(client, Notice(NoticeKind.REMINDER, "v1", "Cut", VISIT, master="Anna"))
    assert texts == [
        "⏰ A reminder: «Cut» on Wednesday, 3 June, at 10:00. Will you come?\n👤 Anna\n📍 1 Main St"
    ]
    assert client.choices() == ["k:y:v1", "k:r:v1", "k:c:v1"]
    assert client.session.bookings == ["v1"]
    assert client.session.step == step  # the client's place is kept
    thanks = await client.taps("k:y:v1")
    assert thanks == ["Thank you! We look forward to seeing you on Wednesday, 3 June, at 10:00."]
    assert client.turn is not None
    assert client.turn.attending == "v1"
    assert client.session.attending == ["v1"]
    # The 2 h reminder remembers the answer: "see you at 10:00", no second "Will you come?".
    again = await notify(client, Notice(NoticeKind.REMINDER, "v1", "Cut", VISIT, master="Anna"))
    assert again[0].startswith(
        "⏰ A reminder: «Cut» on Wednesday, 3 June, at 10:00. See you at 10:00!"
    )
    assert "Will you come?" not in again[0]
    assert client.choices() == ["k:r:v1", "k:c:v1"]


async def test_no_reminder_for_a_visit_cancelled_moved_or_over(client: Client) -> None:
    calendar = client.desk.calendar
    assert isinstance(calendar, FakeCalendar)
    reminder = Notice(NoticeKind.REMINDER, "v1", "Cut", VISIT)
    await calendar.cancel("v1", None)
    assert await notify(client, reminder) == []
    # Moved: the old time's reminder stays silent (the new time has its own).
    calendar.visits["v1"] = Visit("v1", "Cut", VISIT + timedelta(hours=2), VISIT, "Anna")
    assert await notify(client, reminder) == []
    client.now = VISIT + timedelta(minutes=1)
    calendar.visits["v1"] = Visit("v1", "Cut", VISIT, VISIT + timedelta(hours=1), "Anna")
    assert await notify(client, reminder) == []
    # The calendar down: better the reminder from what we knew than none.
    client.now = VISIT - timedelta(hours=2)
    calendar.down = True
    assert (await notify(client, reminder))[0].startswith("⏰ A reminder")


async def test_the_salons_changes_are_told_with_the_next_step(client: Client) -> None:
    calendar = client.desk.calendar
    assert isinstance(calendar, FakeCalendar)
    day = timedelta(days=1)
    calendar.visits["v2"] = Visit("v2", "Cut", VISIT + day, VISIT + day, "Anna")
    calendar.visits["v3"] = Visit("v3", "Cut", VISIT, VISIT + timedelta(hours=1), "Anna")
    moved = Notice(
        NoticeKind.MOVED,
        "v2",
        "Cut",
        VISIT + timedelta(days=1),
        previous_uid="v1",
        previous_start=VISIT,
    )
    session = Session(bookings=["v1", "v9"], locale="ru")
    texts = await notify(client, moved, session)
    assert texts[0].startswith(
        "📅 Салон перенёс ваш визит «Cut»: теперь он в четверг, 4 июня, в 10:00 "
        "(был в среду, 3 июня, в 10:00)."
    )
    assert client.session.bookings == ["v9", "v2"]
    assert client.choices() == ["k:y:v2", "k:r:v2", "k:c:v2"]

    cancelled = Notice(NoticeKind.CANCELLED, "v2", "Cut", VISIT, reason="Мастер заболел")
    texts = await notify(client, cancelled)
    assert texts[0].endswith("Комментарий салона: Мастер заболел")
    assert client.session.bookings == ["v9"]
    assert client.choices() == ["m:book", "m:home"]

    requested = await notify(client, Notice(NoticeKind.REQUESTED, "v3", "Cut", VISIT))
    assert requested[0].startswith(
        "🕓 Ваша заявка «Cut» в среду, 3 июня, в 10:00 передана в салон."
    )
    assert client.choices() == ["m:mine", "m:home"]
    rejected = await notify(client, Notice(NoticeKind.REJECTED, "v3", "Cut", VISIT))
    assert rejected[0].startswith("Салон не смог принять вашу заявку")
    assert client.session.bookings == ["v9"]


async def test_a_confirmation_that_comes_after_the_cancellation_is_not_shown(
    client: Client,
) -> None:
    calendar = client.desk.calendar
    assert isinstance(calendar, FakeCalendar)
    await calendar.cancel("v1", None)
    assert await notify(client, Notice(NoticeKind.CONFIRMED, "v1", "Cut", VISIT)) == []
    assert client.session.bookings == []


async def test_a_notice_keeps_what_the_client_was_choosing_from(client: Client) -> None:
    await client.says("/start")
    offered = client.session.offered
    await notify(client, Notice(NoticeKind.REMINDER, "v1", "Cut", VISIT))
    assert client.session.offered == offered


async def test_a_russian_client_reads_the_service_in_russian(client: Client) -> None:
    calendar = client.desk.calendar
    assert isinstance(calendar, FakeCalendar)
    visit = calendar.visits["v1"]
    calendar.visits["v1"] = replace(visit, service_titles=(("ru", "Стрижка"),))
    texts = await notify(
        client, Notice(NoticeKind.REMINDER, "v1", "Cut", VISIT), Session(locale="ru")
    )
    assert texts[0].startswith("⏰ Напоминаем: «Стрижка» в среду, 3 июня, в 10:00. Вы придёте?")
