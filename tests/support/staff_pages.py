"""The staff-notice flow tests' common set-up: the gateway started with Chatwoot, Cal.com and
Novu wired as `novu sync` leaves them, the salon's staff synced from Chatwoot, a client handed
off, and the pages each member of staff got."""

from __future__ import annotations

from typing import Any

from gateway.integrations.chatwoot.api import ChatwootClient
from gateway.integrations.novu.api import NovuClient
from gateway.integrations.novu.staff import HANDOFF, sync_staff
from gateway.pipeline.resilience import CircuitBreaker
from gateway.sandbox.novu import NovuSandbox
from gateway.sandbox.whatsapp import WhatsAppSandbox
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.test_flow_booking import Chat, Salon
from tests.test_flow_handoff import CW_TOKEN, Desk, start_desk
from tests.test_flow_notifications import NOVU_KEY, connect, notifying

JSON = dict[str, Any]


async def staff_from_chatwoot(desk: Desk, novu: NovuSandbox, salon_id: str) -> list[str]:
    """What `frontdesk novu sync` does for staff: Chatwoot's agents become the salon's
    subscribers, gathered in its topic."""
    chatwoot = ChatwootClient(desk.url, 1, CW_TOKEN, CircuitBreaker("chatwoot"))
    url = novu.url  # type: ignore[attr-defined]
    async with NovuClient(url, NOVU_KEY, CircuitBreaker("novu")) as client:
        try:
            return await sync_staff(client, await chatwoot.agents(), salon_id)
        finally:
            await chatwoot.aclose()


async def start_paging(
    start_gateway: GatewayFactory,
    salon: Salon,
    desk: Desk,
    novu: NovuSandbox,
    wa: WhatsAppSandbox | None = None,
    **settings: Any,
) -> Any:
    """The gateway with Chatwoot, Cal.com's webhook and Novu's workflows wired; `settings`
    add to (or override) what notifying needs."""
    gateway = await start_desk(start_gateway, salon, desk, wa, **(notifying(novu) | settings))
    await connect(gateway, salon, novu)
    return gateway


async def handed_off(sandbox: Sandbox, desk: Desk, chat_id: int, words: str) -> Any:
    """A Telegram client starts the bot and types `words` asking for a person: their
    conversation, once Chatwoot has it open."""
    chat = Chat(sandbox.telegram, chat_id)
    await chat.say("/start")
    await sandbox.telegram.client_says(chat_id, words)
    thread = await eventually(lambda: desk.chatwoot.conversation_for(f"tg:{chat_id}"))
    await eventually(lambda: thread.status == "open")
    return thread


def handoff_pages(novu: NovuSandbox, subscriber: str, conversation: int) -> list[JSON]:
    """The handoff notices in `subscriber`'s feed for this conversation."""
    return [
        n
        for n in novu.feed.get(subscriber, [])
        if n["templateIdentifier"] == HANDOFF and n["payload"]["conversation"] == conversation
    ]


def pages_of(novu: NovuSandbox, workflow: str, staff: list[str]) -> dict[str, list[JSON]]:
    """Each member's notices of one workflow."""
    return {
        s: [n for n in novu.feed.get(s, []) if n["templateIdentifier"] == workflow] for s in staff
    }


async def one_page_each(novu: NovuSandbox, workflow: str, staff: list[str]) -> dict[str, JSON]:
    """Wait until every member has a notice of `workflow`; exactly one each, then."""
    found = await eventually(
        lambda: all((pages := pages_of(novu, workflow, staff)).values()) and pages
    )
    notices: dict[str, JSON] = {}
    for subscriber in staff:
        [notices[subscriber]] = found[subscriber]
    return notices
