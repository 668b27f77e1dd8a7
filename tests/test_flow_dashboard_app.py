"""The Chatwoot Dashboard App through the real app: the page's key and tokens, Chatwoot's
context checked against Chatwoot, proposals held in the Cal.com stand-in and answered by the
client with a tap or in words while staff own the conversation, their draft left as it was."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from bot.session import Session
from gateway.dashboard_app import tokens
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.support.dashboard_app import JSON, DashboardApp
from tests.test_flow_booking import MOSCOW, Chat, Salon, book_until_summary, master_id
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_handoff import CW_TOKEN, Desk, start_desk, texts
from tests.test_flow_handoff import desk as desk  # the fixture, shared

DAY = "2026-06-02"


class App(DashboardApp):
    """The Dashboard App (Bookings) as the page drives it, opened on a client's conversation."""

    async def open(
        self, conversation: int, contact: int | None, agent: int = 3
    ) -> tuple[int, JSON]:
        context = {
            "conversation": {"id": conversation},
            "contact": {"id": contact},
            "currentAgent": {"id": agent, "name": "Olga (reception)"},
        }
        return await self.open_with(context)


async def handed_over(chat: Chat, desk: Desk) -> Any:
    """A client at their booking's summary who asks for a person: staff own the chat now."""
    await chat.tg.client_says(chat.chat_id, "I want to talk to a person")
    return await eventually(lambda: desk.chatwoot.conversation_for(f"tg:{chat.chat_id}"))


async def test_a_proposal_is_answered_in_words_while_staff_own_the_chat_and_the_draft_stays(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk, salon_id: str
) -> None:
    gateway = await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, 811)
    await book_until_summary(chat, "womens-haircut", str(master_id(salon, "Anna")))
    await chat.share_phone("+79161112233")
    thread = await handed_over(chat, desk)
    app = App(gateway, salon_id)
    assert (await app.open(thread.id, thread.contact_id))[0] == 200

    anna = master_id(salon, "Anna")
    status, answer = await app.call(
        "GET", "slots", service="womens-haircut", master=str(anna), day=DAY
    )
    assert status == 200
    picks = [answer["slots"][n] for n in (0, 3, 6)]
    body = {"service": "womens-haircut", "slots": picks}
    status, proposed = await app.call("POST", "propose", body)
    assert status == 200, proposed
    # Held in Cal.com for the client: nobody else can take them meanwhile.
    assert len(salon.calendar._reservations) >= 3
    offer = await eventually(lambda: [b for b in chat.buttons() if b[0].startswith("pp:")])
    assert len(offer) == 3
    await eventually(lambda: any("proposed" in note for note in desk.notes("tg:811")))

    # The client answers in their own words, in Russian, with the second time.
    second = datetime.fromisoformat(picks[1]["start"]).astimezone(MOSCOW)
    before = len(chat.messages)
    await chat.tg.client_says(811, f"давайте в {second:%H:%M}")
    await eventually(lambda: any("You are booked" in t for t in texts(chat)[before:]))
    booked = [
        b
        for b in salon.bookings()
        if datetime.fromisoformat(b["start"].replace("Z", "+00:00")) == second
    ]
    assert len(booked) == 1
    await eventually(lambda: any("The client booked" in note for note in desk.notes("tg:811")))
    # The other two holds are given back.
    await eventually(lambda: not salon.calendar._reservations)

    # Staff hand back: the client's own booking in progress is where they left it.
    before = len(chat.messages)
    desk.chatwoot.resolve(thread.id)
    back = await eventually(lambda: texts(chat)[before:], timeout=15)
    assert "finish your booking where you left off" in back[0]
    runtime = gateway.runtime
    raw = await runtime.redis.get(runtime.keys.session("telegram", "811"))
    session = Session.model_validate_json(raw)
    assert session.draft is not None
    assert session.draft.service == "womens-haircut"
    assert session.draft.phone == "+79161112233"
    assert booked[0]["uid"] in session.bookings  # My bookings lists the proposal's visit

    # An old button of the proposal books nothing more.
    answer_to_old = await chat.tap(offer[0][0])
    assert "no longer held" in answer_to_old[-1]["text"]
    assert len(salon.made_in_chat()) == 1


async def test_the_api_refuses_bad_tokens_strangers_and_bad_input(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk, salon_id: str
) -> None:
    gateway = await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, 812)
    await chat.say("/start")
    thread = await handed_over(chat, desk)
    app = App(gateway, salon_id)
    async with gateway.http.get(app.base, params={"key": "forged"}) as page:
        assert page.status == 403
    # Chatwoot does not know that agent, or that conversation: refused.
    assert (await app.open(thread.id, thread.contact_id, agent=99))[0] == 403
    assert (await app.open(9999, None))[0] == 403
    assert (await app.open(thread.id, thread.contact_id + 1))[0] == 403
    status, answer = await app.call("POST", "open", {"conversation": "x", "currentAgent": []})
    assert (status, answer["error"][:11]) == (400, "the context")
    # A page token is no staff token, and a forged one is nothing.
    status, _ = await app.call("GET", "slots", service="womens-haircut", day=DAY)
    assert status == 401
    assert (await app.open(thread.id, thread.contact_id))[0] == 200
    for query, expected in (
        ({"service": "womens-haircut", "day": "tomorrow"}, 400),
        ({"service": "womens-haircut", "day": DAY, "master": "x"}, 400),
        ({"service": "nope", "day": DAY}, 404),
        ({"service": "womens-haircut", "day": "2031-01-01"}, 400),
    ):
        assert (await app.call("GET", "slots", **query))[0] == expected, query
    bad_bodies: list[tuple[Any, int]] = [
        ({"service": "womens-haircut", "slots": []}, 400),
        ({"service": "womens-haircut", "slots": [{"start": "soon"}]}, 400),
        ({"service": "womens-haircut", "slots": [{"start": "2026-06-02T10:00:00"}]}, 400),
        ({"service": "womens-haircut", "slots": [{}] * 4}, 400),
        ({"service": "womens-haircut", "slots": [{"start": "9999-12-31T23:00-05:00"}]}, 400),
        ([1, 2], 400),
        ({"service": "nope", "slots": [{"start": "2026-06-02T10:00:00+03:00"}]}, 404),
    ]
    for body, expected in bad_bodies:
        assert (await app.call("POST", "propose", body))[0] == expected, body
    # No phone or email known for this client yet: staff are told to ask for one.
    status, _answer = await app.call("GET", "slots", service="womens-haircut", day=DAY)
    free = _answer["slots"][0]
    status, answer = await app.call(
        "POST", "propose", {"service": "womens-haircut", "slots": [free]}
    )
    assert (status, answer["error"][:22]) == (422, "the client has given n")
    # A time that is not free is 409, and nothing stays held.
    desk.chatwoot.contacts[thread.contact_id].phone_number = "+79160000000"
    taken = {"start": "2026-06-02T03:00:00+00:00", "master_id": None}
    assert (await app.call("POST", "propose", {"service": "womens-haircut", "slots": [taken]}))[
        0
    ] == 409
    assert not salon.calendar._reservations
    async with gateway.http.post(
        f"{app.base}/api/propose", data=b"{", headers={"Authorization": f"Bearer {app.token}"}
    ) as raw:
        assert raw.status == 400


async def test_staff_book_move_and_cancel_for_the_client_who_hears_each_once(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk, salon_id: str
) -> None:
    gateway = await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, 813)
    anna = master_id(salon, "Anna")
    await book_until_summary(chat, "womens-haircut", str(anna))
    await chat.share_phone("+79161112244")
    thread = await handed_over(chat, desk)
    app = App(gateway, salon_id)
    assert (await app.open(thread.id, thread.contact_id))[0] == 200
    status, answer = await app.call(
        "GET", "slots", service="womens-haircut", master=str(anna), day=DAY
    )
    first, later = answer["slots"][0], answer["slots"][5]

    press = {
        "service": "womens-haircut",
        "start": first["start"],
        "master_id": anna,
        "request": "press0001",
    }
    status, made = await app.call("POST", "book", press)
    assert status == 200, made
    assert (await app.call("POST", "book", press))[1] == made  # pressed again: the same booking
    assert len(salon.made_in_chat()) == 1
    await eventually(lambda: any("booked you" in t for t in texts(chat)))
    await eventually(lambda: any("booked Women" in n for n in desk.notes("tg:813")))
    status, overview = await app.call("GET", "overview")
    assert [v["uid"] for v in overview["visits"]] == [made["uid"]]

    status, moved = await app.call("POST", "move", {"uid": made["uid"], "start": later["start"]})
    assert status == 200, moved
    await eventually(lambda: any("moved your visit" in t for t in texts(chat)))
    # Not this client's booking, or no time at all: refused, nothing changes.
    assert (await app.call("POST", "cancel", {"uid": "someone-elses"}))[0] == 404
    assert (await app.call("POST", "move", {"uid": moved["uid"], "start": "later"}))[0] == 400
    far = {"uid": moved["uid"], "start": "9999-12-31T23:00-05:00"}
    assert (await app.call("POST", "move", far))[0] == 400
    status, _ = await app.call("POST", "cancel", {"uid": moved["uid"]})
    assert status == 200
    await eventually(lambda: any("cancelled your visit" in t for t in texts(chat)))
    await eventually(lambda: any("cancelled Women" in n for n in desk.notes("tg:813")))
    assert salon.made_in_chat() == []
    # Each told once: Cal.com's own webhooks about these changes add nothing for the client.
    await asyncio.sleep(0.5)
    told = [t for t in texts(chat) if "from the salon" in t]
    assert len(told) == 3, told
    runtime = gateway.runtime
    raw = await runtime.redis.get(runtime.keys.session("telegram", "813"))
    session = Session.model_validate_json(raw)
    assert session.bookings == []
    assert session.draft is not None  # their own booking in progress, as it was


async def test_only_an_agent_of_the_conversations_inbox_or_its_assignee_opens_the_app(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk, salon_id: str
) -> None:
    gateway = await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, 815)
    await chat.say("/start")
    thread = await handed_over(chat, desk)
    # Another agent of the account, not a member of the salon's inbox.
    stranger = {"id": 7, "name": "Max", "email": "max@salon.example", "type": "user"}
    desk.chatwoot.users[7] = stranger
    app = App(gateway, salon_id)
    status, answer = await app.open(thread.id, thread.contact_id, agent=7)
    assert (status, answer["error"]) == (403, "the agent does not answer this conversation")
    # Assigned the conversation, they answer it.
    desk.chatwoot.conversations[thread.id].assignee_id = 7
    assert (await app.open(thread.id, thread.contact_id, agent=7))[0] == 200
    # A member of the inbox opens it whoever is assigned.
    assert (await app.open(thread.id, thread.contact_id, agent=3))[0] == 200


async def test_a_raised_key_version_gives_a_new_link_and_the_old_one_is_refused(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk, salon_id: str
) -> None:
    gateway = await start_desk(start_gateway, salon, desk, dashboard_app_key_version=2)
    app = App(gateway, salon_id)
    async with gateway.http.get(app.base, params={"key": app.key}) as page:
        assert page.status == 403  # the version-0 key
    rotated = tokens.link_key(tokens.secret_for(salon_id, CW_TOKEN, 2))
    async with gateway.http.get(app.base, params={"key": rotated}) as page:
        assert page.status == 200


async def test_the_page_reads_chatwoots_context_only_from_the_salons_chatwoot(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk, salon_id: str
) -> None:
    gateway = await start_desk(start_gateway, salon, desk)
    app = App(gateway, salon_id)
    async with gateway.http.get(app.base, params={"key": app.key}) as page:
        html = await page.text()
    origin = desk.url.rstrip("/")
    assert f'const chatwootOrigin = "{origin}";' in html
    assert "if (event.origin !== chatwootOrigin) return;" in html


async def test_staff_propose_the_same_time_again_and_a_failed_proposal_keeps_the_open_one(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon, desk: Desk, salon_id: str
) -> None:
    gateway = await start_desk(start_gateway, salon, desk)
    chat = Chat(sandbox.telegram, 816)
    await book_until_summary(chat, "womens-haircut", str(master_id(salon, "Anna")))
    await chat.share_phone("+79161112233")
    thread = await handed_over(chat, desk)
    app = App(gateway, salon_id)
    assert (await app.open(thread.id, thread.contact_id))[0] == 200
    anna = master_id(salon, "Anna")
    _status, answer = await app.call(
        "GET", "slots", service="womens-haircut", master=str(anna), day=DAY
    )
    pick = answer["slots"][0]
    body = {"service": "womens-haircut", "slots": [pick]}
    assert (await app.call("POST", "propose", body))[0] == 200
    # The same time again, at once: the open proposal's hold is given back first.
    status, again = await app.call("POST", "propose", body)
    assert status == 200, again
    # A time that is not free: refused, and the open proposal stays held.
    taken = {"start": "2026-06-02T03:00:00+00:00", "master_id": None}
    refused = {"service": "womens-haircut", "slots": [taken]}
    assert (await app.call("POST", "propose", refused))[0] == 409
    kept = await eventually(lambda: [b for b in chat.buttons() if b[0].startswith("pp:")])
    assert (await chat.tap(kept[0][0]))[-1]["text"].startswith("✅")
