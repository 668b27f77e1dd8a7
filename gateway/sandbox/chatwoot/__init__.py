"""The Chatwoot stand-in (see `sandbox.py`): `model` (what it keeps), `desk` (the account, its
changes and webhooks), `api` (the Application API), `sandbox` (the staff's side and pane)."""

from gateway.sandbox.chatwoot.model import (
    AGENT,
    BOT,
    GATEWAY_USER,
    ChatwootError,
    Contact,
    Conversation,
    Inbox,
    file_type,
)
from gateway.sandbox.chatwoot.sandbox import ChatwootSandbox

__all__ = [
    "AGENT",
    "BOT",
    "GATEWAY_USER",
    "ChatwootError",
    "ChatwootSandbox",
    "Contact",
    "Conversation",
    "Inbox",
    "file_type",
]
