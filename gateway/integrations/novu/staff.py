"""Salon staff as Novu subscribers, and their workflows (the pages themselves are written in
staff_pages.py).

Staff are Novu subscribers of their salon, `<salon>:staff:<chatwoot user id>`, made from
Chatwoot's agent list (`GET /api/v1/accounts/{id}/agents`, agents_controller.rb `index`) by
`frontdesk novu sync`, and gathered in one topic per salon, `<salon>:staff`. A notice is one
trigger to that topic: Novu "looks up all subscribers assigned to the topic" and creates "a
separate workflow event for each subscriber" (docs: platform/concepts/topics). Topics:
`POST /v1/topics` `{key, name}` (409 when it exists: kept), `POST /v1/topics/{key}/subscribers`
`{subscribers: [ids]}` (docs: api-reference/topics, "Subscribers addition"), and for agents no
longer in Chatwoot `POST /v1/topics/{key}/subscribers/removal` (see api.py for the sources).
`to` is sent as an array: a topic given as a single object was acknowledged and sent nothing
on some versions (novuhq/novu#5571, contract calcom-novu-metabase.md §2.9).

Each kind of notice is its own workflow (in-app and push, then email only if the in-app notice
is still unread after a delay: written_steps.py), so staff can turn
each kind or channel off in their preferences (a workflow's preferences per channel,
PreferencesRequestDto; the Inbox's preferences read the same). The in-app feed is what Novu's
Inbox shows, and what `GET /v1/subscribers/{id}/notifications/feed` answers (docs:
api-reference/subscribers, "Retrieve subscriber notifications").

A trigger's `transactionId` (also its Idempotency-Key) names the event, e.g.
`<salon>:handoff:<conversation>:<handoff note id>`: a retried delivery pages no one twice.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from gateway.integrations.novu.written_steps import EMAIL_AFTER, written_steps

log = logging.getLogger("frontdesk.novu.staff")

HANDOFF = "staff-handoff"
WAITLIST_BOOKED = "staff-waitlist-booked"
UNDELIVERED = "staff-notice-undelivered"
OUT_OF_HOURS = "staff-out-of-hours"
NO_SHOW = "staff-no-show"

STAFF_TITLES = {
    HANDOFF: "Staff: a client waits for a person",
    WAITLIST_BOOKED: "Staff: a waitlist slot was booked",
    UNDELIVERED: "Staff: a notice did not reach a client",
    OUT_OF_HOURS: "Staff: a booking change out of hours",
    NO_SHOW: "Staff: a client did not come",
}


def topic_key(salon: str) -> str:
    return f"{salon}:staff"


def subscriber_id(salon: str, user_id: int) -> str:
    return f"{salon}:staff:{user_id}"


def staff_definitions() -> list[dict[str, Any]]:
    """The staff workflows, as bodies of `POST /v2/workflows` (see workflows.py)."""
    return [
        {
            "name": f"Frontdesk: {title}",
            "workflowId": workflow_id,
            "description": "Managed by Frontdesk (`frontdesk novu sync`); staff choose their "
            "channels in their preferences.",
            "tags": ["frontdesk", "staff"],
            "active": True,
            "steps": written_steps("url", push=True, email_after=EMAIL_AFTER),
        }
        for workflow_id, title in STAFF_TITLES.items()
    ]


class StaffNovu(Protocol):
    async def upsert_subscriber(self, subscriber: dict[str, Any]) -> None: ...
    async def create_topic(self, key: str, name: str) -> None: ...
    async def add_to_topic(self, key: str, subscribers: list[str]) -> None: ...
    async def topic_subscribers(self, key: str) -> list[str] | None: ...
    async def remove_from_topic(self, key: str, subscribers: list[str]) -> None: ...


async def sync_staff(novu: StaffNovu, agents: list[dict[str, Any]], salon: str) -> list[str]:
    """Create or update one subscriber per Chatwoot agent and gather them in the salon's
    topic; the subscriber ids, in Chatwoot's order. Running it twice changes nothing more."""
    ids = []
    for agent in agents:
        user = agent.get("id")
        if not isinstance(user, int):
            continue
        name = str(agent.get("available_name") or agent.get("name") or "")
        subscriber: dict[str, Any] = {
            "subscriberId": subscriber_id(salon, user),
            "firstName": name,
            "data": {"chatwootUserId": user, "role": str(agent.get("role") or "agent")},
        }
        if agent.get("email"):
            subscriber["email"] = str(agent["email"])
        await novu.upsert_subscriber(subscriber)
        ids.append(subscriber["subscriberId"])
    await novu.create_topic(topic_key(salon), f"Staff of {salon}")
    if ids:
        await novu.add_to_topic(topic_key(salon), ids)
    # An agent removed from Chatwoot leaves the topic, so is paged no more. Only our own staff
    # ids are taken out: a subscriber someone added by hand stays.
    ours = f"{topic_key(salon)}:"
    gone = [
        member
        for member in await novu.topic_subscribers(topic_key(salon)) or []
        if member.startswith(ours) and member not in ids
    ]
    if gone:
        await novu.remove_from_topic(topic_key(salon), gone)
        log.info("%d former staff taken out of topic %s", len(gone), topic_key(salon))
    return ids


def staff_trigger(
    salon: str, workflow: str, transaction: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """The body of `POST /v1/events/trigger` for one notice to every staff member of a salon."""
    return {
        "name": workflow,
        "to": [{"type": "Topic", "topicKey": topic_key(salon)}],
        "payload": payload,
        "transactionId": transaction,
    }
