"""Staff paged of a booking change made while the salon is closed (issue 21), whichever way it
was made: a cancellation in the chat, or a booking made, moved or cancelled on Cal.com's own
page. Through the real gateway, the Cal.com, Chatwoot and Novu stand-ins and the salon's fixed
clock (Monday 1 June 2026, 10:00 in Moscow)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.integrations.calcom.bookings import BookingLinks
from gateway.integrations.novu.staff import OUT_OF_HOURS
from gateway.sandbox.novu import NovuSandbox
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.support.staff_pages import pages_of, staff_from_chatwoot, start_paging
from tests.support.stand_ins import serving
from tests.test_flow_booking import Chat, Salon
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_handoff import Desk
from tests.test_flow_handoff import desk as desk  # the fixture, shared
from tests.test_flow_notifications import (
    NOVU_KEY,
    VISIT,
    book_elsewhere,
    book_in_chat,
    post_signed,
    salon_api,
)


@pytest.fixture
async def novu(salon: Salon) -> AsyncIterator[NovuSandbox]:
    """Novu as self-hosted by default: the Idempotency-Key header ignored and a repeated
    transactionId a second run (gateway/sandbox/novu/sandbox.py), so a page sent twice is
    seen twice - nothing but Frontdesk itself keeps it to one."""
    async with serving(NovuSandbox(NOVU_KEY, clock=salon.clock, idempotency=False)) as sandbox:
        yield sandbox


CLOSED = "Mon-Sun 12:00-20:00"  # staff come in at noon
OPEN = "Mon-Sun 09:00-20:00"


def pages(novu: NovuSandbox, staff: list[str]) -> dict[str, list[Any]]:
    return pages_of(novu, OUT_OF_HOURS, staff)


def page_ids(novu: NovuSandbox, staff: list[str]) -> set[tuple[str, ...]]:
    """The pages each member has, by transaction: the same for all of them."""
    return {tuple(sorted(n["transactionId"] for n in feed)) for feed in pages(novu, staff).values()}


async def handled(gateway: Any, uid: str, trigger: str) -> None:
    """Wait until the worker has handled this change of the booking (Cal.com's webhook)."""
    links = BookingLinks(gateway.runtime.redis, gateway.runtime.keys)

    async def done() -> bool:
        return (await links.record(uid)).get("status") == trigger

    await eventually(done)


async def test_a_cancellation_in_the_chat_while_closed_pages_the_staff_once_in_the_salons_language(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    gateway = await start_paging(
        start_gateway, salon, desk, novu, salon_working_hours=CLOSED, default_locale="ru"
    )
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    chat = Chat(sandbox.telegram, 781)
    uid = await book_in_chat(chat, salon, "+79160000781")
    # From My bookings (a reminder's button asks the same): cancel, no reason.
    await chat.tap("m:mine")
    await chat.tap(f"k:v:{uid}")
    await chat.tap(f"k:c:{uid}")
    await chat.tap(f"k:cx:{uid}")
    done = await chat.tap(f"k:cs:{uid}")
    assert "cancelled" in done[-1]["text"]
    await salon.calendar.flush_webhooks()
    # Cal.com echoes both changes back by webhook: the chat made them, no second page.
    await handled(gateway, uid, "BOOKING_CANCELLED")
    await novu.settle()
    booked = f"{salon_id}:out-of-hours:booked:{uid}"
    cancelled = f"{salon_id}:out-of-hours:cancelled:{uid}"
    assert page_ids(novu, staff) == {(booked, cancelled)}
    for feed in pages(novu, staff).values():
        [page] = [n for n in feed if n["transactionId"] == cancelled]
        # Staff read it in the salon's language (DEFAULT_LOCALE); the client wrote in English.
        assert page["subject"] == "Отмена в нерабочее время"
        assert page["content"].startswith("Запись на Женская стрижка, ")
        assert page["content"].endswith(", отменена, когда салон был закрыт.")
        assert "10:00" in page["content"]
        assert page["payload"]["channel"] == "telegram"


async def test_while_the_salon_is_open_a_change_in_the_chat_or_on_cal_com_pages_no_one(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    gateway = await start_paging(start_gateway, salon, desk, novu, salon_working_hours=OPEN)
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    chat = Chat(sandbox.telegram, 782)
    uid = await book_in_chat(chat, salon, "+79160000782")
    await chat.tap("m:mine")
    await chat.tap(f"k:v:{uid}")
    await chat.tap(f"k:c:{uid}")
    # Typed this time: an unambiguous yes, then the reason.
    await chat.say("да, отменить")
    done = await chat.say("заболела")
    assert "cancelled" in done[-1]["text"]
    other = await book_elsewhere(salon, VISIT, "+79160000783")
    await salon_api(salon, "POST", f"/bookings/{other}/cancel", {"cancellationReason": "Busy"})
    await salon.calendar.flush_webhooks()
    await handled(gateway, uid, "BOOKING_CANCELLED")
    await handled(gateway, other, "BOOKING_CANCELLED")
    await novu.settle()
    assert page_ids(novu, staff) == {()}


async def test_changes_on_cal_coms_own_page_while_closed_page_once_each_even_when_redelivered(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    gateway = await start_paging(start_gateway, salon, desk, novu, salon_working_hours=CLOSED)
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    uid = await book_elsewhere(salon, VISIT, "+79160000784")
    await salon.calendar.flush_webhooks()
    await handled(gateway, uid, "BOOKING_CREATED")
    # Cal.com delivers the same webhook again: the same bytes, the same signature.
    [sent] = [w for w in salon.calendar.webhooks_sent if w.trigger == "BOOKING_CREATED"]
    url = f"{gateway.url}/webhooks/calcom"
    assert await post_signed(url, sent.body, sent.signature) == 200
    moved = await salon_api(
        salon, "POST", f"/bookings/{uid}/reschedule", {"start": "2026-06-05T09:00:00Z"}
    )
    new_uid = moved["uid"]
    await salon.calendar.flush_webhooks()
    await handled(gateway, new_uid, "BOOKING_RESCHEDULED")
    await salon_api(salon, "POST", f"/bookings/{new_uid}/cancel", {"cancellationReason": "Ill"})
    await salon.calendar.flush_webhooks()
    await handled(gateway, new_uid, "BOOKING_CANCELLED")
    assert await post_signed(url, sent.body, sent.signature) == 200
    await eventually(lambda: all(len(feed) >= 3 for feed in pages(novu, staff).values()))
    await novu.settle()
    expected = (
        f"{salon_id}:out-of-hours:booked:{uid}",
        f"{salon_id}:out-of-hours:cancelled:{new_uid}",
        f"{salon_id}:out-of-hours:moved:{new_uid}",
    )
    assert page_ids(novu, staff) == {tuple(sorted(expected))}
    for feed in pages(novu, staff).values():
        by_id = {n["transactionId"]: n for n in feed}
        first, gone, later = (by_id[t] for t in expected)
        assert first["subject"] == "Booked while the salon was closed"
        assert first["content"] == (
            "A client booked Women's haircut on Wed, 3 June, 10:00 while the salon was closed."
        )
        assert later["subject"] == "Moved while the salon was closed"
        assert later["content"] == (
            "A visit for Women's haircut was moved to Fri, 5 June, 12:00 "
            "while the salon was closed."
        )
        assert gone["subject"] == "Cancelled while the salon was closed"
        assert gone["content"] == (
            "A visit for Women's haircut on Fri, 5 June, 12:00 was cancelled "
            "while the salon was closed."
        )
        # Frontdesk does not know this client: no chat to name.
        assert first["payload"]["channel"] == ""


async def test_a_move_in_the_chat_while_closed_pages_once_as_moved(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    salon_id: str,
) -> None:
    gateway = await start_paging(start_gateway, salon, desk, novu, salon_working_hours=CLOSED)
    staff = await staff_from_chatwoot(desk, novu, salon_id)
    chat = Chat(sandbox.telegram, 785)
    uid = await book_in_chat(chat, salon, "+79160000785")
    await chat.tap("m:mine")
    await chat.tap(f"k:v:{uid}")
    await chat.tap(f"k:r:{uid}")
    await chat.tap("b:d:20260605")
    await chat.tap("b:t:202606050900", prefix=True)  # Friday 12:00
    moved = await chat.tap("b:ok:", prefix=True)
    assert moved[-1]["text"].startswith("✅ ")
    [new] = [b for b in salon.made_in_chat() if b["uid"] != uid and b["status"] != "cancelled"]
    await salon.calendar.flush_webhooks()
    await handled(gateway, new["uid"], "BOOKING_RESCHEDULED")
    await novu.settle()
    booked = f"{salon_id}:out-of-hours:booked:{uid}"
    again = f"{salon_id}:out-of-hours:moved:{new['uid']}"
    assert page_ids(novu, staff) == {(booked, again)}
    for feed in pages(novu, staff).values():
        [page] = [n for n in feed if n["transactionId"] == again]
        assert page["subject"] == "Moved while the salon was closed"
        assert page["content"] == (
            "A visit for Women's haircut was moved to Fri, 5 June, 12:00 "
            "while the salon was closed."
        )
