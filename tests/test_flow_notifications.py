"""Confirmations and reminders: Cal.com's webhooks → Novu → the client's messenger, for real.

The Cal.com sandbox signs and sends its webhooks to the gateway; the Novu sandbox runs the
workflows `frontdesk novu sync` created in it, on the salon's clock (tests move it), and posts
its messenger step to the gateway, signed; the Telegram and WhatsApp sandboxes are the clients.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientSession

from gateway.integrations.calcom.api import CalcomClient
from gateway.integrations.calcom.bookings import BookingLinks
from gateway.integrations.novu.api import NovuClient
from gateway.integrations.novu.ledger import NoticeLedger
from gateway.integrations.novu.workflows import sync
from gateway.pipeline.resilience import CircuitBreaker
from gateway.sandbox.novu import NovuSandbox, novu_signature
from gateway.sandbox.whatsapp import WhatsAppSandbox
from handlers import calcom as calcom_handler
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.support.stand_ins import serving
from tests.test_flow_booking import KEY, Chat, Salon, master_id, start
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_handoff import Desk, start_desk
from tests.test_flow_handoff import desk as desk  # the fixture, shared
from tests.test_flow_whatsapp import APP_SECRET, NUMBER_ID, VERIFY_TOKEN, WA_TOKEN, Phone
from tests.test_flow_whatsapp import wa as wa  # the fixture, shared

NOVU_KEY = "novu-test-key"
CAL_SECRET = "cal-test-webhook-secret"
JSON = dict[str, Any]
# Wednesday 3 June 2026, 10:00 in Moscow; the salon's clock starts on Monday 1 June, 10:00.
VISIT = datetime(2026, 6, 3, 7, 0, tzinfo=UTC)
# The gateway's ledger looks often, and waits a minute of the salon's clock for Novu's post.
LEDGER = {"novu_grace_seconds": 60.0, "novu_ledger_seconds": 0.05}


@pytest.fixture
async def novu(salon: Salon) -> AsyncIterator[NovuSandbox]:
    async with serving(NovuSandbox(NOVU_KEY, clock=salon.clock)) as sandbox:
        yield sandbox


def notifying(novu: NovuSandbox) -> dict[str, Any]:
    return {
        "calcom_webhook_secret": CAL_SECRET,
        "novu_api_url": novu.url,  # type: ignore[attr-defined]
        "novu_api_key": NOVU_KEY,
        # The sandboxes stop before the gateway at a test's end: calls to them must give up fast.
        "service_timeout_seconds": 1.0,
    }


async def connect(gateway: Any, salon: Salon, novu: NovuSandbox) -> None:
    """Cal.com's webhook to the gateway, and Novu's workflows as `novu sync` makes them."""
    salon.calendar.webhook_url = f"{gateway.url}/webhooks/calcom"
    salon.calendar.webhook_secret = CAL_SECRET
    async with NovuClient(novu.url, NOVU_KEY, CircuitBreaker("novu")) as client:  # type: ignore[attr-defined]
        await sync(client, f"{gateway.url}/webhooks/novu")


async def start_notifying(
    start_gateway: GatewayFactory,
    salon: Salon,
    novu: NovuSandbox,
    wa: WhatsAppSandbox | None = None,
    **settings: Any,
) -> Any:
    values: dict[str, Any] = {**notifying(novu), **settings}
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
    await connect(gateway, salon, novu)
    if wa is not None:
        await wa.subscribe(f"{gateway.url}/webhooks/whatsapp", VERIFY_TOKEN)
    return gateway


async def book_in_chat(chat: Chat, salon: Salon, phone: str) -> str:
    """Book a women's haircut with Anna on Wednesday at 10:00; the booking's uid. Returns once
    the gateway has queued Cal.com's webhook about it."""
    anna = master_id(salon, "Anna")
    await chat.say("/start")
    await chat.tap("m:book")
    await chat.tap("b:s:womens-haircut")
    await chat.tap(f"b:m:{anna}")
    await chat.tap("b:d:20260603")
    await chat.tap(f"b:t:202606030700:{anna}")
    await chat.share_phone(phone)
    done = await chat.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")
    [booking] = [b for b in salon.made_in_chat() if b["start"] == "2026-06-03T07:00:00.000Z"]
    await salon.calendar.flush_webhooks()
    return str(booking["uid"])


async def known(gateway: Any, phone: str) -> None:
    """Wait until the gateway has learnt this client's phone from their booking's webhook."""
    links = BookingLinks(gateway.runtime.redis, gateway.runtime.keys)
    await eventually(lambda: links.find(phone=phone, email=None))


def event_type(salon: Salon, service: str, master: str) -> int:
    host = master_id(salon, master)
    return next(
        et.id
        for et in salon.calendar._event_types.values()
        if et.metadata.get("service") == service and host in et.host_ids
    )


async def salon_api(salon: Salon, method: str, path: str, body: JSON) -> JSON:
    """Cal.com's API as the salon's own page and staff use it (not through Frontdesk)."""
    headers = {"Authorization": f"Bearer {KEY}", "cal-api-version": "2024-08-13"}
    async with (
        ClientSession() as http,
        http.request(method, f"{salon.url}/v2{path}", json=body, headers=headers) as answer,
    ):
        body = await answer.json()
        assert answer.status in (200, 201), body
        data: JSON = body["data"]
        return data


async def book_elsewhere(salon: Salon, start: datetime, phone: str, name: str = "Anna") -> str:
    attendee = {"name": name, "phoneNumber": phone, "timeZone": "Europe/Moscow", "language": "en"}
    body = {
        "start": start.isoformat().replace("+00:00", "Z"),
        "eventTypeId": event_type(salon, "womens-haircut", "Anna"),
        "attendee": attendee,
    }
    return str((await salon_api(salon, "POST", "/bookings", body))["uid"])


def runs(novu: NovuSandbox, workflow: str, status: str | None = None) -> list[Any]:
    return [r for r in novu.runs if r.workflow == workflow and status in (None, r.status)]


def texts(chat: Chat) -> list[str]:
    return [m.get("text") or "" for m in chat.messages]


async def post_signed(url: str, body: bytes, signature: str) -> int:
    headers = {"Content-Type": "application/json", "X-Cal-Signature-256": signature}
    async with ClientSession() as http, http.post(url, data=body, headers=headers) as answer:
        return answer.status


async def test_a_booking_in_the_chat_is_confirmed_once_and_its_reminders_come_on_time(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, novu: NovuSandbox
) -> None:
    gateway = await start_notifying(start_gateway, salon, novu)
    chat = Chat(sandbox.telegram, 801)
    uid = await book_in_chat(chat, salon, "+79160000801")
    await salon.calendar.flush_webhooks()
    [created] = [w for w in salon.calendar.webhooks_sent if w.trigger == "BOOKING_CREATED"]
    assert created.status == 200
    # Cal.com delivers the same webhook again: acknowledged, and nothing happens twice.
    assert (
        await post_signed(f"{gateway.url}/webhooks/calcom", created.body, created.signature) == 200
    )

    await eventually(lambda: len(runs(novu, "booking-reminder")) == 2)
    await novu.settle()
    [confirmed] = runs(novu, "booking-confirmed")
    assert confirmed.status == "completed"
    assert (
        confirmed.transaction == f"fd-{gateway.runtime.settings.salon.profile.id}-confirmed-{uid}-"
        f"{int(VISIT.timestamp())}"
    )
    # The client was answered in the chat: Novu's messenger step is acknowledged, not resent.
    assert confirmed.payload["messenger"] == "no"
    assert [d["status"] for d in novu.deliveries] == [200]
    subscriber = novu.subscribers[confirmed.subscriber]
    assert subscriber["phone"] == "+79160000801"
    assert subscriber["locale"] == "en"
    assert subscriber["timezone"] == "Europe/Moscow"
    assert novu.sent == []  # a messenger client gets no email or SMS
    assert sum("You are booked" in t for t in texts(chat)) == 1

    # T-24 h: the reminder reaches the chat, in the salon's time, with its three buttons.
    before = len(chat.messages)
    salon.clock.now = VISIT - timedelta(hours=24)
    await novu.run_due()
    reminder = await eventually(lambda: chat.messages[before:])
    assert reminder[-1]["text"].startswith(
        "⏰ A reminder: «Women's haircut» on Wednesday, 3 June, at 10:00."
    )
    assert [b for b, _ in chat.buttons()] == [f"k:y:{uid}", f"k:r:{uid}", f"k:c:{uid}"]
    thanks = await chat.tap(f"k:y:{uid}")
    assert (
        thanks[-1]["text"]
        == "Thank you! We look forward to seeing you on Wednesday, 3 June, at 10:00."
    )

    # T-2 h: the second one; then nothing more is pending.
    before = len(chat.messages)
    salon.clock.now = VISIT - timedelta(hours=2)
    await novu.run_due()
    second = await eventually(lambda: chat.messages[before:])
    # The client answered "I'll come": the 2 h reminder remembers it and does not ask again.
    assert second[-1]["text"].startswith(
        "⏰ A reminder: «Women's haircut» on Wednesday, 3 June, at 10:00. See you at 10:00!"
    )
    assert "Will you come?" not in second[-1]["text"]
    assert [b for b, _ in chat.buttons()] == [f"k:r:{uid}", f"k:c:{uid}"]
    assert novu.pending() == []
    assert sum("A reminder" in t for t in texts(chat)) == 2


async def test_a_booking_made_elsewhere_reaches_the_known_client_and_its_buttons_work(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, novu: NovuSandbox
) -> None:
    gateway = await start_notifying(start_gateway, salon, novu)
    chat = Chat(sandbox.telegram, 802)
    await book_in_chat(chat, salon, "+79160000802")
    await known(gateway, "+79160000802")
    before = len(chat.messages)

    # The salon books the same client (known by phone) on its own page, for Thursday 11:00.
    thursday = datetime(2026, 6, 4, 8, 0, tzinfo=UTC)
    uid = await book_elsewhere(salon, thursday, "+79160000802")
    told = await eventually(lambda: chat.messages[before:])
    assert told[-1]["text"].startswith(
        "✅ You are booked: «Women's haircut» on Thursday, 4 June, at 11:00."
    )
    assert [b for b, _ in chat.buttons()] == [f"k:y:{uid}", f"k:r:{uid}", f"k:c:{uid}"]
    assert "payload" not in json.dumps(told[-1])  # plain Telegram buttons, nothing of Novu's

    # Reschedule opens the flow at the day step, for this very visit.
    days = await chat.tap(f"k:r:{uid}")
    assert "Choose a day" in days[-1]["text"]
    # Cancel asks first, then cancels in Cal.com.
    await chat.tap(f"k:c:{uid}")
    await chat.tap(f"k:cx:{uid}")
    done = await chat.tap(f"k:cs:{uid}")  # no reason given
    assert "is cancelled" in done[-1]["text"]
    [booking] = [b for b in salon.bookings(None) if b["uid"] == uid]
    assert booking["status"] == "cancelled"
    # The client cancelled in the chat: its reminders are cancelled, and no "salon cancelled".
    await eventually(lambda: runs(novu, "booking-cancelled"))
    await novu.settle()
    for run in runs(novu, "booking-reminder"):
        if run.payload["bookingUid"] == uid:
            assert run.status == "cancelled"
    assert not any("The salon cancelled" in t for t in texts(chat))


async def test_the_salon_moves_then_cancels_a_visit_and_the_client_hears_of_both(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, novu: NovuSandbox
) -> None:
    await start_notifying(start_gateway, salon, novu, **LEDGER)
    chat = Chat(sandbox.telegram, 803)
    uid = await book_in_chat(chat, salon, "+79160000803")
    await eventually(lambda: len(runs(novu, "booking-reminder", "pending")) == 2)

    # Staff move it to Friday 12:00 in Cal.com.
    before = len(chat.messages)
    friday = datetime(2026, 6, 5, 9, 0, tzinfo=UTC)
    moved = await salon_api(
        salon, "POST", f"/bookings/{uid}/reschedule", {"start": "2026-06-05T09:00:00Z"}
    )
    new_uid = moved["uid"]
    told = await eventually(lambda: chat.messages[before:])
    assert told[-1]["text"].startswith(
        "📅 The salon moved your visit «Women's haircut»: "
        "it is now on Friday, 5 June, at 12:00 (it was on Wednesday, 3 June, at 10:00)."
    )
    assert [b for b, _ in chat.buttons()] == [f"k:y:{new_uid}", f"k:r:{new_uid}", f"k:c:{new_uid}"]
    await novu.settle()
    old = [r for r in runs(novu, "booking-reminder") if r.payload["bookingUid"] == uid]
    new = [r for r in runs(novu, "booking-reminder") if r.payload["bookingUid"] == new_uid]
    assert [r.status for r in old] == ["cancelled", "cancelled"]
    assert [r.status for r in new] == ["pending", "pending"]
    assert [r.payload["sendAt"] for r in new] == ["2026-06-04T09:00:00Z", "2026-06-05T07:00:00Z"]

    # The old reminder's time passes: nothing comes. "My bookings" shows the new time.
    salon.clock.now = VISIT - timedelta(hours=2)
    await novu.run_due()
    await chat.say("/start")
    mine = await chat.tap("m:mine")
    assert "Fri, 5 June, 12:00" in mine[-1]["text"]
    assert not any("A reminder" in t for t in texts(chat))

    # Then they cancel it, with a word for the client.
    before = len(chat.messages)
    await salon_api(
        salon, "POST", f"/bookings/{new_uid}/cancel", {"cancellationReason": "Anna is ill"}
    )
    told = await eventually(lambda: chat.messages[before:])
    assert told[-1]["text"] == (
        "❌ The salon cancelled your visit «Women's haircut» on Friday, 5 June, at 12:00. "
        "We are sorry. "
        "Would you like to book another time?\nThe salon's note: Anna is ill"
    )
    assert [b for b, _ in chat.buttons()] == ["m:book", "m:home"]
    await novu.settle()
    assert all(r.status != "pending" for r in runs(novu, "booking-reminder"))
    salon.clock.now = friday
    await novu.run_due()
    # Nor does the gateway's own ledger send the reminders the move and the cancellation
    # made wrong, their time long past.
    await asyncio.sleep(0.3)
    assert not any("A reminder" in t for t in texts(chat))


async def test_a_client_known_only_by_email_gets_it_by_email_and_forgeries_are_refused(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, novu: NovuSandbox
) -> None:
    gateway = await start_notifying(start_gateway, salon, novu)
    attendee = {
        "name": "Vera Lee",
        "email": "vera@example.com",
        "timeZone": "Europe/Moscow",
        "language": "ru",
    }
    body = {
        "start": "2026-06-04T08:00:00Z",
        "eventTypeId": event_type(salon, "womens-haircut", "Anna"),
        "attendee": attendee,
    }
    await salon_api(salon, "POST", "/bookings", body)
    await eventually(lambda: novu.sent)
    [email] = novu.sent
    assert email["channel"] == "email"
    assert email["to"] == "vera@example.com"
    assert email["text"].startswith("✅ Вы записаны: «Women's haircut» в четверг, 4 июня, в 11:00.")
    assert novu.deliveries == []  # no messenger for her

    # A forged signature, a missing one, a body altered after signing: refused, nothing queued.
    [hook] = salon.calendar.webhooks_sent
    url = f"{gateway.url}/webhooks/calcom"
    forged = hmac.new(b"not-the-secret", hook.body, hashlib.sha256).hexdigest()
    assert await post_signed(url, hook.body, forged) == 401
    assert await post_signed(url, hook.body, "no-secret-provided") == 401
    assert await post_signed(url, hook.body.replace(b"Vera", b"Eve "), hook.signature) == 401
    signed = hmac.new(CAL_SECRET.encode(), b"{not json", hashlib.sha256).hexdigest()
    assert await post_signed(url, b"{not json", signed) == 400
    assert len(runs(novu, "booking-confirmed")) == 1


async def test_a_webhook_that_never_came_is_caught_by_reconciliation(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, novu: NovuSandbox
) -> None:
    salon.clock.now += timedelta(minutes=1)
    gateway = await start_notifying(start_gateway, salon, novu, calcom_reconcile_seconds=0.2)
    chat = Chat(sandbox.telegram, 805)
    await book_in_chat(chat, salon, "+79160000805")
    await known(gateway, "+79160000805")
    await eventually(lambda: runs(novu, "booking-confirmed"))
    before = len(chat.messages)
    salon.calendar.webhook_url = None  # Cal.com's webhook for the next change is lost
    uid = await book_elsewhere(salon, datetime(2026, 6, 4, 8, 0, tzinfo=UTC), "+79160000805")
    told = await eventually(lambda: chat.messages[before:], timeout=10)
    assert told[-1]["text"].startswith(
        "✅ You are booked: «Women's haircut» on Thursday, 4 June, at 11:00."
    )
    assert len([r for r in runs(novu, "booking-confirmed") if r.payload["bookingUid"] == uid]) == 1

    # Later syncs, and the webhook arriving late after all: nothing twice.
    runtime = gateway.runtime
    links = BookingLinks(runtime.redis, runtime.keys)
    async with CalcomClient(salon.url, KEY, breaker=CircuitBreaker("calcom")) as calcom:
        again = await calcom_handler.reconcile(calcom, links, runtime.inbox, salon.clock())
    assert again == 0
    # The lost webhook turns up after all, as Cal.com would have sent it.
    booking = salon.calendar._bookings[uid]
    payload = salon.calendar._webhook_payload("BOOKING_CREATED", booking, None)
    late = json.dumps({"triggerEvent": "BOOKING_CREATED", "createdAt": "x", "payload": payload})
    signature = hmac.new(CAL_SECRET.encode(), late.encode(), hashlib.sha256).hexdigest()
    assert await post_signed(f"{gateway.url}/webhooks/calcom", late.encode(), signature) == 200
    await novu.settle()
    assert len([r for r in runs(novu, "booking-confirmed") if r.payload["bookingUid"] == uid]) == 1
    assert sum("You are booked: «Women's haircut» on Thu" in t for t in texts(chat)) == 1
    # The salon's bookings from before the installation were not announced to anyone.
    assert novu.sent == []


async def test_a_whatsapp_client_outside_the_window_gets_the_approved_template_with_buttons(
    start_gateway: GatewayFactory, salon: Salon, novu: NovuSandbox, wa: WhatsAppSandbox
) -> None:
    await start_notifying(start_gateway, salon, novu, wa)
    phone = Phone(wa, "79160000806", name="Maria")
    await phone.say("Hi")
    # Two days later, the window long closed, the salon books her on its page.
    salon.clock.now += timedelta(days=2)
    uid = await book_elsewhere(
        salon, datetime(2026, 6, 8, 8, 0, tzinfo=UTC), "+79160000806", "Maria"
    )
    before = len(phone.received)
    # Her WhatsApp number is known (she wrote from it): the confirmation finds her.
    sent = await eventually(
        lambda: [s for s in phone.received[before:] if s.body.get("type") == "template"]
    )
    template = sent[-1].body["template"]
    assert template["name"] == "frontdesk_booking_confirmed"
    assert [p["text"] for p in template["components"][0]["parameters"]] == [
        "Women's haircut",
        "Mon, 8 June, 11:00",
    ]
    payloads = [c["parameters"][0]["payload"] for c in template["components"][1:]]
    assert payloads == [f"k:y:{uid}", f"k:r:{uid}", f"k:c:{uid}"]
    assert wa.errors == []
    # Her tap on "I'll come" in the template is understood.
    answer = await phone.tap(f"k:y:{uid}")
    assert "Thank you! We look forward to seeing you on Monday, 8 June, at 11:00." in json.dumps(
        answer[-1].body, ensure_ascii=False
    )


def cal_webhook(trigger: str, uid: str, chat: int, **payload: Any) -> bytes:
    body = {
        "triggerEvent": trigger,
        "createdAt": "2026-06-01T07:00:00Z",
        "payload": {
            "uid": uid,
            "eventTitle": "Manicure",
            "startTime": "2026-06-04T12:00:00Z",
            "endTime": "2026-06-04T13:00:00Z",
            "organizer": {"name": "Maria Ivanova"},
            # Booked on the salon's page by a client the chat knows by phone.
            "attendees": [
                {"name": "Anna", "phoneNumber": f"+79160000{chat}", "language": {"locale": "en"}}
            ],
            "metadata": {},
            **payload,
        },
    }
    return json.dumps(body).encode()


async def test_without_novu_the_calendar_still_tells_the_client_what_the_salon_did(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    gateway = await start(
        start_gateway, salon, calcom_webhook_secret=CAL_SECRET, service_timeout_seconds=1.0
    )
    salon.calendar.webhook_url = f"{gateway.url}/webhooks/calcom"
    salon.calendar.webhook_secret = CAL_SECRET
    chat = Chat(sandbox.telegram, 807)
    uid = await book_in_chat(chat, salon, "+79160000807")
    url = f"{gateway.url}/webhooks/calcom"
    await known(gateway, "+79160000807")  # the booking's own webhook taught us her phone

    def sign_(raw: bytes) -> str:
        return hmac.new(CAL_SECRET.encode(), raw, hashlib.sha256).hexdigest()

    # A request the salon must accept first (made on its page), then declines.
    salon.calendar.webhook_url = None
    request = await book_elsewhere(salon, datetime(2026, 6, 4, 12, 0, tzinfo=UTC), "+79160000807")
    salon.calendar._bookings[request].status = "pending"
    salon.calendar.webhook_url = f"{gateway.url}/webhooks/calcom"
    before = len(chat.messages)
    raw = cal_webhook("BOOKING_REQUESTED", request, 807, status="PENDING")
    assert await post_signed(url, raw, sign_(raw)) == 200
    told = await eventually(lambda: chat.messages[before:])
    assert told[-1]["text"].startswith(
        "🕓 Your request for «Manicure» on Thursday, 4 June, at 15:00"
    )
    before = len(chat.messages)
    raw = cal_webhook("BOOKING_REJECTED", request, 807, rejectionReason="Fully booked")
    assert await post_signed(url, raw, sign_(raw)) == 200
    told = await eventually(lambda: chat.messages[before:])
    assert told[-1]["text"].startswith("The salon could not accept your request")
    assert told[-1]["text"].endswith("The salon's note: Fully booked")

    # The salon cancels the chat's booking in Cal.com: told directly.
    before = len(chat.messages)
    await salon_api(salon, "POST", f"/bookings/{uid}/cancel", {"cancellationReason": "Closed"})
    told = await eventually(lambda: chat.messages[before:])
    assert told[-1]["text"].startswith("❌ The salon cancelled your visit «Women's haircut»")

    # A no-show marked in Cal.com is recorded with the booking.
    raw = json.dumps(
        {
            "triggerEvent": "BOOKING_NO_SHOW_UPDATED",
            "payload": {"bookingUid": uid, "attendees": [{"email": "x@y.z", "noShow": True}]},
        }
    ).encode()
    assert await post_signed(url, raw, sign_(raw)) == 200
    links = BookingLinks(gateway.runtime.redis, gateway.runtime.keys)
    assert await eventually(lambda: _no_show(links, uid)) == "yes"


async def _no_show(links: BookingLinks, uid: str) -> str | None:
    record = await links.record(uid)
    return record.get("no_show")


async def test_staff_see_in_chatwoot_that_the_client_will_come(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, novu: NovuSandbox, desk: Desk
) -> None:
    gateway = await start_desk(start_gateway, salon, desk, **notifying(novu))
    await connect(gateway, salon, novu)
    chat = Chat(sandbox.telegram, 808)
    uid = await book_in_chat(chat, salon, "+79160000808")
    await eventually(lambda: len(runs(novu, "booking-reminder")) == 2)
    before = len(chat.messages)
    salon.clock.now = VISIT - timedelta(hours=24)
    await novu.run_due()
    await eventually(lambda: chat.messages[before:])
    await chat.tap(f"k:y:{uid}")
    notes = await eventually(lambda: [n for n in desk.notes("tg:808") if "will come" in n])
    assert notes == [
        f"✅ The client confirmed they will come (booking {uid}). "
        "Thank you! We look forward to seeing you on Wednesday, 3 June, at 10:00."
    ]
    # The reminder itself is mirrored too: staff see what the client was asked.
    thread = desk.thread("tg:808")
    assert any("A reminder" in m["content"] for m in thread.messages)


async def test_a_move_whose_webhook_was_lost_still_cancels_the_old_reminders(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, novu: NovuSandbox
) -> None:
    # The salon's existing bookings predate the installation: the feed starts after them.
    salon.clock.now += timedelta(minutes=1)
    await start_notifying(start_gateway, salon, novu, calcom_reconcile_seconds=0.2)
    chat = Chat(sandbox.telegram, 809)
    uid = await book_in_chat(chat, salon, "+79160000809")
    await eventually(lambda: len(runs(novu, "booking-reminder", "pending")) == 2)
    salon.calendar.webhook_url = None  # the move's webhook never comes
    before = len(chat.messages)
    moved = await salon_api(
        salon, "POST", f"/bookings/{uid}/reschedule", {"start": "2026-06-05T09:00:00Z"}
    )
    told = await eventually(lambda: chat.messages[before:], timeout=10)
    assert told[-1]["text"].startswith(
        "📅 The salon moved your visit «Women's haircut»: "
        "it is now on Friday, 5 June, at 12:00 (it was on Wednesday, 3 June, at 10:00)."
    )
    await novu.settle()
    old = [r for r in runs(novu, "booking-reminder") if r.payload["bookingUid"] == uid]
    new = [r for r in runs(novu, "booking-reminder") if r.payload["bookingUid"] == moved["uid"]]
    assert [r.status for r in old] == ["cancelled", "cancelled"]
    assert [r.status for r in new] == ["pending", "pending"]


async def test_a_refused_notice_template_leaves_the_notice_waiting_for_the_client(
    start_gateway: GatewayFactory, salon: Salon, novu: NovuSandbox, wa: WhatsAppSandbox
) -> None:
    await start_notifying(start_gateway, salon, novu, wa)
    del wa.templates[("frontdesk_booking_confirmed", "en")]  # never approved
    phone = Phone(wa, "79160000810", name="Maria")
    await phone.say("Hi")
    salon.clock.now += timedelta(days=2)
    before = len(phone.received)
    await book_elsewhere(salon, datetime(2026, 6, 8, 8, 0, tzinfo=UTC), "+79160000810", "Maria")
    # The reply-waiting template goes instead, and the confirmation is delivered on her answer.
    waiting = await eventually(
        lambda: [s for s in phone.received[before:] if s.body.get("type") == "template"]
    )
    assert waiting[-1].body["template"]["name"] == "frontdesk_reply_waiting"
    answer = await phone.tap("Continue")
    assert "You are booked: «Women's haircut» on Monday, 8 June, at 11:00." in json.dumps(
        [s.body for s in answer], ensure_ascii=False
    )


async def post_as_novu(gateway: Any, body: JSON) -> int:
    """A messenger step's post, signed as Novu signs it."""
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    signature = novu_signature(NOVU_KEY, body, int(time.time() * 1000))
    headers = {"Content-Type": "application/json", "Novu-Signature": signature}
    async with (
        ClientSession() as http,
        http.post(f"{gateway.url}/webhooks/novu", data=raw, headers=headers) as answer,
    ):
        return answer.status


async def test_a_notice_novu_failed_to_post_reaches_the_client_once_through_the_ledger(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, novu: NovuSandbox
) -> None:
    gateway = await start_notifying(start_gateway, salon, novu, **LEDGER)
    chat = Chat(sandbox.telegram, 811)
    await book_in_chat(chat, salon, "+79160000811")
    await known(gateway, "+79160000811")
    # Novu has run what the chat booking asked for (its confirmation's post, which the gateway
    # acknowledges and drops: the client was answered in the chat).
    await eventually(lambda: runs(novu, "booking-confirmed", "completed"))
    await novu.settle()
    before = len(chat.messages)

    # The salon books the client on its page while the gateway restarts: Novu's one post of
    # the confirmation meets a refused connection, and Novu does not try again.
    novu.outage = 1
    uid = await book_elsewhere(salon, datetime(2026, 6, 4, 8, 0, tzinfo=UTC), "+79160000811")

    def confirmation() -> Any:
        found = [r for r in runs(novu, "booking-confirmed") if r.payload["bookingUid"] == uid]
        return found and found[0].status != "pending" and found[0]

    run = await eventually(confirmation)
    assert run.status == "completed"  # the step continues on failure; email and SMS skipped
    assert "messenger: failed (no answer), not retried" in run.log
    assert novu.sent == []
    await asyncio.sleep(0.3)
    assert chat.messages[before:] == []  # within the grace period the gateway waits for Novu

    # A minute on, the gateway's ledger sends it itself.
    salon.clock.now += timedelta(seconds=61)
    told = await eventually(lambda: chat.messages[before:])
    assert told[-1]["text"].startswith(
        "✅ You are booked: «Women's haircut» on Thursday, 4 June, at 11:00."
    )
    assert [b for b, _ in chat.buttons()] == [f"k:y:{uid}", f"k:r:{uid}", f"k:c:{uid}"]

    # Should Novu's post come after all (a late retry by hand), it is a duplicate.
    [failed] = [d for d in novu.deliveries if d["body"]["bookingUid"] == uid]
    assert await post_as_novu(gateway, failed["body"]) == 200
    await asyncio.sleep(0.3)
    assert sum("You are booked: «Women's haircut» on Thu" in t for t in texts(chat)) == 1


async def test_a_reminder_beyond_the_plans_longest_delay_still_comes_through_the_ledger(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, novu: NovuSandbox
) -> None:
    # The plan allows delays of up to 30 hours: the T-2 h reminder, 46 hours away, fails.
    novu.max_delay = timedelta(hours=30)
    gateway = await start_notifying(start_gateway, salon, novu, **LEDGER)
    chat = Chat(sandbox.telegram, 812)
    uid = await book_in_chat(chat, salon, "+79160000812")
    await eventually(lambda: len(runs(novu, "booking-reminder")) == 2)
    await novu.settle()
    early, late = sorted(runs(novu, "booking-reminder"), key=lambda r: r.payload["sendAt"])
    assert early.status == "pending"
    assert late.status == "failed"
    assert "wait: DEFER_DURATION_LIMIT_EXCEEDED" in late.log

    # T-24 h: Novu posts the first reminder, and the ledger marks it done.
    salon.clock.now = VISIT - timedelta(hours=24)
    await novu.run_due()
    await eventually(lambda: sum("A reminder" in t for t in texts(chat)) == 1)
    # T-2 h and a minute: the gateway sends the second, which Novu never will.
    before = len(chat.messages)
    salon.clock.now = VISIT - timedelta(hours=2) + timedelta(seconds=61)
    second = await eventually(lambda: chat.messages[before:])
    assert second[-1]["text"].startswith(
        "⏰ A reminder: «Women's haircut» on Wednesday, 3 June, at 10:00."
    )
    assert [b for b, _ in chat.buttons()] == [f"k:y:{uid}", f"k:r:{uid}", f"k:c:{uid}"]
    await asyncio.sleep(0.3)
    assert sum("A reminder" in t for t in texts(chat)) == 2
    ledger = NoticeLedger(gateway.runtime.redis, gateway.runtime.keys)
    assert await ledger.overdue(VISIT + timedelta(days=30)) == []
