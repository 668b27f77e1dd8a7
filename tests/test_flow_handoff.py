"""Handing clients to salon staff in Chatwoot and back, through the real gateway and sandboxes.

The Chatwoot sandbox checks request bodies against the vendor's spec when it is present and
answers webhooks the way an API inbox does: signed, once, possibly never.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.integrations.chatwoot.api import ChatwootClient, is_failure
from gateway.integrations.chatwoot.helpdesk import HelpDeskState
from gateway.pipeline.resilience import CircuitBreaker
from gateway.sandbox.chatwoot import ChatwootSandbox
from gateway.sandbox.chatwoot import Conversation as Thread
from gateway.sandbox.whatsapp import WhatsAppSandbox
from gateway.wiring.runtime import RUNTIME
from handlers.chatwoot import reconcile
from tests.conftest import CONTRACTS, GatewayFactory, Sandbox, eventually
from tests.test_flow_booking import Chat, Salon, master_id, start
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_whatsapp import (
    APP_SECRET,
    NUMBER_ID,
    VERIFY_TOKEN,
    WA_TOKEN,
    Phone,
    text_of,
)
from tests.test_flow_whatsapp import wa as wa  # the fixture, shared

CW_SPEC = CONTRACTS / "chatwoot.openapi.json"
CW_TOKEN = "cw-agent-token"
JSON = dict[str, Any]


@dataclass
class Desk:
    chatwoot: ChatwootSandbox
    url: str
    telegram_inbox: int
    whatsapp_inbox: int

    def thread(self, key: str) -> Thread:
        found = self.chatwoot.conversation_for(key)
        assert found is not None, f"no Chatwoot conversation for {key}"
        return found

    def notes(self, key: str) -> list[str]:
        return [m["content"] for m in self.thread(key).messages if m["private"]]


@pytest.fixture
async def desk() -> AsyncIterator[Desk]:
    chatwoot = ChatwootSandbox(CW_TOKEN, 1, CW_SPEC if CW_SPEC.exists() else None)
    telegram_inbox = chatwoot.add_inbox("Telegram (gateway)")
    whatsapp_inbox = chatwoot.add_inbox("WhatsApp (gateway)")
    server = TestServer(chatwoot.app())
    await server.start_server()
    yield Desk(chatwoot, str(server.make_url("")).rstrip("/"), telegram_inbox.id, whatsapp_inbox.id)
    await chatwoot.close()
    await server.close()


async def start_desk(
    start_gateway: GatewayFactory,
    salon: Salon,
    desk: Desk,
    wa: WhatsAppSandbox | None = None,
    **settings: Any,
) -> Any:
    cw = desk.chatwoot
    secrets = ",".join(inbox.secret for inbox in cw.inboxes.values())
    values: dict[str, Any] = {
        "chatwoot_api_token": CW_TOKEN,
        "chatwoot_url": desk.url,
        "chatwoot_account_id": 1,
        "chatwoot_telegram_inbox_id": desk.telegram_inbox,
        "chatwoot_whatsapp_inbox_id": desk.whatsapp_inbox,
        "chatwoot_webhook_secret": secrets,
        "chatwoot_team_id": 2,
        "chatwoot_reconcile_seconds": 0.3,
        # The sandbox stops before the gateway at a test's end: calls to it must give up fast.
        "service_timeout_seconds": 1.0,
        **settings,
    }
    if wa is not None:
        values |= {
            "whatsapp_access_token": WA_TOKEN,
            "whatsapp_phone_number_id": NUMBER_ID,
            "whatsapp_app_secret": APP_SECRET,
            "whatsapp_verify_token": VERIFY_TOKEN,
            "whatsapp_api_url": f"{wa.url}/v23.0",  # type: ignore[attr-defined]
            "whatsapp_rate_per_chat": 1000.0,
            "whatsapp_burst_per_chat": 100,
        }
    gateway = await start(start_gateway, salon, **values)
    for inbox in cw.inboxes.values():
        inbox.webhook_url = f"{gateway.url}/webhooks/chatwoot"
    if wa is not None:
        await wa.subscribe(f"{gateway.url}/webhooks/whatsapp", VERIFY_TOKEN)
    return gateway


def texts(chat: Chat) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in chat.messages]


async def test_a_telegram_client_is_handed_to_staff_and_back_at_the_same_step(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    gateway = await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, 701)
    anna = master_id(salon, "Anna")
    await chat.say("/start")
    await chat.tap("m:book")
    await chat.tap("b:s:womens-haircut")
    await chat.tap(f"b:m:{anna}")
    times = await chat.tap("b:d:20260602")
    assert "Choose a time" in times[-1]["text"]

    # Mirrored as it happens, while the bot owns it: pending, the bot's turns marked.
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:701"))
    assert thread.status == "pending"
    await eventually(lambda: len(thread.messages) >= 8)
    assert thread.messages[0]["message_type"] == "incoming"
    assert thread.messages[0]["content"] == "/start"
    assert thread.messages[1]["content"].startswith("🤖 Hello, Anna!")

    # The client asks for a person in their own words.
    before = len(chat.messages)
    await sandbox.telegram.client_says(701, "Can I talk to a real person please?")
    told = await eventually(lambda: chat.messages[before:])
    assert told[-1]["text"].startswith("🙋 I have passed your conversation to the salon's staff.")
    assert "Our hours: Mon–Sun 10:00–21:00" in told[-1]["text"]
    await eventually(lambda: thread.status == "open" and thread.labels == ["handoff"])
    assert thread.team_id == 2
    [note] = await eventually(lambda: desk.notes("tg:701"))
    assert "asked for a person in their own words" in note
    assert "“Can I talk to a real person please?”" in note
    assert "Client: Anna · telegram · en" in note
    assert "Was choosing a time for Women's haircut with Anna Petrova." in note
    assert "Booking in progress: Women's haircut · Anna Petrova" in note

    # While a person owns it the bot is silent; the client's words reach staff.
    before = len(chat.messages)
    await sandbox.telegram.client_says(701, "Is 14:30 possible?")
    await eventually(lambda: any(m["content"] == "Is 14:30 possible?" for m in thread.messages))
    assert chat.messages[before:] == []

    # Staff answer in Chatwoot: the client gets it once, and Chatwoot learns it was sent.
    reply = desk.chatwoot.agent_replies(thread.id, "14:30 works! Shall I book it?")
    await eventually(lambda: "14:30 works! Shall I book it?" in texts(chat))
    await eventually(lambda: (reply["id"], "sent") in desk.chatwoot.updates)
    desk.chatwoot.agent_note(thread.id, "VIP client, offer tea")
    await desk.chatwoot.settle()

    # Resolved: the bot is back and offers to continue at the time step, choices kept.
    before = len(chat.messages)
    desk.chatwoot.resolve(thread.id)
    back = await chat._answer(before)
    assert back[-1]["text"] == (
        "Thank you for waiting! I am back with you. "
        "Shall we finish your booking where you left off?"
    )
    await eventually(lambda: thread.messages[-1]["content"].startswith("🤖 Thank you for waiting"))
    resumed = await chat.tap("b:resume")
    assert "Tue, 2 June" in resumed[-1]["text"]
    assert "Choose a time" in resumed[-1]["text"]
    assert (f"b:t:202606020700:{anna}", "10:00") in chat.buttons()
    assert not any("VIP" in t for t in texts(chat))  # a private note never reaches the client
    # Staff read a tap as the button said, also a button of an older message.
    assert any(m["content"] == "▶️ 📅 Book" for m in thread.messages)
    menu = next(m for m in chat.messages if m["text"].startswith("Hello, Anna!"))
    await sandbox.telegram.client_taps(701, menu["message_id"], "m:info")
    await eventually(lambda: any(m["content"] == "▶️ 📍 Address & hours" for m in thread.messages))
    assert texts(chat).count("14:30 works! Shall I book it?") == 1
    assert desk.chatwoot.errors == []
    metrics = await (await gateway.http.get(f"{gateway.url}/metrics")).text()
    assert 'frontdesk_outbox_messages_total{channel="chatwoot",result="sent"}' in metrics


async def test_an_agent_reply_delivered_twice_reaches_the_client_once(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    gateway = await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, 702)
    await chat.say("/start")
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:702"))
    message = desk.chatwoot.agent_replies(thread.id, "Hello from the salon")
    await eventually(lambda: "Hello from the salon" in texts(chat))
    # The same webhook again (Chatwoot #11901), signed.
    payload = {
        **message,
        "event": "message_created",
        "conversation": desk.chatwoot._conversation_json(thread),
    }
    raw = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    secret = desk.chatwoot.inboxes[desk.telegram_inbox].secret.encode()
    signature = hmac.new(secret, stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    headers = {
        "X-Chatwoot-Signature": f"sha256={signature}",
        "X-Chatwoot-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    async with gateway.http.post(
        f"{gateway.url}/webhooks/chatwoot", data=raw, headers=headers
    ) as answer:
        assert answer.status == 200
    # Forged, or replayed too late: refused.
    forged = headers | {"X-Chatwoot-Signature": "sha256=" + "0" * 64}
    async with gateway.http.post(
        f"{gateway.url}/webhooks/chatwoot", data=raw, headers=forged
    ) as answer:
        assert answer.status == 401
    old = str(int(time.time()) - 3600)
    stale_sig = hmac.new(secret, old.encode() + b"." + raw, hashlib.sha256).hexdigest()
    stale = headers | {"X-Chatwoot-Signature": f"sha256={stale_sig}", "X-Chatwoot-Timestamp": old}
    async with gateway.http.post(
        f"{gateway.url}/webhooks/chatwoot", data=raw, headers=stale
    ) as answer:
        assert answer.status == 401
    await eventually(lambda: desk.chatwoot.deliveries)
    await asyncio.sleep(0.4)
    assert texts(chat).count("Hello from the salon") == 1
    # That reply was a takeover: the bot now keeps quiet.
    before = len(chat.messages)
    await sandbox.telegram.client_says(702, "Thanks!")
    await eventually(lambda: any(m["content"] == "Thanks!" for m in thread.messages))
    assert chat.messages[before:] == []


async def test_a_dropped_webhook_is_recovered_once_by_reconciliation(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, 703)
    await chat.say("/start")
    before = len(chat.messages)
    await sandbox.telegram.client_says(703, "Позовите администратора")
    await eventually(lambda: chat.messages[before:])
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:703"))
    await eventually(lambda: thread.status == "open")
    desk.chatwoot.drop_next(1)
    desk.chatwoot.agent_replies(thread.id, "Sorry for the wait, here I am")
    assert desk.chatwoot.deliveries[-1] == ("message_created", 0)  # lost
    await eventually(lambda: "Sorry for the wait, here I am" in texts(chat), timeout=5)
    await asyncio.sleep(1.0)  # several more reconciliation rounds
    assert texts(chat).count("Sorry for the wait, here I am") == 1

    # A last word whose webhook is lost, then the resolve: still delivered, once, and it takes
    # nothing over (the bot answers the client again).
    desk.chatwoot.drop_next(1)
    desk.chatwoot.agent_replies(thread.id, "See you on Friday!")
    before = len(chat.messages)
    desk.chatwoot.resolve(thread.id)
    await eventually(lambda: any("Thank you for waiting" in t for t in texts(chat)[before:]))
    await eventually(lambda: "See you on Friday!" in texts(chat), timeout=5)
    await asyncio.sleep(0.8)
    assert texts(chat).count("See you on Friday!") == 1
    menu = await chat.say("/start")
    assert "Welcome" in menu[-1]["text"]


async def test_a_bot_message_queued_before_a_takeover_is_held_back(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    gateway = await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, 704)
    await chat.say("/start")
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:704"))
    # Staff take over a conversation the bot had (pending): their reply is a takeover.
    desk.chatwoot.agent_replies(thread.id, "Hi, Olga here")
    await eventually(lambda: "Hi, Olga here" in texts(chat))
    # A bot reply that was already in the outbox when the person took over.
    runtime = gateway.runtime
    shard = runtime.keys.shard_of("tg:704")
    await runtime.redis.xadd(
        runtime.keys.outbound(shard),
        {
            "channel": "telegram",
            "chat": "704",
            "method": "sendMessage",
            "params": json.dumps({"chat_id": 704, "text": "A late bot reply"}),
            "ephemeral": "0",
            "origin": "test",
            "author": "bot",
        },
    )
    metrics_url = f"{gateway.url}/metrics"

    async def held() -> bool:
        text = await (await gateway.http.get(metrics_url)).text()
        return 'frontdesk_outbox_messages_total{channel="telegram",result="held"} 1.0' in text

    await eventually(held)
    assert "A late bot reply" not in texts(chat)


async def test_whatsapp_handoff_and_a_late_reply_waits_for_the_client(
    start_gateway: GatewayFactory,
    salon: Salon,
    desk: Desk,
    wa: WhatsAppSandbox,
) -> None:
    await start_desk(start_gateway, salon, desk, wa, chatwoot_mirror="handoff")
    phone = Phone(wa)
    await phone.say("Hello")
    # Mirror "handoff": nothing in Chatwoot until the handoff.
    assert desk.chatwoot.conversation_for(f"wa:{phone.key}") is None
    told = await phone.tap("m:person", until=lambda sent: "I have passed" in text_of(sent))
    assert text_of(told[-1]).startswith("🙋 I have passed your conversation")
    thread = await eventually(lambda: desk.chatwoot.conversation_for(f"wa:{phone.key}"))
    notes = await eventually(
        lambda: len(desk.notes(f"wa:{phone.key}")) >= 2 and desk.notes(f"wa:{phone.key}")
    )
    assert notes[0].startswith("📜\n👤 Hello")  # the recent transcript first
    assert "asked for a person (menu)" in notes[1]
    assert "whatsapp" in notes[1]
    assert "+7 916 123-45-67" in notes[1]
    await eventually(lambda: thread.status == "open")

    # A photo while a person owns it: relayed as the file itself, no bot answer.
    before = len(phone.received)
    await wa.client_sends_file(phone.key, "image", b"\xff\xd8jpeg-bytes", "image/jpeg", "my nails")
    photo = await eventually(
        lambda: next((m for m in thread.messages if "my nails" in m["content"]), None)
    )
    [attachment] = photo["attachments"]
    assert attachment["file_type"] == "image"
    assert desk.chatwoot.files[attachment["id"]][1:] == ("image/jpeg", b"\xff\xd8jpeg-bytes")
    assert photo["message_type"] == "incoming"
    assert phone.received[before:] == []

    # Staff answer a day later: outside the window, the template, then the answer on "Continue".
    salon.clock.now += timedelta(hours=30)
    desk.chatwoot.agent_replies(thread.id, "We can fix them on Friday at 12:00")
    template = await eventually(lambda: [s for s in phone.received if s.type == "template"])
    assert template[0].body["template"]["name"] == "frontdesk_reply_waiting"
    assert not any("Friday" in text_of(s) for s in phone.received)
    await wa.client_taps(phone.key, "Continue")
    await eventually(lambda: any("Friday at 12:00" in text_of(s) for s in phone.received))
    assert wa.errors == []
    assert desk.chatwoot.errors == []


async def test_an_agent_role_gateway_user_never_keeps_a_handoff(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    """The gateway's token belongs to an agent: Chatwoot assigns the conversation to it when it
    opens it (toggle_status), and the gateway gives it back to no one at once."""
    assert desk.chatwoot.role == "agent"
    desk.chatwoot.inboxes[desk.telegram_inbox].auto_assignee = 3
    await start_desk(start_gateway, salon, desk, chatwoot_team_id=None)
    chat = Chat(sandbox.telegram, 705)
    await chat.say("/start")
    before = len(chat.messages)
    await sandbox.telegram.client_says(705, "I want to talk to a person")
    await eventually(lambda: chat.messages[before:])
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:705"))
    await eventually(lambda: thread.status == "open" and thread.labels == ["handoff"])
    assert thread.assignee_id is None  # in staff's "Unassigned", not the gateway's "Mine"
    assert desk.chatwoot.bot_handoffs == []
    # Staff pick it up and answer: the client hears them.
    thread.assignee_id = 3
    desk.chatwoot.agent_replies(thread.id, "Olga here, how can I help?")
    await eventually(lambda: "Olga here, how can I help?" in texts(chat))
    assert thread.assignee_id == 3
    assert desk.chatwoot.errors == []


async def test_with_an_agent_bot_token_the_handoff_is_chatwoots_bot_handoff(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    desk.chatwoot.bot_token = "cw-bot-token"
    desk.chatwoot.inboxes[desk.telegram_inbox].auto_assignee = 3
    await start_desk(
        start_gateway, salon, desk, chatwoot_team_id=None, chatwoot_bot_token="cw-bot-token"
    )
    chat = Chat(sandbox.telegram, 706)
    await chat.say("/start")
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:706"))
    assert thread.status == "pending"
    await sandbox.telegram.client_says(706, "Can I talk to a real person please?")
    await eventually(lambda: thread.status == "open" and thread.labels == ["handoff"])
    assert desk.chatwoot.bot_handoffs == [thread.id]
    assert thread.assignee_id == 3  # the inbox's auto-assignment chose
    # The client's next words reach staff; the bot stays quiet.
    before = len(chat.messages)
    await sandbox.telegram.client_says(706, "Hello?")
    await eventually(lambda: any(m["content"] == "Hello?" for m in thread.messages))
    assert chat.messages[before:] == []
    assert desk.chatwoot.errors == []


async def test_a_mirror_post_whose_answer_was_lost_is_not_duplicated(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, 707)
    await chat.say("/start")
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:707"))
    await eventually(lambda: len(thread.messages) >= 2)
    # Chatwoot stores the next two lines, but their answers are lost: the outbox retries.
    desk.chatwoot.lose_answers(2)
    await chat.tap("m:info")
    await eventually(lambda: any(m["content"] == "▶️ 📍 Address & hours" for m in thread.messages))
    await eventually(lambda: sum("1 Example Street" in m["content"] for m in thread.messages))
    await asyncio.sleep(0.5)  # past every retry
    contents = [m["content"] for m in thread.messages]
    assert contents.count("▶️ 📍 Address & hours") == 1
    assert sum("1 Example Street" in c for c in contents) == 1
    sources = [m["source_id"] for m in thread.messages]
    assert len(sources) == len(set(sources))


async def test_a_line_late_for_the_resolve_does_not_reopen_the_conversation(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    """Staff resolve and the webhook is lost; the client writes: Frontdesk still thinks a
    person has them, but Chatwoot says resolved, so the line goes in as a private note (as an
    incoming message it would reopen the conversation, Message#reopen_conversation). The
    reconciliation then finds the resolve and hands the client back to the bot."""
    # The reconciliation runs when the test says (below), not on its timer: on a loaded
    # machine a timer could find the resolve before the client's line is handled.
    gateway = await start_desk(start_gateway, salon, desk, chatwoot_reconcile_seconds=3600)
    chat = Chat(sandbox.telegram, 708)
    await chat.say("/start")
    await sandbox.telegram.client_says(708, "Can I talk to a real person please?")
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:708"))
    await eventually(lambda: thread.status == "open")
    desk.chatwoot.agent_replies(thread.id, "Hello, Olga here")
    await eventually(lambda: "Hello, Olga here" in texts(chat))
    desk.chatwoot.drop_next(1)
    desk.chatwoot.resolve(thread.id)
    before = len(chat.messages)
    await sandbox.telegram.client_says(708, "Thanks, bye!")
    late = await eventually(
        lambda: next((m for m in thread.messages if "Thanks, bye!" in m["content"]), None)
    )
    assert late["private"] is True
    assert late["content"] == "👤 (written before the conversation was resolved) Thanks, bye!"
    runtime = gateway.app[RUNTIME]
    client = ChatwootClient(desk.url, 1, CW_TOKEN, CircuitBreaker("cw", is_failure=is_failure))
    try:
        await reconcile(client, HelpDeskState(runtime.redis, runtime.keys), runtime.inbox)
    finally:
        await client.aclose()
    # Recovered by the reconciliation: the client is the bot's again, told once.
    back = await eventually(lambda: [t for t in texts(chat)[before:] if "Thank you" in t])
    assert back[0].startswith("Thank you for waiting! I am back with you.")
    await eventually(lambda: thread.messages[-1]["content"].startswith("🤖 Thank you for waiting"))
    assert thread.status == "pending"  # the bot's again, never reopened for staff
    menu = await chat.say("/start")
    assert "Welcome" in menu[-1]["text"]
    assert sum("Thank you for waiting" in t for t in texts(chat)) == 1
    assert [m["content"] for m in thread.messages].count(late["content"]) == 1


async def test_two_misunderstandings_offer_a_person_and_staff_are_called_only_when_chosen(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk
) -> None:
    await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, 711, language="ru")
    await chat.say("/start")
    first = await chat.say("ыыы")
    assert first[-1]["text"].startswith("Извините, я не понял. Я могу записать вас")
    offer = await chat.say("👀")
    assert offer[-1]["text"].startswith("Простите, я снова не понял. Позвать администратора?")
    assert [data for data, _ in chat.buttons()] == ["m:person:mis", "m:home"]
    # Offered, not called: the conversation waits as the bot's, with no note for staff.
    thread = await eventually(lambda: desk.chatwoot.conversation_for("tg:711"))
    await eventually(lambda: any(m["content"] == "👀" for m in thread.messages))
    await desk.chatwoot.settle()
    assert thread.status == "pending"
    assert desk.notes("tg:711") == []

    # The client asks in words: that is a request, and it is carried out.
    before = len(chat.messages)
    await sandbox.telegram.client_says(711, "позовите администратора")
    told = await eventually(lambda: chat.messages[before:])
    assert told[-1]["text"].startswith("🙋")
    await eventually(lambda: thread.status == "open")
    [note] = await eventually(lambda: desk.notes("tg:711"))
    assert "позовите администратора" in note
