"""Frontdesk's Novu workflows, as code: `frontdesk novu sync` creates or updates them in Novu.

Every workflow has the same three deliveries:

- **messenger**: an HTTP request step that posts the notice to the gateway's
  `POST /webhooks/novu`; the gateway sends it to the client through its own outbox (Telegram or
  WhatsApp, with the 24-hour window, rate limits, language and ownership rules). Skipped for
  clients Frontdesk cannot reach in a messenger.
- **email** and **sms**: Novu's own providers, for clients known only by their email or phone
  (a booking made on the salon's page by someone who never wrote to the bot).

The reminder adds a delay step before them that waits until `payload.sendAt` (Novu's dynamic
delay), so one workflow serves every offset. The texts come in the payload, already written in
the client's language with the salon's local time: Novu only carries them.

Shapes follow Novu's v2 workflow API (`POST /v2/workflows`, `PUT /v2/workflows/{id}`, steps with
`controlValues`, JSON-logic `skip` conditions). The HTTP request step and the dynamic delay are
recent (2025); see README "Notifications (Novu)" for older Novu versions.
"""

from __future__ import annotations

from typing import Any, Protocol

CONFIRMED = "booking-confirmed"
RESCHEDULED = "booking-rescheduled"
CANCELLED = "booking-cancelled"
REQUESTED = "booking-requested"
REJECTED = "booking-rejected"
REMINDER = "booking-reminder"

TITLES = {
    CONFIRMED: "Booking confirmed",
    RESCHEDULED: "Booking rescheduled",
    CANCELLED: "Booking cancelled",
    REQUESTED: "Booking requested",
    REJECTED: "Booking request declined",
    REMINDER: "Booking reminder",
}

# What the messenger step posts to the gateway: every value a Liquid template of the payload.
WEBHOOK_FIELDS = (
    "transaction",
    "kind",
    "bookingUid",
    "conversation",
    "start",
    "service",
    "master",
    "previousUid",
    "previousStart",
    "reason",
    "messenger",
)

_IN_MESSENGER = {"!=": [{"var": "payload.conversation"}, ""]}
_NOT_IN_MESSENGER = {"==": [{"var": "payload.conversation"}, ""]}


def _steps(webhook_url: str) -> list[dict[str, Any]]:
    body = [{"key": name, "value": f"{{{{payload.{name}}}}}"} for name in WEBHOOK_FIELDS]
    body.append({"key": "subscriber", "value": "{{subscriber.subscriberId}}"})
    return [
        {
            "name": "Messenger (Frontdesk)",
            "stepId": "messenger",
            "type": "http_request",
            "controlValues": {
                "method": "POST",
                "url": webhook_url,
                "headers": [{"key": "Content-Type", "value": "application/json"}],
                "body": body,
                "skip": _NOT_IN_MESSENGER,
            },
        },
        {
            "name": "Email",
            "stepId": "email",
            "type": "email",
            "controlValues": {
                "subject": "{{payload.subject}}",
                "body": "{{payload.text}}",
                "skip": _IN_MESSENGER,
            },
        },
        {
            "name": "SMS",
            "stepId": "sms",
            "type": "sms",
            "controlValues": {"body": "{{payload.text}}", "skip": _IN_MESSENGER},
        },
    ]


def definitions(webhook_url: str) -> list[dict[str, Any]]:
    """Every workflow, as the body of `POST /v2/workflows`."""
    found = []
    for workflow_id, title in TITLES.items():
        steps = _steps(webhook_url)
        if workflow_id == REMINDER:
            wait = {
                "name": "Until the reminder time",
                "stepId": "wait",
                "type": "delay",
                "controlValues": {"type": "dynamic", "dynamicKey": "payload.sendAt"},
            }
            steps = [wait, *steps]
        found.append(
            {
                "name": f"Frontdesk: {title}",
                "workflowId": workflow_id,
                "description": "Managed by Frontdesk (`frontdesk novu sync`); edits here are "
                "replaced at the next sync.",
                "tags": ["frontdesk"],
                "active": True,
                "steps": steps,
            }
        )
    return found


def differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether Novu's copy of a workflow is not the one in the repo (so sync updates it)."""
    if current.get("name") != wanted["name"] or current.get("active", True) != wanted["active"]:
        return True
    have = [
        (s.get("stepId"), s.get("type"), s.get("controlValues")) for s in current.get("steps", [])
    ]
    want = [(s["stepId"], s["type"], s["controlValues"]) for s in wanted["steps"]]
    return have != want


class NovuClientLike(Protocol):
    async def workflow(self, workflow_id: str) -> dict[str, Any] | None: ...
    async def create_workflow(self, body: dict[str, Any]) -> None: ...
    async def update_workflow(self, workflow_id: str, body: dict[str, Any]) -> None: ...


async def sync(client: NovuClientLike, webhook_url: str) -> list[tuple[str, str]]:
    """Create or update every workflow; (workflow id, "created" | "updated" | "unchanged").
    Running it twice changes nothing the second time."""
    done = []
    for wanted in definitions(webhook_url):
        workflow_id = wanted["workflowId"]
        current = await client.workflow(workflow_id)
        if current is None:
            await client.create_workflow(wanted)
            done.append((workflow_id, "created"))
        elif differs(current, wanted):
            # The whole definition: a PUT replaces the workflow's steps.
            await client.update_workflow(workflow_id, wanted)
            done.append((workflow_id, "updated"))
        else:
            done.append((workflow_id, "unchanged"))
    return done
