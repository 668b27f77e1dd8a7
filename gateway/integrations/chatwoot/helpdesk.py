"""The salon's help desk (Chatwoot): who owns each conversation, the client ↔ contact ↔
conversation mapping, and the delivery of the mirror's lines and the handoff, carried out
through the outbox like any message. What a client's turn adds for the help desk (the mirror)
is handlers/mirror.py.

- **Ownership**: the session's `owner` is authoritative; this state keeps the gateway's copy in
  Redis (`owner:<channel>:<chat>` = "human" while a person owns it), written before the commit
  that changes the session. The outbox reads it right before it sends a bot message, so a
  reply queued just before a takeover is held back (why two: `Owner` in bot/session.py).
- **Mapping** is Frontdesk's own, not a Chatwoot search: `cw:client:<channel>:<chat>` holds the
  contact and conversation ids, `cw:conv:<id>` the way back. A conversation's `source_id` is the
  client's conversation key (`tg:<chat>`, `wa:<chat>`): Chatwoot's webhooks carry it, so the
  edge queues an agent's reply with the client's own messages, in order.
- **Mirror**: the client's messages go in as `incoming`, the bot's as `outgoing` with a `gw:`
  source id (the echo filter) and a 🤖 mark, so staff tell them from a colleague's. The
  conversation is `pending` while the bot owns it, `open` from the handoff. Each line carries
  its own source id, which Chatwoot keeps and lists with the message: a post tried again (the
  first try may have reached Chatwoot, its answer not us) first looks for it, so a line goes
  in once. A client's line written before staff resolved the conversation but delivered after
  goes in as a private note: as `incoming` it would reopen the conversation.
- **Handoff**: Chatwoot assigns a conversation to the user who opens it when that user has the
  agent role. So the `pending → open` goes with an agent bot's token when one is configured
  (Chatwoot's own bot handoff, then the inbox's auto-assignment); otherwise, when the gateway's
  user is an agent, the assignment is put back right after: the route's agent, or no one
  (then the route's team). The route (team, agent, labels, priority, the after-hours mark)
  comes from the routing rules (CHATWOOT_ROUTING, gateway/handoff_routing.py; applied by
  routed.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from bot.session import Owner
from gateway.handoff_routing import Route, Routing
from gateway.integrations.chatwoot.api import ChatwootClient, ChatwootRejected
from gateway.integrations.chatwoot.contacts import Contacts
from gateway.integrations.chatwoot.routed import apply_route, route_facts
from gateway.pipeline.conversation import Conversation
from gateway.pipeline.identity import Identities
from gateway.pipeline.keys import Keys
from gateway.pipeline.outbox import PermanentFailure, Substituted
from gateway.pipeline.streams import Author, Outgoing

log = logging.getLogger("frontdesk.desk")

CHANNEL = "chatwoot"
BOT_MARK = "🤖 "
ECHO_PREFIX = "gw:"
TRANSCRIPT_LINES = 20
MAPPING_TTL = 400 * 24 * 3600
# How long after its last activity a conversation is checked for missed agent replies.
WATCH_SECONDS = 24 * 3600
# How long a line's first try is remembered: a retry (or a replayed dead letter) within it
# looks for the line in Chatwoot before posting it again.
POSTING_TTL = 7 * 24 * 3600
LATE_MARK = "👤 (written before the conversation was resolved) "


class HelpDeskState:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    # --- ownership -------------------------------------------------------------------------

    async def human_owns(self, channel: str, chat: str) -> bool:
        return bool(await self.redis.exists(self.keys.owner(channel, chat)))

    async def set_human(self, channel: str, chat: str) -> None:
        await self.redis.set(self.keys.owner(channel, chat), Owner.HUMAN.value, ex=MAPPING_TTL)

    async def set_bot(self, channel: str, chat: str) -> None:
        await self.redis.delete(self.keys.owner(channel, chat))

    # --- mapping ---------------------------------------------------------------------------

    async def mapping(self, conv: Conversation) -> dict[str, Any] | None:
        raw = await self.redis.get(self.keys.helpdesk_client(conv.channel, conv.chat))
        return json.loads(raw) if raw else None

    async def save_mapping(self, conv: Conversation, mapping: dict[str, Any]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(
                self.keys.helpdesk_client(conv.channel, conv.chat),
                json.dumps(mapping),
                ex=MAPPING_TTL,
            )
            pipe.set(
                self.keys.helpdesk_conversation(int(mapping["conversation"])),
                conv.key,
                ex=MAPPING_TTL,
            )
            await pipe.execute()

    async def conversation_of(self, conversation_id: int) -> Conversation | None:
        raw = await self.redis.get(self.keys.helpdesk_conversation(conversation_id))
        return Conversation.from_key(raw.decode()) if raw else None

    # --- conversations a person owns: watched for missed webhooks --------------------------

    async def watch(self, conversation_id: int, seen: int = 0) -> None:
        """Look for missed agent replies in this conversation (for a day after its last
        activity: a reply may come in after a resolve too). `seen`: the newest message id
        known to be handled, so that older ones are not looked at again."""
        await self.redis.zadd(self.keys.helpdesk_watched, {str(conversation_id): time.time()})
        if seen and seen > await self.seen(conversation_id):
            await self.mark_seen(conversation_id, seen)

    async def unwatch(self, conversation_id: int) -> None:
        await self.redis.zrem(self.keys.helpdesk_watched, str(conversation_id))

    async def watched(self) -> list[int]:
        key = self.keys.helpdesk_watched
        await self.redis.zremrangebyscore(key, 0, time.time() - WATCH_SECONDS)
        found = await self.redis.zrange(key, 0, -1)
        return [int(x) for x in found]

    # --- our own status changes, which come back as webhooks ------------------------------

    async def expect(self, conversation_id: int, status: str) -> None:
        """We are about to set this status: its webhook is an echo, not staff's doing."""
        await self.redis.set(self.keys.helpdesk_echo(conversation_id, status), "1", ex=120)

    async def is_echo(self, conversation_id: int, status: str) -> bool:
        return bool(await self.redis.delete(self.keys.helpdesk_echo(conversation_id, status)))

    async def first_try(self, conversation_id: int, source_id: str) -> bool:
        """Whether this line is posted to this conversation for the first time."""
        key = self.keys.helpdesk_posting(conversation_id, source_id)
        return bool(await self.redis.set(key, "1", nx=True, ex=POSTING_TTL))

    async def seen(self, conversation_id: int) -> int:
        """The last message id reconciliation looked at in this conversation."""
        value = await self.redis.hget(self.keys.helpdesk_seen, str(conversation_id))  # type: ignore[misc]
        return int(value) if value else 0

    async def mark_seen(self, conversation_id: int, message_id: int) -> None:
        await self.redis.hset(self.keys.helpdesk_seen, str(conversation_id), str(message_id))  # type: ignore[misc]

    # --- the recent transcript (mirror "handoff") ------------------------------------------

    async def remember(self, conv: Conversation, lines: list[str]) -> None:
        key = self.keys.helpdesk_transcript(conv.channel, conv.chat)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, *lines)
            pipe.ltrim(key, -TRANSCRIPT_LINES, -1)
            pipe.expire(key, 7 * 24 * 3600)
            await pipe.execute()

    async def transcript(self, conv: Conversation) -> list[str]:
        raw = await self.redis.lrange(self.keys.helpdesk_transcript(conv.channel, conv.chat), 0, -1)  # type: ignore[misc]
        return [line.decode() for line in raw]


def assignee_of(conversation: dict[str, Any]) -> int | None:
    """Who Chatwoot shows the conversation is with: `meta.assignee` (app/views/api/v1/
    conversations/partials/_conversation.json.jbuilder: the assignee's push_event_data when
    there is one), else none."""
    meta = conversation.get("meta")
    assignee = meta.get("assignee") if isinstance(meta, dict) else None
    found = assignee.get("id") if isinstance(assignee, dict) else None
    return found if isinstance(found, int) else None


@dataclass(frozen=True, slots=True)
class HelpDeskSettings:
    inboxes: dict[str, int]  # channel -> API inbox id
    mirror: str  # "all" | "handoff"
    team_id: int | None
    assignee_id: int | None
    labels: tuple[str, ...]
    # Routing rules for handoffs (CHATWOOT_ROUTING); None: the team, assignee and labels above.
    routing: Routing | None = None


class HelpDesk:
    """The outbox's delivery for channel "chatwoot": each call keeps its client's order."""

    def __init__(
        self, client: ChatwootClient, state: HelpDeskState, settings: HelpDeskSettings
    ) -> None:
        self.client = client
        self.state = state
        self.settings = settings
        # Whether Chatwoot takes message status updates (newer versions); learnt on first try.
        self.status_updates = True
        # Whether the API token's user is an agent in the account; read once, when needed.
        self.agent_role: bool | None = None
        # Per channel, how to fetch a file the client sent (by its id): relayed as a file.
        self.media: dict[str, Callable[[str], Awaitable[tuple[bytes, str]]]] = {}
        # One contact per client across messengers (contacts.py).
        self.contacts = Contacts(client, state, Identities(state.redis, state.keys))
        # Writes the page to the salon's staff for a new handoff (conversation, handoff note,
        # channel, route): Novu's staff pager when Novu is configured.
        self.pager: Callable[[int, int, str, dict[str, Any]], Outgoing] | None = None

    async def deliver(self, message: Outgoing) -> tuple[Outgoing, ...]:
        """Makes the call; what it returns is the staff page a handoff causes (queued by the
        outbox in the same step that records the handoff as done)."""
        params = message.params
        conv = Conversation.from_key(message.chat)
        if conv is None or conv.channel not in self.settings.inboxes:
            raise PermanentFailure(f"no Chatwoot inbox for {message.chat!r}")
        try:
            return await self._deliver(message.method, conv, params)
        except ChatwootRejected as exc:
            raise PermanentFailure(str(exc)) from exc

    async def _deliver(
        self, method: str, conv: Conversation, params: dict[str, Any]
    ) -> tuple[Outgoing, ...]:
        if method == "status":
            await self.report(int(params["conversation"]), int(params["message"]), params)
            return ()
        if method == "merge":
            await self.contacts.merge(conv, params)
            return ()
        handoff = method == "handoff"
        mapping = await self.state.mapping(conv)
        if method == "incoming" and mapping is not None and await self._late(conv, mapping, params):
            await self._late_line(int(mapping["conversation"]), params)
            return ()
        conversation = await self._conversation(conv, params.get("client") or {})
        source = str(params.get("source_id") or "") or None
        media = params.get("media")
        if method == "incoming" and isinstance(media, dict) and conv.channel in self.media:
            try:
                data, mime_type = await self.media[conv.channel](str(media["id"]))
            except Exception as exc:  # the file is gone or refused: the line alone goes in
                log.warning("a client's file could not be fetched: %s", type(exc).__name__)
            else:
                name = str(media.get("filename") or f"{media.get('kind', 'file')}")
                file = (name, data, mime_type)
                await self._once(
                    conversation,
                    source,
                    lambda: self.client.post_file(
                        conversation, str(params["text"]), file, source_id=source
                    ),
                )
                return ()
        if method == "incoming":
            await self._once(
                conversation,
                source,
                lambda: self.client.post_message(
                    conversation, str(params["text"]), message_type="incoming", source_id=source
                ),
            )
        elif method == "outgoing":
            bot_source = f"{ECHO_PREFIX}bot:{params.get('source_id', '')}"
            await self._once(
                conversation,
                bot_source if params.get("source_id") else None,
                lambda: self.client.post_message(
                    conversation,
                    BOT_MARK + str(params["text"]),
                    message_type="outgoing",
                    source_id=bot_source,
                ),
            )
        elif method == "note":
            await self._note(conversation, str(params["text"]), source)
        elif handoff:
            return await self._hand_off(conversation, conv, params)
        else:
            raise PermanentFailure(f"unsupported desk call {method!r}")
        return ()

    async def _conversation(self, conv: Conversation, client: dict[str, Any]) -> int:
        """The client's conversation, made on first use (contact, contact inbox, conversation)."""
        mapping = await self.state.mapping(conv)
        if mapping is not None:
            if mapping.get("status") == "resolved":
                # Chatwoot reopens a resolved conversation as "open" on the client's next
                # message; while the bot answers it belongs in "pending" (and a handoff opens
                # it from there, as from any bot conversation).
                await self.state.expect(int(mapping["conversation"]), "pending")
                await self.client.toggle_status(int(mapping["conversation"]), "pending")
                mapping["status"] = "pending"
                await self.state.save_mapping(conv, mapping)
            return int(mapping["conversation"])
        inbox = self.settings.inboxes[conv.channel]
        # The client's contact from their other messenger, when their chats are linked.
        contact = await self.contacts.linked_contact(conv)
        if contact is None:
            contact = await self._new_contact(inbox, conv, client)
        source = await self.client.add_contact_inbox(contact, inbox, conv.key)
        conversation = await self.client.create_conversation(
            inbox,
            contact,
            source,
            # Pending even for a handoff: the handoff then opens it like any other.
            status="pending",
            custom_attributes={"channel": conv.channel, "chat_id": conv.chat},
        )
        await self.state.save_mapping(
            conv, {"contact": contact, "conversation": conversation, "status": "pending"}
        )
        return conversation

    async def _new_contact(self, inbox: int, conv: Conversation, client: dict[str, Any]) -> int:
        name = str(client.get("name") or "")
        try:
            return await self.client.create_contact(
                inbox,
                name=name,
                identifier=conv.key,
                phone=client.get("phone") or None,
                email=client.get("email") or None,
            )
        except ChatwootRejected as exc:
            # The contact is there already (our mapping was lost, or another inbox made it),
            # or its phone or email belongs to another contact: never block the client on it.
            if exc.status != 422:
                raise
        found = await self.client.find_contact(conv.key)
        if found is None:
            found = await self.client.create_contact(
                inbox, name=name, identifier=conv.key, phone=None, email=None
            )
        return found

    async def _hand_off(
        self, conversation: int, conv: Conversation, params: dict[str, Any]
    ) -> tuple[Outgoing, ...]:
        source = str(params.get("source_id") or "") or None
        if self.settings.mirror == "handoff":
            lines = await self.state.transcript(conv)
            if lines:
                transcript = f"{source}:transcript" if source else None
                await self._note(conversation, "\n".join(["📜", *lines]), transcript)
        note = await self._note(conversation, str(params.get("note") or ""), source)
        settings = self.settings
        routing = settings.routing or Routing(
            (), settings.team_id, settings.assignee_id, settings.labels
        )
        route = routing.route(route_facts(conv, params))
        await self.state.expect(conversation, "open")
        await self._open(conversation, route)
        await apply_route(self.client, conversation, route, params)
        mapping = await self.state.mapping(conv) or {}
        mapping.update(conversation=conversation, status="open")
        await self.state.save_mapping(conv, mapping)
        await self.state.watch(conversation, seen=note)
        if self.pager is None:
            return ()
        # The salon's staff are told a client waits: an outbox entry, so Novu being down
        # neither loses the page nor fails this delivery; whether the conversation is with
        # someone is checked when it is sent (novu/staff_pages.py).
        return (self.pager(conversation, note, conv.channel, dict(params.get("route") or {})),)

    async def _open(self, conversation: int, route: Route) -> None:
        """Open the conversation for staff, leaving it in their queue.

        Chatwoot's `toggle_status` (app/controllers/api/v1/accounts/conversations_controller.rb):
        called by an AgentBot on a `pending` conversation with `open`, it runs `bot_handoff!`
        (`open!`, whose save runs the inbox's auto-assignment, AutoAssignmentHandler); called
        by a User, once the conversation is open it is assigned to that user if they have the
        agent role (`should_assign_conversation?` → `assign_conversation`, named
        `handle_human_open` in newer versions). An administrator's toggle assigns no one.
        """
        if self.client.has_bot_token:
            await self.client.toggle_status(conversation, "open", as_bot=True)
        else:
            await self.client.toggle_status(conversation, "open")
        self_assigned = not self.client.has_bot_token and await self._agent_role()
        if self_assigned and route.assignee_id is None:
            # Given back to no one first: a team keeps an assignee who is one of its members
            # (AssignmentHandler#ensure_assignee_is_from_team), and the team's own
            # auto-assignment only picks someone for an unassigned conversation.
            await self.client.unassign(conversation)
        # The team first, then the agent: one call takes one of them (`team_id` is ignored
        # beside `assignee_id`, chatwoot.openapi.json assignments; AssignmentsController#create),
        # and setting a team drops an agent who is not its member.
        if route.team_id is not None:
            await self.client.assign(conversation, assignee_id=None, team_id=route.team_id)
        if route.assignee_id is not None:
            await self.client.assign(conversation, assignee_id=route.assignee_id, team_id=None)

    async def _agent_role(self) -> bool:
        """Whether the API token's user is an agent (not an administrator) in this account,
        read once from their profile. Unknown counts as an agent: putting the assignment back
        is harmless where Chatwoot assigned no one."""
        if self.agent_role is None:
            try:
                profile = await self.client.profile()
            except ChatwootRejected as exc:
                log.warning("the Chatwoot token's profile could not be read: %s", exc)
                return True
            roles = {
                int(account.get("id") or 0): account.get("role")
                for account in profile.get("accounts") or []
            }
            self.agent_role = roles.get(self.client.account_id) != "administrator"
        return self.agent_role

    async def _note(self, conversation: int, text: str, source: str | None = None) -> int:
        """A private note; `source` names it (`gw:…`) so that a retry posts it once."""
        return await self._once(
            conversation,
            source,
            lambda: self.client.post_message(
                conversation,
                text,
                message_type="outgoing",
                private=True,
                source_id=source or f"{ECHO_PREFIX}note",
            ),
        )

    async def _once(
        self, conversation: int, source: str | None, post: Callable[[], Awaitable[int]]
    ) -> int:
        """Post a line named by its source id once: a try after the first (whose answer may
        have been lost after Chatwoot stored the message) looks for the source id among the
        conversation's latest messages first. Chatwoot stores a message's `source_id`
        (Messages::MessageBuilder#message_params) and lists it (_message.json.jbuilder); the
        latest 20 reach back past anything posted while this line waited, as the outbox keeps
        a conversation's lines in order. Returns the message id."""
        if source is None or await self.state.first_try(conversation, source):
            return await post()
        for message in reversed(await self.client.messages(conversation)):
            if message.get("source_id") == source:
                return int(message.get("id") or 0)
        return await post()

    async def _late(
        self, conv: Conversation, mapping: dict[str, Any], params: dict[str, Any]
    ) -> bool:
        """Whether a client's line comes after staff resolved the conversation it was written
        in: by Frontdesk's record of the resolve, or, while a person owns the conversation as
        far as Frontdesk knows, by Chatwoot's own status (the resolve's webhook may still be on
        its way, or lost). Lines of the bot's own conversation are never late."""
        if mapping.get("status") == "resolved":
            return _before_resolve(mapping, params)
        if not await self.state.human_owns(conv.channel, conv.chat):
            return False
        shown = await self.client.conversation(int(mapping["conversation"]))
        return shown.get("status") == "resolved"

    async def _late_line(self, conversation: int, params: dict[str, Any]) -> None:
        """A client's line written before staff resolved the conversation, delivered after:
        kept as a private note. As `incoming` it would reopen the conversation: Chatwoot's
        Message#reopen_conversation opens a resolved conversation of an API inbox on any
        incoming message (app/models/message.rb)."""
        source = str(params.get("source_id") or "") or None
        await self._note(conversation, LATE_MARK + str(params["text"]), source)

    async def report(self, conversation: int, message: int, params: dict[str, Any]) -> None:
        """What became of an agent's message: its status where Chatwoot takes one, else a
        private note when it failed."""
        status = str(params["status"])
        error = str(params.get("error") or "")
        if self.status_updates:
            if await self.client.update_message_status(conversation, message, status, error):
                return
            self.status_updates = False
        if status == "failed":
            text = f"⚠️ {params.get('failed_text') or error}"
            await self._note(conversation, text, f"{ECHO_PREFIX}failed:{message}")


def _before_resolve(mapping: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether a client's line was written before staff's resolve that Frontdesk has since
    handled (lines queued before this rule carry no time, and go in as they always did)."""
    written = params.get("written")
    if written is None:
        return False
    return float(written) < float(mapping.get("resolved_at") or 0)


class StaffReplies:
    """Wraps a messenger's delivery: an agent's reply is reported back to Chatwoot once it is
    sent (or has failed for good)."""

    def __init__(self, inner: Any, helpdesk: HelpDesk) -> None:
        self.inner = inner
        self.helpdesk = helpdesk

    async def deliver(self, message: Outgoing) -> None:
        report = message.params.get("_desk")
        if message.author != Author.STAFF or not isinstance(report, dict):
            await self.inner.deliver(message)
            return
        params = {k: v for k, v in message.params.items() if k != "_desk"}
        plain = Outgoing(message.channel, message.chat, message.method, params, author=Author.STAFF)
        try:
            await self.inner.deliver(plain)
        except Substituted as exc:
            # The client got a text in place of a file: done with, and staff see why.
            await self._report(report, "failed", str(exc))
            return
        except PermanentFailure as exc:
            await self._report(report, "failed", str(exc))
            raise
        await self._report(report, "sent", "")

    async def _report(self, report: dict[str, Any], status: str, error: str) -> None:
        params = {
            "conversation": report["conversation"],
            "message": report["message"],
            "status": status,
            "error": error,
            "failed_text": f"The reply could not be delivered to the client: {error}",
        }
        try:
            await self.helpdesk.report(int(report["conversation"]), int(report["message"]), params)
        except Exception as exc:  # a report must never undo a delivery
            log.warning("could not report a delivery to Chatwoot: %s", type(exc).__name__)
