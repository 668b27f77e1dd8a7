"""The durable pipeline: webhooks in, Redis streams, workers, outbox, sessions and dead letters.

This package's own names are its public face for the handlers (`handlers/` imports from
`gateway.pipeline` and from none of its modules; `lint-imports` holds them to it): what a
webhook source is and may refuse, the queued event and entry, the outcome a handler returns
and the messages in it, who speaks in them, the client's conversation and session store, the
links between one client's chats, the JSON helpers for webhook bodies, and the inbox and
metrics a handler writes to. The rest (Lua, keys, workers, outbox, dead letters, resilience,
the Redis client) is the pipeline's own.
"""

from gateway.pipeline.conversation import Conversation
from gateway.pipeline.edge import LARGEST_BODY, MAX_BODY, Malformed, WebhookSource
from gateway.pipeline.identity import Identities, Linked
from gateway.pipeline.inbox import Event, Inbox, event_problem
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.sessions import SessionStore
from gateway.pipeline.streams import Author, Entry, Outcome, Outgoing, Unreadable
from gateway.pipeline.webhook_json import entry_object, instant, load_object, stamp_of, whole_number

__all__ = [
    "LARGEST_BODY",
    "MAX_BODY",
    "Author",
    "Conversation",
    "Entry",
    "Event",
    "Identities",
    "Inbox",
    "Linked",
    "Malformed",
    "Metrics",
    "Outcome",
    "Outgoing",
    "SessionStore",
    "Unreadable",
    "WebhookSource",
    "entry_object",
    "event_problem",
    "instant",
    "load_object",
    "stamp_of",
    "whole_number",
]
