"""A faithful local stand-in of Chatwoot (v4.x) for the API-channel design: an aiohttp app.

Towards the gateway it answers the Application API calls Frontdesk makes, at the same paths
(`/api/v1/accounts/{account}/...`), with `api_access_token` auth: contacts (unique
`identifier`, 422 on a duplicate), contact inboxes with our `source_id`, conversations and
their statuses, assignments, labels, messages (incoming only in API inboxes), message status
updates (newer versions; `status_updates=False` answers 404 like older ones). Given the vendor
spec (`chatwoot.openapi.json`) request bodies are checked against it.

Towards the gateway's webhook it acts as an API inbox does: every `message_created` (ours
included: the gateway must filter its echoes and private notes) and
`conversation_status_changed`, signed with the inbox secret over `timestamp.body` (4.13+;
`signing=False` sends nothing, as older versions), delivered once with no retry, and
`drop_next()` loses the next ones as the real one can.

Files are kept as Active Storage keeps them: an attachment's `data_url` is the blob redirect
URL (`/rails/active_storage/blobs/redirect/<signed id>/<name>`), served without a token (Rails,
`activestorage/app/controllers/active_storage/blobs/redirect_controller.rb`: "All Active
Storage controllers are publicly accessible by default"), which answers 302 to the disk
service's URL, valid for `service_urls_expire_in` (5 minutes by default). `downloads` records
every request for a file with whether it carried the API token.

The staff's side: `agent_replies` (with files: `agent_sends_files`), `agent_note`, `resolve`,
`reopen`, and a page with the conversation list, the transcript, reply, private note and
resolve.

Who calls matters, as in Chatwoot: the API token is a user's (`role` "agent" or
"administrator" in the account), and an optional agent bot's token (`bot_token`) passes only
the endpoints Chatwoot opens to bots. `toggle_status` to `open` by an agent assigns the
conversation to them; by the bot, `pending → open` is Chatwoot's bot handoff (recorded in
`bot_handoffs`). Opening runs the inbox's auto-assignment (`Inbox.auto_assignee`: the agent it
would pick; None when it is off). The messages list answers in the list's own shape (integer
`message_type`, unix `created_at`), webhooks in theirs (names, ISO times).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from gateway.sandbox.pages import page, serve
from gateway.sandbox.spec import Spec, load_spec

log = logging.getLogger(__name__)

JSON = dict[str, Any]
STATIC_DIR = Path(__file__).parent / "static"
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
    messages: list[JSON] = field(default_factory=list)


class ChatwootError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ChatwootSandbox:
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
        self.token = token
        self.account_id = account_id
        self.signing = signing
        self.role = role  # the gateway user's role in the account: "agent" or "administrator"
        self.bot_token = bot_token
        # Users of the account (assignable), and teams with their members.
        self.users: dict[int, JSON] = {GATEWAY_USER["id"]: GATEWAY_USER, AGENT["id"]: AGENT}
        self.teams: dict[int, set[int]] = {2: {AGENT["id"]}}
        self.bot_handoffs: list[int] = []  # conversations Chatwoot's bot handoff opened
        self._lose_answers = 0
        # While set, posting a message answers 503 and stores nothing (Chatwoot struggling).
        self.refuse_messages = False
        self.status_updates = True
        self.validating = spec_path is not None and spec_path.is_file()
        self._spec: Spec | None = (
            load_spec(spec_path) if spec_path is not None and self.validating else None
        )
        self.inboxes: dict[int, Inbox] = {}
        self.contacts: dict[int, Contact] = {}
        self.conversations: dict[int, Conversation] = {}
        self.errors: list[tuple[int, str]] = []  # refused requests
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
        self._session: ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._page_html: str | None = None
        self._closed = False

    # -- set-up ---------------------------------------------------------------------------

    def add_inbox(self, name: str, webhook_url: str = "") -> Inbox:
        inbox = Inbox(next(self._ids), name, webhook_url, secrets.token_hex(16))
        self.inboxes[inbox.id] = inbox
        return inbox

    def app(self) -> web.Application:
        app = web.Application()
        base = "/api/v1/accounts/{account}"
        routes = [
            ("GET", "/inboxes/{id}", self._show_inbox),
            ("POST", "/contacts", self._create_contact),
            ("GET", "/contacts/search", self._search_contacts),
            ("POST", "/contacts/{id}/contact_inboxes", self._contact_inbox),
            ("POST", "/conversations", self._create_conversation),
            ("GET", "/conversations/{id}", self._show_conversation),
            ("POST", "/conversations/{id}/toggle_status", self._toggle_status),
            ("POST", "/conversations/{id}/assignments", self._assign),
            ("POST", "/conversations/{id}/labels", self._labels),
            ("GET", "/conversations/{id}/labels", self._get_labels),
            ("POST", "/conversations/{id}/custom_attributes", self._custom_attributes),
            ("POST", "/conversations/{id}/messages", self._create_message),
            ("GET", "/conversations/{id}/messages", self._list_messages),
            ("PATCH", "/conversations/{id}/messages/{message}", self._update_message),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, base + path, self._api(handler, method, path))
        app.router.add_get("/rails/active_storage/blobs/redirect/{signed}/{name}", self._blob)
        app.router.add_get("/rails/active_storage/disk/{key}/{name}", self._disk_file)
        app.router.add_get("/api/v1/profile", self._api(self._profile, "GET", "/profile"))
        app.router.add_get("/", self._page)
        app.router.add_get("/_sandbox/conversations", self._page_conversations)
        app.router.add_post("/_sandbox/act", self._page_act)
        app.on_cleanup.append(self._on_cleanup)
        if self._page_html is None:
            self._page_html = (STATIC_DIR / "chatwoot.html").read_text(encoding="utf-8")
        return app

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
        return await serve(self.app(), host, port)

    async def close(self) -> None:
        # Nothing more goes out: a call still arriving must not open a session nobody closes.
        self._closed = True
        await self.settle()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.close()

    async def settle(self) -> None:
        """Wait until every webhook in flight is delivered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def drop_next(self, count: int = 1) -> None:
        """Lose the next `count` webhooks, as Chatwoot can (delivered at most once)."""
        self._drop += count

    def lose_answers(self, count: int = 1) -> None:
        """Store the next `count` messages but answer 502, as a proxy that gave up waiting
        after Chatwoot had committed: the caller cannot tell it went in."""
        self._lose_answers += count

    # -- the API --------------------------------------------------------------------------

    def _api(self, handler: Any, method: str, path: str) -> Any:
        template = "/api/v1/accounts/{account_id}" + path.replace("{id}", "{conversation_id}")
        if path.startswith("/contacts/{id}"):
            template = "/api/v1/accounts/{account_id}" + path
        template = template.replace("{message}", "{message_id}")

        async def handle(request: web.Request) -> web.Response:
            try:
                request[CALLER] = self._caller(request.headers.get("api_access_token", ""))
                if request[CALLER] is BOT and (method, path) not in BOT_ENDPOINTS:
                    raise ChatwootError(401, "Access to this endpoint is not authorized for bots")
                if request.match_info.get("account", str(self.account_id)) != str(self.account_id):
                    raise ChatwootError(404, "Resource could not be found")
                posting = path == "/conversations/{id}/messages" and method == "POST"
                if posting and self.refuse_messages:
                    raise ChatwootError(503, "Service Unavailable")
                body: JSON = {}
                if request.content_type == "multipart/form-data":
                    body = await self._form(request)
                elif request.method in ("POST", "PATCH"):
                    try:
                        body = await request.json()
                    except ValueError:
                        raise ChatwootError(400, "body is not JSON") from None
                    self._check(method, template, body)
                answer = await handler(request, body)
                if posting and self._lose_answers:
                    self._lose_answers -= 1
                    return web.json_response({"message": "Bad Gateway"}, status=502)
                return web.json_response(answer)
            except ChatwootError as exc:
                self.errors.append((exc.status, exc.message))
                return web.json_response({"message": exc.message}, status=exc.status)

        return handle

    def _caller(self, token: str) -> JSON:
        """Who the token belongs to: the gateway's user, or the agent bot."""
        if hmac.compare_digest(token.encode(), self.token.encode()):
            return GATEWAY_USER
        if self.bot_token and hmac.compare_digest(token.encode(), self.bot_token.encode()):
            return BOT
        raise ChatwootError(401, "Invalid Access Token")

    async def _profile(self, _request: web.Request, _body: JSON) -> JSON:
        """GET /api/v1/profile (app/views/api/v1/models/_user.json.jbuilder): the user, and
        their role in each account."""
        account = {"id": self.account_id, "name": "Salon", "role": self.role, "status": "active"}
        return {
            **GATEWAY_USER,
            "access_token": self.token,
            "role": self.role,
            "accounts": [account],
        }

    async def _form(self, request: web.Request) -> JSON:
        """A message with files: form fields, and `attachments[]` as the files."""
        form = await request.post()
        body: JSON = {}
        files: list[JSON] = []
        for name, value in form.items():
            if isinstance(value, web.FileField):
                if name != "attachments[]":
                    raise ChatwootError(422, f"unexpected file field {name}")
                data = value.file.read()
                origin = f"{request.scheme}://{request.host}"
                files.append(self._store(value.filename, value.content_type, data, origin))
            else:
                body[name] = {"true": True, "false": False}.get(str(value), str(value))
        if len(files) > 15:
            raise ChatwootError(422, "too many attachments")
        body["_attachments"] = files
        return body

    def _store(self, name: str, content_type: str, data: bytes, origin: str) -> JSON:
        """Keep a file; its `Attachment#push_event_data` (app/models/attachment.rb,
        `file_metadata`): no name and no type, only the extension and the URLs."""
        attachment_id = next(self._ids)
        self.files[attachment_id] = (name, content_type, data)
        signed = secrets.token_urlsafe(24)
        self._blobs[signed] = attachment_id
        url = f"{origin}/rails/active_storage/blobs/redirect/{signed}/{quote(name)}"
        kind = file_type(content_type)
        return {
            "id": attachment_id,
            "file_type": kind,
            "account_id": self.account_id,
            "extension": name.rsplit(".", 1)[-1] if "." in name else None,
            "data_url": url,
            "thumb_url": url if kind == "image" else "",
            "file_size": len(data),
            "width": None,
            "height": None,
        }

    def forget_file(self, attachment_id: int) -> None:
        """Staff delete the message: its file is gone (404)."""
        self.files.pop(attachment_id, None)

    async def _blob(self, request: web.Request) -> web.Response:
        """The blob redirect: no token asked for; a 302 to an expiring disk URL."""
        attachment_id = self._blobs.get(request.match_info["signed"], 0)
        status = self.file_failures.pop(0) if self.file_failures else 302
        if attachment_id not in self.files:
            status = 404
        token = "api_access_token" in request.headers
        self.downloads.append((request.path, status, token))
        if status != 302:
            return web.Response(status=status)
        key = secrets.token_urlsafe(24)
        self._disk[key] = (attachment_id, time.monotonic() + SERVICE_URL_SECONDS)
        name = request.match_info["name"]
        origin = f"{request.scheme}://{request.host}"
        location = f"{origin}/rails/active_storage/disk/{key}/{quote(name)}"
        raise web.HTTPFound(location, headers={"Cache-Control": "no-store"})

    async def _disk_file(self, request: web.Request) -> web.Response:
        """The disk service: the bytes, with the blob's content type, while the URL is valid."""
        attachment_id, expires = self._disk.get(request.match_info["key"], (0, 0.0))
        found = self.files.get(attachment_id)
        status = 200 if found is not None and time.monotonic() < expires else 404
        if status == 200 and self.storing.get(attachment_id, 0) > 0:
            self.storing[attachment_id] -= 1
            status = 404
        self.downloads.append((request.path, status, "api_access_token" in request.headers))
        if found is None or status != 200:
            return web.Response(status=404, text="NoSuchKey")
        return web.Response(body=found[2], content_type=found[1])

    def _check(self, method: str, template: str, body: JSON) -> None:
        if self._spec is None:
            return
        problems = self._spec.check_body(method, template, body)
        if problems:
            raise ChatwootError(422, "; ".join(p.describe("body") for p in problems[:5]))

    def _conversation(self, request: web.Request) -> Conversation:
        found = self.conversations.get(int(request.match_info["id"]))
        if found is None:
            raise ChatwootError(404, "Resource could not be found")
        return found

    async def _show_inbox(self, request: web.Request, _body: JSON) -> JSON:
        inbox = self.inboxes.get(int(request.match_info["id"]))
        if inbox is None:
            raise ChatwootError(404, "Resource could not be found")
        return {"id": inbox.id, "name": inbox.name, "channel_type": "Channel::Api"}

    async def _create_contact(self, _request: web.Request, body: JSON) -> JSON:
        inbox = self.inboxes.get(int(body.get("inbox_id") or 0))
        if inbox is None:
            raise ChatwootError(422, "Inbox not found")
        identifier = body.get("identifier")
        if identifier and any(c.identifier == identifier for c in self.contacts.values()):
            raise ChatwootError(422, "Identifier has already been taken")
        phone = body.get("phone_number")
        if phone and not str(phone).startswith("+"):
            raise ChatwootError(422, "Phone number should be in e164 format")
        contact = Contact(next(self._ids), str(body.get("name") or ""), identifier, phone, None)
        contact.email = body.get("email")
        source = secrets.token_hex(16)  # an API inbox's default source id is random
        contact.sources[inbox.id] = source
        self.contacts[contact.id] = contact
        return {
            "payload": {
                "contact": self._contact_json(contact),
                "contact_inbox": {"inbox": {"id": inbox.id}, "source_id": source},
            }
        }

    async def _search_contacts(self, request: web.Request, _body: JSON) -> JSON:
        q = request.query.get("q", "")
        found = [
            self._contact_json(c)
            for c in self.contacts.values()
            if q and (q in (c.identifier or "") or q in c.name or q in (c.phone_number or ""))
        ]
        return {"payload": found}

    async def _contact_inbox(self, request: web.Request, body: JSON) -> JSON:
        contact = self.contacts.get(int(request.match_info["id"]))
        inbox = self.inboxes.get(int(body.get("inbox_id") or 0))
        if contact is None or inbox is None:
            raise ChatwootError(404, "Resource could not be found")
        source = str(body.get("source_id") or secrets.token_hex(16))
        contact.sources[inbox.id] = source
        return {"source_id": source, "inbox": {"id": inbox.id}}

    async def _create_conversation(self, _request: web.Request, body: JSON) -> JSON:
        inbox_id = int(body.get("inbox_id") or 0)
        contact = self.contacts.get(int(body.get("contact_id") or 0))
        source = str(body.get("source_id") or "")
        if inbox_id not in self.inboxes or contact is None:
            raise ChatwootError(422, "Inbox or contact not found")
        if contact.sources.get(inbox_id) != source:
            raise ChatwootError(422, "Contact inbox not found for this source id")
        conversation = Conversation(
            next(self._ids),
            inbox_id,
            contact.id,
            source,
            str(body.get("status") or "open"),
            dict(body.get("custom_attributes") or {}),
        )
        self.conversations[conversation.id] = conversation
        return self._conversation_json(conversation)

    async def _show_conversation(self, request: web.Request, _body: JSON) -> JSON:
        return self._conversation_json(self._conversation(request))

    async def _toggle_status(self, request: web.Request, body: JSON) -> JSON:
        """Chatwoot's toggle_status (app/controllers/api/v1/accounts/conversations_controller.rb):
        an AgentBot turning a `pending` conversation `open` runs `bot_handoff!`; then, if the
        conversation is open and the caller a User with the agent role, it is assigned to the
        caller (`should_assign_conversation?` → `assign_conversation`; `handle_human_open` in
        newer versions), whatever its status was before. Administrators are not assigned."""
        conversation = self._conversation(request)
        caller = request[CALLER]
        status = str(body["status"])
        if caller is BOT and conversation.status == "pending" and status == "open":
            self.bot_handoffs.append(conversation.id)
        self._set_status(conversation, status)
        if conversation.status == "open" and caller is GATEWAY_USER and self.role == "agent":
            conversation.assignee_id = GATEWAY_USER["id"]
        return {
            "payload": {
                "success": True,
                "current_status": conversation.status,
                "conversation_id": conversation.id,
            }
        }

    async def _assign(self, request: web.Request, body: JSON) -> JSON | None:
        """AssignmentsController#create: `assignee_id` (present, even null) sets the agent,
        looked up among the account's users, so an unknown id (0) unassigns
        (Conversations::AssignmentService); else `team_id` sets the team, which drops an
        assignee who is not its member (AssignmentHandler#ensure_assignee_is_from_team)."""
        conversation = self._conversation(request)
        if "assignee_id" in body:
            user = self.users.get(int(body["assignee_id"] or 0))
            conversation.assignee_id = int(user["id"]) if user else None
            return user
        if "team_id" not in body:
            return None
        team = int(body["team_id"] or 0)
        if team not in self.teams:
            conversation.team_id = None
            return None
        if conversation.team_id != team and conversation.assignee_id not in self.teams[team]:
            conversation.assignee_id = None
        conversation.team_id = team
        return {"id": team}

    async def _labels(self, request: web.Request, body: JSON) -> JSON:
        conversation = self._conversation(request)
        conversation.labels = [str(label) for label in body.get("labels") or []]  # overwrites
        return {"payload": conversation.labels}

    async def _get_labels(self, request: web.Request, _body: JSON) -> JSON:
        return {"payload": list(self._conversation(request).labels)}

    async def _custom_attributes(self, request: web.Request, body: JSON) -> JSON:
        conversation = self._conversation(request)
        conversation.custom_attributes = dict(body.get("custom_attributes") or {})
        return {"custom_attributes": conversation.custom_attributes}

    async def _create_message(self, request: web.Request, body: JSON) -> JSON:
        conversation = self._conversation(request)
        kind = str(body.get("message_type") or "outgoing")
        private = bool(body.get("private"))
        if kind == "incoming" and private:
            raise ChatwootError(422, "Incoming messages cannot be private")
        # Outgoing messages come from the caller (a user, or the agent bot); incoming ones from
        # the conversation's contact (Messages::MessageBuilder#sender).
        caller = request[CALLER]
        sender = self._contact_sender(conversation) if kind == "incoming" else dict(caller)
        files = body.get("_attachments") or None
        message = self._add_message(
            conversation,
            str(body.get("content") or ""),
            kind,
            private,
            sender,
            body.get("source_id"),
            files,
        )
        # Message#reopen_conversation (app/models/message.rb): an incoming message opens a
        # snoozed conversation, and a resolved one (`open` in an API inbox without a bot);
        # a pending one stays pending.
        if kind == "incoming" and conversation.status in ("resolved", "snoozed"):
            self._set_status(conversation, "open")
        return self._listed(message)

    async def _list_messages(self, request: web.Request, _body: JSON) -> JSON:
        conversation = self._conversation(request)
        # MessageFinder (app/finders/message_finder.rb): `after` gives up to 100 after that id,
        # none gives the latest 20; in ascending order either way.
        after = request.query.get("after")
        if after:
            found = [m for m in conversation.messages if m["id"] > int(after)][:100]
        else:
            found = conversation.messages[-20:]
        return {"meta": {}, "payload": [self._listed(m) for m in found]}

    async def _update_message(self, request: web.Request, body: JSON) -> JSON:
        if not self.status_updates:
            raise ChatwootError(404, "Resource could not be found")
        conversation = self._conversation(request)
        message_id = int(request.match_info["message"])
        message = next((m for m in conversation.messages if m["id"] == message_id), None)
        if message is None:
            raise ChatwootError(404, "Resource could not be found")
        status = str(body.get("status") or "")
        if status not in ("sent", "delivered", "read", "failed"):
            raise ChatwootError(422, "status is not valid")
        message["status"] = status
        self.updates.append((message_id, status))
        if body.get("external_error"):
            message["content_attributes"] = {"external_error": body["external_error"]}
        return self._listed(message)

    @staticmethod
    def _listed(message: JSON) -> JSON:
        """A message as the API answers with it (app/views/api/v1/models/_message.json.jbuilder):
        `message_type` is the enum's integer (`message_type_before_type_cast`) and `created_at`
        unix seconds (`created_at.to_i`); webhooks give the name and the ISO time instead
        (Message#webhook_data)."""
        created = datetime.fromisoformat(str(message["created_at"]).replace("Z", "+00:00"))
        return {
            **message,
            "message_type": MESSAGE_TYPES[str(message["message_type"])],
            "created_at": int(created.timestamp()),
        }

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
        task = asyncio.get_running_loop().create_task(self._post(inbox, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, inbox: Inbox, payload: JSON) -> None:
        raw = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self.signing:
            stamp = str(int(time.time()))
            digest = hmac.new(inbox.secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256)
            headers["X-Chatwoot-Signature"] = f"sha256={digest.hexdigest()}"
            headers["X-Chatwoot-Timestamp"] = stamp
            headers["X-Chatwoot-Delivery"] = secrets.token_hex(8)
        if self._session is None or self._session.closed:
            self._session = ClientSession(timeout=ClientTimeout(total=5))  # Chatwoot's timeout
        try:
            async with self._session.post(inbox.webhook_url, data=raw, headers=headers) as answer:
                status = answer.status
        except (ClientError, TimeoutError):
            status = 0
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
        }

    # -- the staff's side -----------------------------------------------------------------

    def agent_replies(
        self, conversation_id: int, content: str, attachments: list[JSON] | None = None
    ) -> JSON:
        conversation = self.conversations[conversation_id]
        return self._add_message(
            conversation, content, "outgoing", False, dict(AGENT), None, attachments
        )

    def agent_sends_files(
        self, conversation_id: int, content: str, files: list[tuple[str, str, bytes]]
    ) -> JSON:
        """Staff reply with files attached (name, content type, bytes), as from the dashboard."""
        if not self.url:
            raise RuntimeError("set the sandbox's url first: attachment URLs are absolute")
        if not 1 <= len(files) <= 15:  # NUMBER_OF_PERMITTED_ATTACHMENTS
            raise ValueError("a message takes 1 to 15 attachments")
        attachments = [self._store(name, kind, data, self.url) for name, kind, data in files]
        return self.agent_replies(conversation_id, content, attachments)

    def agent_note(self, conversation_id: int, content: str) -> JSON:
        conversation = self.conversations[conversation_id]
        return self._add_message(conversation, content, "outgoing", True, dict(AGENT))

    def resolve(self, conversation_id: int) -> None:
        self._set_status(self.conversations[conversation_id], "resolved")

    def reopen(self, conversation_id: int) -> None:
        self._set_status(self.conversations[conversation_id], "open")

    def conversation_for(self, source_id: str) -> Conversation | None:
        return next((c for c in self.conversations.values() if c.source_id == source_id), None)

    # -- the agent pane -------------------------------------------------------------------

    async def _page(self, _request: web.Request) -> web.Response:
        return page(self._page_html or "")

    async def _page_conversations(self, _request: web.Request) -> web.Response:
        listed = []
        for conversation in sorted(self.conversations.values(), key=lambda c: -c.id):
            contact = self.contacts[conversation.contact_id]
            listed.append(
                {
                    "id": conversation.id,
                    "status": conversation.status,
                    "inbox": self.inboxes[conversation.inbox_id].name,
                    "contact": contact.name or contact.identifier,
                    "labels": conversation.labels,
                    "messages": conversation.messages,
                }
            )
        return web.json_response(listed)

    async def _page_act(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            conversation_id = int(body["conversation"])
            if conversation_id not in self.conversations:
                raise LookupError("no such conversation")
            action = body.get("action")
            text = str(body.get("text") or "").strip()
            if action in ("reply", "note") and not text:
                raise ValueError("write something first")
            if action == "reply":
                self.agent_replies(conversation_id, text)
            elif action == "note":
                self.agent_note(conversation_id, text)
            elif action == "resolve":
                self.resolve(conversation_id)
            elif action == "open":
                self.reopen(conversation_id)
            else:
                raise ValueError(f"unknown action {action!r}")
        except (LookupError, TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        await self.settle()
        return web.json_response({"ok": True})
