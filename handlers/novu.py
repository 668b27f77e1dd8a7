"""Novu: the webhook its workflows' messenger step posts to, and the worker's handling of it.

The edge verifies `Novu-Signature: t=<timestamp>,v1=<hex>` (HMAC-SHA256 of `<timestamp>.<raw
body>` with the environment's secret key, NOVU_API_KEY unless NOVU_WEBHOOK_SECRET is set:
Novu's scheme for the requests its workflows make), refuses timestamps more than five minutes
off, and queues the notice under the client's conversation, de-duplicated by its
`transactionId`. The post carries ids and keys only; the worker takes what the notice says from
the gateway's ledger (`gateway/integrations/novu/ledger.py`), words it in the client's language
and sends it through the outbox (see handlers/notices.py). Novu does not retry a failed post:
the ledger's loop (`send_overdue`) queues a notice Novu did not post in time under the same
event id, so that the notice is handled once, whichever comes first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.flows.notices import Notice, NoticeKind
from gateway.integrations.novu.ledger import NoticeLedger
from gateway.integrations.novu.workflows import WEBHOOK_FIELDS
from gateway.pipeline import (
    MAX_BODY,
    Conversation,
    Entry,
    Event,
    Identities,
    Inbox,
    Malformed,
    Outcome,
    entry_object,
    instant,
    load_object,
    stamp_of,
)
from handlers.notices import NoticeSender

log = logging.getLogger("frontdesk.novu")

SOURCE = "novu"
# Set on a notice queued again under the client's linked chat: the chat whose visit it is.
FORWARDED_FROM = "forwardedFrom"
SIGNATURE_HEADER = "Novu-Signature"
MAX_AGE_SECONDS = 300
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _parts(header: str) -> tuple[str, list[str]]:
    stamp, signatures = "", []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            stamp = value
        elif name == "v1":
            signatures.append(value)
    return stamp, signatures


def event_id(transaction: str) -> str:
    """The inbox's id of a notice, from Novu's post or from the ledger alike."""
    return f"n:{transaction}"


class NovuWebhook:
    """Edge rules for `POST /webhooks/novu`."""

    name = SOURCE
    signed_body = True  # only an HMAC over the body authenticates it
    max_body = MAX_BODY

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret.encode()
        self.clock = clock

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        stamp, signatures = _parts(headers.get(SIGNATURE_HEADER, ""))
        return stamp_of(stamp) is not None and bool(signatures)

    def verify(self, headers: Mapping[str, str], raw: bytes) -> bool:
        stamp, signatures = _parts(headers.get(SIGNATURE_HEADER, ""))
        number = stamp_of(stamp)
        if number is None:
            return False
        # Seconds, or milliseconds as some Novu components stamp them.
        at = number / (1000 if len(stamp) > 11 else 1)
        if abs(self.clock() - at) > MAX_AGE_SECONDS:
            return False
        expected = hmac.new(self._secret, stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        # Only hex digests are compared: `compare_digest` refuses str with non-ASCII characters.
        return any(
            hmac.compare_digest(expected, given.lower())
            for given in signatures
            if _HEX64.fullmatch(given)
        )

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[Event]:
        body = load_object(raw)
        transaction = body.get("transaction")
        if not isinstance(transaction, str) or not transaction:
            raise Malformed("no transaction")
        if notice_of(body) is None:
            raise Malformed("no notice (kind, bookingUid and start are needed)")
        conversation = body.get("conversation")
        if not isinstance(conversation, str) or Conversation.from_key(conversation) is None:
            return []  # not for a messenger client
        if body.get("messenger") == "no":
            return []  # already answered in the chat
        return [Event(SOURCE, event_id(transaction), conversation, raw)]


def notice_of(body: dict[str, Any]) -> Notice | None:
    try:
        kind = NoticeKind(str(body.get("kind")))
    except ValueError:
        return None
    start = instant(body.get("start"))
    uid = str(body.get("bookingUid") or "")
    if start is None or not uid:
        return None
    return Notice(
        kind,
        uid,
        str(body.get("service") or ""),
        start,
        master=str(body.get("master") or "") or None,
        previous_uid=str(body.get("previousUid") or "") or None,
        previous_start=instant(body.get("previousStart")),
        reason=str(body.get("reason") or "") or None,
    )


class NovuEvents:
    """The worker's handler: a notice for a messenger client, posted by Novu's workflow or
    queued by the ledger."""

    def __init__(
        self,
        notices: NoticeSender,
        clock: Callable[[], datetime],
        ledger: NoticeLedger,
        routing: tuple[Identities, Inbox] | None = None,
    ) -> None:
        self.notices = notices
        self.clock = clock
        self.ledger = ledger
        # A client whose chats are linked hears in the one they used last, or chose: the
        # notice is queued again under that chat, to be handled in order with its messages.
        self.routing = routing

    async def __call__(self, entry: Entry) -> Outcome:
        body = entry_object(entry.body)
        transaction = str(body.get("transaction"))  # the edge queues none without it
        # What the notice says comes from our own record of it; a post from a workflow synced
        # before the ledger existed carried the words itself.
        recorded = await self.ledger.content(transaction)
        conv = Conversation.from_key(entry.conversation)
        notice = notice_of(body | (recorded or {}))
        if conv is None or notice is None:
            log.warning("a Novu notice Frontdesk cannot read was dropped: %s", entry.event_id)
            return Outcome()
        owner = Conversation.from_key(str(body.get(FORWARDED_FROM) or ""))
        if owner is None and self.routing is not None:
            identities, inbox = self.routing
            routed = await identities.route(conv)
            if routed != conv:
                raw = json.dumps(body | {FORWARDED_FROM: conv.key}).encode()
                await inbox.put(Event(SOURCE, f"fwd:{entry.event_id}", routed.key, raw))
                return Outcome()
        outcome = await self.notices.send(conv, notice, entry.event_id, self.clock(), owner)
        await self.ledger.done(transaction)
        return outcome


def ledger_content(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What the ledger keeps of a trigger's payload: the messenger step's fields, and the words
    the message needs (which the step's body does not carry)."""
    names = (*WEBHOOK_FIELDS, "service", "master", "reason")
    return {name: str(payload.get(name) or "") for name in names}


async def send_overdue(ledger: NoticeLedger, inbox: Inbox, now: datetime, grace: timedelta) -> int:
    """Queue every notice Novu has not posted back within `grace` after its due time, as Novu
    would have; how many were new to the inbox (the others had come from Novu meanwhile)."""
    queued = 0
    for transaction in await ledger.overdue(now - grace):
        content = await ledger.content(transaction)
        conversation = str((content or {}).get("conversation") or "")
        if content is not None and Conversation.from_key(conversation) is not None:
            raw = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
            if await inbox.put(Event(SOURCE, event_id(transaction), conversation, raw)):
                queued += 1
                log.info("a notice Novu did not post back was queued by the ledger")
        await ledger.done(transaction)
    return queued
