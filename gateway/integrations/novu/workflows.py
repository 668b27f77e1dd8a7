"""Frontdesk's Novu workflows, as code: `frontdesk novu sync` creates or updates them in Novu.

Every workflow has the same three deliveries:

- **messenger**: an HTTP request step that posts the notice's ids to the gateway's
  `POST /webhooks/novu`; the gateway words it from its own record of the notice (see
  `ledger.py` beside this) and sends it through its own outbox (Telegram or WhatsApp, with the
  24-hour window, rate limits, language and ownership rules). It runs only for clients
  Frontdesk reaches in a messenger, and a failure of it does not stop the workflow (the
  gateway's ledger sends what Novu did not post).
- **email** and **sms**: Novu's own providers, for clients known only by their email or phone
  (a booking made on the salon's page by someone who never wrote to the bot).

The reminder adds a delay step before them that waits until `payload.sendAt` (Novu's dynamic
delay), so one workflow serves every offset. The email and SMS texts come in the payload, already
written in the client's language with the salon's local time: Novu only carries them.

Shapes follow Novu's v2 workflow API (`POST /v2/workflows`, `PUT /v2/workflows/{id}`, steps with
`controlValues`, JSON-logic step conditions). The HTTP request step and the dynamic delay are
recent (2025); see README "Notifications (Novu)" for older Novu versions.

Novu's rules these definitions follow:

- A step's condition (`controlValues.skip`) says when the step RUNS: true runs it, false skips
  it. novuhq/novu apps/worker/src/app/workflow/usecases/send-message/
  execute-http-request-step.usecase.ts (57973eb, `evaluateSkipCondition` returns `!result`) and
  apps/api/src/app/environments-v1/usecases/construct-framework-workflow/
  construct-framework-workflow.usecase.ts (4fae506, `processSkipOption`: "The Step Conditions in
  the Dashboard control the step execution, that's why we need to invert the result"); docs
  "Step conditions". Only `@novu/framework`'s code-first `skip()` means the opposite.
- The HTTP request step renders Liquid over the JSON text of its controls and parses the result
  (same file, `compileControlValues`): a quote in a rendered value breaks the JSON and the step
  goes out with its templates unrendered. So its body carries ids and keys only.
- A failed HTTP request step is not retried, and halts the workflow unless its controls say
  `continueOnFailure` (same file: `shouldHalt: !controlValues.continueOnFailure`).
- An update (`PUT /v2/workflows/{id}`) is a whole `UpdateWorkflowDto`
  (apps/api/src/app/workflows-v2/dtos/update-workflow.dto.ts, 151a942): `name`, `steps`,
  `preferences` and `origin` (a `ResourceOriginEnum`, not optional).
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.integrations.novu import owner_workflow
from gateway.integrations.novu.staff import staff_definitions

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

# What the messenger step posts to the gateway: every value a Liquid template of the payload,
# and every one an id, a key or an ISO time (no names or free text: see above).
WEBHOOK_FIELDS = (
    "transaction",
    "kind",
    "bookingUid",
    "conversation",
    "start",
    "previousUid",
    "previousStart",
    "messenger",
)
# What a workflow made through the v2 API is (ResourceOriginEnum in @novu/shared).
ORIGIN = "novu-cloud"

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
                # Runs for a messenger client (the condition says when the step runs).
                "skip": _IN_MESSENGER,
                # A gateway that does not answer must not cost the client their email or the
                # workflow its other steps; the gateway's ledger sends the notice instead.
                "continueOnFailure": True,
            },
        },
        {
            "name": "Email",
            "stepId": "email",
            "type": "email",
            "controlValues": {
                "subject": "{{payload.subject}}",
                "body": "{{payload.text}}",
                "skip": _NOT_IN_MESSENGER,
            },
        },
        {
            "name": "SMS",
            "stepId": "sms",
            "type": "sms",
            "controlValues": {"body": "{{payload.text}}", "skip": _NOT_IN_MESSENGER},
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
    # The owner's weekly report: its own steps (owner_workflow.py).
    found.append(owner_workflow.definition())
    return found


def all_definitions(webhook_url: str) -> list[dict[str, Any]]:
    """The clients' workflows, then the staff's (staff.py)."""
    return [*definitions(webhook_url), *staff_definitions()]


def controls_of(step: dict[str, Any]) -> Any:
    """A step's control values as Novu reads them back: `controlValues`, or `controls.values`
    (StepResponseDto in apps/api/src/app/workflows-v2/dtos/step.response.dto.ts has both, the
    first optional)."""
    if "controlValues" in step:
        return step["controlValues"]
    controls = step.get("controls")
    return controls.get("values") if isinstance(controls, dict) else None


def differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether Novu's copy of a workflow is not the one in the repo (so sync updates it)."""
    if current.get("name") != wanted["name"] or current.get("active", True) != wanted["active"]:
        return True
    have = [(s.get("stepId"), s.get("type"), controls_of(s)) for s in current.get("steps", [])]
    want = [(s["stepId"], s["type"], s["controlValues"]) for s in wanted["steps"]]
    return have != want


def update_of(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The whole `UpdateWorkflowDto` for a workflow Novu has: the repo's definition, with the
    workflow's own `origin` and preferences kept (both required; the id is not sent, it may
    change only for code-first workflows)."""
    read = current.get("preferences")
    preferences: dict[str, Any] = {}
    if isinstance(read, dict):
        # Read back as {user, default}; an update takes {user, workflow}
        # (preferences.response.dto.ts, preferences.request.dto.ts).
        preferences["user"] = read.get("user")
        if isinstance(read.get("workflow"), dict):
            preferences["workflow"] = read["workflow"]
    body = {key: value for key, value in wanted.items() if key != "workflowId"}
    return body | {"origin": current.get("origin") or ORIGIN, "preferences": preferences}


class NovuClientLike(Protocol):
    async def workflow(self, workflow_id: str) -> dict[str, Any] | None: ...
    async def create_workflow(self, body: dict[str, Any]) -> None: ...
    async def update_workflow(self, workflow_id: str, body: dict[str, Any]) -> None: ...


async def sync(client: NovuClientLike, webhook_url: str) -> list[tuple[str, str]]:
    """Create or update every workflow; (workflow id, "created" | "updated" | "unchanged").
    Running it twice changes nothing the second time."""
    done = []
    for wanted in all_definitions(webhook_url):
        workflow_id = wanted["workflowId"]
        current = await client.workflow(workflow_id)
        if current is None:
            await client.create_workflow(wanted)
            done.append((workflow_id, "created"))
        elif differs(current, wanted):
            # The whole definition: a PUT replaces the workflow's steps.
            await client.update_workflow(workflow_id, update_of(current, wanted))
            done.append((workflow_id, "updated"))
        else:
            done.append((workflow_id, "unchanged"))
    return done
