"""Staff's proposals to a WhatsApp client, through the real app and the WhatsApp stand-in: inside
the 24-hour window the times are the message's own buttons; outside it (where the stand-in,
as WhatsApp, refuses anything but an approved template with 131047) the proposal goes as the
`frontdesk_proposal_<n>` template, and the client's typed answer or tap on it books."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.sandbox.whatsapp import WhatsAppSandbox
from tests.conftest import GatewayFactory, eventually
from tests.test_flow_booking import Salon, master_id
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_dashboard_app import App
from tests.test_flow_handoff import Desk, start_desk
from tests.test_flow_handoff import desk as desk  # the fixture, shared
from tests.test_flow_whatsapp import Phone, text_of
from tests.test_flow_whatsapp import wa as wa  # the fixture, shared

JSON = dict[str, Any]


def _start(slot: JSON) -> datetime:
    return datetime.fromisoformat(slot["start"])


def booked_at(salon: Salon, start: datetime) -> list[JSON]:
    return [
        b
        for b in salon.made_in_chat()
        if datetime.fromisoformat(b["start"].replace("Z", "+00:00")) == start
    ]


def held(salon: Salon) -> list[Any]:
    """The Cal.com stand-in's reservations still holding a time."""
    now = salon.clock()
    return [r for r in salon.calendar._reservations.values() if r.until > now]


async def propose(app: App, anna: int, day: str, picks: tuple[int, ...]) -> list[JSON]:
    status, answer = await app.call(
        "GET", "slots", service="womens-haircut", master=str(anna), day=day
    )
    assert status == 200, answer
    slots = [answer["slots"][n] for n in picks]
    status, proposed = await app.call(
        "POST", "propose", {"service": "womens-haircut", "slots": slots}
    )
    assert status == 200, proposed
    return slots


async def test_a_proposal_is_interactive_in_the_window_and_the_approved_template_outside_it(
    start_gateway: GatewayFactory, salon: Salon, desk: Desk, wa: WhatsAppSandbox, salon_id: str
) -> None:
    gateway = await start_desk(start_gateway, salon, desk, wa)
    phone = Phone(wa, "79160000777", name="Maria")
    await phone.say("Hello")
    await phone.tap("m:person", until=lambda sent: "I have passed" in text_of(sent))
    thread = await eventually(lambda: desk.chatwoot.conversation_for(f"wa:{phone.key}"))
    app = App(gateway, salon_id)
    assert (await app.open(thread.id, thread.contact_id))[0] == 200
    anna = master_id(salon, "Anna")

    # Inside the window: an interactive message whose options are the times; no template.
    before = len(phone.received)
    await propose(app, anna, "2026-06-02", (0, 3, 6))
    offer = await eventually(
        lambda: [s for s in phone.received[before:] if s.type == "interactive"], timeout=10
    )
    assert "offers these times" in text_of(offer[-1])
    assert sum(1 for choice, _ in phone.options() if choice.startswith("pp:")) == 3
    assert not [s for s in phone.received[before:] if s.type == "template"]

    # Two days later her window is closed: staff propose two times; WhatsApp would refuse
    # the interactive message (131047), so the approved template for two times goes instead.
    salon.clock.advance(48 * 3600)
    assert (await app.open(thread.id, thread.contact_id))[0] == 200
    before = len(phone.received)
    two = await propose(app, anna, "2026-06-05", (1, 4))
    sent = await eventually(
        lambda: [s for s in phone.received[before:] if s.type == "template"], timeout=10
    )
    template = sent[-1].body["template"]
    assert template["name"] == "frontdesk_proposal_2"
    assert template["language"]["code"] == "en"
    values = [p["text"] for p in template["components"][0]["parameters"]]
    assert values[0] == "Olga (reception)"
    assert values[1] == "Women's haircut"
    assert values[2].startswith("Fri, 5 June, ")
    assert values[2].endswith(" · Anna Petrova")
    payloads = [c["parameters"][0]["payload"] for c in template["components"][1:]]
    assert len(payloads) == 2
    assert all(p.startswith("pp:") for p in payloads)
    # Nothing free-form was attempted (the stand-in would have refused it), nor parked.
    assert wa.errors == []
    assert all(s.type == "template" for s in phone.received[before:])
    assert not [s for s in phone.received[before:] if "has replied" in str(s.body)]

    # She answers in words, with the second time's number: that time is booked.
    second = _start(two[1])
    answer = await phone.say("2", until=lambda s: "You are booked" in text_of(s))
    assert "You are booked" in text_of(answer[-1])
    assert len(booked_at(salon, second)) == 1
    await eventually(lambda: any("The client booked" in n for n in desk.notes(f"wa:{phone.key}")))
    await eventually(lambda: not held(salon))  # the other hold is given back

    # Another two days: one time proposed is the one-time template; her tap on it books.
    salon.clock.advance(48 * 3600)
    assert (await app.open(thread.id, thread.contact_id))[0] == 200
    before = len(phone.received)
    [one] = await propose(app, anna, "2026-06-08", (2,))
    sent = await eventually(
        lambda: [s for s in phone.received[before:] if s.type == "template"], timeout=10
    )
    template = sent[-1].body["template"]
    assert template["name"] == "frontdesk_proposal_1"
    assert len(template["components"][0]["parameters"]) == 4
    [button] = template["components"][1:]
    tapped = await phone.tap(
        button["parameters"][0]["payload"], until=lambda s: "You are booked" in text_of(s)
    )
    assert "You are booked" in text_of(tapped[-1])
    assert len(booked_at(salon, _start(one))) == 1
    assert len(salon.made_in_chat()) == 2
    assert wa.errors == []


async def test_a_refused_proposal_template_leaves_the_proposal_waiting_for_the_client(
    start_gateway: GatewayFactory, salon: Salon, desk: Desk, wa: WhatsAppSandbox, salon_id: str
) -> None:
    """The salon has not registered the proposal's templates: the proposal waits behind the
    reply-waiting template, as any message outside the window does, and is not lost."""
    gateway = await start_desk(start_gateway, salon, desk, wa)
    for count in (1, 2, 3):
        for language in ("ru", "en"):
            wa.templates.pop((f"frontdesk_proposal_{count}", language), None)
    phone = Phone(wa, "79160000778", name="Maria")
    await phone.say("Hello")
    await phone.tap("m:person", until=lambda sent: "I have passed" in text_of(sent))
    thread = await eventually(lambda: desk.chatwoot.conversation_for(f"wa:{phone.key}"))
    app = App(gateway, salon_id)
    salon.clock.advance(30 * 3600)
    assert (await app.open(thread.id, thread.contact_id))[0] == 200
    before = len(phone.received)
    await propose(app, master_id(salon, "Anna"), "2026-06-04", (0,))
    waiting = await eventually(
        lambda: [s for s in phone.received[before:] if s.type == "template"], timeout=10
    )
    assert waiting[-1].body["template"]["name"] == "frontdesk_reply_waiting"
    await wa.client_taps(phone.key, "Continue")
    await eventually(lambda: any("offers these times" in text_of(s) for s in phone.received))
