"""Chatwoot's Application API, the calls Frontdesk makes, over the JSON API base
(`gateway/integrations/http.py`).

Auth is a user's `api_access_token` (contacts refuse agent-bot tokens: only the endpoints of
`BOT_ACCESSIBLE_ENDPOINTS`, app/controllers/concerns/access_token_auth_helper.rb, take one). An
optional agent bot's token is used for one call, the handoff's `pending → open`, so that
Chatwoot runs its own bot handoff. Every call is bounded by a timeout and Chatwoot's circuit
breaker; 5xx, 429 and timeouts count against it, other 4xx are our mistakes and are raised as
`ChatwootRejected`.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from gateway.integrations.http import JsonApiClient, ServiceRejected, ServiceUnavailable
from gateway.integrations.http import is_failure as is_failure
from gateway.pipeline.resilience import CircuitBreaker

log = logging.getLogger("frontdesk.chatwoot")


class ChatwootUnavailable(ServiceUnavailable):
    """Chatwoot is down, slow or throttling us: retried later."""


class ChatwootRejected(ServiceRejected):
    """Chatwoot refused the request (a 4xx other than 429)."""


class ChatwootClient(JsonApiClient):
    unavailable_error = ChatwootUnavailable
    rejected_error = ChatwootRejected

    def __init__(
        self,
        url: str,
        account_id: int,
        token: str,
        breaker: CircuitBreaker,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        bot_token: str | None = None,
    ) -> None:
        self.account_id = account_id
        self._root = url.rstrip("/")
        self._bot_token = bot_token or None
        super().__init__(
            f"{self._root}/api/v1/accounts/{account_id}/",
            {"api_access_token": token},
            breaker,
            timeout=timeout,
            transport=transport,
        )

    @property
    def has_bot_token(self) -> bool:
        return self._bot_token is not None

    # --- contacts and conversations --------------------------------------------------------

    async def create_contact(
        self, inbox_id: int, *, name: str, identifier: str, phone: str | None, email: str | None
    ) -> int:
        body: dict[str, Any] = {"inbox_id": inbox_id, "name": name or identifier}
        body["identifier"] = identifier
        if phone:
            body["phone_number"] = phone
        if email:
            body["email"] = email
        answer = await self._call("POST", "contacts", json=body)
        payload = answer.get("payload") or {}
        contact = payload.get("contact") or payload
        return int(contact["id"])

    async def find_contact(self, identifier: str) -> int | None:
        """The contact with exactly this identifier (search matches substrings)."""
        answer = await self._call("GET", "contacts/search", params={"q": identifier})
        for contact in answer.get("payload") or []:
            if contact.get("identifier") == identifier:
                return int(contact["id"])
        return None

    async def add_contact_inbox(self, contact_id: int, inbox_id: int, source_id: str) -> str:
        answer = await self._call(
            "POST",
            f"contacts/{contact_id}/contact_inboxes",
            json={"inbox_id": inbox_id, "source_id": source_id},
        )
        return str(answer.get("source_id") or source_id)

    async def merge_contacts(self, base_id: int, mergee_id: int) -> None:
        """Chatwoot's contact merge (`POST /actions/contact_merge`, app/actions/
        contact_merge_action.rb): the mergee's conversations, messages and contact inboxes move
        to the base contact, the attributes merge (the base's win), the mergee is destroyed."""
        await self._call(
            "POST",
            "actions/contact_merge",
            json={"base_contact_id": base_id, "mergee_contact_id": mergee_id},
        )

    async def create_conversation(
        self,
        inbox_id: int,
        contact_id: int,
        source_id: str,
        *,
        status: str,
        custom_attributes: dict[str, Any],
    ) -> int:
        answer = await self._call(
            "POST",
            "conversations",
            json={
                "source_id": source_id,
                "inbox_id": inbox_id,
                "contact_id": contact_id,
                "status": status,
                "custom_attributes": custom_attributes,
            },
        )
        return int(answer["id"])

    async def conversation(self, conversation_id: int) -> dict[str, Any]:
        """The conversation as Chatwoot has it now (its `status` among the rest)."""
        answer = await self._call("GET", f"conversations/{conversation_id}")
        return answer if isinstance(answer, dict) else {}

    async def agents(self) -> list[dict[str, Any]]:
        """The account's agents (`GET .../agents`: app/controllers/api/v1/accounts/
        agents_controller.rb `index`, an array of app/views/api/v1/models/_agent.json.jbuilder:
        `id`, `name`, `email`, `role`, ...)."""
        answer = await self._call("GET", "agents")
        return (
            [agent for agent in answer if isinstance(agent, dict)]
            if isinstance(answer, list)
            else []
        )

    async def inbox_members(self, inbox_id: int) -> list[dict[str, Any]]:
        """The inbox's agents (`GET .../inbox_members/{inbox_id}`, developers.chatwoot.com/
        api-reference/inboxes/list-agents-in-inbox: `{"payload": [agent, ...]}`)."""
        answer = await self._call("GET", f"inbox_members/{inbox_id}")
        listed = answer.get("payload") if isinstance(answer, dict) else None
        return [a for a in listed if isinstance(a, dict)] if isinstance(listed, list) else []

    async def profile(self) -> dict[str, Any]:
        """The token's user: `id`, and `accounts` with the `role` in each
        (app/views/api/v1/models/_user.json.jbuilder). Bots are refused here."""
        answer = await self._call("GET", f"{self._root}/api/v1/profile")
        return answer if isinstance(answer, dict) else {}

    async def toggle_status(
        self, conversation_id: int, status: str, *, as_bot: bool = False
    ) -> None:
        """Set the status; `as_bot` with the agent bot's token (when one is configured)."""
        headers = {"api_access_token": self._bot_token} if as_bot and self._bot_token else None
        await self._call(
            "POST",
            f"conversations/{conversation_id}/toggle_status",
            json={"status": status},
            headers=headers,
        )

    async def assign(
        self, conversation_id: int, *, assignee_id: int | None, team_id: int | None
    ) -> None:
        body = {"assignee_id": assignee_id} if assignee_id is not None else {"team_id": team_id}
        await self._call("POST", f"conversations/{conversation_id}/assignments", json=body)

    async def unassign(self, conversation_id: int) -> None:
        """No agent: Chatwoot looks the assignee up by id (`account.users.find_by(id:)`,
        app/services/conversations/assignment_service.rb), and no user has id 0."""
        await self._call(
            "POST", f"conversations/{conversation_id}/assignments", json={"assignee_id": 0}
        )

    async def labels(self, conversation_id: int) -> list[str]:
        answer = await self._call("GET", f"conversations/{conversation_id}/labels")
        return [str(label) for label in answer.get("payload") or []]

    async def set_labels(self, conversation_id: int, labels: list[str]) -> None:
        await self._call("POST", f"conversations/{conversation_id}/labels", json={"labels": labels})

    async def set_priority(self, conversation_id: int, priority: str) -> None:
        """`urgent`, `high`, `medium`, `low` or `none` (chatwoot.openapi.json, toggle_priority;
        ConversationsController#toggle_priority → Conversation#toggle_priority)."""
        await self._call(
            "POST", f"conversations/{conversation_id}/toggle_priority", json={"priority": priority}
        )

    async def set_custom_attributes(self, conversation_id: int, attributes: dict[str, Any]) -> None:
        """The conversation's whole custom attributes hash (the call replaces it)."""
        await self._call(
            "POST",
            f"conversations/{conversation_id}/custom_attributes",
            json={"custom_attributes": attributes},
        )

    # --- messages --------------------------------------------------------------------------

    async def post_message(
        self,
        conversation_id: int,
        content: str,
        *,
        message_type: str,
        private: bool = False,
        source_id: str | None = None,
    ) -> int:
        body: dict[str, Any] = {
            "content": content,
            "message_type": message_type,
            "private": private,
            "content_type": "text",
        }
        if source_id:
            body["source_id"] = source_id
        answer = await self._call("POST", f"conversations/{conversation_id}/messages", json=body)
        return int(answer.get("id") or 0)

    async def post_file(
        self,
        conversation_id: int,
        content: str,
        file: tuple[str, bytes, str],
        *,
        source_id: str | None = None,
    ) -> int:
        """A client's message with a file (multipart, `attachments[]`)."""
        data = {"content": content, "message_type": "incoming", "private": "false"}
        if source_id:
            data["source_id"] = source_id
        answer = await self._call(
            "POST",
            f"conversations/{conversation_id}/messages",
            data=data,
            files={"attachments[]": file},
        )
        return int(answer.get("id") or 0)

    async def messages(self, conversation_id: int, after: int = 0) -> list[dict[str, Any]]:
        """Up to 100 messages after the id `after`, else the latest 20 (app/finders/
        message_finder.rb), each with an integer `message_type` (0 incoming, 1 outgoing,
        2 activity, 3 template) and `created_at` in unix seconds
        (app/views/api/v1/models/_message.json.jbuilder)."""
        params = {"after": after} if after else {}
        answer = await self._call("GET", f"conversations/{conversation_id}/messages", params=params)
        payload = answer.get("payload") if isinstance(answer, dict) else answer
        return list(payload or [])

    async def update_message_status(
        self, conversation_id: int, message_id: int, status: str, error: str = ""
    ) -> bool:
        """Report what became of an agent's message; False where Chatwoot has no such call
        (before message status updates existed)."""
        body: dict[str, Any] = {"status": status}
        if error:
            body["external_error"] = error[:250]
        try:
            await self._call(
                "PATCH", f"conversations/{conversation_id}/messages/{message_id}", json=body
            )
        except ChatwootRejected as exc:
            if exc.status in (404, 405):
                return False
            raise
        return True
