"""The steps of a workflow whose text arrives written (the owner's report, the staff's notices):
Novu only carries `payload.subject` and `payload.text`, already in the reader's language.

The in-app step's controls are Novu's `inAppControlSchema`
(novuhq/novu apps/api/src/app/workflows-v2/shared/schemas/in-app-control.schema.ts, imported by
step-type-to-control.mapper.ts, 4fae506): `body` required, `subject`, and `redirect`
(`{url, target}`, target one of _self, _blank, ...) opened when the notice is clicked; the push
and email steps' are `subject` and `body`, as the clients' workflows use (workflows.py).

Email can be the fallback of the in-app notice (the staff's notices, issue 21): a delay step,
then the email step with a step condition that holds only while the in-app message is unread.
- The delay's controls are `{type: "regular", amount, unit}` (delayControlZodSchema in
  novuhq/novu libs/application-generic/src/schemas/control/delay-control.schema.ts, 10fe646:
  a regular delay needs `amount` >= 1 and `unit`: seconds, minutes, hours, days, weeks or
  months).
- A step condition is the `skip` control, JSON logic, and it says when the step RUNS: the
  dashboard workflow's step is skipped when it is false (construct-framework-workflow.usecase.ts
  in apps/api/src/app/environments-v1/usecases/construct-framework-workflow/, 013ebab:
  `processSkipOption` returns `!result`, "The Step Conditions in the Dashboard control the step
  execution, that's why we need to invert the result"; docs: platform/workflow/
  add-and-configure-steps/step-conditions, "If the condition evaluates to true, the step runs").
  The inverse (skip when true) is only `@novu/framework`'s code-first `skip` function.
- Among its variables are the earlier steps' results, `steps.<stepId>`; an in-app step's are
  `seen`, `read`, `lastSeenDate`, `lastReadDate`, read from its message when the later step
  runs (apps/worker/src/app/workflow/usecases/execute-bridge-job/execute-bridge-job.usecase.ts,
  4fae506, `mapState`; docs: the dashboard-workflows step-conditions reference, "steps.* —
  Previous step state (e.g. steps.welcome-in-app.read, steps.welcome-in-app.seen)").
So `{"==": [{"var": "steps.in-app.read"}, false]}` on the email step: it runs only if nobody
opened the notice during the delay. Novu's stand-in evaluates exactly this (gateway/sandbox/novu).
"""

from __future__ import annotations

from typing import Any

IN_APP = "in-app"
# How long a staff notice may stay unread in the Inbox before it also goes by email.
EMAIL_AFTER = {"amount": 15, "unit": "minutes"}
# The email step's condition: it runs while the in-app message is unread.
UNREAD = {"==": [{"var": f"steps.{IN_APP}.read"}, False]}


def written_steps(
    link: str, *, push: bool, email_after: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """In-app (opening `payload.<link>` when clicked), then push if asked, then email: at once,
    or, given `email_after` ({amount, unit}), after that delay and only if the in-app notice
    has not been read by then."""
    text = {"subject": "{{payload.subject}}", "body": "{{payload.text}}"}
    in_app = {"redirect": {"url": f"{{{{payload.{link}}}}}", "target": "_blank"}}
    steps: list[dict[str, Any]] = [
        {"name": "In-app", "stepId": IN_APP, "type": "in_app", "controlValues": text | in_app}
    ]
    if push:
        steps.append({"name": "Push", "stepId": "push", "type": "push", "controlValues": text})
    email: dict[str, Any] = {"name": "Email", "stepId": "email", "type": "email"}
    if email_after is None:
        steps.append(email | {"controlValues": text})
        return steps
    delay = {"type": "regular", **email_after}
    steps.append({"name": "Wait", "stepId": "wait", "type": "delay", "controlValues": delay})
    steps.append(email | {"controlValues": text | {"skip": UNREAD}})
    return steps
