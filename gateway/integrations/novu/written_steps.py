"""The steps of a workflow whose text arrives written (the owner's report, the staff's notices):
Novu only carries `payload.subject` and `payload.text`, already in the reader's language.

The in-app step's controls are Novu's `inAppControlSchema`
(novuhq/novu apps/api/src/app/workflows-v2/shared/schemas/in-app-control.schema.ts, imported by
step-type-to-control.mapper.ts, 4fae506): `body` required, `subject`, and `redirect`
(`{url, target}`, target one of _self, _blank, ...) opened when the notice is clicked; the push
and email steps' are `subject` and `body`, as the clients' workflows use (workflows.py).
"""

from __future__ import annotations

from typing import Any


def written_steps(link: str, *, push: bool) -> list[dict[str, Any]]:
    """In-app (opening `payload.<link>` when clicked), then push if asked, then email."""
    text = {"subject": "{{payload.subject}}", "body": "{{payload.text}}"}
    in_app = {"redirect": {"url": f"{{{{payload.{link}}}}}", "target": "_blank"}}
    steps: list[dict[str, Any]] = [
        {"name": "In-app", "stepId": "in-app", "type": "in_app", "controlValues": text | in_app}
    ]
    if push:
        steps.append({"name": "Push", "stepId": "push", "type": "push", "controlValues": text})
    steps.append({"name": "Email", "stepId": "email", "type": "email", "controlValues": text})
    return steps
