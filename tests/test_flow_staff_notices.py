"""Salon staff paged through Novu (issue 21): a handoff puts one in-app notice in each staff
member's feed, through the real gateway and the Chatwoot and Novu stand-ins; a conversation
Chatwoot shows is with someone already pages no one."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from gateway.integrations.novu.api import NovuClient
from gateway.integrations.novu.staff import (
    HANDOFF,
    NO_SHOW,
    OUT_OF_HOURS,
    UNDELIVERED,
    WAITLIST_BOOKED,
    subscriber_id,
    topic_key,
)
from gateway.pipeline.dlq import DeadLetters
from gateway.pipeline.resilience import CircuitBreaker
from gateway.sandbox.novu import NovuSandbox
from gateway.sandbox.whatsapp import WhatsAppSandbox
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.support.staff_pages import staff_from_chatwoot
from tests.test_flow_analytics import BLOCKED, SALT
from tests.test_flow_booking import Chat, Salon, master_id, salon_api
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_handoff import Desk, start_desk
from tests.test_flow_handoff import desk as desk  # the fixture, shared
from tests.test_flow_notifications import (
    CAL_SECRET,
    NOVU_KEY,
    VISIT,
    book_in_chat,
    connect,
    notifying,
    post_signed,
    runs,
)
from tests.test_flow_notifications import novu as novu  # the fixture, shared
from tests.test_flow_waitlist import TEN, booked_by_staff, join, offered
from tests.test_flow_whatsapp import Phone, text_of
from tests.test_flow_whatsapp import wa as wa  # the fixture, shared


def handoff_notices(novu: NovuSandbox, conversation: int) -> dict[str, list[Any]]:
    return {
        subscriber: [
            n
            for n in feed
            if n["templateIdentifier"] == HANDOFF and n["payload"]["conversation"] == conversation
        ]
        for subscriber, feed in novu.feed.items()
    }


async def test_a_handoff_pages_the_salons_staff_once_and_a_taken_one_pages_no_one(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    # The gateway's token is an administrator's: opening a conversation assigns no one, so the
    # inbox's auto-assignment (below) stands.
    desk.chatwoot.role = "administrator"
    gateway = await start_desk(start_gateway, salon, desk, **notifying(novu))
    await connect(gateway, salon, novu)
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    olga = subscriber_id(salon_id, 3)
    assert olga in staff
    assert novu.topics[topic_key(salon_id)] == staff
    assert novu.subscribers[olga]["email"] == "olga@salon.example"
    # Syncing again adds no one twice.
    assert await staff_from_chatwoot(desk, novu, salon_id) == staff
    assert novu.topics[topic_key(salon_id)] == staff

    chat = Chat(sandbox.telegram, 731)
    await chat.say("/start")
    await sandbox.telegram.client_says(731, "can i talk to a real person plz")
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:731"))
    await eventually(lambda: thread.status == "open")
    notices = await eventually(
        lambda: (found := handoff_notices(novu, thread.id)) and len(found) == len(staff) and found
    )
    for subscriber in staff:
        [notice] = notices[subscriber]
        assert notice["subject"] == "A client waits for a person"
        # It says why, on which messenger and in which language (routing's facts).
        assert notice["content"] == (
            f"A client on Telegram, writing in English, waits for a person in conversation "
            f"#{thread.id}: they asked for a person. Nobody has taken it yet."
        )
        assert notice["payload"]["reason"] == "person"
        assert notice["transactionId"].startswith(f"{salon_id}:handoff:{thread.id}:")
        assert notice["cta"]["data"]["url"].endswith(f"/conversations/{thread.id}")
    # The feed the Inbox reads, through Novu's API.
    async with NovuClient(novu.url, NOVU_KEY, CircuitBreaker("novu")) as client:  # type: ignore[attr-defined]
        feed = await client._call("GET", f"/v1/subscribers/{olga}/notifications/feed")
    assert [n["content"] for n in feed] == [notices[olga][0]["content"]]

    # The inbox gives new conversations to Olga: the next handoff is taken, no one is paged.
    desk.chatwoot.inboxes[desk.telegram_inbox].auto_assignee = 3
    other = Chat(sandbox.telegram, 732)
    await other.say("/start")
    await sandbox.telegram.client_says(732, "Позовите администратора, пожалуйста")
    taken = await eventually(lambda: desk.chatwoot.conversation_for("tg:732"))
    await eventually(lambda: taken.status == "open" and taken.assignee_id == 3)
    # Calls to Chatwoot keep the client's order: once this line is there, the handoff's
    # delivery (its page or none) is over.
    await sandbox.telegram.client_says(732, "Жду")
    await eventually(lambda: any(m["content"] == "Жду" for m in taken.messages))
    await novu.settle()
    assert handoff_notices(novu, taken.id) == {s: [] for s in novu.feed}
    assert [r.subscriber for r in novu.runs if r.workflow == HANDOFF] == staff


async def test_a_waitlist_time_booked_pages_the_staff_once_in_the_salons_language(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    settings = notifying(novu) | {"calcom_waitlist_seconds": 0.05, "default_locale": "ru"}
    gateway = await start_desk(start_gateway, salon, desk, **settings)
    await connect(gateway, salon, novu)
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    anna = master_id(salon, "Anna")
    taken = await booked_by_staff(salon, anna, TEN, "Xenia")
    chat = Chat(sandbox.telegram, 741)
    await join(chat, anna)
    before = len(chat.messages)
    await salon_api(salon, "POST", f"/bookings/{taken}/cancel", {"cancellationReason": "Ill"})
    await offered(chat, before)
    await chat.tap("w:ok:", prefix=True)
    await chat.share_phone("+79165550741")
    done = await chat.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")
    [booking] = salon.made_in_chat()

    def notices() -> dict[str, list[Any]]:
        return {
            s: [n for n in novu.feed.get(s, []) if n["templateIdentifier"] == WAITLIST_BOOKED]
            for s in staff
        }

    found = await eventually(lambda: all(notices().values()) and notices())
    for subscriber in staff:
        [notice] = found[subscriber]
        # Staff read it in the salon's language (DEFAULT_LOCALE), the client wrote in English.
        assert notice["subject"] == "Запись из листа ожидания"
        assert notice["content"].startswith("Клиент из листа ожидания записался: ")
        assert "10:00" in notice["content"]
        assert notice["transactionId"] == f"{salon_id}:waitlist:{booking['uid']}"


async def undelivered_reminder(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
    analytics_db: str,
    number: int,
    *,
    desk_down: bool = False,
    **more: Any,
) -> dict[str, list[Any]]:
    """A client books, then blocks the bot: Telegram refuses their reminder for good (403)
    and it is dead-lettered. What each staff member's feed holds of the page that causes.
    The process has analytics: the notice's failure fact says what the notice was."""
    settings = notifying(novu) | {"analytics_database_url": analytics_db, "analytics_salt": SALT}
    settings |= more
    gateway = await start_desk(start_gateway, salon, desk, **settings)
    await connect(gateway, salon, novu)
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    chat = Chat(sandbox.telegram, number)
    await book_in_chat(chat, salon, f"+7916000{number:04d}")
    await eventually(lambda: len(runs(novu, "booking-reminder")) == 2)
    # The client has blocked the bot by the time of the reminder: Telegram refuses it for good.
    sandbox.telegram.fail_next("sendMessage", **BLOCKED)
    desk.chatwoot.down = desk_down
    salon.clock.now = VISIT - timedelta(hours=24)
    await novu.run_due()

    def notices() -> dict[str, list[Any]]:
        return {
            s: [n for n in novu.feed.get(s, []) if n["templateIdentifier"] == UNDELIVERED]
            for s in staff
        }

    found: dict[str, list[Any]] = await eventually(lambda: all(notices().values()) and notices())
    return found


async def test_a_reminder_the_messenger_refuses_for_good_pages_the_staff_with_the_client(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
    analytics_db: str,
) -> None:
    found = await undelivered_reminder(
        start_gateway, sandbox, salon, desk, novu, salon_id, analytics_db, 751
    )
    thread = desk.thread("tg:751")
    name = desk.chatwoot.contacts[thread.contact_id].name
    assert name  # the name Chatwoot shows for the client
    for [notice] in found.values():
        assert notice["subject"] == "A notice did not reach a client"
        # The visit is Wednesday 3 June 10:00 in the salon's time (VISIT).
        assert notice["content"] == (
            f"The reminder (visit on Wed, 3 June, 10:00) could not be delivered to {name} "
            "on Telegram. Please reach them another way."
        )
        assert "0751" not in notice["content"]  # never the client's phone number
        assert notice["payload"]["url"] == f"{desk.url}/app/accounts/1/conversations/{thread.id}"
        assert notice["payload"]["conversation"] == "telegram:751"
        assert notice["transactionId"].startswith(f"{salon_id}:undelivered:")


async def test_a_page_chatwoot_cannot_address_goes_without_a_link(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
    analytics_db: str,
) -> None:
    found = await undelivered_reminder(
        start_gateway, sandbox, salon, desk, novu, salon_id, analytics_db, 752, desk_down=True
    )
    for [notice] in found.values():
        assert notice["content"] == (
            "The reminder (visit on Wed, 3 June, 10:00) could not be delivered to a client "
            "on Telegram. Please reach them another way."
        )
        assert notice["payload"]["url"] == ""


async def test_a_client_the_desk_has_no_conversation_with_is_linked_to_the_contact_search(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
    analytics_db: str,
) -> None:
    # Mirrored only from a handoff: this client, who never asked for a person, has no
    # conversation in Chatwoot.
    found = await undelivered_reminder(
        start_gateway,
        sandbox,
        salon,
        desk,
        novu,
        salon_id,
        analytics_db,
        753,
        chatwoot_mirror="handoff",
    )
    assert desk.chatwoot.conversation_for("tg:753") is None
    for [notice] in found.values():
        assert notice["payload"]["url"] == f"{desk.url}/app/accounts/1/contacts?search=tg%3A753"
        assert "could not be delivered to a client on Telegram" in notice["content"]


async def test_a_booking_made_while_the_salon_is_closed_pages_the_staff(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    # The salon's clock says Monday 10:00; staff come in at noon.
    settings = notifying(novu) | {"salon_working_hours": "Mon-Sun 12:00-20:00"}
    gateway = await start_desk(start_gateway, salon, desk, **settings)
    await connect(gateway, salon, novu)
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    chat = Chat(sandbox.telegram, 761)
    uid = await book_in_chat(chat, salon, "+79160000761")

    def notices() -> dict[str, list[Any]]:
        return {
            s: [n for n in novu.feed.get(s, []) if n["templateIdentifier"] == OUT_OF_HOURS]
            for s in staff
        }

    found = await eventually(lambda: all(notices().values()) and notices())
    for subscriber in staff:
        [notice] = found[subscriber]
        assert notice["subject"] == "Booked while the salon was closed"
        assert notice["content"].startswith("A client booked Women's haircut on ")
        assert notice["transactionId"] == f"{salon_id}:out-of-hours:booked:{uid}"


async def test_a_no_show_marked_in_calcom_pages_the_staff_once(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    gateway = await start_desk(start_gateway, salon, desk, **notifying(novu))
    await connect(gateway, salon, novu)
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    uid = await book_in_chat(Chat(sandbox.telegram, 771), salon, "+79160000771")
    body = {
        "triggerEvent": "BOOKING_NO_SHOW_UPDATED",
        "payload": {"bookingUid": uid, "attendees": [{"email": "x@y.z", "noShow": True}]},
    }
    raw = json.dumps(body).encode()
    signature = hmac.new(CAL_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    for _ in range(2):  # Cal.com sends it again: still one page
        assert await post_signed(f"{gateway.url}/webhooks/calcom", raw, signature) == 200

    def notices() -> dict[str, list[Any]]:
        return {
            s: [n for n in novu.feed.get(s, []) if n["templateIdentifier"] == NO_SHOW]
            for s in staff
        }

    found = await eventually(lambda: all(notices().values()) and notices())
    await novu.settle()
    for subscriber in staff:
        [notice] = found[subscriber]
        assert notice["content"] == f"A client was marked absent for booking {uid}."
        assert notice["payload"]["channel"] == "telegram"


async def test_a_handoff_while_novu_is_down_reaches_chatwoot_and_pages_once_novu_is_back(
    start_gateway: GatewayFactory,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    wa: WhatsAppSandbox,
    salon_id: str,
) -> None:
    """The page is an outbox entry queued with the handoff: Novu being down neither loses it
    nor fails the handoff. It says why (a complaint), where (WhatsApp) and in which language
    the client writes, in the salon's language."""
    desk.chatwoot.role = "administrator"  # opening a conversation assigns no one
    settings = notifying(novu) | {
        "default_locale": "ru",
        # Room for Novu to come back before the page runs out of tries.
        "outbox_retry_schedule": (0.3, 0.6, 1.2, 2.4),
    }
    gateway = await start_desk(start_gateway, salon, desk, wa, **settings)
    await connect(gateway, salon, novu)
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    novu.down = True
    maria = Phone(wa)
    await maria.say("Здравствуйте")
    await maria.say(
        "Хочу оставить жлобу, мастер мне нахамила",
        until=lambda sent: "Я передал" in text_of(sent),
    )
    thread = await eventually(lambda: desk.chatwoot.conversation_for(f"wa:{maria.key}"))
    await eventually(lambda: thread.status == "open")
    assert desk.notes(f"wa:{maria.key}")  # the handoff is in Chatwoot's queue all the same
    await eventually(lambda: novu.refused >= 1)
    assert [r for r in novu.runs if r.workflow == HANDOFF] == []

    novu.down = False
    notices = await eventually(
        lambda: (
            (found := handoff_notices(novu, thread.id))
            and all(found.get(s) for s in staff)
            and found
        ),
        timeout=10,
    )
    await novu.settle()
    for subscriber in staff:
        [notice] = notices[subscriber]
        assert notice["subject"] == "Клиент ждёт сотрудника"
        assert notice["content"] == (
            f"Клиент в WhatsApp (пишет на языке: русский) ждёт сотрудника в разговоре "
            f"№{thread.id}: сообщение похоже на жалобу. Его ещё никто не взял."
        )
        facts = {k: notice["payload"][k] for k in ("reason", "channel", "language")}
        assert facts == {"reason": "complaint", "channel": "whatsapp", "language": "ru"}
    assert len([r for r in novu.runs if r.workflow == HANDOFF]) == len(staff)


async def test_a_handoff_delivered_again_and_a_page_sent_again_page_each_member_once(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    """Chatwoot took the handoff's first post but its answer was lost (the handoff is delivered
    again), and Novu took the page but its answer was lost (the page is sent again): the
    retried handoff queues no second page, and the retried page names the same transaction."""
    desk.chatwoot.role = "administrator"
    settings = notifying(novu) | {"chatwoot_mirror": "handoff"}
    gateway = await start_desk(start_gateway, salon, desk, **settings)
    await connect(gateway, salon, novu)
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    chat = Chat(sandbox.telegram, 781)
    await chat.say("/start")
    desk.chatwoot.lose_answers(1)
    novu.lose_answers = 1
    await sandbox.telegram.client_says(781, "can i talk to a real person plz")
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:781"))
    await eventually(lambda: thread.status == "open")
    await eventually(lambda: all(handoff_notices(novu, thread.id).get(s) for s in staff))
    await eventually(lambda: novu.lose_answers == 0)
    await asyncio.sleep(0.5)  # time for a second page, were one queued
    await novu.settle()
    assert {s: len(n) for s, n in handoff_notices(novu, thread.id).items()} == dict.fromkeys(
        staff, 1
    )
    assert len([r for r in novu.runs if r.workflow == HANDOFF]) == len(staff)
    # The page went through Novu twice (the lost answer), with one Idempotency-Key.
    triggers = [c for c in novu.calls if c == ("POST", "/v1/events/trigger")]
    assert len(triggers) == 2


async def test_a_page_novu_keeps_refusing_is_dead_lettered_and_replayed_once_it_is_back(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
    redis: Redis,
) -> None:
    desk.chatwoot.role = "administrator"
    gateway = await start_desk(start_gateway, salon, desk, **notifying(novu))
    await connect(gateway, salon, novu)
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    novu.down = True
    chat = Chat(sandbox.telegram, 791)
    await chat.say("/start")
    await sandbox.telegram.client_says(791, "operator please")
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:791"))
    letters = DeadLetters(redis, salon_id, 4)
    [letter] = await eventually(letters.newest, timeout=5)
    # What `frontdesk dlq` lists: the page, with Novu's answer.
    assert letter.describe() == "novu handoff-page to chat staff"
    assert "503" in letter.error
    assert thread.status == "open"

    novu.down = False
    replayed, _missing = await letters.replay(None)
    assert replayed == [letter.id]
    await eventually(lambda: all(handoff_notices(novu, thread.id).get(s) for s in staff))
    await novu.settle()
    assert len([r for r in novu.runs if r.workflow == HANDOFF]) == len(staff)
