"""The approved WhatsApp template standing in for staff's proposal outside the 24-hour window.

Inside the window a proposal goes as an interactive message whose buttons are the times
themselves. Outside it WhatsApp takes only an approved template (free-form fails with 131047,
../shared/contracts/chatwoot-whatsapp-telegram.md §2.7), and a template's quick-reply buttons
carry the labels registered with it: the send sets only each button's payload (the Cloud API
spec's button component takes a `payload` parameter and no text, contracts/whatsapp-cloud.
openapi.json, `ButtonComponent`), and every body value must be given (132000 otherwise, §2.6).
So the closest shape is one template per number of times (`<name>_1`, `_2`, `_3`): the times
are body values, numbered, and the buttons are "1", "2", "3" (one "Book it" for a single time),
whose payloads are the proposal's own choices: a tap books as a tap on the message would, and
a time typed in words is read as it always is (bot/flows/proposal.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from bot.flows.proposal import MAX_SLOTS, Proposal, slot_label
from bot.local_time import format_time
from gateway.pipeline import Outgoing


def template_name(base: str, count: int) -> str:
    """The registered template for a proposal of `count` times (1 to 3)."""
    return f"{base}_{count}"


def proposal_template(base: str, proposal: Proposal, zone: ZoneInfo, locale: str) -> dict[str, Any]:
    """The Cloud API message body of the template: who proposes what, the times, until when
    they are held; one quick-reply button per time."""
    slots = proposal.slots[:MAX_SLOTS]
    values = [
        proposal.staff,
        proposal.service,
        *(slot_label(slot, zone, locale) for slot in slots),
        format_time(proposal.until, zone, locale),
    ]
    return {
        "type": "template",
        "template": {
            "name": template_name(base, len(slots)),
            "language": {"policy": "deterministic", "code": locale},
            "components": [
                {
                    "type": "body",
                    # A value must not be empty (Meta refuses the send): a nameless agent's
                    # name shows as a dash.
                    "parameters": [{"type": "text", "text": value or "—"} for value in values],
                },
                *(
                    {
                        "type": "button",
                        "sub_type": "quick_reply",
                        "index": str(index),
                        "parameters": [{"type": "payload", "payload": proposal.choice(index)}],
                    }
                    for index in range(len(slots))
                ),
            ],
        },
    }


def with_fallback(outgoing: Sequence[Outgoing], fallback: dict[str, Any]) -> tuple[Outgoing, ...]:
    """The messages as they are; the last carries the template the WhatsApp delivery sends
    instead of all of them when the client's window is closed (gateway/integrations/whatsapp/
    api.py). The author is kept: staff's words go though a person owns the conversation."""
    last = len(outgoing) - 1
    return tuple(
        replace(message, params=message.params | {"fallback": fallback}) if n == last else message
        for n, message in enumerate(outgoing)
    )
