"""The `frontdesk-owner-report` workflow: the weekly report to the salon owner, in Novu's in-app
feed and by email. `frontdesk novu sync` creates it beside the clients' workflows.

The text arrives written (in the owner's language, `gateway/analytics/report_text.py`): the steps
only carry it (written_steps.py); a click on the in-app notice opens the dashboard. Its email goes
at once, not as the staff notices' fallback (sent only if the in-app notice stays unread): the
issue asks for the report by email and in-app, and an owner who reads it in the Inbox may still
want it in their mailbox.
"""

from __future__ import annotations

from typing import Any

from gateway.integrations.novu.written_steps import written_steps

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
        "steps": written_steps("dashboardUrl", push=False),
    }
