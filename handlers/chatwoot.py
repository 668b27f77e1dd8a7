"""Chatwoot: the webhook's edge rules, and the worker's handling of what staff do there.

The edge verifies `X-Chatwoot-Signature` (HMAC-SHA256 of `timestamp.body` with the inbox's
secret, Chatwoot 4.13+; older versions sign nothing and are reached by a secret token in the
URL instead), refuses stale timestamps, and keeps only what concerns clients: an agent's reply
(an outgoing, non-private message from a user, not one of our own `gw:` echoes) and status
changes. Both are queued under the client's own conversation key, so they are handled in order
with the client's messages.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bot.conversation import FrontDesk
from bot.events import Kind
from bot.flows.turn import Turn
from bot.i18n import Catalogs
from gateway.analytics import facts as analytics
from gateway.analytics.facts import Recorder
from gateway.integrations.chatwoot import files as staff_files
from gateway.integrations.chatwoot.api import ChatwootClient, ChatwootRejected
from gateway.integrations.chatwoot.helpdesk import ECHO_PREFIX, HelpDeskState
from gateway.pipeline import (
    MAX_BODY,
    Conversation,
    Entry,
    Event,
    Inbox,
    Malformed,
    Outcome,
    Outgoing,
    SessionStore,
    entry_object,
    load_object,
    stamp_of,
    whole_number,
)
from handlers.channels import adapter_for
from handlers.mirror import bot_lines
from handlers.turns import TurnRunner

log = logging.getLogger("frontdesk.chatwoot")

SOURCE = "chatwoot"
SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
MAX_AGE_SECONDS = 300
_SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")


class ChatwootWebhook:
    """Edge rules for `POST /webhooks/chatwoot` (signed) and `/webhooks/chatwoot/<token>`."""

    name = SOURCE
    max_body = MAX_BODY

    def __init__(
        self, secrets: list[str], *, signed: bool = True, clock: Callable[[], float] = time.time
    ) -> None:
        self._secrets = [s.encode() for s in secrets if s]
        self.signed = signed
        # Signed: only an HMAC over the body authenticates it. Unsigned: the route checked the
        # token in its path before the body is read.
        self.signed_body = signed
        self.clock = clock

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        if not self.signed:
            return True  # the route checked the token in its path
        return _SIGNATURE.fullmatch(headers.get(SIGNATURE_HEADER, "")) is not None and (
            stamp_of(headers.get(TIMESTAMP_HEADER, "")) is not None
        )

    def verify(self, headers: Mapping[str, str], raw: bytes) -> bool:
        if not self.signed:
            return True
        stamp = headers.get(TIMESTAMP_HEADER, "")
        at = stamp_of(stamp)
        if at is None or abs(self.clock() - at) > MAX_AGE_SECONDS:
            return False
        given = headers.get(SIGNATURE_HEADER, "").removeprefix("sha256=").lower().encode()
        signed = stamp.encode() + b"." + raw
        return any(
            hmac.compare_digest(
                given, hmac.new(secret, signed, hashlib.sha256).hexdigest().encode()
            )
            for secret in self._secrets
        )

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[Event]:
        body = load_object(raw)
        if not isinstance(body.get("event"), str):
            raise Malformed("no event")
        event = body["event"]
        if event == "message_created":
            if not is_agent_reply(body):
                return []  # our own mirror, a private note, a contact's message
            conversation = body.get("conversation")
            message_id = whole_number(body.get("id"))
            # Ids are integers in Chatwoot's webhook payloads (`webhook_data` of Message and
            # Conversation, app/models/*.rb): the worker reads them as such.
            if not isinstance(conversation, dict) or message_id is None:
                raise Malformed("a message without its id or conversation")
            if whole_number(conversation.get("id")) is None:
                raise Malformed("a conversation without an integer id")
            attachments = body.get("attachments")
            if attachments is not None and not (
                isinstance(attachments, list) and all(isinstance(a, dict) for a in attachments)
            ):
                raise Malformed("attachments that are not a list of objects")
            key = conversation_key(conversation)
            return [Event(SOURCE, f"m:{message_id}", key, raw)]
        if event == "conversation_status_changed":
            if whole_number(body.get("id")) is None:
                raise Malformed("a conversation without an integer id")
            key = conversation_key(body)
            stamp = body.get("timestamp") or body.get("updated_at") or body.get("last_activity_at")
            event_id = f"s:{body.get('id')}:{body.get('status')}:{stamp}"
            return [Event(SOURCE, event_id, key, raw)]
        return []


def is_agent_reply(message: dict[str, Any]) -> bool:
    """An agent's answer to the client: not a note, not a client's message, not our echo."""
    sender = _mapping(message.get("sender"))
    return (
        message.get("message_type") in ("outgoing", 1)
        and not message.get("private")
        and sender.get("type") == "user"
        and not str(message.get("source_id") or "").startswith(ECHO_PREFIX)
    )


def _unix(value: Any) -> float | None:
    """A message's `created_at`: ISO text in webhooks, unix seconds in the messages API."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def conversation_key(conversation: dict[str, Any]) -> str:
    source = _mapping(conversation.get("contact_inbox")).get("source_id")
    # Our own source ids (`tg:<chat id>`, `wa:<WhatsApp id or business-scoped id>`, set by the
    # mirror): anything else is found by the conversation's id in the worker instead.
    if isinstance(source, str) and Conversation.from_key(source) is not None:
        return source
    return f"cw:{conversation.get('id')}"


class ChatwootEvents:
    """The worker's handler: agent replies to the client, takeovers, hand-backs."""

    def __init__(
        self,
        desk: FrontDesk,
        catalogs: Catalogs,
        sessions: SessionStore,
        state: HelpDeskState,
        clock: Callable[[], datetime],
        mirror_all: bool = True,
        recorder: Recorder | None = None,
    ) -> None:
        self.recorder = recorder
        # Whether the bot's words are mirrored to Chatwoot (CHATWOOT_MIRROR=all).
        self.mirror_all = mirror_all
        self.catalogs = catalogs
        self.state = state
        self.clock = clock
        # The turns staff's doings make on the client's conversation (no mirror: staff are
        # there already).
        self.turns = TurnRunner(desk, sessions, clock)

    async def __call__(self, entry: Entry) -> Outcome:
        body = entry_object(entry.body)
        if body.get("event") == "message_created":
            conversation_id = int((body.get("conversation") or {}).get("id") or 0)
        else:
            conversation_id = int(body.get("id") or 0)
        conv = Conversation.from_key(entry.conversation) or await self.state.conversation_of(
            conversation_id
        )
        if conv is None:
            log.warning("Chatwoot event for a conversation Frontdesk does not know; ignored")
            return Outcome()
        if body.get("event") == "message_created":
            return await self._reply(conv, conversation_id, body)
        status = str(body.get("status") or "")
        return await self._status(conv, conversation_id, status, entry.event_id)

    def _first_reply(self, conv: Conversation, turn: Turn) -> tuple[Turn, tuple[Any, ...]]:
        """The first agent reply after a handoff: how long the client waited."""
        handed = turn.session.handoff_at
        if handed is None:
            return turn, ()
        now = self.clock()
        session = turn.session.model_copy(update={"handoff_at": None})
        facts: tuple[dict[str, Any], ...] = ()
        if self.recorder is not None:
            waited = max(0.0, (now - handed).total_seconds())
            facts = (self.recorder.fact(analytics.FIRST_REPLY, conv.key, now, seconds=waited),)
        return Turn(turn.replies, session, turn.handoff, turn.attending), facts

    async def _reply(
        self, conv: Conversation, conversation_id: int, body: dict[str, Any]
    ) -> Outcome:
        """An agent answered: it reaches the client, and the conversation is the agent's
        (unless it was resolved: a last word after the hand-back takes nothing over)."""
        message_id = int(body.get("id") or 0)
        await self.state.watch(conversation_id, seen=message_id)
        mapping = await self.state.mapping(conv) or {}
        status = (body.get("conversation") or {}).get("status") or mapping.get("status")
        written = _unix(body.get("created_at"))
        late = written is not None and written <= float(mapping.get("resolved_at") or 0)
        client = self.turns.client(conv)
        if status == "resolved" or late:
            turn = Turn((), await self.turns.sessions.load(client))
            facts: tuple[dict[str, Any], ...] = ()
        else:
            await self.state.set_human(conv.channel, conv.chat)
            turn = await self.turns.handle(conv, Kind.TAKEOVER, f"cw:{message_id}")
            turn, facts = self._first_reply(conv, turn)
        report = {"conversation": conversation_id, "message": int(body.get("id") or 0)}
        session = turn.session
        locale = self.catalogs.resolve(session.locale, None)
        channel = adapter_for(conv.channel)
        outgoing: list[Outgoing] = []
        text = str(body.get("content") or "").strip()
        attachments = body.get("attachments") or []
        files = [ref for a in attachments if (ref := staff_files.reference(a, written))]
        # The text rides as the first file's caption where it fits; else it goes first.
        caption = text if files and channel.takes_caption(text, files[0]) else ""
        if text and not caption:
            outgoing.append(channel.staff_text(conv.chat, text, locale, report))
        for n, ref in enumerate(files):
            said = caption if n == 0 else ""
            fallback = self._fallback(locale, ref, said)
            outgoing.append(channel.staff_file(conv.chat, ref, said, fallback, locale, report))
        return self.turns.saved(client, session, tuple(outgoing), facts)

    def _fallback(self, locale: str, ref: dict[str, Any], caption: str) -> str:
        """What the client reads should the file not reach them (too big, gone)."""
        _ = self.catalogs.get(locale)
        size = staff_files.size_text(ref.get("size"))
        name = f"{ref['name']} ({size})" if size else str(ref["name"])
        notice = _("desk.file.failed", name=name)
        return f"{caption}\n\n{notice}" if caption else notice

    async def _status(
        self, conv: Conversation, conversation_id: int, status: str, event_id: str
    ) -> Outcome:
        if await self.state.is_echo(conversation_id, status):
            return Outcome()  # our own change (the handoff, back to pending), come back
        if status == "open":
            # Opened by an agent while the bot had it: a takeover. (Our own handoff comes back
            # here too; it changes nothing.)
            await self.state.set_human(conv.channel, conv.chat)
            await self.state.watch(conversation_id)
            turn = await self.turns.handle(conv, Kind.TAKEOVER, f"cw:open:{conversation_id}")
            return self.turns.saved(self.turns.client(conv), turn.session)
        if status not in ("resolved", "pending"):
            return Outcome()  # snoozed: still the person's
        # Still watched for a day: a reply whose webhook was lost may come to light yet.
        await self.state.set_bot(conv.channel, conv.chat)
        mapping = await self.state.mapping(conv)
        if mapping is not None and mapping.get("status") != status:
            mapping["status"] = status
            # What staff wrote before this moment was a last word, not a takeover; what the
            # client wrote before it belongs to the resolved conversation. (The same change
            # found again by the reconciliation does not move it.)
            mapping["resolved_at"] = time.time()
            await self.state.save_mapping(conv, mapping)
        turn = await self.turns.handle(conv, Kind.RETURNED, f"cw:{status}:{conversation_id}")
        facts: tuple[dict[str, Any], ...] = ()
        if self.recorder is not None and turn.replies:
            # The bot speaks again only when it takes the client back from a person.
            now = self.clock()
            kind = analytics.RESOLVED if status == "resolved" else analytics.RETURNED
            facts = tuple(
                self.recorder.fact(k, conv.key, now)
                for k in dict.fromkeys((kind, analytics.RETURNED))
            )
        _ = self.catalogs.get(self.catalogs.resolve(turn.session.locale, None))
        # (The hand-back leaves the session's numbered choices as they were.)
        outgoing = adapter_for(conv.channel).replies(conv.chat, turn.replies, _).outgoing
        if self.mirror_all:
            # Staff see the bot take over again, as they see its other words.
            outgoing += bot_lines(conv, turn.replies, f"back:{event_id}")
        return self.turns.saved(self.turns.client(conv), turn.session, outgoing, facts)


async def reconcile(client: ChatwootClient, state: HelpDeskState, inbox: Inbox) -> int:
    """Queue agent replies of conversations a person owns whose webhook never came (Chatwoot
    delivers webhooks at most once). The inbox's de-duplication by message id makes this
    exactly once with the webhook path. Returns how many were missing."""
    found = 0
    for conversation_id in await state.watched():
        conv = await state.conversation_of(conversation_id)
        if conv is None:
            await state.unwatch(conversation_id)
            continue
        after = await state.seen(conversation_id)
        try:
            messages = await client.messages(conversation_id, after=after)
        except ChatwootRejected as exc:
            if exc.status == 404:
                await state.unwatch(conversation_id)  # deleted by staff
            else:
                log.warning("reconciliation of a conversation failed: %s", exc)
            continue
        for message in messages:
            if not is_agent_reply(message):
                continue
            body = {
                **message,
                "event": "message_created",
                "conversation": {"id": conversation_id, "contact_inbox": {"source_id": conv.key}},
            }
            raw = json.dumps(body, ensure_ascii=False).encode()
            if await inbox.put(Event(SOURCE, f"m:{message.get('id')}", conv.key, raw)):
                found += 1
                log.warning("an agent reply whose webhook never came was recovered")
        if messages:
            await state.mark_seen(conversation_id, max(int(m.get("id") or 0) for m in messages))
        found += await _missed_resolve(client, state, inbox, conversation_id, conv)
    return found


async def _missed_resolve(
    client: ChatwootClient,
    state: HelpDeskState,
    inbox: Inbox,
    conversation_id: int,
    conv: Conversation,
) -> int:
    """Queue the resolve of a handed-off conversation whose webhook never came, as the webhook
    would have been: else the client would wait for a person who has finished, and their lines
    would go in as notes (they must not reopen it). Only for a conversation Frontdesk opened
    and a person still owns: one that is pending or resolved in Chatwoot for another reason
    (a handoff still on its way) is left alone."""
    mapping = await state.mapping(conv)
    if mapping is None or mapping.get("status") != "open":
        return 0
    if not await state.human_owns(conv.channel, conv.chat):
        return 0
    # Its messages were just read, so the conversation is there to be read too.
    shown = await client.conversation(conversation_id)
    if shown.get("status") != "resolved":
        return 0
    body = {
        "event": "conversation_status_changed",
        "id": conversation_id,
        "status": "resolved",
        "contact_inbox": {"source_id": conv.key},
    }
    # Named by the last message seen: a later handoff and resolve of the same conversation
    # is another event.
    event_id = f"s:{conversation_id}:resolved:after:{await state.seen(conversation_id)}"
    raw = json.dumps(body).encode()
    if not await inbox.put(Event(SOURCE, event_id, conv.key, raw)):
        return 0
    log.warning("a resolve whose webhook never came was recovered")
    return 1
