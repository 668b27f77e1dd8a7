"""The salon's analytics: a scripted day through the real gateway, then its questions.

Needs the PostgreSQL CI provides (127.0.0.1:5432); skipped, saying so, where there is none.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from bot.i18n import Catalogs
from gateway.analytics import store as analytics_store
from gateway.analytics.weekly import Week
from gateway.integrations.calcom.api import CalcomClient
from gateway.integrations.calcom.bookings import BookingLinks
from gateway.integrations.novu.api import NovuClient
from gateway.integrations.novu.ledger import NoticeLedger
from gateway.integrations.novu.owner_report import send_week
from gateway.integrations.novu.owner_workflow import OWNER_REPORT
from gateway.pipeline.dlq import DeadLetters
from gateway.pipeline.resilience import CircuitBreaker
from gateway.sandbox.novu import NovuSandbox
from gateway.sandbox.whatsapp import WhatsAppSandbox
from handlers import calcom as calcom_handler
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.test_flow_booking import KEY, Chat, Salon, start
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_handoff import Desk, start_desk
from tests.test_flow_handoff import desk as desk  # the fixture, shared
from tests.test_flow_notifications import (
    CAL_SECRET,
    NOVU_KEY,
    VISIT,
    book_elsewhere,
    book_in_chat,
    connect,
    known,
    notifying,
    post_signed,
    runs,
    start_notifying,
)
from tests.test_flow_notifications import novu as novu  # the fixture, shared
from tests.test_flow_whatsapp import Phone
from tests.test_flow_whatsapp import wa as wa  # the fixture, shared

SALT = "a-long-random-salt-for-tests"


async def written(gateway: Any, url: str) -> int:
    """Wait until the writer has emptied the queue; how many events are in the table."""
    redis = gateway.runtime.redis
    keys = gateway.runtime.keys
    await eventually(lambda: _empty(redis, keys.analytics), timeout=15)
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM events"))
    finally:
        await connection.close()


async def _empty(redis: Any, stream: str) -> bool:
    return int(await redis.xlen(stream)) == 0


async def answers(url: str, salon_id: str) -> dict[str, list[tuple[Any, ...]]]:
    connection = await asyncpg.connect(url)
    try:
        found = {}
        for question in analytics_store.questions():
            _, rows = await analytics_store.run_question(
                connection, question, salon_id, date(2026, 6, 1), date(2026, 6, 7)
            )
            found[question.slug] = [tuple(_plain(v) for v in row) for row in rows]
        return found
    finally:
        await connection.close()


def _plain(value: Any) -> Any:
    if isinstance(value, date | int | str) or value is None:
        return value
    return str(value)  # Decimal, float


async def test_a_scripted_day_gives_the_exact_numbers_in_every_question(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    novu: NovuSandbox,
    desk: Desk,
    wa: WhatsAppSandbox,
    analytics_db: str,
) -> None:
    gateway = await start_desk(
        start_gateway,
        salon,
        desk,
        wa,
        **notifying(novu),
        analytics_database_url=analytics_db,
        analytics_salt=SALT,
        owner_email="owner@nord.example",
        owner_locale="ru",
    )
    await connect(gateway, salon, novu)
    salon_id = gateway.runtime.settings.salon.profile.id

    # A Telegram client books in the chat.
    anna = Chat(sandbox.telegram, 901)
    uid = await book_in_chat(anna, salon, "+79160000901")
    # A WhatsApp client starts booking and stops at the service; the salon books her itself.
    zoya = Phone(wa, "79160000902", name="Zoya Kim")
    await zoya.say("Hi")
    await zoya.tap("m:book")
    await known(gateway, "+79160000901")
    elsewhere = await book_elsewhere(
        salon, datetime(2026, 6, 4, 8, 0, tzinfo=UTC), "+79160000902", "Zoya Kim"
    )
    # Another Telegram client asks for a person; staff answer 90 seconds later, then resolve.
    vera = Chat(sandbox.telegram, 903)
    await vera.say("/start")
    before = len(vera.messages)
    await sandbox.telegram.client_says(903, "Can I talk to a real person please?")
    await eventually(lambda: vera.messages[before:])
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:903"))
    await eventually(lambda: desk.notes("tg:903"))  # the handoff has reached staff
    salon.clock.now += timedelta(seconds=90)
    desk.chatwoot.agent_replies(thread.id, "Hello! How can I help?")
    await eventually(lambda: any("How can I help" in str(m) for m in vera.messages))
    desk.chatwoot.resolve(thread.id)
    await eventually(lambda: "back" in str(vera.messages[-1]).lower())
    # The day before her visit the first client is reminded, and cancels from the reminder.
    salon.clock.now = VISIT - timedelta(hours=24)
    await novu.run_due()
    await eventually(lambda: f"k:c:{uid}" in [b for b, _ in anna.buttons()])
    await anna.tap(f"k:c:{uid}")
    await anna.tap(f"k:cx:{uid}")
    await anna.tap(f"k:cs:{uid}")
    # Staff mark the salon-booked client as a no-show.
    raw = json.dumps(
        {
            "triggerEvent": "BOOKING_NO_SHOW_UPDATED",
            "payload": {"bookingUid": elsewhere, "attendees": [{"email": "z@k", "noShow": True}]},
        }
    ).encode()
    signature = hmac.new(CAL_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert await post_signed(f"{gateway.url}/webhooks/calcom", raw, signature) == 200
    await eventually(lambda: any(r.workflow == "booking-cancelled" for r in novu.runs))
    await asyncio.sleep(0.3)
    total = await written(gateway, analytics_db)
    assert total > 10

    found = await answers(analytics_db, salon_id)
    assert found["bookings_per_day"] == [
        (date(2026, 6, 1), "telegram", 1),
        (date(2026, 6, 1), "whatsapp", 1),
    ]
    assert found["booking_funnel"] == [
        ("started", 2, 1),
        ("service", 1, 0),
        ("master", 1, 0),
        ("time", 1, 0),
        ("confirmed", 1, 0),
    ]
    assert found["conversion_by_channel"] == [
        ("telegram", 1, 1, "100.0"),
        ("whatsapp", 1, 0, "0.0"),
    ]
    assert found["handoffs"] == [("typed", 1, "33.3")]
    assert found["first_response"] == [(10, 1, "90.0", "90.0")]
    assert found["reminders_and_no_shows"] == [
        ("answered a reminder", 1, 1, 0),
        ("no answered reminder", 1, 0, 1),
    ]
    assert found["busiest_hours"] == [(10, 1), (11, 1)]
    assert found["top_services"] == [("Women's haircut", "Anna Petrova", 2)]

    # Nothing in any table says who the clients are.
    connection = await asyncpg.connect(analytics_db)
    try:
        rows = await connection.fetch("SELECT * FROM events")
    finally:
        await connection.close()
    dump = json.dumps([dict(r) for r in rows], default=str)
    for secret in ("7916000090", "Zoya", "Kim", "Vera", "How can I help", "tg:90", "wa:79"):
        assert secret not in dump, secret

    # The owner's weekly report says the same numbers as the questions, once for the week.
    report = await owner_report(gateway, analytics_db, novu, Week.parse("2026-W23"))
    assert report["bookingsByChannel"] == {"telegram": 1, "whatsapp": 1}
    assert [tuple(_plain(v) for v in r.values()) for r in report["conversion"]] == [
        ("telegram", 1, 1, "100.0"),
        ("whatsapp", 1, 0, "0.0"),
    ]
    assert report["handoffs"] == 1
    assert report["firstResponse"] == [
        {"hour": 10, "replies": 1, "median_seconds": 90.0, "p90_seconds": 90.0}
    ]
    assert [tuple(r.values()) for r in report["noShows"]] == found["reminders_and_no_shows"]
    assert report["subject"] == "Studio Nord: неделя 2026-W23"
    assert await owner_report(gateway, analytics_db, novu, Week.parse("2026-W23")) is None


async def owner_report(
    gateway: Any, url: str, novu: NovuSandbox, week: Week
) -> dict[str, Any] | None:
    """Send the week's report as `frontdesk analytics report --send` does; the payload Novu
    got, or None when nothing was sent."""
    settings = gateway.runtime.settings
    connection = await asyncpg.connect(url)
    try:
        async with NovuClient(novu.url, NOVU_KEY, CircuitBreaker("novu")) as client:  # type: ignore[attr-defined]
            sent = await send_week(client, connection, settings.salon, week, Catalogs(), None)
    finally:
        await connection.close()
    if not sent:
        return None
    [run] = [r for r in novu.runs if r.workflow == OWNER_REPORT]
    assert run.subscriber == f"{settings.salon.profile.id}:owner"
    return dict(run.payload)


async def fetch(url: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(query))
    finally:
        await connection.close()


async def dead_letters(gateway: Any, count: int) -> list[Any]:
    """Wait until exactly `count` messages are dead-lettered; them."""

    async def found() -> list[Any]:
        letters = await gateway.runtime.redis.xrange(gateway.runtime.keys.dead_letters)
        return letters if len(letters) == count else []

    return await eventually(found, timeout=10)


async def start_without_workflows(
    start_gateway: GatewayFactory, salon: Salon, novu: NovuSandbox, analytics_db: str
) -> Any:
    """Cal.com's webhook is set up, but Novu knows no workflow (`novu sync` was never run)."""
    gateway = await start_notifying(
        start_gateway, salon, novu, analytics_database_url=analytics_db, analytics_salt=SALT
    )
    salon.calendar.webhook_url = f"{gateway.url}/webhooks/calcom"
    salon.calendar.webhook_secret = CAL_SECRET
    novu.workflows.clear()
    return gateway


FAILED = "SELECT notice, booking, channel FROM events WHERE kind = 'notification_failed'"
# Telegram's answer once the client has blocked the bot.
BLOCKED: dict[str, Any] = {
    "error_code": 403,
    "description": "Forbidden: bot was blocked by the user",
}


async def test_a_reminder_the_messenger_refuses_counts_as_a_failed_notification(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    novu: NovuSandbox,
    analytics_db: str,
) -> None:
    gateway = await start_notifying(
        start_gateway, salon, novu, analytics_database_url=analytics_db, analytics_salt=SALT
    )
    await connect(gateway, salon, novu)
    salon_id = gateway.runtime.settings.salon.profile.id
    anna = Chat(sandbox.telegram, 911)
    uid = await book_in_chat(anna, salon, "+79160000911")
    await eventually(lambda: len(runs(novu, "booking-reminder")) == 2)
    # The client has blocked the bot by the time of the reminder.
    sandbox.telegram.fail_next("sendMessage", **BLOCKED)
    salon.clock.now = VISIT - timedelta(hours=24)
    await novu.run_due()
    dead = await dead_letters(gateway, 1)
    await written(gateway, analytics_db)
    rows = await fetch(
        analytics_db,
        "SELECT id, kind, notice, booking, channel FROM events "
        "WHERE kind LIKE 'notification_%' ORDER BY kind, notice",
    )
    kinds = [(r["kind"], r["notice"], r["booking"], r["channel"]) for r in rows]
    # (Booked in the chat, she was told there: no confirmation notice.)
    assert kinds == [
        ("notification_failed", "reminder", uid, "telegram"),
        ("notification_sent", "reminder", uid, "telegram"),
    ]
    assert rows[0]["id"].startswith(f"{salon_id}:notice-failed:")

    # Replayed and refused again: still one failed notification.
    sandbox.telegram.fail_next("sendMessage", **BLOCKED)
    letters = DeadLetters(gateway.runtime.redis, salon_id, gateway.runtime.keys.shards)
    replayed, _ = await letters.replay(None)
    assert len(replayed) == 1
    [(_, again)] = await dead_letters(gateway, 1)
    assert again[b"failure"] == dead[0][1][b"failure"]  # recorded again, under the same id
    await asyncio.sleep(0.3)
    await written(gateway, analytics_db)
    assert len(await fetch(analytics_db, FAILED)) == 1


async def test_a_trigger_novu_never_takes_counts_as_a_failed_notification(
    start_gateway: GatewayFactory, salon: Salon, novu: NovuSandbox, analytics_db: str
) -> None:
    gateway = await start_without_workflows(start_gateway, salon, novu, analytics_db)
    uid = await book_elsewhere(salon, datetime(2026, 6, 4, 8, 0, tzinfo=UTC), "+79160000921")
    dead = await dead_letters(gateway, 3)
    assert all(fields[b"method"] == b"trigger" for _, fields in dead)
    await written(gateway, analytics_db)
    # The confirmation and both reminders: an unknown client, so no messenger channel.
    assert sorted(tuple(r) for r in await fetch(analytics_db, FAILED)) == [
        ("confirmed", uid, ""),
        ("reminder", uid, ""),
        ("reminder", uid, ""),
    ]


async def test_novus_email_copy_of_what_the_chat_said_is_no_failed_notification(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    novu: NovuSandbox,
    analytics_db: str,
) -> None:
    gateway = await start_without_workflows(start_gateway, salon, novu, analytics_db)
    await book_in_chat(Chat(sandbox.telegram, 931), salon, "+79160000931")
    await dead_letters(gateway, 3)  # the confirmation's trigger and two reminders'
    await written(gateway, analytics_db)
    # Told "You are booked" in the chat; the reminders are the gateway's ledger's to send when
    # Novu does not post them, so none of it failed.
    assert await fetch(analytics_db, FAILED) == []
    ledger = NoticeLedger(gateway.runtime.redis, gateway.runtime.keys)
    assert len(await ledger.overdue(datetime(2026, 6, 3, 7, 0, tzinfo=UTC))) == 2


BOOKED = (
    "SELECT kind, booking, origin, channel, service, master, previous_booking FROM events"
    " WHERE kind IN ('booking_created', 'booking_rescheduled') ORDER BY at, kind"
)


async def handled(gateway: Any, uid: str, trigger: str) -> bool:
    """Whether the gateway has handled Cal.com's news of this booking change."""
    links = BookingLinks(gateway.runtime.redis, gateway.runtime.keys)
    return (await links.record(uid)).get("status") == trigger


async def tell_late(gateway: Any, salon: Salon, trigger: str, uid: str, previous: Any) -> None:
    """Cal.com's webhook about this booking, as it would have sent it, arriving only now."""
    calendar = salon.calendar
    payload = calendar._webhook_payload(trigger, calendar._bookings[uid], previous)
    raw = json.dumps({"triggerEvent": trigger, "createdAt": "x", "payload": payload}).encode()
    signature = hmac.new(CAL_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert await post_signed(f"{gateway.url}/webhooks/calcom", raw, signature) == 200
    await eventually(lambda: handled(gateway, uid, trigger))


async def test_a_booking_made_in_the_chat_is_counted_without_cal_coms_webhook_and_once_with_it(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, analytics_db: str
) -> None:
    """No webhook set up in Cal.com: the chat's own booking and move are counted as they are
    made; the webhooks that then turn up (and the reconciliation) count nothing again."""
    gateway = await start(
        start_gateway,
        salon,
        calcom_webhook_secret=CAL_SECRET,
        analytics_database_url=analytics_db,
        analytics_salt=SALT,
    )
    chat = Chat(sandbox.telegram, 941)
    uid = await book_in_chat(chat, salon, "+79160000941")
    assert salon.calendar.webhooks_sent == []  # Cal.com told no one
    await written(gateway, analytics_db)
    made = ("booking_created", uid, "chat", "telegram", "Women's haircut", "Anna Petrova", None)
    assert [tuple(r) for r in await fetch(analytics_db, BOOKED)] == [made]

    # She moves it in the chat: counted as a move of that booking.
    await chat.tap("m:mine")
    await chat.tap(f"k:v:{uid}")
    await chat.tap(f"k:r:{uid}")
    await chat.tap("b:d:20260604")
    await chat.tap("b:t:202606040700", prefix=True)
    await chat.tap("b:ok:", prefix=True)
    [moved] = salon.made_in_chat()
    await written(gateway, analytics_db)
    move = ("booking_rescheduled", moved["uid"], "chat", "telegram", "Women's haircut")
    assert [tuple(r)[:5] for r in await fetch(analytics_db, BOOKED)] == [made[:5], move]
    assert (await fetch(analytics_db, BOOKED))[1]["previous_booking"] == uid

    # Cal.com's webhooks arrive after all, and the reconciliation reads the same changes.
    old = salon.calendar._bookings[uid]
    await tell_late(gateway, salon, "BOOKING_CREATED", uid, None)
    await tell_late(gateway, salon, "BOOKING_RESCHEDULED", moved["uid"], old)
    runtime = gateway.runtime
    links = BookingLinks(runtime.redis, runtime.keys)
    async with CalcomClient(salon.url, KEY, breaker=CircuitBreaker("calcom")) as calcom:
        await calcom_handler.reconcile(calcom, links, runtime.inbox, salon.clock())
    await asyncio.sleep(0.3)
    await written(gateway, analytics_db)
    assert [tuple(r)[:5] for r in await fetch(analytics_db, BOOKED)] == [made[:5], move]


async def test_the_first_reconciliation_counts_a_booking_made_before_it_started(
    start_gateway: GatewayFactory, salon: Salon, analytics_db: str
) -> None:
    """A booking made on the salon's page an hour before the gateway's first look, with no
    webhook set up, is found by the first reconciliation (it reads back
    CALCOM_RECONCILE_LOOKBACK_HOURS); the salon's older bookings are not."""
    uid = await book_elsewhere(salon, datetime(2026, 6, 4, 8, 0, tzinfo=UTC), "+79160000951")
    salon.clock.now += timedelta(hours=1)
    gateway = await start(
        start_gateway,
        salon,
        calcom_reconcile_seconds=0.2,
        analytics_database_url=analytics_db,
        analytics_salt=SALT,
    )
    await eventually(lambda: handled(gateway, uid, "BOOKING_CREATED"), timeout=10)
    await written(gateway, analytics_db)
    rows = await fetch(analytics_db, BOOKED)
    assert [tuple(r)[:3] for r in rows] == [("booking_created", uid, "calcom")]
    assert len(salon.bookings()) == 5  # the four seeded a week ago stay unreported


async def test_a_booking_typed_in_words_counts_as_started_and_booked(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    novu: NovuSandbox,
    wa: WhatsAppSandbox,
    analytics_db: str,
) -> None:
    """Issue 21: a client who typed the service ("хочу на стрижку в среду") skipped the
    book.service step, and the conversion showed "0 of 0" beside their booking. Started now
    means any entry into the booking flow (the booking_started fact), in the dashboard's
    questions and the owner's report alike."""
    gateway = await start_notifying(
        start_gateway,
        salon,
        novu,
        wa,
        analytics_database_url=analytics_db,
        analytics_salt=SALT,
        owner_email="owner@nord.example",
    )
    await connect(gateway, salon, novu)
    salon_id = gateway.runtime.settings.salon.profile.id
    # A Telegram client books in words, without ever seeing the service step.
    olga = Chat(sandbox.telegram, 931, language="ru")
    told = await olga.say("хочу на женскую стрижку к Анне в среду в 10")
    assert "связаться" in told[-1]["text"]  # straight to her contact
    await olga.share_phone("+79160000931")
    done = await olga.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅")
    # A WhatsApp client types a request for a booking and stops there.
    zoya = Phone(wa, "79160000932", name="Zoya")
    await zoya.say("Хочу записаться на маникюр")
    # A Telegram client taps Book, as before.
    ivan = Chat(sandbox.telegram, 933)
    await ivan.say("/start")
    await ivan.tap("m:book")
    await written(gateway, analytics_db)

    entries = await fetch(
        analytics_db, "SELECT channel, step FROM events WHERE kind = 'booking_started'"
    )
    # Where each entered: at the contact, at the day (the service named), at the service.
    assert sorted((r["channel"], r["step"]) for r in entries) == [
        ("telegram", "book.contact"),
        ("telegram", "book.service"),
        ("whatsapp", "book.day"),
    ]
    found = await answers(analytics_db, salon_id)
    assert found["conversion_by_channel"] == [
        ("telegram", 2, 1, "50.0"),
        ("whatsapp", 1, 0, "0.0"),
    ]
    # Every stage up to the furthest reached counts: Olga passed the service and master.
    assert found["booking_funnel"] == [
        ("started", 3, 1),
        ("service", 2, 0),
        ("master", 2, 1),
        ("time", 1, 0),
        ("confirmed", 1, 0),
    ]
    report = await owner_report(gateway, analytics_db, novu, Week.parse("2026-W23"))
    assert report is not None
    assert [tuple(_plain(v) for v in r.values()) for r in report["conversion"]] == (
        found["conversion_by_channel"]
    )
