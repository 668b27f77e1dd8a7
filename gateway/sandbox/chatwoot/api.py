"""The Application API of the Chatwoot stand-in: who calls (user or agent bot), the spec
check of each body, and the endpoints Frontdesk calls, answering in Chatwoot's shapes."""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.sandbox.chatwoot.desk import Account
from gateway.sandbox.chatwoot.model import (
    BOT,
    BOT_ENDPOINTS,
    CALLER,
    GATEWAY_USER,
    JSON,
    MESSAGE_TYPES,
    SERVICE_URL_SECONDS,
    ChatwootError,
    Contact,
    Conversation,
    Inbox,
    file_type,
)


class ApplicationApi(Account):
    """The `/api/v1` endpoints and the Active Storage file URLs."""

    # -- the API --------------------------------------------------------------------------

    def _api(self, handler: Any, method: str, path: str) -> Any:
        template = "/api/v1/accounts/{account_id}" + path.replace("{id}", "{conversation_id}")
        if path.startswith(("/contacts/{id}", "/inboxes/{id}")):
            template = "/api/v1/accounts/{account_id}" + path
        template = template.replace("{message}", "{message_id}")

        async def handle(request: web.Request) -> web.Response:
            try:
                request[CALLER] = self._caller(request.headers.get("api_access_token", ""))
                if request[CALLER] is BOT and (method, path) not in BOT_ENDPOINTS:
                    raise ChatwootError(401, "Access to this endpoint is not authorized for bots")
                if request.match_info.get("account", str(self.account_id)) != str(self.account_id):
                    raise ChatwootError(404, "Resource could not be found")
                if self.down:
                    raise ChatwootError(503, "Service Unavailable")
                posting = path == "/conversations/{id}/messages" and method == "POST"
                if posting and self.refuse_messages:
                    raise ChatwootError(503, "Service Unavailable")
                body: JSON = {}
                if request.content_type == "multipart/form-data":
                    body = await self._form(request)
                elif request.method in ("POST", "PATCH", "PUT"):
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

    # -- inboxes (app/controllers/api/v1/accounts/inboxes_controller.rb: `index`, `create`,
    # `update`; an API channel takes `webhook_url`, `hmac_mandatory` and, in the 4.x versions
    # the contract describes, `additional_attributes`, merged: Channel::Api::EDITABLE_ATTRS,
    # contracts/chatwoot-whatsapp-telegram.md §1.3). Creating and changing need an
    # administrator (app/policies/inbox_policy.rb, `create?` and `update?`).

    def _inbox_json(self, inbox: Inbox) -> JSON:
        """app/views/api/v1/models/_inbox.json.jbuilder: an API channel shows its
        `webhook_url` and `additional_attributes`."""
        return {
            "id": inbox.id,
            "name": inbox.name,
            "channel_type": "Channel::Api",
            "webhook_url": inbox.webhook_url,
            "additional_attributes": dict(inbox.attributes),
        }

    def _administrator(self) -> None:
        if self.role != "administrator":
            raise ChatwootError(401, "You are not authorized to do this action")

    async def _list_inboxes(self, _request: web.Request, _body: JSON) -> JSON:
        """GET .../inboxes (`index.json.jbuilder`): `{"payload": [inbox, ...]}`, by name."""
        listed = sorted(self.inboxes.values(), key=lambda inbox: inbox.name)
        return {"payload": [self._inbox_json(inbox) for inbox in listed]}

    async def _show_inbox(self, request: web.Request, _body: JSON) -> JSON:
        inbox = self.inboxes.get(int(request.match_info["id"]))
        if inbox is None:
            raise ChatwootError(404, "Resource could not be found")
        return self._inbox_json(inbox)

    async def _create_inbox(self, _request: web.Request, body: JSON) -> JSON:
        self._administrator()
        channel = body.get("channel") or {}
        if channel.get("type") != "api":
            raise ChatwootError(422, "the stand-in makes API-channel inboxes only")
        if not body.get("name"):
            raise ChatwootError(422, "Name can't be blank")
        inbox = self.add_inbox(str(body["name"]), str(channel.get("webhook_url") or ""))
        inbox.attributes = dict(channel.get("additional_attributes") or {})
        self.inbox_writes.append(("POST", inbox.id))
        return self._inbox_json(inbox)

    async def _update_inbox(self, request: web.Request, body: JSON) -> JSON:
        self._administrator()
        inbox = self.inboxes.get(int(request.match_info["id"]))
        if inbox is None:
            raise ChatwootError(404, "Resource could not be found")
        if body.get("name"):
            inbox.name = str(body["name"])
        channel = body.get("channel") or {}
        if "webhook_url" in channel:
            inbox.webhook_url = str(channel["webhook_url"] or "")
        inbox.attributes |= channel.get("additional_attributes") or {}
        self.inbox_writes.append(("PATCH", inbox.id))
        return self._inbox_json(inbox)

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

    async def _update_contact(self, request: web.Request, body: JSON) -> JSON:
        """Staff edit a contact (contacts_controller.rb `update`, answered as `show`:
        `{payload: contact}`); a phone must be E.164 as on create."""
        contact = self.contacts.get(int(request.match_info["id"]))
        if contact is None:
            raise ChatwootError(404, "Resource could not be found")
        phone = body.get("phone_number")
        if phone and not str(phone).startswith("+"):
            raise ChatwootError(422, "Phone number should be in e164 format")
        contact.phone_number = phone or contact.phone_number
        contact.email = body.get("email") or contact.email
        contact.name = str(body.get("name") or contact.name)
        return {"payload": self._contact_json(contact)}

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

    async def _merge_contacts(self, _request: web.Request, body: JSON) -> JSON:
        """`POST /actions/contact_merge` (app/controllers/api/v1/accounts/actions/
        contact_merges_controller.rb, app/actions/contact_merge_action.rb at chatwoot/chatwoot
        00cd54a7 and later): both contacts are looked up in the account (`contacts.find`: an
        unknown id is 404); the mergee's conversations, its messages (as sender) and its
        contact inboxes move to the base contact (where the base already has a contact inbox in
        that inbox, the conversations are rehomed to the base's, `rehome_conversations_on_
        conflict`); the attributes merge with the base's preferred (`identifier name email
        phone_number ...`, `mergee.deep_merge(base)` of the non-blank ones); the mergee is
        destroyed. The answer is the base contact."""
        base = self.contacts.get(int(body.get("base_contact_id") or 0))
        mergee = self.contacts.get(int(body.get("mergee_contact_id") or 0))
        if base is None or mergee is None:
            raise ChatwootError(404, "Resource could not be found")
        for conversation in self.conversations.values():
            if conversation.contact_id == mergee.id:
                conversation.contact_id = base.id
                if base.sources.get(conversation.inbox_id, conversation.source_id) != (
                    conversation.source_id
                ):
                    conversation.source_id = base.sources[conversation.inbox_id]
            for message in conversation.messages:
                sender = message.get("sender")
                if not isinstance(sender, dict):
                    continue
                if sender.get("type") == "contact" and sender.get("id") == mergee.id:
                    message["sender"] = {**sender, "id": base.id, "name": base.name}
        for inbox_id, source in mergee.sources.items():
            base.sources.setdefault(inbox_id, source)
        del self.contacts[mergee.id]
        base.identifier = base.identifier or mergee.identifier
        base.name = base.name or mergee.name
        base.email = base.email or mergee.email
        base.phone_number = base.phone_number or mergee.phone_number
        self.merges.append((base.id, mergee.id))
        return self._contact_json(base)

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
        """LabelConcern#create (app/controllers/concerns/label_concern.rb): the posted list
        replaces the conversation's (`update_labels`), keeping only titles the account has
        defined (`valid_labels`); the rest are dropped without an error."""
        conversation = self._conversation(request)
        posted = [str(label) for label in body.get("labels") or []]
        conversation.labels = [label for label in posted if label in self.account_labels]
        return {"payload": conversation.labels}

    async def _toggle_priority(self, request: web.Request, body: JSON) -> JSON | None:
        """ConversationsController#toggle_priority → Conversation#toggle_priority
        (app/models/conversation.rb: `self.priority = priority.presence`); the spec's enum
        (chatwoot.openapi.json, toggle_priority) is urgent, high, medium, low or none (no
        priority). Answers `head :ok`."""
        conversation = self._conversation(request)
        priority = body.get("priority")
        if priority not in ("urgent", "high", "medium", "low", "none"):
            raise ChatwootError(422, f"priority {priority!r} is not one of the enum")
        conversation.priority = None if priority == "none" else str(priority)
        self.priorities.append((conversation.id, conversation.priority))
        return None

    async def _get_labels(self, request: web.Request, _body: JSON) -> JSON:
        return {"payload": list(self._conversation(request).labels)}

    async def _custom_attributes(self, request: web.Request, body: JSON) -> JSON:
        """ConversationCustomAttributesConcern#custom_attributes: the posted hash replaces the
        conversation's, unless `merge` is truthy (newer versions), then only its keys change."""
        conversation = self._conversation(request)
        posted = dict(body.get("custom_attributes") or {})
        if body.get("merge") in (True, "true", "1", 1):
            posted = {**conversation.custom_attributes, **posted}
        conversation.custom_attributes = posted
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
