"""A faithful local stand-in of Chatwoot (v4.x) for the API-channel design: an aiohttp app.

Towards the gateway it answers the Application API calls Frontdesk makes, at the same paths
(`/api/v1/accounts/{account}/...`), with `api_access_token` auth: contacts (unique
`identifier`, 422 on a duplicate), contact inboxes with our `source_id`, conversations and
their statuses, assignments, labels (only the account's own: `account_labels`), priorities,
custom attributes, messages (incoming only in API inboxes), message status
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

from aiohttp import web

from gateway.sandbox.chatwoot.api import ApplicationApi
from gateway.sandbox.chatwoot.model import (
    AGENT,
    GATEWAY_USER,
    JSON,
    STATIC_DIR,
    ChatwootError,
    Conversation,
)
from gateway.sandbox.pages import page


class ChatwootSandbox(ApplicationApi):
    """Chatwoot for one account: the API, the staff's side and the agent pane."""

    def app(self) -> web.Application:
        app = web.Application()
        base = "/api/v1/accounts/{account}"
        routes = [
            ("GET", "/inboxes", self._list_inboxes),
            ("POST", "/inboxes", self._create_inbox),
            ("GET", "/inboxes/{id}", self._show_inbox),
            ("PATCH", "/inboxes/{id}", self._update_inbox),
            ("POST", "/contacts", self._create_contact),
            ("GET", "/contacts/search", self._search_contacts),
            ("PUT", "/contacts/{id}", self._update_contact),
            ("POST", "/contacts/{id}/contact_inboxes", self._contact_inbox),
            ("POST", "/actions/contact_merge", self._merge_contacts),
            ("POST", "/conversations", self._create_conversation),
            ("GET", "/conversations/{id}", self._show_conversation),
            ("POST", "/conversations/{id}/toggle_status", self._toggle_status),
            ("POST", "/conversations/{id}/toggle_priority", self._toggle_priority),
            ("POST", "/conversations/{id}/assignments", self._assign),
            ("POST", "/conversations/{id}/labels", self._labels),
            ("GET", "/conversations/{id}/labels", self._get_labels),
            ("POST", "/conversations/{id}/custom_attributes", self._custom_attributes),
            ("POST", "/conversations/{id}/messages", self._create_message),
            ("GET", "/conversations/{id}/messages", self._list_messages),
            ("PATCH", "/conversations/{id}/messages/{message}", self._update_message),
            ("GET", "/agents", self._list_agents),
            ("GET", "/inbox_members/{inbox}", self._list_inbox_members),
            ("GET", "/dashboard_apps", self._list_dashboard_apps),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, base + path, self._api(handler, method, path))
        app.router.add_get("/rails/active_storage/blobs/redirect/{signed}/{name}", self._blob)
        app.router.add_get("/rails/active_storage/disk/{key}/{name}", self._disk_file)
        app.router.add_get("/api/v1/profile", self._api(self._profile, "GET", "/profile"))
        app.router.add_get("/", self._page)
        app.router.add_get("/_sandbox/conversations", self._page_conversations)
        app.router.add_get("/_sandbox/app_context", self._page_app_context)
        app.router.add_get("/_sandbox/dashboard_apps", self._page_dashboard_apps)
        app.router.add_post("/_sandbox/act", self._page_act)
        app.on_cleanup.append(self._on_cleanup)
        if self._page_html is None:
            self._page_html = (STATIC_DIR / "chatwoot.html").read_text(encoding="utf-8")
        return app

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
        frames = tuple(
            str(item["url"]).split("/dashboard-app/")[0]
            for app in self.dashboard_apps
            for item in app["content"]
        )
        return page(self._page_html or "", frames=frames)

    # -- Dashboard Apps (Settings → Integrations → Dashboard Apps) --------------------------

    def add_dashboard_app(self, title: str, url: str) -> JSON:
        """A Dashboard App as an administrator adds it: a title and `content`, a list of
        `{type: "frame", url}` (app/models/dashboard_app.rb; dashboard_apps_controller.rb
        permits `title` and `content: [:url, :type]`)."""
        app = {"id": len(self.dashboard_apps) + 1, "title": title}
        app["content"] = [{"type": "frame", "url": url}]
        self.dashboard_apps.append(app)
        return app

    async def _list_dashboard_apps(self, _request: web.Request, _body: JSON) -> list[JSON]:
        return self.dashboard_apps

    async def _list_inbox_members(self, request: web.Request, _body: JSON) -> JSON:
        """GET .../inbox_members/{inbox_id} (developers.chatwoot.com/api-reference/inboxes/
        list-agents-in-inbox; InboxMembersController#show): `{"payload": [agent, ...]}`, 404
        for an inbox not in the account."""
        given = request.match_info["inbox"]
        inbox = self.inboxes.get(int(given) if given.isdigit() else 0)
        if inbox is None:
            raise ChatwootError(404, "Resource could not be found")
        agents = await self._list_agents(request, _body)
        return {"payload": [agent for agent in agents if agent["id"] in inbox.members]}

    async def _list_agents(self, _request: web.Request, _body: JSON) -> list[JSON]:
        """The account's agents (agents_controller.rb `index`, _agent.json.jbuilder)."""
        return [
            {
                "id": user["id"],
                "name": user["name"],
                "available_name": user["name"],
                "email": user["email"],
                "role": self.role if user is GATEWAY_USER else "agent",
                "confirmed": True,
                "account_id": self.account_id,
            }
            for user in self.users.values()
            if user.get("type") == "user"
        ]

    async def _page_dashboard_apps(self, _request: web.Request) -> web.Response:
        return web.json_response(self.dashboard_apps)

    async def _page_app_context(self, request: web.Request) -> web.Response:
        """What the dashboard posts a Dashboard App (Frame.vue `dashboardAppContext`): the
        conversation, its contact and the current agent (`id`, `name`, `email`)."""
        try:
            conversation = self.conversations[int(request.query.get("conversation", ""))]
        except (KeyError, ValueError):
            return web.json_response({"error": "no such conversation"}, status=404)
        shown = self._conversation_json(conversation)
        current = {key: AGENT[key] for key in ("id", "name", "email")}
        context = {"conversation": shown, "contact": shown["meta"]["sender"]}
        return web.json_response({**context, "currentAgent": current})

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
