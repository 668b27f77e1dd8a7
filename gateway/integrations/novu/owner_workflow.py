"""The `frontdesk-owner-report` workflow: the weekly report to the salon owner, in Novu's in-app
feed and by email. `frontdesk novu sync` creates it beside the clients' workflows.

The text arrives written (in the owner's language, `gateway/analytics/report_text.py`): the steps
only carry it. The in-app step's controls are Novu's `inAppControlSchema`
(novuhq/novu apps/api/src/app/workflows-v2/shared/schemas/in-app-control.schema.ts, imported by
step-type-to-control.mapper.ts, 4fae506): `body` required, `subject`, and `redirect`
(`{url, target}`, target one of _self, _blank, ...) opened when the notice is clicked; the email
step's are `subject` and `body`, as the clients' workflows use (workflows.py).
"""

from __future__ import annotations

from typing import Any

OWNER_REPORT = "frontdesk-owner-report"


def definition() -> dict[str, Any]:
    """The workflow, as the body of `POST /v2/workflows`."""
    return {
        "name": "Frontdesk: Weekly report to the owner",
        "workflowId": OWNER_REPORT,
        "description": "Managed by Frontdesk (`frontdesk novu sync`); edits here are "
        "replaced at the next sync.",
        "tags": ["frontdesk"],
        "active": True,
        "steps": [
            {
                "name": "In-app",
                "stepId": "in-app",
                "type": "in_app",
                "controlValues": {
                    "subject": "{{payload.subject}}",
                    "body": "{{payload.text}}",
                    "redirect": {"url": "{{payload.dashboardUrl}}", "target": "_blank"},
                },
            },
            {
                "name": "Email",
                "stepId": "email",
                "type": "email",
                "controlValues": {"subject": "{{payload.subject}}", "body": "{{payload.text}}"},
            },
        ],
    }
