"""WhatsApp through the real gateway, against the WhatsApp and Cal.com sandboxes.

The WhatsApp sandbox checks every message against the vendor's spec when it is present and
refuses what Meta refuses (limits, the 24-hour window, unknown templates), so these flows also
show that what the gateway sends is what the Cloud API accepts.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientSession

from gateway.sandbox.whatsapp import Sent, WhatsAppSandbox
from tests.conftest import CONTRACTS, GatewayFactory, eventually
from tests.support.stand_ins import serving
from tests.test_flow_booking import Salon, master_id, start
from tests.test_flow_booking import salon as salon  # the fixture, shared

JSON = dict[str, Any]
WA_SPEC = CONTRACTS / "whatsapp-cloud.openapi.json"
NUMBER_ID = "106540352242922"
WA_TOKEN = "EAAG-test-access-token"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"


@pytest.fixture
async def wa(salon: Salon) -> AsyncIterator[WhatsAppSandbox]:
    sandbox = WhatsAppSandbox(
        WA_TOKEN,
        NUMBER_ID,
        APP_SECRET,
        WA_SPEC if WA_SPEC.exists() else None,
        redelivery_backoff=0.05,
    )
    sandbox.clock = lambda: salon.clock.now.timestamp()
    async with serving(sandbox):
        yield sandbox


async def start_whatsapp(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
    **settings: Any,
) -> Any:
    values = {
        "whatsapp_access_token": WA_TOKEN,
        "whatsapp_phone_number_id": NUMBER_ID,
        "whatsapp_app_secret": APP_SECRET,
        "whatsapp_verify_token": VERIFY_TOKEN,
        "whatsapp_api_url": f"{wa.url}/v23.0",  # type: ignore[attr-defined]
        "whatsapp_rate_per_chat": 1000.0,
        "whatsapp_burst_per_chat": 100,
        # The sandbox stops before the gateway at a test's end: calls to it must give up fast.
        "service_timeout_seconds": 2.0,
        **settings,
    }
    gateway = await start(start_gateway, salon, **values)
    await wa.subscribe(f"{gateway.url}/webhooks/whatsapp", VERIFY_TOKEN)
    return gateway


class Phone:
    """One WhatsApp client; each action waits for the answer that offers the next choices."""

    def __init__(self, wa: WhatsAppSandbox, number: str = "79161234567", name: str = "Maria"):
        self.wa = wa
        self.key = wa.client(number, name=name)

    @property
    def received(self) -> list[Sent]:
        return self.wa.sent_to(self.key)

    async def _answer(self, before: int, until: Callable[[Sent], bool] | None = None) -> list[Sent]:
        def offers(sent: Sent) -> bool:
            body = sent.body
            numbered = "Reply with a number" in body.get("text", {}).get("body", "")
            return body.get("type") in ("interactive", "template") or numbered

        check = until or offers

        def done() -> list[Sent] | None:
            new = self.received[before:]
            return new if new and check(new[-1]) else None

        answer: list[Sent] = await eventually(done, timeout=10)
        return answer

    async def say(self, text: str, **wait: Any) -> list[Sent]:
        before = len(self.received)
        await self.wa.client_says(self.key, text)
        return await self._answer(before, **wait)

    async def tap(self, choice: str, *, prefix: bool = False, **wait: Any) -> list[Sent]:
        options = [i for i, _ in self.wa.options(self.key)]
        if prefix:
            choice = next((i for i in options if i.startswith(choice)), choice)
        before = len(self.received)
        await self.wa.client_taps(self.key, choice)
        return await self._answer(before, **wait)

    def options(self) -> list[tuple[str, str]]:
        return self.wa.options(self.key)


def text_of(sent: Sent) -> str:
    body = sent.body
    if body["type"] == "text":
        return str(body["text"]["body"])
    if body["type"] == "interactive":
        return str(body["interactive"]["body"]["text"])
    if body["type"] == "document":
        return str(body["document"].get("caption", ""))
    return ""


async def queue_text(gateway: Any, chat: str, text: str) -> None:
    """A free-form message for the client put straight into the outbox, as a staff reply or a
    notice would be."""
    runtime = gateway.runtime
    params = {"content": {"type": "text", "text": {"body": text}}, "locale": "en"}
    await runtime.redis.xadd(
        runtime.keys.outbound(runtime.keys.shard_of(f"wa:{chat}")),
        {
            "channel": "whatsapp",
            "chat": chat,
            "method": "messages",
            "params": json.dumps(params),
            "ephemeral": "0",
            "origin": "test",
        },
    )


def signed(raw: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


async def test_meta_verification_handshake(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    gateway = await start_whatsapp(start_gateway, salon, wa)
    url = f"{gateway.url}/webhooks/whatsapp"
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    async with gateway.http.get(url, params=query | {"hub.verify_token": VERIFY_TOKEN}) as answer:
        assert answer.status == 200
        assert await answer.text() == "1158201444"
    async with gateway.http.get(url, params=query | {"hub.verify_token": "wrong"}) as answer:
        assert answer.status == 403
    wrong_mode = {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN}
    async with gateway.http.get(url, params=wrong_mode | {"hub.challenge": "1"}) as answer:
        assert answer.status == 403


async def test_forged_or_missing_signatures_are_refused_and_nothing_is_queued(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    gateway = await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa)
    payload = wa._envelope(
        {
            "contacts": [{"profile": {"name": "M"}, "wa_id": phone.key}],
            "messages": [
                {
                    "from": phone.key,
                    "id": "wamid.forged",
                    "timestamp": "1",
                    "type": "text",
                    "text": {"body": "hi"},
                }
            ],
        }
    )
    raw = json.dumps(payload).encode()
    url = f"{gateway.url}/webhooks/whatsapp"
    for headers in (
        signed(raw, "not-the-app-secret"),
        {"Content-Type": "application/json"},
        {"X-Hub-Signature-256": "sha256=zz", "Content-Type": "application/json"},
    ):
        async with gateway.http.post(url, data=raw, headers=headers) as answer:
            assert answer.status == 401
    # A body altered after signing: the signature no longer fits.
    async with gateway.http.post(url, data=raw + b" ", headers=signed(raw)) as answer:
        assert answer.status == 401
    async with gateway.http.post(url, data=b"{not json", headers=signed(b"{not json")) as answer:
        assert answer.status == 400
    await asyncio.sleep(0.3)
    assert phone.received == []
    redis = gateway.runtime.redis
    assert not [k async for k in redis.scan_iter(match=f"{gateway.runtime.keys.prefix}:dedup:*")]


async def test_a_client_books_on_whatsapp(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa)
    anna = master_id(salon, "Anna")

    greeting = await phone.say("Hello!")
    assert "Welcome" in text_of(greeting[-1])
    assert greeting[-1].body["interactive"]["type"] == "list"  # six menu entries
    assert wa.reads
    assert wa.reads[-1].startswith("wamid.")

    services = await phone.tap("m:book")
    body = services[-1].body["interactive"]
    assert body["type"] == "list"
    rows = body["action"]["sections"][0]["rows"]
    assert len(rows) <= 10
    ids = [row["id"] for row in rows]
    assert "b:s:womens-haircut" in ids

    masters = await phone.tap("b:s:womens-haircut")
    labels = [title for _, title in phone.options()]
    assert "Anna Petrova" in labels
    assert "Women's haircut" in text_of(masters[-1])

    days = await phone.tap(f"b:m:{anna}")
    day_rows = [i for i, _ in phone.options()]
    # Ten working days and Back and Cancel do not fit in one list: "More…" pages.
    assert day_rows[-1].startswith("wa:more:")
    assert len(day_rows) == 10
    assert "Choose a day" in text_of(days[-1])
    more = await phone.tap(day_rows[-1])
    assert text_of(more[-1]) == "More options:"
    second_page = [i for i, _ in phone.options()]
    assert "b:back" in second_page
    assert not set(second_page) & set(day_rows)

    await phone.tap("b:d:20260602")
    assert (f"b:t:202606020700:{anna}", "10:00") in phone.options()
    # The WhatsApp number is the contact: straight to the summary.
    summary = await phone.tap(f"b:t:202606020700:{anna}")
    text = text_of(summary[-1])
    assert text.startswith("Please check your booking:")
    assert "📱 +7 916 123-45-67" in text
    assert "🙂 Maria" in text

    done = await phone.tap("b:ok:", prefix=True)
    assert text_of(done[-1]).startswith("✅ You are booked!")
    assert done[-1].body["interactive"]["type"] == "button"  # three choices: buttons
    [booking] = salon.made_in_chat()
    assert booking["start"] == "2026-06-02T07:00:00.000Z"
    attendee = booking["attendees"][0]
    assert attendee["phoneNumber"] == "+79161234567"
    assert attendee["name"] == "Maria"
    assert booking["metadata"]["frontdesk_channel"] == "whatsapp"
    assert booking["metadata"]["frontdesk_chat"] == "79161234567"

    # Add to calendar: the .ics is uploaded, then sent as a document; the choices follow.
    files = await phone.tap("b:ics:", prefix=True)
    document = next(s for s in files if s.type == "document")
    media_id = document.body["document"]["id"]
    filename, mime_type, data = wa.media[media_id]
    # WhatsApp takes no text/calendar documents: plain text, under the .ics name.
    assert (filename, mime_type) == ("visit-2026-06-02.ics", "text/plain")
    assert b"DTSTART:20260602T070000Z" in data
    assert files[-1].type == "interactive"
    assert wa.errors == []


async def test_a_long_catalogue_goes_as_numbered_text_answered_with_a_number(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    # A salon with a long price list.
    anna = master_id(salon, "Anna")
    for number in range(1, 26):
        salon.calendar.add_team_event_type(
            f"spa-{number}",
            f"Spa ritual no. {number}",
            30,
            host_ids=[anna],
            team_id=salon.team_id,
            price=1000 + number,
            category="Spa",
            email_required=False,
        )
    await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa)
    await phone.say("Hi")
    catalogue = await phone.tap("m:svc")
    text = text_of(catalogue[-1])
    # The catalogue is longer than an interactive body may be (1024): numbered text instead.
    assert len(text) > 1024
    assert catalogue[-1].type == "text"
    assert "\n1. 📅 Book" in text
    assert text.endswith("Reply with a number.")
    answer = await phone.say("1")
    assert text_of(answer[-1]).startswith("Which service would you like?")
    assert wa.errors == []


async def test_reschedule_and_cancel_on_whatsapp_in_russian(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa, "79990001122", "Ольга")
    greeting = await phone.say("Здравствуйте")
    assert "Добро пожаловать" in text_of(greeting[-1])
    await phone.tap("m:book")
    await phone.tap("b:s:hair-colouring")
    await phone.tap("b:d:20260602")
    summary = await phone.tap("b:t:202606020700", prefix=True)
    assert "📱 +7 999 000-11-22" in text_of(summary[-1])
    done = await phone.tap("b:ok:", prefix=True)
    assert text_of(done[-1]).startswith("✅ Вы записаны!")
    [booked] = salon.made_in_chat()

    mine = await phone.tap("m:mine")
    assert text_of(mine[-1]).startswith("Ваши ближайшие записи:")
    await phone.tap(f"k:v:{booked['uid']}")
    days = await phone.tap(f"k:r:{booked['uid']}")
    assert "Перенос записи «Окрашивание волос»" in text_of(days[-1])
    await phone.tap("b:d:20260605")
    summary = await phone.tap("b:t:202606051200", prefix=True)  # 15:00
    assert text_of(summary[-1]).startswith("Перенести запись на это время?")
    moved = await phone.tap("b:ok:", prefix=True)
    assert text_of(moved[-1]).startswith("✅ Готово, запись перенесена:")
    [new] = salon.made_in_chat()
    assert new["start"] == "2026-06-05T12:00:00.000Z"
    old = next(b for b in salon.bookings(None) if b["uid"] == booked["uid"])
    assert old["status"] == "cancelled"

    await phone.tap("m:mine")
    await phone.tap(f"k:v:{new['uid']}")
    prompt = await phone.tap(f"k:c:{new['uid']}")
    assert text_of(prompt[-1]).startswith(
        "Отменить «Окрашивание волос» в пятницу, 5 июня, в 15:00?"
    )
    asked = await phone.tap(f"k:cx:{new['uid']}")
    assert text_of(asked[-1]).startswith("Запись ещё не отменена.")
    # Once cancelling is confirmed, the words typed are the reason Cal.com keeps.
    cancelled = await phone.say("Заболела")
    assert text_of(cancelled[-1]).startswith(
        "Запись «Окрашивание волос» в пятницу, 5 июня, в 15:00 отменена."
    )
    gone = next(b for b in salon.bookings(None) if b["uid"] == new["uid"])
    assert (gone["status"], gone["cancellationReason"]) == ("cancelled", "Заболела")
    assert wa.errors == []


async def test_the_same_wamid_twice_gets_one_reply(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    gateway = await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa)
    message = wa._message(phone.key, "text", {"body": "Hello"})
    await wa.deliver(phone.key, [message])
    await eventually(lambda: phone.received)
    await wa.deliver(phone.key, [message])
    await asyncio.sleep(0.4)
    assert len(phone.received) == 1
    metrics = await (await gateway.http.get(f"{gateway.url}/metrics")).text()
    assert 'frontdesk_webhooks_total{result="duplicate",source="whatsapp"} 1.0' in metrics


async def test_three_messages_in_one_delivery_are_handled_in_order(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa)
    await phone.say("Hello")
    before = len(phone.received)
    messages = [
        wa._message(phone.key, "text", {"body": "Can I bring my dog?"}),
        wa._message(phone.key, "text", {"body": "Book"}),
        wa._message(phone.key, "text", {"body": "Cancel"}),
    ]
    await wa.deliver(phone.key, messages)
    answers = await eventually(lambda: len(phone.received) >= before + 3 and phone.received)
    await asyncio.sleep(0.3)
    new = answers[before:]
    # In order: the question gets the menu again, "Book" the services, "Cancel" (the label of
    # the services' ✖️ Cancel, typed) leaves the booking.
    assert len(new) == 3
    assert "did not understand" in text_of(new[0])
    assert text_of(new[1]).startswith("Which service would you like?")
    assert text_of(new[2]) == "OK, I have not booked anything. How else can I help?"


async def test_a_message_outside_the_window_waits_for_the_client(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    gateway = await start_whatsapp(start_gateway, salon, wa)
    wa.window_errors = "sync"  # a free-form attempt outside the window would show in wa.errors
    phone = Phone(wa)
    await phone.say("Hello")
    salon.clock.now += timedelta(hours=25)
    # Something for the client after a day of silence (a staff reply, a notice): queued like
    # any reply, through the outbox.
    runtime = gateway.runtime
    await queue_text(gateway, phone.key, "Your master asks: 10:30?")
    template = await eventually(lambda: [s for s in phone.received if s.type == "template"])
    assert template[0].body["template"]["name"] == "frontdesk_reply_waiting"
    assert template[0].body["template"]["language"] == {"policy": "deterministic", "code": "en"}
    assert not [s for s in phone.received if "10:30" in text_of(s)]
    assert 131047 not in [code for code, _ in wa.errors]  # never attempted

    # The client taps Continue on the template: the waiting message arrives.
    before = len(phone.received)
    await wa.client_taps(phone.key, "Continue")
    delivered = await eventually(
        lambda: [s for s in phone.received[before:] if "10:30" in text_of(s)]
    )
    assert delivered
    await asyncio.sleep(0.2)
    # Delivered once, and the parked list is empty.
    assert len([s for s in phone.received if "10:30" in text_of(s)]) == 1
    parked = await runtime.redis.llen(f"{runtime.keys.prefix}:wa:parked:{phone.key}")
    assert parked == 0


async def test_rate_limits_back_off_and_deliver(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        "gateway.integrations.whatsapp.api.RATE_LIMITS",
        {130429: (0.1, 0.2), 131057: (0.1, 0.2), 131056: (0.1, 0.3), 131049: (0.1, 1.0)},
    )
    gateway = await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa)
    wa.throttle(2, 130429)
    greeting = await phone.say("Hello")
    assert "Welcome" in text_of(greeting[-1])
    assert [code for code, _ in wa.errors] == [130429, 130429]
    metrics = await (await gateway.http.get(f"{gateway.url}/metrics")).text()
    assert 'frontdesk_outbox_messages_total{channel="whatsapp",result="throttled"} 2.0' in metrics


async def test_statuses_are_recorded_and_never_downgraded(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    gateway = await start_whatsapp(start_gateway, salon, wa)
    wa.duplicate_statuses = True
    phone = Phone(wa)
    greeting = await phone.say("Hello")
    await wa.settle()
    await wa.client_reads(phone.key)
    # A late "delivered" after "read", as Meta sometimes sends them.
    wa._statuses(greeting[-1].wamid, phone.key, [("delivered", 0, "")])
    await wa.settle()
    state_key = f"{gateway.runtime.keys.prefix}:wa:status:{greeting[-1].wamid}"
    await eventually(lambda: gateway.runtime.redis.hget(state_key, "status"))
    await asyncio.sleep(0.3)
    assert await gateway.runtime.redis.hget(state_key, "status") == b"read"


async def test_a_failed_status_is_logged_counted_and_out_of_window_content_waits(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa)
    await phone.say("Hello")
    # WhatsApp's clock says the window closed though ours does not yet: the send is accepted,
    # then fails with 131047 in a status.
    wa._clients[phone.key].last_inbound -= 25 * 3600
    before = len(wa.history)
    await phone.wa.client_sends(phone.key, "reaction", {"message_id": "wamid.x", "emoji": "👍"})
    wa._clients[phone.key].last_inbound -= 25 * 3600
    runtime = gateway.runtime
    await queue_text(gateway, phone.key, "See you at 10:30")
    template = await eventually(lambda: [s for s in phone.received if s.type == "template"])
    assert template
    assert len(wa.history) > before
    assert "131047" in caplog.text
    metrics = await (await gateway.http.get(f"{gateway.url}/metrics")).text()
    assert 'frontdesk_whatsapp_statuses_total{status="failed"} 1.0' in metrics
    parked = await runtime.redis.lrange(f"{runtime.keys.prefix}:wa:parked:{phone.key}", 0, -1)
    assert [json.loads(p)["content"]["text"]["body"] for p in parked] == ["See you at 10:30"]


async def test_a_client_known_only_by_a_business_scoped_id(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    await start_whatsapp(start_gateway, salon, wa)
    key = wa.client(None, name="Kim", bsuid="US.13491208655302741918")
    phone = Phone.__new__(Phone)
    phone.wa, phone.key = wa, key
    greeting = await phone.say("Hello")
    assert "Welcome" in text_of(greeting[-1])
    assert greeting[-1].body.get("recipient") == "US.13491208655302741918"
    assert "to" not in greeting[-1].body
    # No number to use: the contact step asks for one.
    await phone.tap("m:book")
    await phone.tap("b:s:", prefix=True)
    if any(i.startswith("b:m:") for i, _ in phone.options()):
        await phone.tap("b:m:", prefix=True)
    await phone.tap("b:d:", prefix=True)
    ask = await phone.tap("b:t:", prefix=True)
    assert text_of(ask[-1]).startswith("How can the salon reach you?")
    # A contact card sent here gives the number.
    before = len(phone.received)
    card = {"name": {"formatted_name": "Kim"}, "phones": [{"phone": "+1 650 555 1234"}]}
    await wa.client_sends(key, "contacts", [card])  # type: ignore[arg-type]
    summary = await phone._answer(before)
    assert "📱 +1 650-555-1234" in text_of(summary[-1])


async def test_use_my_whatsapp_number_from_the_contact_step(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa)
    await phone.say("Hi")
    await phone.tap("m:book")
    await phone.tap("b:s:hair-colouring")
    await phone.tap("b:d:20260602")
    await phone.tap("b:t:", prefix=True)
    ask = await phone.tap("b:contact")
    assert text_of(ask[-1]).startswith("How can the salon reach you?")
    assert ("b:phone", "📱 Share my phone") in phone.options()
    summary = await phone.tap("b:phone")
    # One bubble: the note joins the summary (WhatsApp paces messages to one client).
    [message] = [s for s in summary if s.type != "read"]
    assert text_of(message).startswith(
        "Thank you! I will use +7 916 123-45-67.\n\nPlease check your booking:"
    )


async def test_template_buttons_system_messages_and_stale_pages(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa)
    await phone.say("Hi")
    # A quick-reply button of a template whose payload is one of the bot's choices.
    before = len(phone.received)
    await wa.client_sends(phone.key, "button", {"payload": "m:book", "text": "Book"})
    services = await phone._answer(before)
    assert text_of(services[-1]).startswith("Which service would you like?")
    # "Continue" with nothing waiting: the menu.
    before = len(phone.received)
    await wa.client_sends(phone.key, "button", {"payload": "Continue", "text": "Continue"})
    home = await phone._answer(before)
    assert text_of(home[-1]) == "How can I help you?"
    # A number change notice needs no answer; a "More…" row of a list long gone is a stale tap.
    before = len(phone.received)
    system = {"body": "User changed number", "wa_id": "79160000000", "type": "user_changed_number"}
    await wa.client_sends(phone.key, "system", system)
    await wa.client_sends(
        phone.key,
        "interactive",
        {"type": "list_reply", "list_reply": {"id": "wa:more:99", "title": "More…"}},
    )
    stale = await phone._answer(before)
    assert len(stale) == 1
    assert text_of(stale[-1]) == "That button is no longer active. Here is the menu:"


async def test_media_is_acknowledged_politely(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa)
    before = len(phone.received)
    await wa.client_sends(phone.key, "image", {"id": "1234", "mime_type": "image/jpeg"})
    answer = await phone._answer(before)
    assert "cannot open photos" in text_of(answer[-1])
    assert next(i for i, _ in phone.options()) == "m:book"


async def test_requests_fit_the_vendor_spec(wa: WhatsAppSandbox) -> None:
    if not wa.validating:
        pytest.skip("../shared/contracts/whatsapp-cloud.openapi.json is not beside the repo")
    async with ClientSession() as http:
        url = f"{wa.url}/v23.0/{NUMBER_ID}/messages"  # type: ignore[attr-defined]
        wa.client("79161234567")
        wa._clients["79161234567"].last_inbound = wa.clock()
        bad = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "79161234567",
            "type": "text",
            "text": {"body": "hi", "bold": True},
        }
        headers = {"Authorization": f"Bearer {WA_TOKEN}"}
        async with http.post(url, json=bad, headers=headers) as answer:
            assert answer.status == 400
            error = (await answer.json())["error"]
            assert error["code"] == 100
            assert "unknown property bold" in error["error_data"]["details"]


async def test_one_bad_message_in_a_delivery_leaves_the_others_queued(
    start_gateway: GatewayFactory,
    salon: Salon,
    wa: WhatsAppSandbox,
) -> None:
    """Meta redelivers a notification not answered 200 (with the same batch, for up to 7 days):
    the unreadable message is dropped and counted, its neighbours are answered, once."""
    gateway = await start_whatsapp(start_gateway, salon, wa)
    phone = Phone(wa)
    unreadable = wa._message(phone.key, "text", {"body": "?"}) | {"id": 12345}  # not a wamid
    deep = wa._message(phone.key, "text", {"body": "?"}) | {"extra": [[[[[[[[[[]]]]]]]]]] * 1}
    deep["extra"] = json.loads("[" * 300 + "]" * 300)  # deeper than is ever written back
    messages = [
        wa._message(phone.key, "text", {"body": "Hello"}),
        unreadable,
        deep,
        wa._message(phone.key, "text", {"body": "Book"}),
    ]
    await wa.deliver(phone.key, messages)
    answers = await eventually(lambda: len(phone.received) >= 2 and phone.received)
    await asyncio.sleep(0.3)
    assert len(phone.received) == 2
    assert text_of(answers[1]).startswith("Which service would you like?")
    # Answered 200 at once: no redelivery of the batch.
    assert [s for what, s in wa.deliveries if what.startswith("messages:")] == [200]
    metrics = await (await gateway.http.get(f"{gateway.url}/metrics")).text()
    assert 'frontdesk_events_dropped_total{reason="malformed_message",source="whatsapp"} 2.0' in (
        metrics
    )
    redis = gateway.runtime.redis
    assert await redis.xlen(gateway.runtime.keys.dead_letters) == 0
