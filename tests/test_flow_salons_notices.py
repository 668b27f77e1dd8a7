"""Each salon's staff read only their own salon's notices: two salons in one gateway, each
with its own Chatwoot (where the same agent id, 3, is a different person) and one Novu
environment between them. A handoff in salon A pages salon A's staff; salon B's agent 3 opens
salon B's Notices app and sees none of it, and cannot read salon A's feed with B's token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.integrations.novu.api import NovuClient
from gateway.integrations.novu.staff import subscriber_id
from gateway.integrations.novu.workflows import sync
from gateway.pipeline.resilience import CircuitBreaker
from gateway.sandbox.novu import NovuSandbox
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import Sandbox, eventually
from tests.support.dashboard_app import JSON, Notices
from tests.support.staff_pages import handoff_pages, staff_from_chatwoot
from tests.support.stand_ins import serving
from tests.test_flow_booking import Chat
from tests.test_flow_handoff import Desk
from tests.test_flow_notifications import NOVU_KEY
from tests.test_flow_salons import RegistrySalon
from tests.test_flow_salons import calendar_a as calendar_a  # the fixtures, shared
from tests.test_flow_salons import clock as clock
from tests.test_flow_salons import registry as registry
from tests.test_flow_salons import salon_b as salon_b
from tests.test_flow_salons_staff import desks as desks
from tests.test_flow_salons_staff import start_with_desks as start_with_desks


@pytest.fixture
async def novu() -> AsyncIterator[NovuSandbox]:
    """One Novu environment for both salons (on the real clock: its worker runs at once)."""
    async with serving(NovuSandbox(NOVU_KEY)) as sandbox:
        yield sandbox


async def open_notices(gateway: Any, salon: str, conversation: int) -> tuple[str, JSON]:
    """Salon `salon`'s Notices app opened by its agent 3 on `conversation`: the token, the feed."""
    app = Notices(gateway, salon)
    status, opened = await app.open(conversation, agent=3)
    assert status == 200, opened
    return app.token, opened


async def test_an_agent_sees_only_their_own_salons_notices(
    start_with_desks: Callable[..., Awaitable[Any]],
    sandbox: Sandbox,
    salon_b: RegistrySalon,
    desks: tuple[Desk, Desk],
    novu: NovuSandbox,
    redis: Redis,
    salon_id: str,
) -> None:
    desk_a, desk_b = desks
    for desk in desks:
        desk.chatwoot.role = "administrator"
    novu_env = {"NOVU_API_URL": novu.url, "NOVU_API_KEY": NOVU_KEY}  # type: ignore[attr-defined]
    gateway = await start_with_desks(**novu_env)
    # `frontdesk novu sync` for each salon: its workflows, its staff and its topic.
    url = novu.url  # type: ignore[attr-defined]
    async with NovuClient(url, NOVU_KEY, CircuitBreaker("novu")) as client:
        await sync(client, f"{gateway.url}/webhooks/novu")
    for salon, desk in ((salon_id, desk_a), (salon_b.id, desk_b)):
        await staff_from_chatwoot(desk, novu, salon)

    # A client of salon A asks for a person: salon A's staff are paged, salon B's are not.
    in_a, in_b = Chat(sandbox.telegram, 771), Chat(salon_b.telegram, 772)
    await in_a.say("/start")
    await sandbox.telegram.client_says(771, "can i talk to a real person plz")
    thread_a = await eventually(lambda: desk_a.chatwoot.conversation_for("tg:771"))
    olga_a, olga_b = subscriber_id(salon_id, 3), subscriber_id(salon_b.id, 3)

    def paged(subscriber: str) -> list[JSON]:
        return handoff_pages(novu, subscriber, thread_a.id)

    await eventually(lambda: paged(olga_a), timeout=10)
    # Salon B needs a conversation of its own to open its app on.
    await in_b.say("/start")
    await salon_b.telegram.client_says(772, "hello")
    thread_b = await eventually(lambda: desk_b.chatwoot.conversation_for("tg:772"))
    await novu.settle()
    assert paged(olga_b) == []

    _token_a, seen_a = await open_notices(gateway, salon_id, thread_a.id)
    assert [n["id"] for n in seen_a["notices"]] == [paged(olga_a)[0]["_id"]]
    token_b, seen_b = await open_notices(gateway, salon_b.id, thread_b.id)
    assert seen_b["notices"] == []
    # Salon B's agent 3 cannot read salon A's feed: B's token is nothing in salon A.
    feed_a = f"{gateway.url}/dashboard-app/{salon_id}/notices/api/feed"
    async with gateway.http.get(feed_a, headers={"Authorization": f"Bearer {token_b}"}) as refused:
        assert refused.status == 401
