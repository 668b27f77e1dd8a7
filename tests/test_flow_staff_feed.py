"""Staff read their Novu in-app feed in the Notices app (issue 21), through the real gateway
and the Chatwoot and Novu stand-ins: a handoff pages staff, the agent who opens the app sees
that notice (newest first, unread, with its link) and marks it read, for themselves only; the
app refuses whoever comes without a valid token or from another salon. And `novu sync` keeps
the salon's staff topic true: an agent gone from Chatwoot is paged no more."""

from __future__ import annotations

import re

from gateway.dashboard_app import tokens
from gateway.integrations.novu.staff import subscriber_id, topic_key
from gateway.sandbox.novu import NovuSandbox
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.support.dashboard_app import Notices
from tests.support.staff_pages import handed_off, staff_from_chatwoot, start_paging
from tests.support.staff_pages import handoff_pages as pages
from tests.test_flow_booking import Salon
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_handoff import CW_TOKEN, Desk
from tests.test_flow_handoff import desk as desk  # the fixture, shared
from tests.test_flow_notifications import novu as novu  # the fixture, shared

IVAN = {"id": 4, "name": "Ivan (evenings)", "email": "ivan@salon.example", "type": "user"}


async def test_an_agent_reads_their_own_notices_and_marks_them_read(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    desk.chatwoot.role = "administrator"
    desk.chatwoot.users[IVAN["id"]] = IVAN
    desk.chatwoot.inboxes[desk.telegram_inbox].members.add(IVAN["id"])
    gateway = await start_paging(start_gateway, salon, desk, novu)
    await staff_from_chatwoot(desk, novu, salon_id)
    olga, ivan = subscriber_id(salon_id, 3), subscriber_id(salon_id, 4)

    first = (await handed_off(sandbox, desk, 741, "can i talk to a real person plz")).id
    await eventually(lambda: pages(novu, olga, first) and pages(novu, ivan, first))
    second = (await handed_off(sandbox, desk, 742, "Позовите администратора, пожалуйста")).id
    await eventually(lambda: pages(novu, olga, second) and pages(novu, ivan, second))

    app = Notices(gateway, salon_id)
    status, opened = await app.open(first, agent=3)
    assert status == 200, opened
    assert opened["agent"] == "Olga (reception)"
    shown = opened["notices"]
    # Newest first, unread, each opening its conversation in Chatwoot.
    texts = [n["text"] for n in shown]
    assert [
        f"waits for a person in conversation #{c}: " in t
        for t, c in zip(texts, (second, first), strict=True)
    ] == [True, True]
    assert all(
        t.startswith("A client on Telegram") and t.endswith("Nobody has taken it yet.")
        for t in texts
    )
    assert [n["read"] for n in shown] == [False, False]
    assert opened["unread"] == 2
    assert shown[0]["url"].endswith(f"/conversations/{second}")
    assert shown[0]["id"] == pages(novu, olga, second)[0]["_id"]
    # Novu's own message objects stay at the edge.
    assert set(shown[0]) == {"id", "subject", "text", "url", "read", "at"}
    assert re.search(r"\b\d{2}:\d{2}$", shown[0]["at"])  # when, on the salon's clock

    # Olga marks the older one read: hers only, Ivan's copy stays unread.
    status, _ = await app.call("POST", "read", {"ids": [shown[1]["id"]]})
    assert status == 200
    status, feed = await app.call("GET", "feed")
    assert [n["read"] for n in feed["notices"]] == [False, True]
    assert feed["unread"] == 1
    assert pages(novu, ivan, first)[0]["read"] is False
    # Olga's token cannot mark Ivan's notice: Novu changes only the path subscriber's messages.
    status, _ = await app.call("POST", "read", {"ids": [pages(novu, ivan, second)[0]["_id"]]})
    assert status == 200
    assert pages(novu, ivan, second)[0]["read"] is False

    # Ivan opens the app: his own feed, both unread; he marks all read.
    other = Notices(gateway, salon_id)
    status, his = await other.open(first, agent=4)
    assert (status, his["agent"], his["unread"]) == (200, "Ivan (evenings)", 2)
    status, marked = await other.call("POST", "read-all")
    assert (status, marked) == (200, {"marked": 2})
    assert (await other.call("GET", "feed"))[1]["unread"] == 0
    assert (await app.call("GET", "feed"))[1]["unread"] == 1

    # Bad input is a 4xx, never a 5xx.
    for body in ({}, {"ids": []}, {"ids": ["not-an-id"]}, {"ids": "x"}, {"ids": [1]}):
        assert (await app.call("POST", "read", body))[0] == 400
    for page in ("-1", "x", "99999"):
        assert (await app.call("GET", "feed", page=page))[0] == 400
    async with gateway.http.post(
        f"{app.base}/api/read", data=b"{not json", headers={"Authorization": f"Bearer {app.token}"}
    ) as answer:
        assert answer.status == 400


async def test_the_notices_app_refuses_strangers_and_other_salons(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    desk.chatwoot.role = "administrator"
    gateway = await start_paging(start_gateway, salon, desk, novu)
    await staff_from_chatwoot(desk, novu, salon_id)
    conversation = (await handed_off(sandbox, desk, 751, "I want to talk to a person")).id
    app = Notices(gateway, salon_id)

    # No token, or the page token where the notices token is needed: 401.
    assert (await app.call("GET", "feed"))[0] == 401
    async with gateway.http.get(app.base, params={"key": "guess"}) as page:
        assert page.status == 403
    # Another salon's token (signed with its own secret) opens nothing here.
    app.token = tokens.issue(
        tokens.secret_for("another-salon", CW_TOKEN), tokens.NOTICES, {"agent": 3}, 4e9
    )
    assert (await app.call("GET", "feed"))[0] == 401
    # A Bookings token is not a notices token.
    app.token = tokens.issue(tokens.secret_for(salon_id, CW_TOKEN), tokens.STAFF, {"agent": 3}, 4e9)
    assert (await app.call("GET", "feed"))[0] == 401
    # An agent who is not one of the salon's, or a conversation of another account: 403.
    assert (await app.open(conversation, agent=99))[0] == 403
    assert (await app.open(9999, agent=3))[0] == 403
    # An agent `novu sync` has not reached yet (Novu answers their feed with a 400
    # "Subscriber not found"): an empty feed, not an error.
    await eventually(lambda: pages(novu, subscriber_id(salon_id, 3), conversation))
    await novu.settle()
    olga = novu.subscribers.pop(subscriber_id(salon_id, 3))
    status, empty = await app.open(conversation, agent=3)
    assert (status, empty["notices"], empty["unread"]) == (200, [], 0)
    novu.subscribers[olga["subscriberId"]] = olga
    assert (await app.call("GET", "feed"))[1]["unread"] == 1
    # Novu refuses the salon's key (it was rotated in Novu, not here yet): a 503 that says
    # so, never a 5xx of our own.
    novu.api_key = "rotated-in-novu"
    status, answer = await app.call("GET", "feed")
    assert (status, answer) == (503, {"error": "Novu cannot be reached now"})
    assert (await app.call("POST", "read-all"))[0] == 503
    assert (await app.call("POST", "read", {"ids": ["0" * 24]}))[0] == 503
    # A salon the gateway does not serve: 404.
    stranger = Notices(gateway, "another-salon")
    async with gateway.http.get(stranger.base, params={"key": stranger.key}) as page:
        assert page.status == 404


async def test_novu_sync_takes_an_agent_gone_from_chatwoot_out_of_the_staff_topic(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    desk.chatwoot.role = "administrator"
    desk.chatwoot.users[IVAN["id"]] = IVAN
    await start_paging(start_gateway, salon, desk, novu)
    ivan = subscriber_id(salon_id, 4)
    # Someone added a subscriber of their own to the topic by hand: it is not ours to remove.
    novu.subscribers["owner-phone"] = {"subscriberId": "owner-phone"}
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    assert ivan in staff
    novu.topics[topic_key(salon_id)].append("owner-phone")

    # Ivan leaves the salon: removed from Chatwoot, then `novu sync` (run again: the topic's
    # 409 on creation is no failure).
    del desk.chatwoot.users[IVAN["id"]]
    now = await staff_from_chatwoot(desk, novu, salon_id)
    assert ivan not in now
    assert novu.topics[topic_key(salon_id)] == [*now, "owner-phone"]
    removals = [c for c in novu.calls if c[1].endswith("/subscribers/removal")]
    assert len(removals) == 1
    # A third run finds nothing to remove and calls no removal.
    assert await staff_from_chatwoot(desk, novu, salon_id) == now
    assert len([c for c in novu.calls if c[1].endswith("/subscribers/removal")]) == 1

    # The next handoff pages those who are still staff, and not Ivan.
    conversation = (await handed_off(sandbox, desk, 761, "can i talk to a real person plz")).id
    olga = subscriber_id(salon_id, 3)
    await eventually(lambda: pages(novu, olga, conversation))
    await novu.settle()
    assert pages(novu, ivan, conversation) == []


async def test_while_novu_is_down_the_notices_app_answers_503_breaker_open_too(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    """Novu fails again and again: the salon's circuit breaker for Novu opens, and the app
    still answers 503 (Novu cannot be reached), never a 500 of its own."""
    desk.chatwoot.role = "administrator"
    gateway = await start_paging(start_gateway, salon, desk, novu)
    await staff_from_chatwoot(desk, novu, salon_id)
    conversation = (await handed_off(sandbox, desk, 752, "I want to talk to a person")).id
    app = Notices(gateway, salon_id)
    assert (await app.open(conversation, agent=3))[0] == 200
    novu.down = True
    answers = [(await app.call("GET", "feed"))[0] for _ in range(8)]
    answers.append((await app.call("POST", "read-all"))[0])
    answers.append((await app.call("POST", "read", {"ids": ["0" * 24]}))[0])
    assert answers == [503] * 10
