"""The Chatwoot stand-in's account: its users, inboxes, contacts and conversations, the
changes to them, and the signed webhooks each change sends to the inbox's URL."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from pathlib import Path
from typing import Any

from gateway.sandbox.base import StandIn
from gateway.sandbox.chatwoot.model import (
    AGENT,
    GATEWAY_USER,
    JSON,
    ChatwootError,
    Contact,
    Conversation,
    Inbox,
    _now,
)
from gateway.sandbox.spec import Spec, load_spec


class Account(StandIn):
    """One Chatwoot account's state and its webhooks (see `ChatwootSandbox`)."""

    def __init__(
        self,
        token: str,
        account_id: int = 1,
        spec_path: Path | None = None,
        *,
        signing: bool = True,
        role: str = "agent",
        bot_token: str | None = None,
    ) -> None:
        super().__init__()
        self.token = token
        self.account_id = account_id
        self.signing = signing
        self.role = role  # the gateway user's role in the account: "agent" or "administrator"
        self.bot_token = bot_token
        # Users of the account (assignable), and teams with their members.
        self.users: dict[int, JSON] = {GATEWAY_USER["id"]: GATEWAY_USER, AGENT["id"]: AGENT}
        self.teams: dict[int, set[int]] = {2: {AGENT["id"]}}
        # Settings → Integrations → Dashboard Apps (`add_dashboard_app`).
        self.dashboard_apps: list[JSON] = []
        self.bot_handoffs: list[int] = []  # conversations Chatwoot's bot handoff opened
        self._lose_answers = 0
        # While set, posting a message answers 503 and stores nothing (Chatwoot struggling).
        self.refuse_messages = False
        # While set, every API call answers 503 and changes nothing (Chatwoot down).
        self.down = False
        # The account's labels (Settings → Labels): a conversation takes only these
        # (LabelConcern#valid_labels keeps the posted titles the account has, drops the rest).
        self.account_labels: set[str] = {"handoff", "after-hours"}
        self.priorities: list[tuple[int, str | None]] = []  # toggle_priority calls, in order
        self.status_updates = True
        self.validating = spec_path is not None and spec_path.is_file()
        self._spec: Spec | None = (
            load_spec(spec_path) if spec_path is not None and self.validating else None
        )
        self.inboxes: dict[int, Inbox] = {}
        self.inbox_writes: list[tuple[str, int]] = []  # inboxes created or changed: (verb, id)
        self.contacts: dict[int, Contact] = {}
        self.conversations: dict[int, Conversation] = {}
        self.errors: list[tuple[int, str]] = []  # refused requests
        self.merges: list[tuple[int, int]] = []  # (base, mergee) of each contact merge
        self.updates: list[tuple[int, str]] = []  # message status updates: (message id, status)
        self.files: dict[int, tuple[str, str, bytes]] = {}  # attachments: id -> name, type, data
        # The address Chatwoot builds its URLs with (its FRONTEND_URL): set once it is served.
        self.url = ""
        # Requests for files: (path, HTTP status, whether the API token came along).
        self.downloads: list[tuple[str, int, bool]] = []
        # What the next file downloads answer (302: as usual; 503: an outage; 404: gone).
        self.file_failures: list[int] = []
        # Files whose upload to the storage is still in flight, for so many more requests: the
        # blob URL redirects, and the storage answers 404 (chatwoot#15540).
        self.storing: dict[int, int] = {}
        self._blobs: dict[str, int] = {}  # signed id -> attachment id
        self._disk: dict[str, tuple[int, float]] = {}  # disk key -> attachment id, expiry
        self.deliveries: list[tuple[str, int]] = []  # (event, HTTP status; 0 when dropped)
        self._drop = 0
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._page_html: str | None = None

    def add_inbox(self, name: str, webhook_url: str = "") -> Inbox:
        inbox = Inbox(next(self._ids), name, webhook_url, secrets.token_hex(16))
        self.inboxes[inbox.id] = inbox
        return inbox

    def drop_next(self, count: int = 1) -> None:
        """Lose the next `count` webhooks, as Chatwoot can (delivered at most once)."""
        self._drop += count

    def lose_answers(self, count: int = 1) -> None:
        """Store the next `count` messages but answer 502, as a proxy that gave up waiting
        after Chatwoot had committed: the caller cannot tell it went in."""
        self._lose_answers += count

    # -- state changes and webhooks -------------------------------------------------------

    def _add_message(
        self,
        conversation: Conversation,
        content: str,
        kind: str,
        private: bool,
        sender: JSON,
        source_id: Any = None,
        attachments: list[JSON] | None = None,
    ) -> JSON:
        message: JSON = {
            "id": next(self._message_ids),
            "content": content,
            "message_type": kind,
            "private": private,
            "content_type": "text",
            "content_attributes": {},
            "source_id": source_id,
            "sender": sender,
            "status": "sent",
            "created_at": _now(),
            "conversation_id": conversation.id,
        }
        if attachments:
            message["attachments"] = attachments
        conversation.messages.append(message)
        payload = {
            **message,
            "event": "message_created",
            "conversation": self._conversation_json(conversation),
            "inbox": {
                "id": conversation.inbox_id,
                "name": self.inboxes[conversation.inbox_id].name,
            },
            "account": {"id": self.account_id, "name": "Salon"},
        }
        self._webhook(conversation, payload)
        return message

    def _set_status(self, conversation: Conversation, status: str) -> None:
        if status not in ("open", "resolved", "pending", "snoozed"):
            raise ChatwootError(422, "status is not valid")
        previous, conversation.status = conversation.status, status
        if previous == status:
            return
        inbox = self.inboxes[conversation.inbox_id]
        if status == "open" and conversation.assignee_id is None and inbox.auto_assignee:
            # AutoAssignmentHandler#run_auto_assignment: on the change to open, an unassigned
            # conversation goes to an agent of the inbox with capacity.
            conversation.assignee_id = inbox.auto_assignee
        payload = {
            **self._conversation_json(conversation),
            "event": "conversation_status_changed",
            "changed_attributes": [
                {"status": {"previous_value": previous, "current_value": status}}
            ],
            "timestamp": time.time(),
        }
        self._webhook(conversation, payload)

    def _webhook(self, conversation: Conversation, payload: JSON) -> None:
        inbox = self.inboxes[conversation.inbox_id]
        if not inbox.webhook_url or self._closed:
            return
        if self._drop:
            self._drop -= 1
            self.deliveries.append((str(payload["event"]), 0))
            return
        self._spawn(self._deliver(inbox, payload))

    async def _deliver(self, inbox: Inbox, payload: JSON) -> None:
        raw = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self.signing:
            stamp = str(int(time.time()))
            digest = hmac.new(inbox.secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256)
            headers["X-Chatwoot-Signature"] = f"sha256={digest.hexdigest()}"
            headers["X-Chatwoot-Timestamp"] = stamp
            headers["X-Chatwoot-Delivery"] = secrets.token_hex(8)
        # Chatwoot's webhook timeout is 5 s.
        answer = await self._post(inbox.webhook_url, raw, headers, answer_within=5)
        status = answer.status
        # Delivered once, no retry, whatever the answer.
        self.deliveries.append((str(payload["event"]), status))

    def _contact_sender(self, conversation: Conversation) -> JSON:
        contact = self.contacts[conversation.contact_id]
        return {"id": contact.id, "name": contact.name, "type": "contact"}

    def _contact_json(self, contact: Contact) -> JSON:
        return {
            "id": contact.id,
            "name": contact.name,
            "identifier": contact.identifier,
            "phone_number": contact.phone_number,
            "email": contact.email,
            "type": "contact",
            "contact_inboxes": [
                {"inbox": {"id": inbox}, "source_id": source}
                for inbox, source in contact.sources.items()
            ],
        }

    def _conversation_json(self, conversation: Conversation) -> JSON:
        contact = self.contacts[conversation.contact_id]
        assignee = self.users.get(conversation.assignee_id or 0)
        return {
            "id": conversation.id,
            "inbox_id": conversation.inbox_id,
            "status": conversation.status,
            "channel": "Channel::Api",
            "can_reply": True,
            "contact_inbox": {
                "contact_id": contact.id,
                "inbox_id": conversation.inbox_id,
                "source_id": conversation.source_id,
            },
            "meta": {
                "sender": self._contact_json(contact),
                "assignee": assignee,
                "team": {"id": conversation.team_id} if conversation.team_id else None,
            },
            "labels": list(conversation.labels),
            "custom_attributes": dict(conversation.custom_attributes),
            "priority": conversation.priority,
        }
