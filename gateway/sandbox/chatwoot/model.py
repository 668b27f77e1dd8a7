"""What the Chatwoot stand-in keeps (inboxes, contacts, conversations), who may call what,
and the constants of Chatwoot it follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

JSON = dict[str, Any]
STATIC_DIR = Path(__file__).parent.parent / "static"
AGENT: JSON = {"id": 3, "name": "Olga (reception)", "email": "olga@salon.example", "type": "user"}
# The user whose token the gateway holds.
GATEWAY_USER: JSON = {
    "id": 2,
    "name": "Frontdesk",
    "email": "frontdesk@salon.example",
    "type": "user",
}
BOT: JSON = {"id": 1, "name": "Frontdesk handoff", "type": "agent_bot"}
# The endpoints an agent bot's token may call (BOT_ACCESSIBLE_ENDPOINTS,
# app/controllers/concerns/access_token_auth_helper.rb); anything else answers 401.
BOT_ENDPOINTS = {
    ("POST", "/conversations"),
    ("POST", "/conversations/{id}/toggle_status"),
    ("POST", "/conversations/{id}/toggle_priority"),
    ("POST", "/conversations/{id}/custom_attributes"),
    ("POST", "/conversations/{id}/messages"),
    ("POST", "/conversations/{id}/assignments"),
}
# Who made the request being answered: GATEWAY_USER or BOT.
CALLER = web.RequestKey("caller", dict)
# Message#message_type's enum (app/models/message.rb), as the messages list gives it.
MESSAGE_TYPES = {"incoming": 0, "outgoing": 1, "activity": 2, "template": 3}
# Rails' default `config.active_storage.service_urls_expire_in`: how long a disk URL is valid.
SERVICE_URL_SECONDS = 300
# Chatwoot's `FileTypeHelper#file_type` (app/helpers/file_type_helper.rb): what the dashboard
# previews as an image or a video; any other audio/* is audio, anything else a file.
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp")
VIDEO_TYPES = ("video/ogg", "video/mp4", "video/webm", "video/quicktime")


def file_type(content_type: str) -> str:
    if content_type in IMAGE_TYPES:
        return "image"
    if content_type in VIDEO_TYPES:
        return "video"
    return "audio" if "audio/" in content_type else "file"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Inbox:
    id: int
    name: str
    webhook_url: str
    secret: str
    # The agent the inbox's auto-assignment would pick when a conversation opens unassigned.
    auto_assignee: int | None = None
    # Channel::Api's `additional_attributes` (e.g. `agent_reply_time_window`, hours).
    attributes: JSON = field(default_factory=dict)
    # The inbox's agents (InboxMember; Settings → Inboxes → Collaborators): the account's agent
    # by default, as a salon sets its inbox up.
    members: set[int] = field(default_factory=lambda: {int(AGENT["id"])})


@dataclass
class Contact:
    id: int
    name: str
    identifier: str | None
    phone_number: str | None
    email: str | None
    sources: dict[int, str] = field(default_factory=dict)  # inbox id -> source id


@dataclass
class Conversation:
    id: int
    inbox_id: int
    contact_id: int
    source_id: str
    status: str
    custom_attributes: JSON
    labels: list[str] = field(default_factory=list)
    assignee_id: int | None = None
    team_id: int | None = None
    priority: str | None = None
    messages: list[JSON] = field(default_factory=list)


class ChatwootError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
