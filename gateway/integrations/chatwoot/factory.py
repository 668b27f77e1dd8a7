"""Chatwoot's clients from the salon's Chatwoot settings: the API client, the staff files and
the help desk (the outbox's delivery for channel "chatwoot")."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.handoff_routing import Routing
from gateway.integrations.chatwoot.api import ChatwootClient, is_failure
from gateway.integrations.chatwoot.files import ChatwootFiles
from gateway.integrations.chatwoot.helpdesk import HelpDesk, HelpDeskSettings, HelpDeskState
from gateway.pipeline.resilience import BreakerFor, CircuitBreaker
from gateway.salon_settings import ChatwootSettings


@dataclass(frozen=True)
class ChatwootClients:
    client: ChatwootClient
    files: ChatwootFiles
    helpdesk: HelpDesk

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.files.aclose()


def chatwoot_client(
    settings: ChatwootSettings, breaker: CircuitBreaker, timeout: float
) -> ChatwootClient:
    """The API client of the salon's Chatwoot account (and its agent bot, when it has one)."""
    return ChatwootClient(
        settings.url,
        settings.account_id,
        settings.api_token.get_secret_value(),
        breaker,
        timeout=timeout,
        bot_token=settings.bot_token.get_secret_value() if settings.bot_token else None,
    )


def chatwoot_clients(
    settings: ChatwootSettings, state: HelpDeskState, breaker_for: BreakerFor, timeout: float
) -> ChatwootClients:
    breaker = breaker_for("chatwoot", is_failure)
    client = chatwoot_client(settings, breaker, timeout)
    # Staff files are fetched when their message is delivered, behind the same breaker; a
    # download is allowed longer than an API call (files of up to 100 MB).
    files = ChatwootFiles(breaker, timeout=3 * timeout)
    helpdesk = HelpDesk(
        client,
        state,
        HelpDeskSettings(
            settings.inboxes(),
            settings.mirror,
            settings.team_id,
            settings.assignee_id,
            settings.labels,
            Routing(
                settings.routing,
                settings.team_id,
                settings.assignee_id,
                settings.labels,
                settings.after_hours_label,
            ),
        ),
    )
    return ChatwootClients(client, files, helpdesk)
