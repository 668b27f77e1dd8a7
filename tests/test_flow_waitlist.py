"""The waitlist through the real gateway, against the Telegram and Cal.com stand-ins.

Clients join from the time step; the salon cancels in Cal.com (its signed webhook reaches the
gateway); the freed time is offered to the first client waiting, held in the Cal.com stand-in
(a reservation the stand-in enforces as Cal.com does), passed on when the hold ends or the
client says no, and booked by the one who taps "Book it" with the hold claimed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.integrations.calcom.api import CalcomClient
from gateway.integrations.calcom.bookings import BookingLinks
from gateway.pipeline.resilience import CircuitBreaker
from gateway.sandbox.whatsapp import WhatsAppSandbox
from handlers import calcom as calcom_handler
from tests.analytics_db import analytics_db
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.test_flow_booking import KEY, Chat, Salon, master_id, salon, salon_api, start
from tests.test_flow_whatsapp import Phone, start_whatsapp, text_of, wa

# The fixtures, shared with the booking, WhatsApp and analytics flows.
__all__ = ["analytics_db", "salon", "wa"]

JSON = dict[str, Any]
CAL_SECRET = "cal-waitlist-secret"
TEN = "2026-06-02T07:00:00Z"  # Tuesday 2 June, 10:00 in Moscow
ELEVEN = "2026-06-02T08:00:00Z"


async def open_salon(start_gateway: GatewayFactory, salon: Salon) -> Any:
    gateway = await start(
        start_gateway, salon, calcom_webhook_secret=CAL_SECRET, calcom_waitlist_seconds=0.05
    )
    async with CalcomClient(salon.url, KEY, breaker=CircuitBreaker("calcom")) as calcom:
        triggers = sorted(calcom_handler.TRIGGERS)
        await calcom.ensure_webhook(f"{gateway.url}/webhooks/calcom", triggers, CAL_SECRET)
    return gateway


async def booked_by_staff(salon: Salon, anna: int, start_at: str, name: str) -> str:
    """A visit the salon books in Cal.com itself (no client in the chat)."""
    event_type = next(et.id for et in salon.calendar._event_types.values() if et.host_ids == [anna])
    attendee = {"name": name, "email": f"{name.lower()}@example.com", "timeZone": "Europe/Moscow"}
    body = {"start": start_at, "eventTypeId": event_type, "attendee": attendee}
    made = await salon_api(salon, "POST", "/bookings", body)
    return str(made["uid"])


async def join(chat: Chat, anna: int, part: str = "morning") -> list[JSON]:
    await chat.say("/start")
    await chat.tap("m:book")
    await chat.tap("b:s:womens-haircut")
    await chat.tap(f"b:m:{anna}")
    await chat.tap("b:d:20260602")
    asked = await chat.tap("w:j:20260602")
    assert asked[-1]["text"].startswith(
        "🔔 Я напишу вам" if chat.language == "ru" else "🔔 I will write to you as soon as"
    )
    await chat.tap(f"w:p:{part}")
    return await chat.tap("w:r:1")


def holds(salon: Salon) -> list[tuple[str, datetime]]:
    """The stand-in's live reservations: (start, until)."""
    now = salon.clock()
    return [
        (r.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), r.until)
        for r in salon.calendar._reservations.values()
        if r.until > now
    ]


async def offered(chat: Chat, before: int) -> JSON:
    def found() -> JSON | None:
        return next(
            (m for m in chat.messages[before:] if "A time has freed up" in m.get("text", "")),
            None,
        )

    message: JSON = await eventually(found, timeout=10)
    return message


async def test_a_freed_time_goes_first_come_held_then_passed_on_and_booked_once(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await open_salon(start_gateway, salon)
    anna = master_id(salon, "Anna")
    taken = await booked_by_staff(salon, anna, TEN, "Xenia")
    first, second, other = (Chat(sandbox.telegram, n) for n in (601, 602, 603))

    joined = await join(first, anna)
    text = joined[-1]["text"]
    assert text.startswith("🔔 You are on the waitlist: Women's haircut, Anna Petrova, only on")
    assert "Mornings (before 12:00)" in text
    assert "for 10 minutes" in text
    await join(second, anna)

    # The salon cancels Xenia's 10:00: the first client waiting is offered it, held in Cal.com.
    before_first, before_second = len(first.messages), len(second.messages)
    await salon_api(salon, "POST", f"/bookings/{taken}/cancel", {"cancellationReason": "Ill"})
    offer = await offered(first, before_first)
    assert "«Women's haircut» on Tuesday, 2 June, at 10:00" in offer["text"]
    assert "I am holding it for you until 10:10." in offer["text"]
    labels = [b["text"] for row in offer["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["✅ Book it", "No thanks"]
    assert [start for start, _ in holds(salon)] == [TEN]
    assert not any("freed up" in m.get("text", "") for m in second.messages[before_second:])

    # Held: nobody else sees 10:00, nor can type it.
    await other.say("/start")
    await other.tap("m:book")
    await other.tap("b:s:womens-haircut")
    await other.tap(f"b:m:{anna}")
    await other.tap("b:d:20260602")
    assert "10:00" not in [label for _, label in other.buttons()]
    refused = await other.say("10:00")
    assert any("10:00 is not free" in m.get("text", "") for m in refused)

    # The hold runs out: the time goes to the second client, with a new hold.
    old_take = next(
        b["callback_data"]
        for row in offer["reply_markup"]["inline_keyboard"]
        for b in row
        if b["callback_data"].startswith("w:ok:")
    )
    salon.clock.advance(11 * 60)
    again = await offered(second, before_second)
    assert "I am holding it for you until 10:21." in again["text"]
    assert [start for start, _ in holds(salon)] == [TEN]

    # The first client's old "Book it" books nothing: told so.
    late = await first.tap(old_take)
    assert late[-1]["text"].startswith("That time is no longer held for you")
    assert not salon.made_in_chat()

    # The second books it: their details first (the hold waits), then one booking.
    details = await second.tap("w:ok:", prefix=True)
    assert any("I only need your details" in m.get("text", "") for m in details)
    await second.share_phone("+79165550602")
    done = await second.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")
    [booking] = salon.made_in_chat()
    assert booking["start"] == "2026-06-02T07:00:00.000Z"
    assert booking["metadata"]["frontdesk_chat"] == "602"
    assert holds(salon) == []  # the hold was claimed by the booking
    # Their wait is over; the first client's stays, without that time.
    await second.tap("m:mine")
    assert "You are waiting for" not in second.messages[-1]["text"]
    await first.say("/start")
    mine = await first.tap("m:mine")
    assert "🔔 You are waiting for:" in mine[-1]["text"]
    assert not sandbox.telegram.errors


async def test_two_freed_times_go_to_two_clients_and_one_who_booked_is_skipped(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await open_salon(start_gateway, salon)
    anna = master_id(salon, "Anna")
    ten = await booked_by_staff(salon, anna, TEN, "Xenia")
    eleven = await booked_by_staff(salon, anna, ELEVEN, "Yana")
    booker, first, second = (Chat(sandbox.telegram, n) for n in (611, 612, 613))
    second.language = "ru"

    await join(booker, anna, part="any")
    await join(first, anna, part="any")
    await join(second, anna, part="any")
    # The first in the queue books a haircut meanwhile: they wait no more.
    await booker.tap("m:book")
    await booker.tap("b:s:womens-haircut")
    await booker.tap(f"b:m:{anna}")
    await booker.tap("b:d:20260603")
    await booker.tap("b:t:", prefix=True)
    await booker.share_phone("+79165550611")
    await booker.tap("b:ok:", prefix=True)
    assert len(salon.made_in_chat()) == 1

    counts = [len(c.messages) for c in (booker, first, second)]
    for uid in (ten, eleven):
        await salon_api(salon, "POST", f"/bookings/{uid}/cancel", {"cancellationReason": "x"})
    to_first = await offered(first, counts[1])

    def russian_offer() -> JSON | None:
        return next(
            (m for m in second.messages[counts[2] :] if "освободилось" in m.get("text", "")), None
        )

    to_second = await eventually(russian_offer, timeout=10)
    assert "Записаться" in str(to_second["reply_markup"])
    times = {"10:00" in to_first["text"], "10:00" in to_second["text"]}
    assert times == {True, False}  # one time each
    assert sorted(start for start, _ in holds(salon)) == [TEN, ELEVEN]
    assert not any("freed up" in m.get("text", "") for m in booker.messages[counts[0] :])

    # Typed answers work: "no thanks" passes the first client's time on (nobody else suits:
    # the second has an offer out, the booker waits no more), and its hold is given back.
    before = len(first.messages)
    await first.tg.client_says(first.chat_id, "no thanks", language_code="en")
    said = "offer it to the next client"
    await eventually(lambda: any(said in m.get("text", "") for m in first.messages[before:]))
    await eventually(lambda: len(holds(salon)) == 1)
    # A typed "да" takes the second client's offer (their details are asked for next).
    before = len(second.messages)
    await second.tg.client_says(second.chat_id, "да", language_code="ru")
    said = "Время держится за вами"
    await eventually(lambda: any(said in m.get("text", "") for m in second.messages[before:]))

    # My bookings lists the first client's wait, with a button to leave it; leaving ends it.
    mine = await first.tap("m:mine")
    assert "🔔 You are waiting for:" in mine[-1]["text"]
    left = await first.tap("w:x:", prefix=True)
    assert any(m.get("text") == "You have left that waitlist." for m in left)
    assert "waiting for" not in left[-1]["text"]
    assert not sandbox.telegram.errors


async def test_outside_the_whatsapp_window_the_offer_is_the_approved_template_with_its_buttons(
    start_gateway: GatewayFactory, salon: Salon, wa: WhatsAppSandbox
) -> None:
    gateway = await start_whatsapp(
        start_gateway, salon, wa, calcom_webhook_secret=CAL_SECRET, calcom_waitlist_seconds=0.05
    )
    async with CalcomClient(salon.url, KEY, breaker=CircuitBreaker("calcom")) as calcom:
        triggers = sorted(calcom_handler.TRIGGERS)
        await calcom.ensure_webhook(f"{gateway.url}/webhooks/calcom", triggers, CAL_SECRET)
    anna = master_id(salon, "Anna")
    taken = await booked_by_staff(salon, anna, "2026-06-03T07:00:00Z", "Xenia")
    phone = Phone(wa, "79160000901", name="Maria")
    await phone.say("Hi")
    for choice in ("m:book", "b:s:womens-haircut", f"b:m:{anna}", "b:d:20260603"):
        await phone.tap(choice)
    # The times come as a list in pages (WhatsApp: ten rows); the wait button after them.
    while not any(i == "w:j:20260603" for i, _ in phone.options()):
        await phone.tap("wa:more:", prefix=True)
    await phone.tap("w:j:20260603")
    await phone.tap("w:p:any")
    joined = await phone.tap("w:r:1")
    assert "You are on the waitlist" in text_of(joined[-1])

    # A day and more later her window is closed; the salon cancels the visit she waits for.
    salon.clock.advance(25 * 3600)
    before = len(phone.received)
    await salon_api(salon, "POST", f"/bookings/{taken}/cancel", {"cancellationReason": "x"})
    sent = await eventually(
        lambda: [s for s in phone.received[before:] if s.body.get("type") == "template"],
        timeout=10,
    )
    template = sent[-1].body["template"]
    assert template["name"] == "frontdesk_waitlist_offer"
    values = [p["text"] for p in template["components"][0]["parameters"]]
    assert values == ["Women's haircut", "Wed, 3 June, 10:00", "Tue, 2 June, 11:10"]
    payloads = [c["parameters"][0]["payload"] for c in template["components"][1:]]
    assert [p.split(":")[1] for p in payloads] == ["ok", "no"]
    assert wa.errors == []

    # Her tap on "Book it" in the template books the held time (her number is known).
    answer = await phone.tap(payloads[0])
    assert "You are booked!" in text_of(answer[-1])
    [booking] = salon.made_in_chat()
    assert booking["start"] == "2026-06-03T07:00:00.000Z"
    assert holds(salon) == []


def forge(chat: Chat, data: str) -> int:
    """A button the bot never sent (a crafted client): put under the chat's last message."""
    message = chat.messages[-1]
    stored = chat.tg._messages[(chat.chat_id, message["message_id"])]
    stored.setdefault("reply_markup", {"inline_keyboard": []})["inline_keyboard"].append(
        [{"text": "?", "callback_data": data}]
    )
    return int(message["message_id"])


async def test_reconciliation_frees_a_time_too_waits_end_and_bad_buttons_get_an_answer(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    # No webhook reaches the gateway: the reconciliation finds the cancellation (it reads
    # Cal.com every 0.2 s here: more than the stand-in's default rate limit lets through).
    salon.calendar.rate_limit = 100_000
    gateway = await start(
        start_gateway, salon, calcom_reconcile_seconds=0.2, calcom_waitlist_seconds=0.05
    )
    redis, keys = gateway.runtime.redis, gateway.runtime.keys
    anna = master_id(salon, "Anna")
    taken = await booked_by_staff(salon, anna, TEN, "Xenia")
    waiting, evening = Chat(sandbox.telegram, 621), Chat(sandbox.telegram, 622)
    await join(waiting, anna)
    await join(evening, anna, part="evening")
    # A client keeps at most three waits.
    await join(evening, anna, part="afternoon")
    await join(evening, anna, part="any")
    refused = await join(evening, anna, part="morning")
    assert refused[-1]["text"].startswith("You are already waiting for as many times")

    # Forged or stale buttons are answered, and change nothing.
    for data, said in (
        ("w:ok:0123456789ab", "That time is no longer held for you"),
        ("w:no:0123456789ab", "That time is no longer held for you"),
        ("w:r:9", "That button is no longer active"),
    ):
        answer = await waiting.tg.client_taps(621, forge(waiting, data), data)
        assert answer
        await eventually(lambda said=said: said in waiting.messages[-1].get("text", ""))
    await waiting.tg.client_taps(621, forge(waiting, "w:x:nope"), "w:x:nope")
    await eventually(lambda: any("ended already" in m.get("text", "") for m in waiting.messages))
    # Typed words at the waitlist's steps are read as its answers.
    await waiting.tap("m:book")
    await waiting.tap("b:s:womens-haircut")
    await waiting.tap(f"b:m:{anna}")
    await waiting.tap("b:d:20260603")
    await waiting.tap("w:j:20260603")
    ranges = await waiting.say("лучше вечерком 🙏")
    assert ranges[-1]["text"] == "Which days may it be?"
    joined = await waiting.say("3 days")
    assert "Wed, 3 June to Fri, 5 June" in joined[-1]["text"]

    before = len(waiting.messages)
    await salon_api(salon, "POST", f"/bookings/{taken}/cancel", {"cancellationReason": "x"})
    offer = await offered(waiting, before)
    assert "10:00" in offer["text"]
    assert not any("freed up" in m.get("text", "") for m in evening.messages)

    # On 3 June every wait for 2 June is over (the one left: 3 to 5 June); My bookings lists
    # only what is left.
    salon.clock.advance(2 * 24 * 3600)
    await eventually(lambda: _equals(redis.zcard(keys.waitlist_queue), 1), timeout=10)
    await evening.say("/start")
    mine = await evening.tap("m:mine")
    assert mine[-1]["text"].startswith("You have no upcoming bookings.")
    await waiting.say("/start")
    mine = await waiting.tap("m:mine")
    assert "Wed, 3 June to Fri, 5 June" in mine[-1]["text"]
    assert "Tue, 2 June" not in mine[-1]["text"]


async def _equals(value: Any, wanted: Any) -> bool:
    return bool(await value == wanted)


async def test_the_salons_analytics_count_joined_offered_booked_and_expired(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, analytics_db: str
) -> None:
    gateway = await start(
        start_gateway,
        salon,
        calcom_webhook_secret=CAL_SECRET,
        calcom_waitlist_seconds=0.05,
        analytics_database_url=analytics_db,
        analytics_salt="a-long-random-salt-for-waitlist-tests",
    )
    async with CalcomClient(salon.url, KEY, breaker=CircuitBreaker("calcom")) as calcom:
        triggers = sorted(calcom_handler.TRIGGERS)
        await calcom.ensure_webhook(f"{gateway.url}/webhooks/calcom", triggers, CAL_SECRET)
    anna = master_id(salon, "Anna")
    taken = await booked_by_staff(salon, anna, TEN, "Xenia")
    booker, idle = Chat(sandbox.telegram, 631), Chat(sandbox.telegram, 632)
    await join(booker, anna)
    await join(idle, anna, part="evening")
    before = len(booker.messages)
    await salon_api(salon, "POST", f"/bookings/{taken}/cancel", {"cancellationReason": "x"})
    await offered(booker, before)
    await booker.tap("w:ok:", prefix=True)
    await booker.share_phone("+79165550631")
    done = await booker.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")
    salon.clock.advance(2 * 24 * 3600)  # 3 June: the evening wait for 2 June is over

    async def kinds() -> list[tuple[str, str | None, str]] | None:
        await eventually(
            lambda: _equals(gateway.runtime.redis.xlen(gateway.runtime.keys.analytics), 0)
        )
        connection = await asyncpg.connect(analytics_db)
        try:
            rows = await connection.fetch(
                "SELECT kind, service, client FROM events WHERE kind LIKE 'waitlist_%' ORDER BY at"
            )
        finally:
            await connection.close()
        found = [(r["kind"], r["service"], r["client"]) for r in rows]
        return found if len(found) == 5 else None

    found = await eventually(kinds, timeout=20)
    assert sorted(kind for kind, _, _ in found) == [
        "waitlist_booked",
        "waitlist_expired",
        "waitlist_joined",
        "waitlist_joined",
        "waitlist_offered",
    ]
    assert {service for _, service, _ in found} == {"womens-haircut"}
    # Clients as salted hashes, never their chat ids.
    assert all(len(c) == 24 and set(c) <= set("0123456789abcdef") for _, _, c in found)


async def test_a_client_the_salon_books_elsewhere_waits_no_more(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    gateway = await open_salon(start_gateway, salon)
    anna = master_id(salon, "Anna")
    taken = await booked_by_staff(salon, anna, TEN, "Xenia")
    vera = Chat(sandbox.telegram, 641)
    await join(vera, anna)
    # The salon knows her email; staff book her a haircut on Thursday in Cal.com itself.
    await BookingLinks(gateway.runtime.redis, gateway.runtime.keys).link(
        "tg:641", phone=None, email="vera@example.com"
    )
    before = len(vera.messages)
    await booked_by_staff(salon, anna, "2026-06-04T08:00:00Z", "Vera")
    await eventually(lambda: len(vera.messages) > before)  # told of the booking
    queue = gateway.runtime.keys.waitlist_queue
    await eventually(lambda: _equals(gateway.runtime.redis.zcard(queue), 0))
    # The 10:00 that frees up now is offered to nobody.
    await salon_api(salon, "POST", f"/bookings/{taken}/cancel", {"cancellationReason": "x"})
    await salon.calendar.flush_webhooks()
    await asyncio.sleep(0.3)
    assert not any("freed up" in m.get("text", "") for m in vera.messages)
    assert holds(salon) == []


async def test_an_offer_left_for_another_time_is_released_to_the_next_client(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await open_salon(start_gateway, salon)
    anna = master_id(salon, "Anna")
    taken = await booked_by_staff(salon, anna, TEN, "Xenia")
    first, second = (Chat(sandbox.telegram, n) for n in (611, 612))
    await join(first, anna)
    await join(second, anna)
    before_first, before_second = len(first.messages), len(second.messages)
    await salon_api(salon, "POST", f"/bookings/{taken}/cancel", {"cancellationReason": "Ill"})
    await offered(first, before_first)

    # "Book it" for 10:00; no phone on file, so the summary asks for it. The client goes back
    # and picks 11:00 instead, then confirms.
    details = await first.tap("w:ok:", prefix=True)
    assert any("I only need your details" in m.get("text", "") for m in details)
    await first.tap("b:back")
    await first.tap(next(data for data, label in first.buttons() if label == "11:00"))
    await first.share_phone("+79165550611")
    done = await first.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")
    [booking] = salon.made_in_chat()
    assert booking["start"] == "2026-06-02T08:00:00.000Z"

    # 10:00 is not lost: its hold goes back and the next client waiting is offered it.
    again = await offered(second, before_second)
    assert "on Tuesday, 2 June, at 10:00" in again["text"]
    assert [start for start, _ in holds(salon)] == [TEN]
    assert not sandbox.telegram.errors


async def test_an_old_part_or_range_button_under_a_draft_with_no_day_is_stale(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await open_salon(start_gateway, salon)
    anna = master_id(salon, "Anna")
    chat = Chat(sandbox.telegram, 631)
    await chat.say("/start")
    await chat.tap("m:book")
    await chat.tap("b:s:womens-haircut")
    await chat.tap(f"b:m:{anna}")  # a service, no day yet
    for data in ("w:p:morning", "w:r:3"):
        before = len(chat.messages)
        await chat.tg.client_taps(631, forge(chat, data), data)
        await eventually(
            lambda before=before: any(
                "That button is no longer active" in m.get("text", "")
                for m in chat.messages[before:]
            ),
            timeout=10,
        )
        await chat.tap(f"b:m:{anna}")
    assert not sandbox.telegram.errors


async def test_a_freed_time_no_one_can_take_just_then_is_offered_later(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await open_salon(start_gateway, salon)
    anna = master_id(salon, "Anna")
    one = await booked_by_staff(salon, anna, TEN, "Xenia")
    two = await booked_by_staff(salon, anna, "2026-06-02T10:00:00Z", "Yana")  # 13:00 Moscow
    chat = Chat(sandbox.telegram, 641)
    await join(chat, anna, part="morning")
    await join(chat, anna, part="afternoon")
    before = len(chat.messages)
    await salon_api(salon, "POST", f"/bookings/{one}/cancel", {"cancellationReason": "x"})
    first = await offered(chat, before)
    assert "at 10:00" in first["text"]
    # 13:00 frees up while the client has the 10:00 offer out: it cannot be theirs just now.
    await salon_api(salon, "POST", f"/bookings/{two}/cancel", {"cancellationReason": "x"})
    await asyncio.sleep(0.3)
    before = len(chat.messages)
    await chat.tap("w:no:", prefix=True)
    salon.clock.advance(60)
    second = await offered(chat, before)
    assert "at 13:00" in second["text"]


async def test_a_typed_ok_after_the_offer_ended_is_no_answer_to_it(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    await open_salon(start_gateway, salon)
    anna = master_id(salon, "Anna")
    taken = await booked_by_staff(salon, anna, TEN, "Xenia")
    chat = Chat(sandbox.telegram, 651)
    await join(chat, anna)
    before = len(chat.messages)
    await salon_api(salon, "POST", f"/bookings/{taken}/cancel", {"cancellationReason": "x"})
    await offered(chat, before)
    salon.clock.advance(11 * 60)  # the hold is over
    await eventually(lambda: holds(salon) == [], timeout=10)
    said = await chat.say("ok")
    assert not any("no longer held" in m.get("text", "") for m in said)
