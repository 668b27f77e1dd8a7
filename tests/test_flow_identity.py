"""One client across messengers, through the real gateway and every stand-in: a WhatsApp client
and a Telegram client who shared their own number (both verified by the messenger) are one
client; a typed number, or someone else's contact card, links nothing.

The Cal.com stand-in books and sends its webhooks, Novu runs the reminders on the salon's clock
and posts them back, Chatwoot merges the contacts with its own contact-merge action, and the
Telegram and WhatsApp stand-ins are the client's two phones.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from gateway.pipeline import Conversation, Identities
from gateway.sandbox.novu import NovuSandbox
from gateway.sandbox.whatsapp import Sent, WhatsAppSandbox
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.test_flow_booking import Chat, Salon, master_id
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_handoff import Desk, start_desk
from tests.test_flow_handoff import desk as desk  # the fixture, shared
from tests.test_flow_notifications import book_in_chat, connect, notifying, runs
from tests.test_flow_notifications import novu as novu  # the fixture, shared
from tests.test_flow_whatsapp import Phone, text_of
from tests.test_flow_whatsapp import wa as wa  # the fixture, shared

NUMBER = "79160000901"
# Tuesday 2 June 2026, 10:00 in Moscow (booked on WhatsApp); Telegram books Wednesday 3 June.
WA_VISIT = datetime(2026, 6, 2, 7, 0, tzinfo=UTC)
TG_VISIT = datetime(2026, 6, 3, 7, 0, tzinfo=UTC)
LINKED_LINE = "Visits booked from WhatsApp with the same phone number are shown here too."


def said(sent: list[Sent]) -> str:
    return "\n".join(json.dumps(s.body, ensure_ascii=False) for s in sent)


async def book_on_whatsapp(phone: Phone, salon: Salon) -> str:
    anna = master_id(salon, "Anna")
    await phone.say("Hi")
    await phone.tap("m:book")
    await phone.tap("b:s:womens-haircut")
    await phone.tap(f"b:m:{anna}")
    await phone.tap("b:d:20260602")
    # The number WhatsApp gives is the contact: straight to the summary.
    await phone.tap(f"b:t:202606020700:{anna}")
    done = await phone.tap("b:ok:", prefix=True)
    assert text_of(done[-1]).startswith("✅ You are booked!")
    [booking] = [b for b in salon.made_in_chat() if b["start"] == "2026-06-02T07:00:00.000Z"]
    await salon.calendar.flush_webhooks()
    return str(booking["uid"])


async def test_a_telegram_contact_share_and_a_whatsapp_number_make_one_client(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    novu: NovuSandbox,
    desk: Desk,
    wa: WhatsAppSandbox,
) -> None:
    gateway = await start_desk(start_gateway, salon, desk, wa, **notifying(novu))
    await connect(gateway, salon, novu)
    salon_id = gateway.runtime.settings.salon.profile.id
    phone = Phone(wa, NUMBER, name="Maria")
    wa_uid = await book_on_whatsapp(phone, salon)
    await eventually(lambda: len(runs(novu, "booking-confirmed")) == 1)
    await eventually(lambda: desk.chatwoot.conversation_for(f"wa:{NUMBER}"))

    # The same person on Telegram shares their own number at the contact step and books.
    chat = Chat(sandbox.telegram, 901)
    tg_uid = await book_in_chat(chat, salon, f"+{NUMBER}")
    await eventually(lambda: len(runs(novu, "booking-confirmed")) == 2)

    # My bookings, on either messenger, shows both visits.
    listed = await chat.tap("m:mine")
    assert LINKED_LINE in listed[-1]["text"]
    buttons = [data for data, _ in chat.buttons()]
    assert f"k:v:{wa_uid}" in buttons
    assert f"k:v:{tg_uid}" in buttons
    assert "i:x" in buttons  # "This is not me"
    await phone.tap("m:mine")
    options = [choice for choice, _ in phone.options()]
    assert f"k:v:{wa_uid}" in options
    assert f"k:v:{tg_uid}" in options
    # Their own number shared again outside a booking: My bookings, both visits in it.
    shown = await chat.share_phone(f"+{NUMBER}")
    assert LINKED_LINE in shown[-1]["text"]
    assert f"k:v:{wa_uid}" in [data for data, _ in chat.buttons()]
    # A visit booked on WhatsApp opens from Telegram too.
    opened = await chat.tap(f"k:v:{wa_uid}")
    assert "Women's haircut" in opened[-1]["text"]

    # Chatwoot: the two contacts merged into one (the WhatsApp chat verified the number first).
    cw = desk.chatwoot
    await eventually(lambda: cw.merges)
    wa_thread = desk.thread(f"wa:{NUMBER}")
    tg_thread = desk.thread("tg:901")
    assert len(cw.contacts) == 1
    [contact] = cw.contacts.values()
    assert wa_thread.contact_id == tg_thread.contact_id == contact.id
    assert cw.merges == [(contact.id, cw.merges[0][1])]
    assert contact.identifier == f"wa:{NUMBER}"
    assert contact.phone_number == f"+{NUMBER}"
    assert cw.errors == []

    # Novu: one subscriber for the client, named after the chat that verified the number first.
    await novu.settle()
    assert set(novu.subscribers) == {f"{salon_id}:wa:{NUMBER}"}
    assert {r.subscriber for r in runs(novu, "booking-confirmed")} == {f"{salon_id}:wa:{NUMBER}"}

    # The WhatsApp visit's reminder goes to Telegram, the messenger the client used last.
    before_tg, before_wa = len(chat.messages), len(phone.received)
    salon.clock.now = WA_VISIT - timedelta(hours=2)
    await novu.run_due()
    reminder = await eventually(lambda: chat.messages[before_tg:])
    assert reminder[-1]["text"].startswith("⏰ A reminder: «Women's haircut» on Tuesday, 2 June")
    assert [b for b, _ in chat.buttons()][:1] == [f"k:y:{wa_uid}"]
    assert not [s for s in phone.received[before_wa:] if "reminder" in said([s]).lower()]
    # Its "I'll come" works in Telegram.
    thanks = await chat.tap(f"k:y:{wa_uid}")
    assert thanks[-1]["text"].startswith("Thank you!")

    # On WhatsApp the client chooses to get their reminders there: the Telegram visit's comes.
    await phone.tap("m:mine")
    done = await phone.tap("i:h")
    assert "your reminders will come to this chat" in said(done)
    before_tg, before_wa = len(chat.messages), len(phone.received)
    salon.clock.now = TG_VISIT - timedelta(hours=24)
    await novu.run_due()
    sent = await eventually(
        lambda: [s for s in phone.received[before_wa:] if "A reminder" in said([s])]
    )
    assert f"k:y:{tg_uid}" in said(sent)
    assert not [m for m in chat.messages[before_tg:] if "A reminder" in (m.get("text") or "")]

    # "Это не я", typed on Telegram: the chats are apart again, and stay apart.
    apart = await chat.say("это не я")
    assert apart[-1]["text"].startswith("Done: this chat is no longer linked with WhatsApp.")
    mine = await chat.tap("m:mine")
    assert LINKED_LINE not in mine[-1]["text"]
    buttons = [data for data, _ in chat.buttons()]
    assert f"k:v:{tg_uid}" in buttons
    assert f"k:v:{wa_uid}" not in buttons
    await phone.say("Hi again")
    identities = Identities(gateway.runtime.redis, gateway.runtime.keys)
    assert await identities.linked(Conversation("whatsapp", NUMBER)) is None
    assert await identities.linked(Conversation("telegram", "901")) is None
    await phone.tap("m:mine")
    options = [choice for choice, _ in phone.options()]
    assert f"k:v:{wa_uid}" in options
    assert f"k:v:{tg_uid}" not in options
    # The phone number is not written to the logs by any of it.


async def test_a_typed_number_or_someone_elses_contact_links_nothing(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    novu: NovuSandbox,
    desk: Desk,
    wa: WhatsAppSandbox,
) -> None:
    gateway = await start_desk(start_gateway, salon, desk, wa, **notifying(novu))
    await connect(gateway, salon, novu)
    number = "79160000902"
    phone = Phone(wa, number, name="Maria")
    await phone.say("Hi")

    anna = master_id(salon, "Anna")
    chat = Chat(sandbox.telegram, 902)
    await chat.say("/start")
    await chat.tap("m:book")
    await chat.tap("b:s:womens-haircut")
    await chat.tap(f"b:m:{anna}")
    await chat.tap("b:d:20260603")
    await chat.tap(f"b:t:202606030700:{anna}")
    # Someone else's card with the WhatsApp client's number: not the client's own, not a link.
    for user_id in (555, None):
        before = len(chat.messages)
        await sandbox.telegram.client_sends_contact_card(902, f"+{number}", user_id=user_id)
        # Read as a message that is no contact: the contact step says so and asks again.
        answer = await eventually(
            lambda: (
                [
                    m.get("text") or ""
                    for m in chat.messages[before:]  # noqa: B023 - awaited within the loop
                ]
                if "How can the salon reach you" in str(chat.messages[before:])  # noqa: B023
                else None
            )
        )
        assert answer[0].startswith("That does not look like a phone number")
    # The number typed by hand: good enough for the booking, never for a link.
    summary = await chat.say("+7 916 000-09-02")
    assert "Please check your booking" in summary[-1]["text"]
    done = await chat.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")

    identities = Identities(gateway.runtime.redis, gateway.runtime.keys)
    assert await identities.linked(Conversation("telegram", "902")) is None
    assert await identities.linked(Conversation("whatsapp", number)) is None
    mine = await chat.tap("m:mine")
    assert LINKED_LINE not in mine[-1]["text"]
    assert "i:x" not in [data for data, _ in chat.buttons()]
    # "This is not me" means nothing where nothing is linked: no link is touched.
    await chat.say("this is not me")
    assert await identities.linked(Conversation("telegram", "902")) is None
    await eventually(lambda: desk.chatwoot.conversation_for("tg:902"))
    assert desk.chatwoot.merges == []
    assert len(desk.chatwoot.contacts) == 2
